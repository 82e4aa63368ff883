// The MPI backend of src/dist/ (built with MLPX_MPI): the ranks an MPI launcher started, talking
// through MPI's C API on CPU buffers.
//
// Start. The first world() of a multi-rank process starts MPI with
// MPI_Init_thread(MPI_THREAD_FUNNELED): only the thread that started it calls MPI (the training
// loop's thread; every collective checks this and throws otherwise). An application that started
// MPI itself keeps it: mlpx then neither starts nor ends it.
//
// End. MPI is ended by the process's exit, through an on_exit handler (glibc), which sees the
// exit status (atexit does not):
//   - status 0: MPI_Finalize, which waits for every rank to finalise too;
//   - any other status (main returned an error, exit(1)): MPI_Abort with that status, which ends
//     every rank of the job at once. A failing rank must not finalise: MPI_Finalize waits for the
//     other ranks, they wait in their next collective for this one, and the job hangs (it did,
//     measured with Open MPI 4.1: a rank that finalised and returned 1 while another sat in
//     MPI_Allreduce hung mpirun until it was killed).
// A rank that dies (a signal, std::terminate on an uncaught exception, _Exit) never finalises;
// its launcher sees that and ends the others. So an error ends the job with the caller's one line
// (the CLI's "error: ...") and the launcher's notice, and never hangs it. A rank that exits with
// status 0 while the others still expect collectives from it is a caller's bug, and does hang.
//
// Errors. mlpx talks on its own duplicate of MPI_COMM_WORLD, so its error handler and its
// messages never meet the application's. That communicator returns errors (MPI_ERRORS_RETURN),
// and each failing call becomes an mlpx::Error that names the call, the operation and the rank.
//
// Determinism. MPI_Allreduce with MPI_SUM picks its algorithm from the number of ranks and the
// message size only (Open MPI's tuned component), and every pairwise sum is computed in a fixed
// order or is commutative (exact in IEEE arithmetic), so every rank gets the same bits, run after
// run, for the same rank count and sizes.
#include <mpi.h>
#include <stdlib.h>  // on_exit (glibc)

#include <algorithm>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "dist/backend.h"
#include "mlpx/error.h"

namespace mlpx::dist::detail {
namespace {

// MPI counts are int; larger buffers go in pieces of this many elements (the same pieces on
// every rank, so the result is as deterministic as one call).
constexpr int64_t kMaxCount = int64_t{1} << 30;

std::string error_text(int code) {
  char text[MPI_MAX_ERROR_STRING];
  int length = 0;
  if (MPI_Error_string(code, text, &length) != MPI_SUCCESS) {
    return "MPI error code " + std::to_string(code);
  }
  return {text, static_cast<size_t>(length)};
}

// "Open MPI v4.1.4" from "Open MPI v4.1.4, package: Debian OpenMPI, ident: ...".
std::string library_version() {
  char text[MPI_MAX_LIBRARY_VERSION_STRING];
  int length = 0;
  if (MPI_Get_library_version(text, &length) != MPI_SUCCESS) return "unknown MPI";
  std::string version(text, static_cast<size_t>(length));
  const size_t end = version.find_first_of(",\n");
  return end == std::string::npos ? version : version.substr(0, end);
}

// The exit status every rank agreed on (Communicator::agree_on_exit), -1 before any.
int agreed_exit_status = -1;

// The on_exit handler (see the top of this file): finalise on success (or on the status the
// ranks agreed on), abort the job otherwise.
void end_mpi(int status, void* /*unused*/) {
  int finalized = 0;
  if (MPI_Finalized(&finalized) != MPI_SUCCESS || finalized) return;
  if (status != 0 && status != agreed_exit_status) {
    MPI_Abort(MPI_COMM_WORLD, status);  // does not return
    return;
  }
  MPI_Finalize();
}

// Starts MPI unless it runs already (the application's, or ours from a world() that threw).
void start_mpi() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  MLPX_CHECK(!finalized, Error,
             "MPI was already finalised in this process: the MPI communicator cannot start again");
  int initialized = 0;
  MPI_Initialized(&initialized);
  if (initialized) return;
  int provided = MPI_THREAD_SINGLE;
  const int rc = MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided);
  MLPX_CHECK(rc == MPI_SUCCESS, Error, "MPI_Init_thread failed: ", error_text(rc));
  // Before anything else can throw, so that every way out of this process ends MPI.
  MLPX_CHECK(on_exit(end_mpi, nullptr) == 0, Error,
             "MPI: could not register the exit handler that ends MPI");
  MLPX_CHECK(provided >= MPI_THREAD_FUNNELED, Error, "MPI_Init_thread: asked for ",
             "MPI_THREAD_FUNNELED (the other threads compute but never call MPI), ",
             library_version(), " provides only MPI_THREAD_SINGLE");
}

