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
// The watchdog (dist.timeout_s, as PyTorch's NCCL watchdog). Every collective is MPI's
// non-blocking one (MPI_Iallreduce, ...) completed by polling MPI_Test against a deadline: a
// peer that stopped, died or became unreachable leaves no blocking call sitting in MPI for many
// minutes. At the deadline the rank holds a roll call to learn who did not arrive: on a
// communicator of the watchdog's own it sends every other rank "I wait in collective #k" and
// listens for a short grace. A rank that waits in a collective (its own poll loop, or its own
// roll call) answers at once with the collective it waits in; a rank that is stopped, dead,
// unreachable or still computing does not answer. Nothing is sent while the job is healthy. The
// error names the operation, this rank's collective count, the caller's context (the step),
// the ranks that did not answer and those that wait elsewhere; the communicator is then unusable
// (the timed-out request cannot be cancelled), and the exit that follows aborts the job. The
// abort itself (MPI_Abort) needs the launcher, which a cut link may have made unreachable: an
// alarm ends this process with the same status if MPI_Abort has not after kAbortGraceSeconds.
// With dist.timeout_s 0 (no watchdog) the collectives are MPI's blocking ones, whose algorithms
// (Open MPI's tuned component) are faster than libnbc's non-blocking ones (docs/cluster.md).
//
// Determinism. MPI_Iallreduce (and MPI_Allreduce) with MPI_SUM picks its algorithm from the
// number of ranks and the message size only (libnbc: a binomial reduce and broadcast, or a ring;
// tuned: recursive doubling, a ring, ...), and every pairwise sum is computed in a fixed order or
// is commutative (exact in IEEE arithmetic), so every rank gets the same bits, run after run, for
// the same rank count, sizes and dist.timeout_s (0 or not: the two families may add in other
// orders).
#include <mpi.h>
#include <signal.h>
#include <stdlib.h>  // on_exit (glibc)
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <sstream>
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

// How long MPI_Abort may take to end this process before the alarm does (a launcher behind a
// cut link never answers it).
constexpr unsigned kAbortGraceSeconds = 10;
volatile sig_atomic_t abort_status = 1;
void exit_with_abort_status(int /*signal*/) { _exit(abort_status); }

