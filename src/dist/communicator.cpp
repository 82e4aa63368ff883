#include "dist/communicator.h"

#include <cstdlib>
#include <limits>
#include <string>

#include "dist/backend.h"
#include "mlpx/error.h"

namespace mlpx::dist {
namespace {

// One process is the whole job: every collective leaves its input as it is, after the same
// checks an MPI run makes, so a one-rank run fails where an N-rank run would.
class SingleRank final : public Communicator {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  int local_rank() const override { return 0; }
  int local_size() const override { return 1; }
  std::string backend() const override { return "single"; }

  void all_reduce_sum(Tensor& buffer) override {
    detail::check_reduce_buffer("all_reduce_sum", buffer);
  }
  std::vector<uint64_t> all_gather(uint64_t value) override { return {value}; }
  double all_reduce_sum(double value) override { return value; }
  void reduce_scatter_sum(const Tensor& full, Tensor& shard) override {
    detail::check_shards("reduce_scatter_sum", full, shard, shard_of(full.numel(), 0, 1));
    shard.copy_from(full);
  }
  void all_gather_shards(Tensor& full) override {
    detail::check_reduce_buffer("all_gather_shards", full);
  }
  void broadcast(Tensor& buffer, int root) override { detail::check_broadcast(buffer, root, 1); }
  void barrier() override {}
};

// The positive int in `text`, else nothing: "2", not "2x", "", "0" or "-1".
bool parse_count(const char* text, long long min, int* out) {
  if (text == nullptr || *text == '\0') return false;
  char* end = nullptr;
  const long long value = std::strtoll(text, &end, 10);
  if (*end != '\0' || value < min || value > std::numeric_limits<int>::max()) return false;
  *out = static_cast<int>(value);
  return true;
}

std::unique_ptr<Communicator> make_world() {
  const detail::Launch launch =
      detail::detect_launch([](const char* name) -> const char* { return std::getenv(name); });
  // One rank under a launcher (mpirun -np 1) needs no MPI: it is today's plain run.
  if (launch.size == 1) return std::make_unique<SingleRank>();
  // Without MPI each rank would train alone and all would write the same checkpoint.
  MLPX_CHECK(detail::mpi_built(), Error, "this process is rank ", launch.rank, " of ", launch.size,
             " (", launch.variable, "=", launch.size, ", set by ", launch.launcher,
             "), but this mlpx was built without MPI: install libopenmpi-dev and configure with "
             "-DMLPX_MPI=ON, or run one process");
  return detail::make_mpi_communicator(launch);
}

}  // namespace

namespace detail {

Launch detect_launch(const std::function<const char*(const char*)>& getenv) {
  struct Source {
    const char* size;
    const char* rank;
    const char* launcher;
  };
  static const Source kSources[] = {
      {"OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_RANK", "Open MPI's mpirun"},
      {"PMI_SIZE", "PMI_RANK", "a PMI launcher (Hydra mpiexec, srun --mpi=pmi2)"},
      {"MV2_COMM_WORLD_SIZE", "MV2_COMM_WORLD_RANK", "MVAPICH's mpirun_rsh"},
      {"SLURM_STEP_NUM_TASKS", "SLURM_PROCID", "srun"},
  };
  for (const Source& source : kSources) {
    const char* size_text = getenv(source.size);
    if (size_text == nullptr) continue;
    Launch launch;
    launch.variable = source.size;
    launch.launcher = source.launcher;
    MLPX_CHECK(parse_count(size_text, 1, &launch.size), ValueError, source.size, "=\"", size_text,
               "\": expected the number of ranks (a positive integer), set by ", source.launcher);
    const char* rank_text = getenv(source.rank);
    MLPX_CHECK(rank_text != nullptr, ValueError, source.size, " is set (", launch.size,
               " ranks) but ", source.rank, " is not: expected both from ", source.launcher);
    MLPX_CHECK(parse_count(rank_text, 0, &launch.rank) && launch.rank < launch.size, ValueError,
               source.rank, "=\"", rank_text, "\": expected a rank in 0..", launch.size - 1, " (",
               source.size, "=", launch.size, ")");
    return launch;
  }
  return {};
}

void check_reduce_buffer(std::string_view op, const Tensor& buffer) {
  MLPX_CHECK(buffer.defined(), ShapeError, op, ": expected a buffer, found an undefined tensor");
  MLPX_CHECK(buffer.device().is_cpu() &&
                 (buffer.dtype() == DType::kFloat32 || buffer.dtype() == DType::kFloat64),
             ShapeError, op, ": expected a float32 or float64 buffer on the CPU, found ",
             buffer.describe());
}

void check_shards(std::string_view op, const Tensor& full, const Tensor& shard, Shard mine) {
  check_reduce_buffer(op, full);
  check_reduce_buffer(op, shard);
  MLPX_CHECK(shard.dtype() == full.dtype() && shard.numel() == mine.count, ShapeError, op,
             ": expected a ", dtype_name(full.dtype()), " shard of ", mine.count,
             " elements (this rank's of ", full.numel(), "), found ", shard.describe());
}

void check_broadcast(const Tensor& buffer, int root, int size) {
  MLPX_CHECK(buffer.defined(), ShapeError,
             "broadcast: expected a buffer, found an undefined tensor");
  MLPX_CHECK(buffer.device().is_cpu(), ShapeError,
             "broadcast: expected a buffer on the CPU, found ", buffer.describe());
  MLPX_CHECK(root >= 0 && root < size, ValueError, "broadcast: expected a root rank in 0..",
             size - 1, ", found ", root);
}

}  // namespace detail

Communicator& single_rank() {
  static SingleRank alone;
  return alone;
}

Communicator& world() {
  // Built once, on first use (thread-safe); a throw leaves it unbuilt and the next call retries.
  static const std::unique_ptr<Communicator> the_world = make_world();
  return *the_world;
}

bool built_with_mpi() { return detail::mpi_built(); }

}  // namespace mlpx::dist