class MpiCommunicator final : public Communicator {
 public:
  explicit MpiCommunicator(const Launch& launch) {
    start_mpi();
    check(MPI_Query_thread(&thread_level_), "MPI_Query_thread", "start");
    // MPI_COMM_WORLD's handler, not ours yet: a failure here ends the job with MPI's message.
    MPI_Comm_dup(MPI_COMM_WORLD, &comm_);
    check(MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN), "MPI_Comm_set_errhandler", "start");
    check(MPI_Comm_rank(comm_, &rank_), "MPI_Comm_rank", "start");
    check(MPI_Comm_size(comm_, &size_), "MPI_Comm_size", "start");
    // The ranks that share this machine's memory: local_rank picks the GPU.
    MPI_Comm local = MPI_COMM_NULL;
    check(MPI_Comm_split_type(comm_, MPI_COMM_TYPE_SHARED, rank_, MPI_INFO_NULL, &local),
          "MPI_Comm_split_type", "local ranks");
    check(MPI_Comm_rank(local, &local_rank_), "MPI_Comm_rank", "local ranks");
    check(MPI_Comm_size(local, &local_size_), "MPI_Comm_size", "local ranks");
    check(MPI_Comm_free(&local), "MPI_Comm_free", "local ranks");
    // Launched by one MPI, linked against another: MPI_Init then makes each process a job of its
    // own, and N copies would train alone. Every rank finds this, so every rank throws.
    MLPX_CHECK(size_ == launch.size && rank_ == launch.rank, Error, launch.launcher,
               " started this process as rank ", launch.rank, " of ", launch.size, " (",
               launch.variable, "), but MPI's world holds ", size_, " rank(s) and calls it rank ",
               rank_, ": start mlpx with the launcher of the MPI it was built with (",
               library_version(), "), or check srun's --mpi");
  }

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  int local_rank() const override { return local_rank_; }
  int local_size() const override { return local_size_; }
  std::string backend() const override { return "mpi"; }

  void all_reduce_sum(Tensor& buffer) override {
    check_reduce_buffer("all_reduce_sum", buffer);
    check_thread("all_reduce_sum");
    const MPI_Datatype type = buffer.dtype() == DType::kFloat64 ? MPI_DOUBLE : MPI_FLOAT;
    const size_t element = dtype_size(buffer.dtype());
    auto* data = static_cast<char*>(buffer.raw_data());
    for (int64_t begin = 0; begin < buffer.numel(); begin += kMaxCount) {
      const auto count = static_cast<int>(std::min(kMaxCount, buffer.numel() - begin));
      check(MPI_Allreduce(MPI_IN_PLACE, data + static_cast<size_t>(begin) * element, count, type,
                          MPI_SUM, comm_),
            "MPI_Allreduce", "all_reduce_sum of " + buffer.describe());
    }
  }

  std::vector<uint64_t> all_gather(uint64_t value) override {
    check_thread("all_gather");
    std::vector<uint64_t> values(static_cast<size_t>(size_));
    check(MPI_Allgather(&value, 1, MPI_UINT64_T, values.data(), 1, MPI_UINT64_T, comm_),
          "MPI_Allgather", "all_gather");
    return values;
  }

  double all_reduce_sum(double value) override {
    check_thread("all_reduce_sum");
    double sum = 0;
    check(MPI_Allreduce(&value, &sum, 1, MPI_DOUBLE, MPI_SUM, comm_), "MPI_Allreduce",
          "all_reduce_sum of a double");
    return sum;
  }

  void broadcast(Tensor& buffer, int root) override {
    check_broadcast(buffer, root, size_);
    check_thread("broadcast");
    auto* data = static_cast<char*>(buffer.raw_data());
    const auto bytes = static_cast<int64_t>(buffer.nbytes());
    for (int64_t begin = 0; begin < bytes; begin += kMaxCount) {
      const auto count = static_cast<int>(std::min(kMaxCount, bytes - begin));
      check(MPI_Bcast(data + begin, count, MPI_BYTE, root, comm_), "MPI_Bcast",
            "broadcast of " + buffer.describe() + " from rank " + std::to_string(root));
    }
  }

  void reduce_scatter_sum(const Tensor& full, Tensor& shard) override {
    check_shards("reduce_scatter_sum", full, shard, shard_of(full.numel(), rank_, size_));
    check_thread("reduce_scatter_sum");
    const std::vector<int> counts = shard_counts(full.numel(), "reduce_scatter_sum");
    check(MPI_Reduce_scatter(full.raw_data(), shard.raw_data(), counts.data(), type_of(full),
                             MPI_SUM, comm_),
          "MPI_Reduce_scatter", "reduce_scatter_sum of " + full.describe());
  }

  void all_gather_shards(Tensor& full) override {
    check_reduce_buffer("all_gather_shards", full);
    check_thread("all_gather_shards");
    const std::vector<int> counts = shard_counts(full.numel(), "all_gather_shards");
    std::vector<int> displacements(counts.size());
    for (int r = 0; r < size_; ++r) {
      displacements[r] = static_cast<int>(shard_of(full.numel(), r, size_).first);
    }
    check(MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, full.raw_data(), counts.data(),
                         displacements.data(), type_of(full), comm_),
          "MPI_Allgatherv", "all_gather_shards of " + full.describe());
  }

  void barrier() override {
    check_thread("barrier");
    check(MPI_Barrier(comm_), "MPI_Barrier", "barrier");
  }

  void agree_on_exit(int status) override {
    check_thread("agree_on_exit");
    check(MPI_Barrier(comm_), "MPI_Barrier", "agree_on_exit");
    agreed_exit_status = status;
  }

 private:
  // One line: "MPI_Allreduce (all_reduce_sum of [10] float32 cpu) failed on rank 1 of 3: ...".
  void check(int rc, const char* call, const std::string& what) const {
    MLPX_CHECK(rc == MPI_SUCCESS, Error, call, " (", what, ") failed on rank ", rank_, " of ",
               size_, ": ", error_text(rc));
  }

  static MPI_Datatype type_of(const Tensor& buffer) {
    return buffer.dtype() == DType::kFloat64 ? MPI_DOUBLE : MPI_FLOAT;
  }

  // Every rank's shard size of `total` elements, as MPI's int counts (one call: no pieces).
  std::vector<int> shard_counts(int64_t total, const char* op) const {
    MLPX_CHECK(total < (int64_t{1} << 31), ShapeError, op, ": expected fewer than 2^31 elements ",
               "for a sharded collective, found ", total);
    std::vector<int> counts(static_cast<size_t>(size_));
    for (int r = 0; r < size_; ++r) counts[r] = static_cast<int>(shard_of(total, r, size_).count);
    return counts;
  }

  void check_thread(const char* op) const {
    if (thread_level_ >= MPI_THREAD_SERIALIZED) return;  // an application's MPI may allow more
    int is_main = 0;
    check(MPI_Is_thread_main(&is_main), "MPI_Is_thread_main", op);
    MLPX_CHECK(is_main, Error, op, ": called from a thread that did not start MPI; with ",
               "MPI_THREAD_FUNNELED every collective runs on the thread that first called "
               "dist::world()");
  }

  MPI_Comm comm_ = MPI_COMM_NULL;
  int rank_ = -1;  // -1 until known, in messages
  int size_ = 0;
  int local_rank_ = 0;
  int local_size_ = 1;
  int thread_level_ = MPI_THREAD_SINGLE;
};

}  // namespace

bool mpi_built() { return true; }

std::unique_ptr<Communicator> make_mpi_communicator(const Launch& launch) {
  return std::make_unique<MpiCommunicator>(launch);
}

}  // namespace mlpx::dist::detail