// The on_exit handler (see the top of this file): finalise on success (or on the status the
// ranks agreed on), abort the job otherwise.
void end_mpi(int status, void* /*unused*/) {
  int finalized = 0;
  if (MPI_Finalized(&finalized) != MPI_SUCCESS || finalized) return;
  if (status != 0 && status != agreed_exit_status) {
    abort_status = status;
    signal(SIGALRM, exit_with_abort_status);
    alarm(kAbortGraceSeconds);
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

using Clock = std::chrono::steady_clock;

// The collectives, as the watchdog's messages and roll calls name them.
enum class Op : int64_t {
  kAllReduce,
  kAllGather,
  kBroadcast,
  kReduceScatter,
  kAllGatherShards,
  kBarrier,
};
const char* op_name(int64_t op) {
  static const char* const kNames[] = {"all_reduce_sum",     "all_gather",        "broadcast",
                                       "reduce_scatter_sum", "all_gather_shards", "barrier"};
  return op >= 0 && op < 6 ? kNames[op] : "an unknown collective";
}

// The watchdog's messages, on its own communicator: a roll call ("I wait in collective
// #sequence, operation op"; tag kRollCall) and its answer (the same three numbers; tag kAnswer).
constexpr int kRollCall = 1, kAnswer = 2;
struct WhereWaiting {
  int64_t sequence = 0;   // the sender's collective count (1 for its first)
  int64_t op = 0;         // an Op
  int64_t timed_out = 0;  // 1: a roll call, the sender's deadline has passed
};
static_assert(sizeof(WhereWaiting) == 3 * sizeof(int64_t));

// "1, 3" from {1, 3}.
std::string join(const std::vector<int>& ranks) {
  std::string text;
  for (const int r : ranks) text += (text.empty() ? "" : ", ") + std::to_string(r);
  return text;
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
    // The watchdog's roll calls never meet the collectives' messages.
    check(MPI_Comm_dup(comm_, &watch_), "MPI_Comm_dup", "the watchdog's communicator");
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
      const std::string what = "all_reduce_sum of " + buffer.describe();
      void* piece = data + static_cast<size_t>(begin) * element;
      collective(
          Op::kAllReduce, "MPI_Allreduce", what,
          [&] { return MPI_Allreduce(MPI_IN_PLACE, piece, count, type, MPI_SUM, comm_); },
          [&](MPI_Request* r) {
            return MPI_Iallreduce(MPI_IN_PLACE, piece, count, type, MPI_SUM, comm_, r);
          });
    }
  }

  std::vector<uint64_t> all_gather(uint64_t value) override {
    check_thread("all_gather");
    std::vector<uint64_t> values(static_cast<size_t>(size_));
    collective(
        Op::kAllGather, "MPI_Allgather", "all_gather",
        [&] {
          return MPI_Allgather(&value, 1, MPI_UINT64_T, values.data(), 1, MPI_UINT64_T, comm_);
        },
        [&](MPI_Request* r) {
          return MPI_Iallgather(&value, 1, MPI_UINT64_T, values.data(), 1, MPI_UINT64_T, comm_, r);
        });
    return values;
  }

  double all_reduce_sum(double value) override {
    check_thread("all_reduce_sum");
    double sum = 0;
    collective(
        Op::kAllReduce, "MPI_Allreduce", "all_reduce_sum of a double",
        [&] { return MPI_Allreduce(&value, &sum, 1, MPI_DOUBLE, MPI_SUM, comm_); },
        [&](MPI_Request* r) {
          return MPI_Iallreduce(&value, &sum, 1, MPI_DOUBLE, MPI_SUM, comm_, r);
        });
    return sum;
  }

  void broadcast(Tensor& buffer, int root) override {
    check_broadcast(buffer, root, size_);
    check_thread("broadcast");
    auto* data = static_cast<char*>(buffer.raw_data());
    const auto bytes = static_cast<int64_t>(buffer.nbytes());
    for (int64_t begin = 0; begin < bytes; begin += kMaxCount) {
      const auto count = static_cast<int>(std::min(kMaxCount, bytes - begin));
      const std::string what =
          "broadcast of " + buffer.describe() + " from rank " + std::to_string(root);
      collective(
          Op::kBroadcast, "MPI_Bcast", what,
          [&] { return MPI_Bcast(data + begin, count, MPI_BYTE, root, comm_); },
          [&](MPI_Request* r) {
            return MPI_Ibcast(data + begin, count, MPI_BYTE, root, comm_, r);
          });
    }
  }

  void reduce_scatter_sum(const Tensor& full, Tensor& shard) override {
    check_shards("reduce_scatter_sum", full, shard, shard_of(full.numel(), rank_, size_));
    check_thread("reduce_scatter_sum");
    const std::vector<int> counts = shard_counts(full.numel(), "reduce_scatter_sum");
    const std::string what = "reduce_scatter_sum of " + full.describe();
    collective(
        Op::kReduceScatter, "MPI_Reduce_scatter", what,
        [&] {
          return MPI_Reduce_scatter(full.raw_data(), shard.raw_data(), counts.data(), type_of(full),
                                    MPI_SUM, comm_);
        },
        [&](MPI_Request* r) {
          return MPI_Ireduce_scatter(full.raw_data(), shard.raw_data(), counts.data(),
                                     type_of(full), MPI_SUM, comm_, r);
        });
  }

  void all_gather_shards(Tensor& full) override {
    check_reduce_buffer("all_gather_shards", full);
    check_thread("all_gather_shards");
    const std::vector<int> counts = shard_counts(full.numel(), "all_gather_shards");
    std::vector<int> displacements(counts.size());
    for (int r = 0; r < size_; ++r) {
      displacements[r] = static_cast<int>(shard_of(full.numel(), r, size_).first);
    }
    const std::string what = "all_gather_shards of " + full.describe();
    collective(
        Op::kAllGatherShards, "MPI_Allgatherv", what,
        [&] {
          return MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, full.raw_data(), counts.data(),
                                displacements.data(), type_of(full), comm_);
        },
        [&](MPI_Request* r) {
          return MPI_Iallgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, full.raw_data(), counts.data(),
                                 displacements.data(), type_of(full), comm_, r);
        });
  }

  void barrier() override {
    check_thread("barrier");
    collective(
        Op::kBarrier, "MPI_Barrier", "barrier", [&] { return MPI_Barrier(comm_); },
        [&](MPI_Request* r) { return MPI_Ibarrier(comm_, r); });
  }

  void agree_on_exit(int status) override {
    check_thread("agree_on_exit");
    collective(
        Op::kBarrier, "MPI_Barrier", "agree_on_exit (a barrier)",
        [&] { return MPI_Barrier(comm_); }, [&](MPI_Request* r) { return MPI_Ibarrier(comm_, r); });
    agreed_exit_status = status;
  }

  void set_timeout(double seconds) override {
    MLPX_CHECK(seconds >= 0, ValueError, "dist.timeout_s: expected seconds >= 0, found ", seconds);
    timeout_s_ = seconds;
  }
  double timeout() const override { return timeout_s_; }
  void set_context(const std::string& context) override { context_ = context; }

 private:
  // One line: "MPI_Allreduce (all_reduce_sum of [10] float32 cpu) failed on rank 1 of 3: ...".
  // A communicator the watchdog gave up on names why instead.
  void check(int rc, const char* call, const std::string& what) const {
    if (!broken_.empty()) {
      throw CollectiveTimeout(what + ": the communicator is unusable since " + broken_);
    }
    MLPX_CHECK(rc == MPI_SUCCESS, Error, call, " (", what, ") failed on rank ", rank_, " of ",
               size_, ": ", error_text(rc));
  }

  // One collective. Watched (dist.timeout_s > 0): MPI's non-blocking call (`start`: the
  // MPI_I... call given the request to fill), completed under the watchdog. Unwatched (0): the
  // blocking call (`blocking`), whose algorithms (Open MPI's tuned component) are faster than
  // the non-blocking ones (libnbc): docs/cluster.md has the measurements. `call` names the
  // blocking call (the non-blocking one adds an I) in messages.
  template <typename Blocking, typename Start>
  void collective(Op op, const char* call, const std::string& what, Blocking blocking,
                  Start start) {
    if (timeout_s_ <= 0) {
      ++sequence_;
      check(blocking(), call, what);
      return;
    }
    MPI_Request request = MPI_REQUEST_NULL;
    check(start(&request), call, what);
    complete(request, op, call, what);
  }

  // Waits for `request`, a collective just started, under the watchdog: polls it (MPI_Test
  // progresses it, and yields the core when Open MPI runs oversubscribed), answers the other
  // ranks' roll calls meanwhile, and past the deadline holds its own and throws.
  void complete(MPI_Request& request, Op op, const char* call, const std::string& what) {
    ++sequence_;
    const Clock::time_point deadline =
        Clock::now() +
        std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(timeout_s_));
    for (uint64_t poll = 0;; ++poll) {
      int done = 0;
      check(MPI_Test(&request, &done, MPI_STATUS_IGNORE), call, what);
      if (done) return;
      // Every 64th poll: a clock read and an MPI_Iprobe are cheap, but not free.
      if (poll % 64 != 0) continue;
      answer_roll_calls(op, nullptr);
      if (Clock::now() >= deadline) time_out(op, what);
    }
  }

  // Answers every roll call that has come (the other ranks' watchdogs): where this rank waits.
  // With `heard` (this rank's own roll call), also records the callers and their answers.
  void answer_roll_calls(Op op, std::vector<std::optional<WhereWaiting>>* heard) {
    for (;;) {
      int flag = 0;
      MPI_Status status;
      if (MPI_Iprobe(MPI_ANY_SOURCE, MPI_ANY_TAG, watch_, &flag, &status) != MPI_SUCCESS || !flag) {
        break;
      }
      WhereWaiting message;
      if (MPI_Recv(&message, 3, MPI_INT64_T, status.MPI_SOURCE, status.MPI_TAG, watch_,
                   MPI_STATUS_IGNORE) != MPI_SUCCESS) {
        break;
      }
      if (heard != nullptr) (*heard)[status.MPI_SOURCE] = message;
      if (status.MPI_TAG == kRollCall) {
        send_watch(status.MPI_SOURCE, kAnswer, {sequence_, static_cast<int64_t>(op), 0});
      }
    }
    // Sends that have gone free their buffers; those to a rank that never takes them stay.
    while (!sent_.empty()) {
      int done = 0;
      if (MPI_Test(&sent_.front().request, &done, MPI_STATUS_IGNORE) != MPI_SUCCESS || !done) {
        break;
      }
      sent_.pop_front();
    }
  }

  void send_watch(int to, int tag, WhereWaiting message) {
    sent_.push_back({message, MPI_REQUEST_NULL});
    if (MPI_Isend(&sent_.back().message, 3, MPI_INT64_T, to, tag, watch_, &sent_.back().request) !=
        MPI_SUCCESS) {
      sent_.pop_back();
    }
  }

  // The deadline of collective `op` (this rank's sequence_-th) has passed: the roll call, then
  // CollectiveTimeout. Every rank whose deadline passes reports from its own side.
  [[noreturn]] void time_out(Op op, const std::string& what) {
    const WhereWaiting mine{sequence_, static_cast<int64_t>(op), 1};
    for (int r = 0; r < size_; ++r) {
      if (r != rank_) send_watch(r, kRollCall, mine);
    }
    // Waiting ranks answer within milliseconds; the grace covers a loaded machine.
    const double grace_s = std::min(timeout_s_, 2.0);
    std::vector<std::optional<WhereWaiting>> heard(static_cast<size_t>(size_));
    const Clock::time_point until = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                                       std::chrono::duration<double>(grace_s));
    auto answered = [&] {
      return std::count_if(heard.begin(), heard.end(), [](const auto& h) { return h.has_value(); });
    };
    while (answered() < size_ - 1 && Clock::now() < until) {
      answer_roll_calls(op, &heard);
      usleep(1000);
    }
    std::vector<int> silent, waiting_here;
    std::ostringstream elsewhere;
    for (int r = 0; r < size_; ++r) {
      if (r == rank_) continue;
      if (!heard[r]) {
        silent.push_back(r);
      } else if (heard[r]->sequence == sequence_ && heard[r]->op == mine.op) {
        waiting_here.push_back(r);
      } else {
        elsewhere << "; rank " << r << " waits in another collective, its #" << heard[r]->sequence
                  << " (" << op_name(heard[r]->op) << ")";
      }
    }
    std::ostringstream message;
    message << what << " (collective #" << sequence_ << " of rank " << rank_ << " of " << size_
            << (context_.empty() ? "" : ", " + context_) << ") did not complete within "
            << "dist.timeout_s = " << timeout_s_ << " s: ";
    if (silent.empty()) {
      message << "every other rank answered the roll call";
    } else {
      message << (silent.size() == 1 ? "rank " : "ranks ") << join(silent)
              << " did not arrive (no answer to a roll call within " << grace_s
              << " s: stopped, dead, unreachable, or still computing)";
    }
    if (!waiting_here.empty()) {
      message << "; " << (waiting_here.size() == 1 ? "rank " : "ranks ") << join(waiting_here)
              << " waited in it too";
    }
    message << elsewhere.str() << "; the job is aborted";
    broken_ = message.str();
    throw CollectiveTimeout(broken_);
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

  struct Sent {
    WhereWaiting message;
    MPI_Request request;
  };

  MPI_Comm comm_ = MPI_COMM_NULL;
  MPI_Comm watch_ = MPI_COMM_NULL;  // the watchdog's roll calls
  int rank_ = -1;                   // -1 until known, in messages
  int size_ = 0;
  int local_rank_ = 0;
  int local_size_ = 1;
  int thread_level_ = MPI_THREAD_SINGLE;
  double timeout_s_ = kDefaultTimeoutSeconds;
  std::string context_;
  int64_t sequence_ = 0;   // collectives entered
  std::deque<Sent> sent_;  // the watchdog's sends in flight (a deque: their buffers stay put)
  std::string broken_;     // the watchdog's message once it fired
};

}  // namespace

bool mpi_built() { return true; }

std::unique_ptr<Communicator> make_mpi_communicator(const Launch& launch) {
  return std::make_unique<MpiCommunicator>(launch);
}

}  // namespace mlpx::dist::detail
