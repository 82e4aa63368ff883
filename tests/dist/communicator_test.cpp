// dist::world() and its collectives. Each test passes as one plain process (a single rank) and
// under `mpirun -np N` (ctest: dist_mpi_np2, dist_mpi_np3), where every rank runs the same tests
// in the same order. So every rank calls the same collectives in the same order whatever it
// finds: the checks are EXPECTs after the collectives, never an ASSERT that would return early on
// one rank and leave the others waiting.
#include "dist/communicator.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "dist/backend.h"
#include "mlpx/error.h"
#include "test_util.h"

namespace mlpx::dist {
namespace {

// Open MPI's mpirun announces the job in these (the ctest entries use it); a plain run is rank
// 0 of 1.
int env_int(const char* name, int fallback) {
  const char* text = std::getenv(name);
  return text == nullptr ? fallback : std::atoi(text);
}

uint64_t fnv1a(const void* data, size_t bytes) {
  uint64_t hash = 14695981039346656037ull;
  for (size_t i = 0; i < bytes; ++i) {
    hash ^= static_cast<const unsigned char*>(data)[i];
    hash *= 1099511628211ull;
  }
  return hash;
}

// Every rank's hash of `t`'s bytes, gathered: equal everywhere when every rank holds the same bits.
std::vector<uint64_t> gathered_hashes(const Tensor& t) {
  return world().all_gather(fnv1a(t.raw_data(), t.nbytes()));
}

TEST(Communicator, WorldIsTheLaunchersJob) {
  Communicator& comm = world();
  EXPECT_EQ(&comm, &world());
  EXPECT_EQ(comm.size(), env_int("OMPI_COMM_WORLD_SIZE", 1));
  EXPECT_EQ(comm.rank(), env_int("OMPI_COMM_WORLD_RANK", 0));
  // One machine: the local ranks are the ranks.
  EXPECT_EQ(comm.local_size(), env_int("OMPI_COMM_WORLD_LOCAL_SIZE", 1));
  EXPECT_EQ(comm.local_rank(), env_int("OMPI_COMM_WORLD_LOCAL_RANK", 0));
  EXPECT_EQ(comm.backend(), comm.size() > 1 ? "mpi" : "single");
  EXPECT_EQ(built_with_mpi(), MLPX_TEST_WITH_MPI != 0);
  comm.barrier();
}

// Values whose float sums are exact in any order: quarter-integers below 2^12.
TEST(Communicator, AllReduceSumFloat32IsExact) {
  Communicator& comm = world();
  const int n = comm.size();
  for (int64_t numel : {int64_t{0}, int64_t{1}, int64_t{7}, int64_t{4099}, int64_t{1} << 20}) {
    std::vector<float> values(static_cast<size_t>(numel));
    for (int64_t i = 0; i < numel; ++i) {
      values[i] = static_cast<float>(comm.rank() + 1) * 0.25f + static_cast<float>(i % 1024);
    }
    Tensor buffer = Tensor::from_vector(values, {numel});
    comm.all_reduce_sum(buffer);
    const std::vector<float> sums = buffer.to_vector<float>();
    int64_t wrong = 0;
    for (int64_t i = 0; i < numel; ++i) {
      const float expected = 0.25f * static_cast<float>(n * (n + 1) / 2) +
                             static_cast<float>(n) * static_cast<float>(i % 1024);
      wrong += sums[i] != expected;
    }
    EXPECT_EQ(wrong, 0) << "of " << numel << " sums on rank " << comm.rank();
  }
}

TEST(Communicator, AllReduceSumFloat64IsExact) {
  Communicator& comm = world();
  const int n = comm.size();
  const int64_t numel = 3001;
  std::vector<double> values(numel);
  for (int64_t i = 0; i < numel; ++i) values[i] = (comm.rank() + 1) * 0.125 + i * 0x1p-10;
  Tensor buffer = Tensor::from_vector(values, {1, numel});  // 2-D: any shape is a flat buffer
  comm.all_reduce_sum(buffer);
  const std::vector<double> sums = buffer.to_vector<double>();
  int64_t wrong = 0;
  for (int64_t i = 0; i < numel; ++i)
    wrong += sums[i] != 0.125 * (n * (n + 1) / 2) + n * i * 0x1p-10;
  EXPECT_EQ(wrong, 0) << "on rank " << comm.rank();
}

// Sums whose bits depend on the order of the additions: the same inputs give the same bits
// twice, on every rank, and the right values.
template <typename T>
void expect_repeatable_sums(int64_t numel) {
  Communicator& comm = world();
  auto values_of = [&](int rank) {
    auto values = test::random_values<T>(static_cast<size_t>(numel), 1000 + rank);
    for (int64_t i = 0; i < numel; i += 3)
      values[i] *= 1e6;  // wide range: rounding differs by order
    return values;
  };
  const Tensor input = Tensor::from_vector(values_of(comm.rank()), {numel});
  Tensor first = input.clone();
  Tensor second = input.clone();
  comm.all_reduce_sum(first);
  comm.all_reduce_sum(second);
  EXPECT_EQ(std::memcmp(first.raw_data(), second.raw_data(), first.nbytes()), 0)
      << "two all_reduce_sum of the same " << input.describe() << " differ on rank " << comm.rank();
  const std::vector<uint64_t> hashes = gathered_hashes(first);
  for (int r = 0; r < comm.size(); ++r) {
    EXPECT_EQ(hashes[r], hashes[0]) << "rank " << r << " holds other bits than rank 0";
  }
  std::vector<double> expected(static_cast<size_t>(numel), 0.0);
  for (int r = 0; r < comm.size(); ++r) {
    const auto values = values_of(r);
    for (int64_t i = 0; i < numel; ++i) expected[i] += values[i];
  }
  const double rtol = sizeof(T) == 4 ? 1e-5 : 1e-12;
  EXPECT_TRUE(test::all_close(first.to_vector<T>(), expected, 1e6 * rtol, rtol));
}

TEST(Communicator, AllReduceSumFloat32IsRepeatableAndTheSameOnEveryRank) {
  expect_repeatable_sums<float>(5);
  expect_repeatable_sums<float>(int64_t{1} << 18);
}

TEST(Communicator, AllReduceSumFloat64IsRepeatableAndTheSameOnEveryRank) {
  expect_repeatable_sums<double>(5);
  expect_repeatable_sums<double>(int64_t{1} << 17);
}

TEST(Communicator, AllReduceSumOfADouble) {
  Communicator& comm = world();
  const int n = comm.size();
  EXPECT_EQ(comm.all_reduce_sum(comm.rank() + 0.5), n * (n - 1) / 2 + 0.5 * n);
}

TEST(Communicator, AllGatherIsInRankOrder) {
  Communicator& comm = world();
  auto value_of = [](int rank) {
    return (uint64_t{0xFFFFFFFF} << 32) + (uint64_t(rank) << 20) + uint64_t(rank * rank) + 7;
  };
  const std::vector<uint64_t> values = comm.all_gather(value_of(comm.rank()));
  EXPECT_EQ(values.size(), static_cast<size_t>(comm.size()));
  for (size_t r = 0; r < values.size(); ++r) {
    EXPECT_EQ(values[r], value_of(static_cast<int>(r))) << "from rank " << r;
  }
}

TEST(Communicator, BroadcastFromEveryRoot) {
  Communicator& comm = world();
  auto values_of = [](int rank) {
    std::vector<float> values(15);
    for (size_t i = 0; i < values.size(); ++i) values[i] = rank * 100.0f + i + 0.5f;
    return values;
  };
  // The last rank first: a root other than 0 whenever there are several.
  for (int root = comm.size() - 1; root >= 0; --root) {
    Tensor buffer = Tensor::from_vector(values_of(comm.rank()), {3, 5});
    comm.broadcast(buffer, root);
    EXPECT_EQ(buffer.to_vector<float>(), values_of(root)) << "root " << root;
  }
  // 4 MiB of int32, any dtype goes as bytes.
  const int root = comm.size() - 1;
  std::vector<int32_t> big(int64_t{1} << 20);
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<int32_t>(i * 7 + comm.rank());
  Tensor buffer = Tensor::from_vector(big, {static_cast<int64_t>(big.size())});
  comm.broadcast(buffer, root);
  const std::vector<int32_t> got = buffer.to_vector<int32_t>();
  int64_t wrong = 0;
  for (size_t i = 0; i < got.size(); ++i) wrong += got[i] != static_cast<int32_t>(i * 7 + root);
  EXPECT_EQ(wrong, 0) << "on rank " << comm.rank();
}

// Argument errors are found before any MPI call, identically on every rank, so the ranks stay in
// step (the barrier after them returns).
TEST(Communicator, RejectsBadBuffersOnEveryRank) {
  Communicator& comm = world();
  Tensor ints = Tensor::zeros({4}, DType::kInt32);
  Tensor undefined;
  Tensor floats = Tensor::zeros({4});
  EXPECT_THROW(comm.all_reduce_sum(ints), ShapeError);
  EXPECT_THROW(comm.all_reduce_sum(undefined), ShapeError);
  EXPECT_THROW(comm.broadcast(undefined, 0), ShapeError);
  EXPECT_THROW(comm.broadcast(floats, -1), ValueError);
  EXPECT_THROW(comm.broadcast(floats, comm.size()), ValueError);
  try {
    comm.all_reduce_sum(ints);
  } catch (const ShapeError& e) {
    EXPECT_EQ(
        std::string(e.what()),
        "all_reduce_sum: expected a float32 or float64 buffer on the CPU, found [4] int32 cpu");
  }
  comm.barrier();
}

// MPI_THREAD_FUNNELED: a collective from another thread is an Error, not undefined behaviour.
TEST(Communicator, CollectivesStayOnTheThreadThatStartedMpi) {
  Communicator& comm = world();
  if (comm.backend() != "mpi") GTEST_SKIP() << "one rank: no MPI, any thread may call";
  std::string error;
  std::thread other([&] {
    try {
      comm.barrier();
    } catch (const Error& e) {
      error = e.what();
    }
  });
  other.join();
  EXPECT_NE(error.find("barrier: called from a thread that did not start MPI"), std::string::npos)
      << error;
  comm.barrier();
}

// detect_launch: the rule of src/dist/backend.h, on made-up environments.
detail::Launch launch_in(const std::map<std::string, std::string>& env) {
  return detail::detect_launch([&](const char* name) -> const char* {
    const auto it = env.find(name);
    return it == env.end() ? nullptr : it->second.c_str();
  });
}

TEST(CommunicatorLaunch, EachLauncherIsRecognised) {
  const detail::Launch plain = launch_in({});
  EXPECT_EQ(plain.size, 1);
  EXPECT_EQ(plain.rank, 0);
  EXPECT_EQ(plain.variable, "");
  const std::vector<std::pair<std::string, std::string>> pairs = {
      {"OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_RANK"},
      {"PMI_SIZE", "PMI_RANK"},
      {"MV2_COMM_WORLD_SIZE", "MV2_COMM_WORLD_RANK"},
      {"SLURM_STEP_NUM_TASKS", "SLURM_PROCID"}};
  for (const auto& [size, rank] : pairs) {
    const detail::Launch launch = launch_in({{size, "4"}, {rank, "3"}});
    EXPECT_EQ(launch.size, 4) << size;
    EXPECT_EQ(launch.rank, 3) << rank;
    EXPECT_EQ(launch.variable, size);
  }
}

TEST(CommunicatorLaunch, AnMpiLauncherWinsOverTheSlurmStepItRunsIn) {
  const detail::Launch launch = launch_in({{"SLURM_STEP_NUM_TASKS", "1"},
                                           {"SLURM_PROCID", "0"},
                                           {"OMPI_COMM_WORLD_SIZE", "2"},
                                           {"OMPI_COMM_WORLD_RANK", "1"}});
  EXPECT_EQ(launch.size, 2);
  EXPECT_EQ(launch.rank, 1);
  EXPECT_EQ(launch.variable, "OMPI_COMM_WORLD_SIZE");
}

TEST(CommunicatorLaunch, ABatchScriptsTaskCountIsNotALaunch) {
  // sbatch --ntasks=4 sets these for the script itself: one plain process, one rank.
  const detail::Launch launch = launch_in({{"SLURM_NTASKS", "4"}, {"SLURM_PROCID", "0"}});
  EXPECT_EQ(launch.size, 1);
  EXPECT_EQ(launch.variable, "");
}

TEST(CommunicatorLaunch, MalformedVariablesAreNamed) {
  for (const char* size : {"", "0", "-2", "two", "2x", "99999999999"}) {
    EXPECT_THROW(launch_in({{"PMI_SIZE", size}, {"PMI_RANK", "0"}}), ValueError) << size;
  }
  EXPECT_THROW(launch_in({{"PMI_SIZE", "2"}, {"PMI_RANK", "2"}}), ValueError);
  EXPECT_THROW(launch_in({{"PMI_SIZE", "2"}, {"PMI_RANK", "-1"}}), ValueError);
  try {
    launch_in({{"OMPI_COMM_WORLD_SIZE", "3"}});
    ADD_FAILURE() << "expected a ValueError";
  } catch (const ValueError& e) {
    EXPECT_EQ(std::string(e.what()),
              "OMPI_COMM_WORLD_SIZE is set (3 ranks) but OMPI_COMM_WORLD_RANK is not: expected "
              "both from Open MPI's mpirun");
  }
}

}  // namespace
}  // namespace mlpx::dist
