// The executor: runs one kernel launch to completion on the calling OS thread (launch.h,
// device.h, sim/README.md).
//
// Blocks run one at a time, in an order shuffled by the scheduling seed. Within a block every
// thread is a cooperative fiber (Boost.Context): a thread runs until it ends or reaches a
// rendezvous (__syncthreads, a warp shuffle, a vote, __syncwarp), where it yields to the
// scheduler. The scheduler resumes ready threads, starts threads not yet started, and, when
// nothing can run, either releases a barrier that every thread has reached or reports the
// fault that keeps the block from finishing.
//
// Rendezvous rules. A barrier opens when every thread of the block waits at the same call
// site (file:line); when nothing can run and that is not so, the barrier is divergent (some
// threads ended or wait elsewhere): a fault. A warp rendezvous (shuffle, vote, __syncwarp)
// completes when every lane named in its mask waits at one of the same kind with the same mask
// (and, for a shuffle, the same value size); the last lane to arrive computes every lane's
// result and goes on. A named lane that has ended, or waits at a barrier (which cannot open
// while this lane waits), is a fault at once; one that waits at another warp rendezvous may
// still come when that one completes, so it is reported only when nothing can run.
//
// Why Boost.Context's fcontext (boost::context::fiber): a switch saves and restores a few
// callee-saved registers and the stack pointer in user space, tens of nanoseconds and no
// system call, where ucontext's swapcontext also saves and restores the signal mask, a
// sigprocmask system call on every switch. Under AddressSanitizer every switch is announced
// to ASan (__sanitizer_start/finish_switch_fiber, class FiberSwitch), so that ASan knows which
// stack is live and keeps a fake stack per fiber. (Boost's own ASan support is its ucontext
// backend, whose switches go through ASan's swapcontext interceptor: that clears the shadow
// of the whole target stack and makes a system call at every switch, 8x slower here.)
//
// Keeping it fast: a fiber does not belong to one thread. A "runner" fiber starts the block's
// threads one after another, each running start to finish on the runner's stack; only when a
// thread blocks at a rendezvous does it keep that fiber, and the scheduler starts a new runner
// for the threads not yet started. An elementwise kernel (no rendezvous) therefore costs one
// fiber and a handful of switches per block, not per thread. Stacks come from a pool that
// lives as long as the process (at most blockDim of them are ever in use at once), each
// with a guard page below it, so a launch of 1024 blocks x 256 threads allocates nothing
// per thread.
#include <cxxabi.h>
#include <dlfcn.h>
#include <sys/mman.h>
#include <unistd.h>

#include <boost/context/fiber.hpp>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <memory>
#include <mutex>
#include <new>
#include <string>
#include <utility>
#include <vector>

#include "mlpx_sim/launch.h"

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/common_interface_defs.h>
#endif

#include "mlpx_sim/device.h"
#include "mlpx_sim/executor.h"
#include "racecheck.h"

namespace mlpx_sim {

namespace detail {
ThreadCoordinates g_coordinates;
}  // namespace detail

namespace {

namespace ctx = boost::context;
using detail::BarrierOp;
using detail::WarpOp;

// The launch limits of an H200 (compute capability 9.0), as cudaGetDeviceProperties reports
// them. Dynamic shared memory: the limit without a cudaFuncSetAttribute opt-in.
constexpr unsigned kMaxThreadsPerBlock = 1024;
constexpr unsigned kMaxBlockDim[3] = {1024, 1024, 64};
constexpr unsigned kMaxGridDim[3] = {2147483647u, 65535, 65535};
constexpr unsigned kWarpSize = 32;

// ---- Seeds and orders --------------------------------------------------------------------

uint64_t mix64(uint64_t x) {  // splitmix64's finaliser
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

// xorshift64*: a few shifts and one multiply per number.
struct Rng {
  uint64_t state = 1;  // never 0
  void seed(uint64_t value) { state = mix64(value) | 1; }
  uint64_t next() {
    state ^= state >> 12;
    state ^= state << 25;
    state ^= state >> 27;
    return state * 0x2545F4914F6CDD1Dull;
  }
  // Uniform in [0, n), 0 < n < 2^32 (multiply-shift; the bias is irrelevant here).
  unsigned below(unsigned n) {
    return static_cast<unsigned>(((next() >> 32) * static_cast<uint64_t>(n)) >> 32);
  }
  // Fisher-Yates.
  void shuffle(unsigned* items, unsigned count) {
    for (unsigned i = count; i > 1; --i) std::swap(items[i - 1], items[below(i)]);
  }
};

// The block order: a bijection of [0, n) chosen by `key` (n can reach 2^63, so no table),
// computed per element: a few rounds
// of add-key, multiply-by-odd and xorshift, each a bijection of [0, 2^bits), with cycle
// walking back into [0, n). Identity when `shuffled` is false.
class Permutation {
 public:
  Permutation() = default;
  Permutation(uint64_t n, uint64_t key, bool shuffled) : n_(n), shuffled_(shuffled && n > 1) {
    if (!shuffled_) return;
    const int bits = 64 - __builtin_clzll(n - 1);  // 2^bits >= n
    mask_ = bits == 64 ? ~0ull : (1ull << bits) - 1;
    shift_ = bits / 2 + 1;
    for (uint64_t& k : keys_) k = key = mix64(key);
  }
  uint64_t operator()(uint64_t i) const {
    if (!shuffled_) return i;
    do {
      for (int r = 0; r < kRounds; ++r) {
        i = (i + keys_[r]) & mask_;
        i = (i * (keys_[r] | 1)) & mask_;
        i ^= i >> shift_;
      }
    } while (i >= n_);
    return i;
  }

 private:
  static constexpr int kRounds = 4;
  uint64_t n_ = 0, mask_ = 0;
  int shift_ = 1;
  bool shuffled_ = false;
  uint64_t keys_[kRounds] = {};
};

uint64_t seed_from_environment() {
  const char* text = std::getenv("MLPX_SIM_SEED");
  if (text == nullptr || *text == '\0') return kDefaultScheduleSeed;
  char* end = nullptr;
  const unsigned long long value = std::strtoull(text, &end, 0);
  if (end == text || *end != '\0') {
    std::fprintf(stderr,
                 "mlpx_sim: MLPX_SIM_SEED='%s' is not an unsigned integer; using the default "
                 "seed %" PRIu64 "\n",
                 text, kDefaultScheduleSeed);
    return kDefaultScheduleSeed;
  }
  return value;
}

// ---- Stacks ------------------------------------------------------------------------------

// One stack of the pool. `fake_stack` is AddressSanitizer's companion of this stack (where
// detect_stack_use_after_return puts the locals whose address escapes), kept from fiber to
// fiber on the same stack: ASan makes one lazily for each new context, and making (mmap) and
// freeing one for every runner, that is every block, made the simulator 5x slower.
struct PoolStack {
  ctx::stack_context context;
  void* fake_stack = nullptr;
  const void* bottom() const { return static_cast<const char*>(context.sp) - context.size; }
};

// Fixed-size stacks with a PROT_NONE guard page below each (an overflow faults instead of
// corrupting a neighbour), handed out again and again and never returned to the system.
class StackPool {
 public:
  StackPool() {
    page_ = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
#if defined(__SANITIZE_ADDRESS__)
    size_t kib = 256;  // ASan's redzones make frames larger
#else
    size_t kib = 128;
#endif
    if (const char* text = std::getenv("MLPX_SIM_STACK_KIB")) {
      char* end = nullptr;
      const unsigned long long value = std::strtoull(text, &end, 10);
      if (end != text && *end == '\0' && value >= 16) kib = static_cast<size_t>(value);
    }
    size_ = (kib * 1024 + page_ - 1) / page_ * page_;
  }
  StackPool(const StackPool&) = delete;
  StackPool& operator=(const StackPool&) = delete;

  ctx::stack_context allocate() {
    if (free_.empty()) {
      void* base = ::mmap(nullptr, size_ + page_, PROT_READ | PROT_WRITE,
                          MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
      if (base == MAP_FAILED) throw std::bad_alloc();
      ::mprotect(base, page_, PROT_NONE);
      auto stack = std::make_unique<PoolStack>();
      stack->context.size = size_;
      stack->context.sp = static_cast<char*>(base) + page_ + size_;
      free_.reserve(all_.size() + 1);  // deallocate() then never allocates
      free_.push_back(stack.get());
      all_.push_back(std::move(stack));
    }
    last_ = free_.back();
    free_.pop_back();
    return last_->context;
  }
  void deallocate(ctx::stack_context& context) noexcept {
    for (auto& stack : all_) {  // a handful: at most one per thread that waits at once
      if (stack->context.sp == context.sp) free_.push_back(stack.get());
    }
  }
  // The stack handed out last: the one the fiber constructed last runs on.
  PoolStack* last() const { return last_; }

 private:
  size_t page_ = 4096, size_ = 0;
  std::vector<std::unique_ptr<PoolStack>> all_;
  std::vector<PoolStack*> free_;
  PoolStack* last_ = nullptr;
};

struct PoolAllocator {  // Boost.Context's StackAllocator concept, over the pool
  StackPool* pool;
  ctx::stack_context allocate() { return pool->allocate(); }
  void deallocate(ctx::stack_context& stack) noexcept { pool->deallocate(stack); }
};

// ---- Telling AddressSanitizer about stack switches ---------------------------------------

// Brackets each fiber switch: leave() just before it, arrive() just after it, in the context
// that was switched to. `fake_stack` is the fake stack of the context that leaves (saved) or
// arrives (restored). No-ops without ASan.
struct FiberSwitch {
#if defined(__SANITIZE_ADDRESS__)
  static void leave(void** fake_stack, const void* to_bottom, size_t to_size) {
    __sanitizer_start_switch_fiber(fake_stack, to_bottom, to_size);
  }
  // `from_bottom` and `from_size`, when given, receive the stack switched away from.
  static void arrive(void* fake_stack, const void** from_bottom = nullptr,
                     size_t* from_size = nullptr) {
    __sanitizer_finish_switch_fiber(fake_stack, from_bottom, from_size);
  }
#else
  static void leave(void**, const void*, size_t) {}
  static void arrive(void*, const void** = nullptr, size_t* = nullptr) {}
#endif
};

// ---- Names for messages ------------------------------------------------------------------

const char* op_name(WarpOp op) {
  switch (op) {
    case WarpOp::kShflIdx:
      return "__shfl_sync";
    case WarpOp::kShflUp:
      return "__shfl_up_sync";
    case WarpOp::kShflDown:
      return "__shfl_down_sync";
    case WarpOp::kShflXor:
      return "__shfl_xor_sync";
    case WarpOp::kBallot:
      return "__ballot_sync";
    case WarpOp::kAll:
      return "__all_sync";
    case WarpOp::kAny:
      return "__any_sync";
    case WarpOp::kSyncWarp:
      return "__syncwarp";
    case WarpOp::kMmaSync:
      return "mma.sync";
  }
  return "?";
}
const char* op_kind(WarpOp op) {
  switch (op) {
    case WarpOp::kBallot:
    case WarpOp::kAll:
    case WarpOp::kAny:
      return "vote";
    case WarpOp::kSyncWarp:
      return "__syncwarp";
    case WarpOp::kMmaSync:
      return "mma.sync";
    default:
      return "shuffle";
  }
}
bool is_shuffle(WarpOp op) {
  return op == WarpOp::kShflIdx || op == WarpOp::kShflUp || op == WarpOp::kShflDown ||
         op == WarpOp::kShflXor;
}
const char* op_name(BarrierOp op) {
  switch (op) {
    case BarrierOp::kSync:
      return "__syncthreads";
    case BarrierOp::kCount:
      return "__syncthreads_count";
    case BarrierOp::kAnd:
      return "__syncthreads_and";
    case BarrierOp::kOr:
      return "__syncthreads_or";
  }
  return "?";
}

std::string site(const char* file, int line) {
  return std::string(file) + ":" + std::to_string(line);
}
std::string coords(unsigned x, unsigned y, unsigned z) {
  return "(" + std::to_string(x) + ", " + std::to_string(y) + ", " + std::to_string(z) + ")";
}
std::string coords(const dim3& d) { return coords(d.x, d.y, d.z); }
std::string hex_mask(unsigned mask) {
  char text[16];
  std::snprintf(text, sizeof text, "0x%08x", mask);
  return text;
}

// Thrown inside a fiber to end its thread once a fault has been recorded.
struct Fault {};

// ---- The executor ------------------------------------------------------------------------

enum class State : uint8_t { kUnstarted, kRunning, kReady, kBarrier, kWarp, kDone };

struct Slot {  // one thread of the running block
  State state = State::kUnstarted;
  const char* file = "";  // where it waits (kBarrier, kWarp)
  int line = 0;
  BarrierOp barrier_op = BarrierOp::kSync;
  int predicate = 0;
  WarpOp warp_op = WarpOp::kSyncWarp;
  unsigned mask = 0, size = 0;
  int param = 0, width = 32;
  uint64_t bits = 0;           // the value it contributes to a warp rendezvous
  uint64_t result = 0;         // what its rendezvous returns to it
  ctx::fiber fiber;            // its context while it waits or is ready
  PoolStack* stack = nullptr;  // the stack that context runs on
};

// Per warp of the running block: which lanes ended, wait at a barrier, wait at a warp
// rendezvous (bit l: lane l), so that an arriving lane checks the others in a few operations.
struct WarpLanes {
  unsigned ended = 0, at_barrier = 0, at_warp = 0;
};

bool same_site(const Slot& a, const Slot& b) {
  return a.line == b.line && (a.file == b.file || std::strcmp(a.file, b.file) == 0);
}

class Executor {
 public:
  cudaError_t run(const KernelLaunch& launch, std::string& why);
  int barrier(BarrierOp op, int predicate, const char* file, int line);
  uint64_t warp(WarpOp op, unsigned mask, uint64_t bits, unsigned size, int param, int width,
                const char* file, int line);

  void set_seed(uint64_t seed) {
    seed_ = seed;
    seed_loaded_ = true;
    launch_count_ = 0;
  }
  uint64_t seed() {
    if (!seed_loaded_) set_seed(seed_from_environment());
    return seed_;
  }

 private:
  void run_block(uint64_t linear);
  void start_runner();
  void resume(unsigned t);
  void take_back(ctx::fiber&& back);
  void run_threads();
  void run_thread(unsigned t);
  ctx::fiber switch_to(ctx::fiber&& fiber, PoolStack* stack);
  void suspend();
  void resolve_stall();
  void complete_warp(unsigned t, unsigned base);
  void make_ready(unsigned* threads, unsigned count);
  void abandon();
  void set_thread(unsigned t);

  // Faults: record() keeps the first; fail() records and ends the calling thread (in a fiber).
  void record(const std::string& what);
  [[noreturn]] void fail(const std::string& what) {
    record(what);
    throw Fault{};
  }
  std::string where() const;  // " (block ...; kernel launched at ...)"
  std::string missing_lane(unsigned t, unsigned lane, const char* why_missing) const;
  std::string whereabouts(const Slot& other) const;
  std::string describe(const racecheck::Race& race) const;
  uint3 coordinates_of(unsigned t) const;

  const KernelLaunch* launch_ = nullptr;
  unsigned threads_ = 0;  // per block
  bool one_dim_ = true;
  std::vector<Slot> slots_;
  std::vector<WarpLanes> warps_;
  std::vector<unsigned> ready_;
  size_t ready_head_ = 0;
  unsigned next_start_ = 0;  // position in start_order_ of the next thread to start
  unsigned done_ = 0;
  std::vector<unsigned> start_order_;  // the block's threads in the order they start
  Rng rng_;
  bool shuffled_ = true;
  uint64_t launch_seed_ = 0;
  unsigned cur_ = 0;                       // the thread whose code runs (or last ran)
  ctx::fiber scheduler_;                   // the scheduler's context, held by the running fiber
  const void* scheduler_stack_ = nullptr;  // the calling OS thread's stack (for ASan)
  size_t scheduler_stack_size_ = 0;
  void* scheduler_fake_stack_ = nullptr;
  PoolStack* running_stack_ = nullptr;  // the stack of the fiber that runs (or ran last)
  bool faulted_ = false;
  bool abandoning_ = false;  // abandon(): each resumed thread unwinds
  std::string fault_;
  StackPool stacks_;
  uint64_t seed_ = kDefaultScheduleSeed;
  bool seed_loaded_ = false;
  uint64_t launch_count_ = 0;
  std::vector<unsigned> scratch_;
};

std::mutex g_mutex;  // launches from several host threads run one at a time
Executor* g_active = nullptr;
thread_local bool t_executing = false;

Executor& executor() {
  static Executor* instance = new Executor();  // never destroyed: no exit-order issues
  return *instance;
}

Executor& active_executor(const char* what) {
  if (g_active == nullptr || !t_executing) {
    std::fprintf(stderr, "mlpx_sim: %s called outside a kernel\n", what);
    std::abort();
  }
  return *g_active;
}

void Executor::set_thread(unsigned t) {
  racecheck::set_thread(t);
  detail::g_coordinates.thread_idx = one_dim_ ? uint3{t, 0, 0} : coordinates_of(t);
}

void Executor::record(const std::string& what) {
  if (faulted_) return;
  faulted_ = true;
  fault_ = what;
}

std::string Executor::where() const {
  std::string text = " (block " + coords(detail::g_coordinates.block_idx) + ", thread " +
                     coords(detail::g_coordinates.thread_idx);
  if (launch_->file != nullptr && launch_->file[0] != '\0') {
    text += "; kernel launched at " + site(launch_->file, launch_->line);
  }
  return text + ")";
}

cudaError_t Executor::run(const KernelLaunch& launch, std::string& why) {
  launch_ = &launch;
  threads_ = launch.block.x * launch.block.y * launch.block.z;
  one_dim_ = launch.block.y == 1 && launch.block.z == 1;
  slots_.clear();
  slots_.resize(threads_);
  ready_.reserve(threads_);
  start_order_.resize(threads_);
  warps_.assign((threads_ + kWarpSize - 1) / kWarpSize, WarpLanes{});
  scratch_.reserve(threads_);
  faulted_ = false;
  fault_.clear();
  detail::g_coordinates.block_dim = launch.block;
  detail::g_coordinates.grid_dim = launch.grid;

  const uint64_t base_seed = seed();
  shuffled_ = base_seed != 0;
  launch_seed_ = mix64(base_seed ^ mix64(launch_count_++));
  const uint64_t blocks = static_cast<uint64_t>(launch.grid.x) * launch.grid.y * launch.grid.z;
  const Permutation block_order(blocks, launch_seed_, shuffled_);

  racecheck::launch_started();
  detail::dynamic_shared_launch_started(launch.shared_bytes);
  try {
    for (uint64_t k = 0; k < blocks && !faulted_; ++k) {
      run_block(block_order(k));
      if (racecheck::Race race; racecheck::take_race(race)) record(describe(race));
    }
  } catch (const std::exception& e) {  // the scheduler's own failures (a stack allocation)
    record(std::string("simulator failure in ") + launch.name + ": " + e.what());
  }
  if (faulted_) abandon();
  racecheck::launch_ended();
  launch_ = nullptr;
  detail::g_coordinates = ThreadCoordinates{};
  if (faulted_) {
    why = fault_;
    return cudaErrorLaunchFailure;
  }
  why.clear();
  return cudaSuccess;
}

void Executor::run_block(uint64_t linear) {
  const dim3& grid = launch_->grid;
  const uint64_t rest = linear / grid.x;
  detail::g_coordinates.block_idx = {static_cast<unsigned>(linear % grid.x),
                                     static_cast<unsigned>(rest % grid.y),
                                     static_cast<unsigned>(rest / grid.y)};
  for (Slot& slot : slots_) slot.state = State::kUnstarted;
  for (WarpLanes& w : warps_) w = WarpLanes{};
  racecheck::block_started(threads_);
  detail::device_block_started(threads_);
  next_start_ = 0;
  done_ = 0;
  ready_.clear();
  ready_head_ = 0;
  const uint64_t block_seed = mix64(launch_seed_ ^ mix64(linear + 1));
  rng_.seed(block_seed);
  for (unsigned t = 0; t < threads_; ++t) start_order_[t] = t;
  if (shuffled_) rng_.shuffle(start_order_.data(), threads_);

  while (!faulted_ && done_ < threads_) {
    if (ready_head_ < ready_.size()) {
      const unsigned t = ready_[ready_head_++];
      if (ready_head_ == ready_.size()) {
        ready_.clear();
        ready_head_ = 0;
      }
      resume(t);
    } else if (next_start_ < threads_) {
      start_runner();
    } else {
      resolve_stall();
    }
  }
}

void Executor::start_runner() {
  ctx::fiber runner(std::allocator_arg, PoolAllocator{&stacks_}, [this](ctx::fiber&& scheduler) {
    FiberSwitch::arrive(running_stack_->fake_stack, &scheduler_stack_, &scheduler_stack_size_);
    scheduler_ = std::move(scheduler);
    run_threads();
    // The fake stack stays with the pool's stack, for the next runner on it.
    FiberSwitch::leave(&running_stack_->fake_stack, scheduler_stack_, scheduler_stack_size_);
    return std::move(scheduler_);
  });
  take_back(switch_to(std::move(runner), stacks_.last()));
}

void Executor::resume(unsigned t) {
  cur_ = t;
  set_thread(t);
  slots_[t].state = State::kRunning;
  ctx::fiber fiber = std::move(slots_[t].fiber);
  take_back(switch_to(std::move(fiber), slots_[t].stack));
}

// From the scheduler into a fiber, until it yields or ends.
ctx::fiber Executor::switch_to(ctx::fiber&& fiber, PoolStack* stack) {
  running_stack_ = stack;
  FiberSwitch::leave(&scheduler_fake_stack_, stack->bottom(), stack->context.size);
  ctx::fiber back = std::move(fiber).resume();
  FiberSwitch::arrive(scheduler_fake_stack_);
  return back;
}

// From the running thread's fiber back to the scheduler, until the scheduler resumes it. A
// thread resumed by abandon() unwinds from here (Fault, caught in run_thread).
void Executor::suspend() {
  PoolStack* stack = running_stack_;
  slots_[cur_].stack = stack;
  FiberSwitch::leave(&stack->fake_stack, scheduler_stack_, scheduler_stack_size_);
  scheduler_ = std::move(scheduler_).resume();
  FiberSwitch::arrive(stack->fake_stack);
  if (abandoning_) throw Fault{};
}

// Back in the scheduler: `back` is the fiber that just yielded (it now belongs to the thread
// that yielded, cur_), or empty when the fiber has finished.
void Executor::take_back(ctx::fiber&& back) {
  if (back) slots_[cur_].fiber = std::move(back);
}

// A runner's life: start threads while there are unstarted ones. After a thread of this fiber
// has waited (and been resumed), the fiber goes on starting threads when that thread ends.
void Executor::run_threads() {
  while (!faulted_ && next_start_ < threads_) {
    run_thread(start_order_[next_start_++]);
  }
}

void Executor::run_thread(unsigned t) {
  cur_ = t;
  set_thread(t);
  slots_[t].state = State::kRunning;
  try {
    launch_->body();
  } catch (const ctx::detail::forced_unwind&) {
    throw;  // the fiber is being destroyed: let Boost unwind it
  } catch (const Fault&) {
    // recorded by fail()
  } catch (const std::exception& e) {
    record("exception in " + launch_->name + ": " + e.what() + where());
  } catch (...) {
    record("exception in " + launch_->name + " (not a std::exception)" + where());
  }
  slots_[t].state = State::kDone;
  warps_[t / kWarpSize].ended |= 1u << (t % kWarpSize);
  ++done_;
}

// A fault ends the launch: each thread still suspended is resumed and unwinds from its
// rendezvous (suspend() throws Fault), so destructors on its stack run, its runner ends
// (faulted_ stops it from starting more threads) and the stack returns to the pool. (Destroying
// a suspended Boost fiber would unwind it too, but with a switch ASan is not told of.)
void Executor::abandon() {
  abandoning_ = true;
  for (unsigned t = 0; t < threads_; ++t) {
    if (slots_[t].fiber) resume(t);
  }
  abandoning_ = false;
  ready_.clear();
  ready_head_ = 0;
}

void Executor::make_ready(unsigned* threads, unsigned count) {
  if (shuffled_) rng_.shuffle(threads, count);
  for (unsigned i = 0; i < count; ++i) {
    slots_[threads[i]].state = State::kReady;
    ready_.push_back(threads[i]);
  }
}

// ---- __syncthreads -----------------------------------------------------------------------

int Executor::barrier(BarrierOp op, int predicate, const char* file, int line) {
  const unsigned t = cur_;
  Slot& self = slots_[t];
  self.state = State::kBarrier;
  warps_[t / kWarpSize].at_barrier |= 1u << (t % kWarpSize);
  self.file = file;
  self.line = line;
  self.barrier_op = op;
  self.predicate = predicate != 0;
  suspend();
  return static_cast<int>(slots_[t].result);
}

// Nothing can run: every thread that has not ended waits at a rendezvous. Either all of the
// block waits at one barrier (release it), or something never arrives (a fault).
void Executor::resolve_stall() {
  // A warp rendezvous still waiting cannot complete: a lane it names ended, or waits at a
  // barrier or at another warp rendezvous (stuck as well, since nothing can run).
  for (unsigned t = 0; t < threads_; ++t) {
    const Slot& slot = slots_[t];
    if (slot.state != State::kWarp) continue;
    const unsigned lane = t % kWarpSize, base = t - lane;
    set_thread(t);  // the fault names the waiting thread
    for (unsigned m = slot.mask & ~(1u << lane); m != 0; m &= m - 1) {
      const unsigned other = static_cast<unsigned>(__builtin_ctz(m));
      const Slot& o = slots_[base + other];
      if (o.state != State::kWarp || o.warp_op != slot.warp_op || o.mask != slot.mask ||
          o.size != slot.size) {
        record(missing_lane(t, other, whereabouts(o).c_str()));
        return;
      }
    }
    record(std::string("internal error: a complete ") + op_name(slot.warp_op) +
           " was not released" + where());
    return;
  }

  // Only barriers. Tally the call sites; the principal one has the most threads.
  unsigned arrived = 0, principal = threads_, principal_count = 0;
  for (unsigned t = 0; t < threads_; ++t) {
    if (slots_[t].state != State::kBarrier) continue;
    ++arrived;
    if (principal != threads_ && same_site(slots_[t], slots_[principal])) continue;
    unsigned count = 0;
    for (unsigned u = t; u < threads_; ++u) {
      count += slots_[u].state == State::kBarrier && same_site(slots_[u], slots_[t]);
    }
    if (count > principal_count) {
      principal = t;
      principal_count = count;
    }
  }
  if (principal == threads_) {
    record("internal error: " + launch_->name + " stalled with no thread waiting");
    return;
  }
  const Slot& p = slots_[principal];
  if (principal_count == threads_) {
    bool all = true, any = false;
    int count = 0;
    for (const Slot& slot : slots_) {
      all = all && slot.predicate;
      any = any || slot.predicate;
      count += slot.predicate;
    }
    uint64_t result = 0;
    switch (p.barrier_op) {
      case BarrierOp::kSync:
        result = 0;
        break;
      case BarrierOp::kCount:
        result = static_cast<uint64_t>(count);
        break;
      case BarrierOp::kAnd:
        result = all;
        break;
      case BarrierOp::kOr:
        result = any;
        break;
    }
    scratch_.clear();
    for (unsigned t = 0; t < threads_; ++t) {
      slots_[t].result = result;
      scratch_.push_back(t);
    }
    for (WarpLanes& w : warps_) w.at_barrier = 0;
    racecheck::barrier_opened();
    make_ready(scratch_.data(), threads_);
    return;
  }

  // Divergent: part of the block waits here, the rest ended or waits elsewhere.
  set_thread(principal);
  std::string what = std::string("divergent ") + op_name(p.barrier_op) + " in " + launch_->name +
                     " at " + site(p.file, p.line) + ": " + std::to_string(principal_count) +
                     " of " + std::to_string(threads_) + " threads arrived";
  const unsigned elsewhere = arrived - principal_count;
  if (elsewhere == 0) {
    what += ", the others ended";
  } else {
    std::vector<unsigned> sites;  // first thread of each other site
    for (unsigned t = 0; t < threads_; ++t) {
      if (slots_[t].state != State::kBarrier || same_site(slots_[t], p)) continue;
      bool seen = false;
      for (unsigned s : sites) seen = seen || same_site(slots_[s], slots_[t]);
      if (!seen) sites.push_back(t);
    }
    what += done_ == 0 ? ", the others wait at"
                       : ", " + std::to_string(done_) + " ended, the others wait at";
    for (size_t i = 0; i < sites.size(); ++i) {
      const Slot& s = slots_[sites[i]];
      unsigned count = 0;
      for (const Slot& slot : slots_) count += slot.state == State::kBarrier && same_site(slot, s);
      what += (i == 0 ? " " : ", ") + std::string(op_name(s.barrier_op)) + " at " +
              site(s.file, s.line) + " (" + std::to_string(count) + ")";
    }
  }
  record(what + where());
}

// ---- Racecheck reports -------------------------------------------------------------------

// "file.cu:51 in kernel<...>(float const*, float*)" for the instruction at `offset` in
// `object`, from binutils' addr2line (the debug information), or "" when that is unavailable.
// Called once per reported race.
std::string source_line(const std::string& object, const char* offset) {
  if (object.find('\'') != std::string::npos) return "";
  const std::string command = "addr2line -Cfe '" + object + "' " + offset + " 2>/dev/null";
  FILE* pipe = ::popen(command.c_str(), "r");
  if (pipe == nullptr) return "";
  char function[1024] = "", where[1024] = "";
  const bool read = std::fgets(function, sizeof function, pipe) != nullptr &&
                    std::fgets(where, sizeof where, pipe) != nullptr;
  ::pclose(pipe);
  std::string f = function, w = where;
  while (!f.empty() && f.back() == '\n') f.pop_back();
  while (!w.empty() && (w.back() == '\n' || w.back() == ' ')) w.pop_back();
  if (const size_t paren = w.find(" (discriminator"); paren != std::string::npos) w.erase(paren);
  if (!read || w.empty() || w[0] == '?') return "";
  return w + (f.empty() || f[0] == '?' ? "" : " in " + f);
}

// Thread t's threadIdx: x fastest, as the hardware numbers a block's threads.
uint3 Executor::coordinates_of(unsigned t) const {
  const unsigned bx = launch_->block.x, by = launch_->block.y;
  return {t % bx, t / bx % by, t / bx / by};
}

// "race on shared memory in K: thread (5, 0, 0) reads 4 bytes at 0x... that thread (3, 0, 0)
// wrote, with no __syncthreads between them (the read at <object>+0x...; ...)"
std::string Executor::describe(const racecheck::Race& race) const {
  char address[32];
  std::snprintf(address, sizeof address, "%#" PRIxPTR, race.address);
  std::string what = "race on shared memory in " + launch_->name + ": thread " +
                     coords(coordinates_of(race.thread)) + (race.write ? " writes " : " reads ") +
                     std::to_string(race.size) + (race.size == 1 ? " byte" : " bytes") + " at " +
                     address + " that thread " + coords(coordinates_of(race.other)) +
                     (race.other_write ? " wrote" : " read") + ", with no __syncthreads between";
  if (race.thread / kWarpSize == race.other / kWarpSize) what += " and no warp rendezvous of both";
  // Where the access is: the function when the object exports it, else object+offset, the
  // address addr2line takes.
  Dl_info info{};
  if (race.pc != nullptr && dladdr(race.pc, &info) != 0 && info.dli_fname != nullptr) {
    const auto pc = reinterpret_cast<uintptr_t>(race.pc);
    char offset[32];
    std::snprintf(offset, sizeof offset, "%#" PRIxPTR,
                  pc - reinterpret_cast<uintptr_t>(info.dli_fbase));
    what += std::string(" (the ") + (race.write ? "write" : "read") + " at ";
    const std::string line = source_line(info.dli_fname, offset);
    if (!line.empty()) {
      what += line + ", ";
    } else if (info.dli_sname != nullptr) {
      int status = 0;
      char* name = abi::__cxa_demangle(info.dli_sname, nullptr, nullptr, &status);
      what += std::string(status == 0 && name != nullptr ? name : info.dli_sname) + ", ";
      std::free(name);
    }
    what += std::string(info.dli_fname) + "+" + offset + ")";
  }
  const uint3 saved = detail::g_coordinates.thread_idx;
  detail::g_coordinates.thread_idx = coordinates_of(race.thread);
  what += where();
  detail::g_coordinates.thread_idx = saved;
  return what;
}

// ---- Warp rendezvous ---------------------------------------------------------------------

std::string Executor::whereabouts(const Slot& other) const {
  switch (other.state) {
    case State::kDone:
      return "it ended";
    case State::kBarrier:
      return std::string("it waits at ") + op_name(other.barrier_op) + " at " +
             site(other.file, other.line);
    case State::kWarp:
      return std::string("it waits at ") + op_name(other.warp_op) + " at " +
             site(other.file, other.line) + " with mask " + hex_mask(other.mask);
    default:
      return "it has not arrived";
  }
}

std::string Executor::missing_lane(unsigned t, unsigned lane, const char* why_missing) const {
  const Slot& slot = slots_[t];
  return std::string(op_kind(slot.warp_op)) + " mask " + hex_mask(slot.mask) + " in " +
         launch_->name + " at " + site(slot.file, slot.line) + " (" + op_name(slot.warp_op) +
         " by lane " + std::to_string(t % kWarpSize) + ") names lane " + std::to_string(lane) +
         ", which never arrives: " + why_missing + where();
}

uint64_t Executor::warp(WarpOp op, unsigned mask, uint64_t bits, unsigned size, int param,
                        int width, const char* file, int line) {
  const unsigned t = cur_, lane = t % kWarpSize, base = t - lane;
  Slot& self = slots_[t];
  self.file = file;
  self.line = line;
  self.warp_op = op;
  self.mask = mask;
  self.size = size;
  self.param = param;
  self.width = width;
  self.bits = bits;

  if ((mask >> lane & 1u) == 0) {
    fail(std::string(op_kind(op)) + " mask " + hex_mask(mask) + " in " + launch_->name + " at " +
         site(file, line) + " (" + op_name(op) + ") does not name the calling lane " +
         std::to_string(lane) + where());
  }
  if (is_shuffle(op) && (width < 1 || width > 32 || (width & (width - 1)) != 0)) {
    fail(std::string(op_name(op)) + " in " + launch_->name + " at " + site(file, line) +
         ": width " + std::to_string(width) + " is not a power of 2 from 1 to 32" + where());
  }
  const unsigned lanes_here = threads_ - base;  // lanes of this warp that exist
  const unsigned present = lanes_here >= kWarpSize ? ~0u : (1u << lanes_here) - 1;
  if ((mask & ~present) != 0) {
    const unsigned absent = static_cast<unsigned>(__builtin_ctz(mask & ~present));
    fail(missing_lane(t, absent,
                      ("the block has only " + std::to_string(threads_) +
                       " threads, so this warp has no lane " + std::to_string(absent))
                          .c_str()));
  }

  // A lane named in the mask that ended, or waits at a barrier (which cannot open while this
  // lane waits here), never arrives. One that waits at another warp rendezvous may still come
  // once that one completes; one that has not started or is ready to run may still come.
  WarpLanes& w = warps_[t / kWarpSize];
  if (const unsigned gone = mask & (w.ended | w.at_barrier)) {
    const unsigned other = static_cast<unsigned>(__builtin_ctz(gone));
    fail(missing_lane(t, other, whereabouts(slots_[base + other]).c_str()));
  }
  self.state = State::kWarp;
  w.at_warp |= 1u << lane;
  bool complete = (w.at_warp & mask) == mask;
  for (unsigned m = complete ? mask & ~(1u << lane) : 0; m != 0; m &= m - 1) {
    const Slot& o = slots_[base + static_cast<unsigned>(__builtin_ctz(m))];
    complete = complete && o.warp_op == op && o.mask == mask && o.size == size;
  }
  if (!complete) {
    suspend();
    return slots_[t].result;
  }
  complete_warp(t, base);
  return slots_[t].result;
}

// Every lane named in the mask has arrived: compute each lane's result (CUDA's semantics,
// PTX shfl.sync / vote.sync), let the others run again, and go on with the caller.
void Executor::complete_warp(unsigned t, unsigned base) {
  const Slot& self = slots_[t];
  const unsigned mask = self.mask;
  const WarpOp op = self.warp_op;
  unsigned ballot = 0;
  for (unsigned m = mask; m != 0; m &= m - 1) {
    const unsigned l = static_cast<unsigned>(__builtin_ctz(m));
    if (slots_[base + l].bits != 0) ballot |= 1u << l;
  }
  // A lane that reads a lane outside the mask gets an undefined value on the device: poison
  // it (all bits set: NaN for floating point, -1 for integers) so that using it shows.
  const uint64_t poison = self.size == 8 ? ~0ull : 0xffffffffull;
  scratch_.clear();
  for (unsigned m = mask; m != 0; m &= m - 1) {
    const unsigned l = static_cast<unsigned>(__builtin_ctz(m));
    Slot& o = slots_[base + l];
    if (is_shuffle(op)) {
      const int lane = static_cast<int>(l), width = o.width, b = o.param & 31;
      const int first = lane & ~(width - 1), last = first + width - 1;  // the lane's segment
      int source = lane;
      switch (op) {
        case WarpOp::kShflIdx:
          source = first | (b & (width - 1));
          break;
        case WarpOp::kShflUp:
          source = lane - b >= first ? lane - b : lane;
          break;
        case WarpOp::kShflDown:
          source = lane + b <= last ? lane + b : lane;
          break;
        case WarpOp::kShflXor:
          source = (lane ^ b) <= last ? lane ^ b : lane;
          break;
        default:
          break;
      }
      o.result =
          (mask >> source & 1u) != 0 ? slots_[base + static_cast<unsigned>(source)].bits : poison;
    } else if (op == WarpOp::kBallot) {
      o.result = ballot;
    } else if (op == WarpOp::kAll) {
      o.result = ballot == mask;
    } else if (op == WarpOp::kAny) {
      o.result = ballot != 0;
    } else {
      o.result = 0;
    }
    if (base + l != t) scratch_.push_back(base + l);
  }
  slots_[t].state = State::kRunning;
  warps_[t / kWarpSize].at_warp &= ~mask;
  racecheck::warp_synced(base, mask);
  make_ready(scratch_.data(), static_cast<unsigned>(scratch_.size()));
}

}  // namespace

// ---- The entry points --------------------------------------------------------------------

cudaError_t validate_launch(const KernelLaunch& launch, std::string& why) {
  const char* axis[3] = {"x", "y", "z"};
  const unsigned block[3] = {launch.block.x, launch.block.y, launch.block.z};
  const unsigned grid[3] = {launch.grid.x, launch.grid.y, launch.grid.z};
  std::string problem;
  for (int i = 0; i < 3 && problem.empty(); ++i) {
    if (block[i] == 0) {
      problem = "blockDim " + coords(launch.block) + " has a zero dimension";
    } else if (block[i] > kMaxBlockDim[i]) {
      problem = "blockDim " + coords(launch.block) + ": blockDim." + axis[i] + " is at most " +
                std::to_string(kMaxBlockDim[i]);
    } else if (grid[i] == 0) {
      problem = "gridDim " + coords(launch.grid) + " has a zero dimension";
    } else if (grid[i] > kMaxGridDim[i]) {
      problem = "gridDim " + coords(launch.grid) + ": gridDim." + axis[i] + " is at most " +
                std::to_string(kMaxGridDim[i]);
    }
  }
  if (problem.empty()) {
    const uint64_t threads = static_cast<uint64_t>(block[0]) * block[1] * block[2];
    if (threads > kMaxThreadsPerBlock) {
      problem = "blockDim " + coords(launch.block) + " has " + std::to_string(threads) +
                " threads; a block has at most " + std::to_string(kMaxThreadsPerBlock);
    } else if (const size_t limit = detail::max_dynamic_shared_bytes(launch.function);
               launch.shared_bytes > limit) {
      problem = std::to_string(launch.shared_bytes) + " bytes of dynamic shared memory; at most " +
                std::to_string(limit) +
                (limit == static_cast<size_t>(kSharedBytesPerBlock)
                     ? " without an opt-in (cudaFuncSetAttribute, "
                       "cudaFuncAttributeMaxDynamicSharedMemorySize)"
                     : " as set by cudaFuncSetAttribute");
    }
  }
  if (problem.empty()) return cudaSuccess;
  why = "invalid configuration for " + launch.name;
  if (launch.file != nullptr && launch.file[0] != '\0')
    why += " at " + site(launch.file, launch.line);
  why += ": " + problem;
  return cudaErrorInvalidConfiguration;
}

cudaError_t execute(const KernelLaunch& launch, std::string& why) {
  if (t_executing) {
    why =
        "launch of " + launch.name + " from inside a kernel (dynamic parallelism) is not simulated";
    return cudaErrorLaunchFailure;
  }
  if (const cudaError_t status = validate_launch(launch, why); status != cudaSuccess) return status;
  if (!launch.body) {
    why = "launch of " + launch.name + " has no kernel body";
    return cudaErrorLaunchFailure;
  }
  std::lock_guard<std::mutex> lock(g_mutex);
  Executor& e = executor();
  g_active = &e;
  t_executing = true;
  const cudaError_t status = e.run(launch, why);
  t_executing = false;
  g_active = nullptr;
  return status;
}

void set_schedule_seed(uint64_t seed) {
  std::lock_guard<std::mutex> lock(g_mutex);
  executor().set_seed(seed);
}

uint64_t schedule_seed() {
  std::lock_guard<std::mutex> lock(g_mutex);
  return executor().seed();
}

void set_racecheck(bool on) { racecheck::set_enabled(on); }
bool racecheck_on() { return racecheck::enabled(); }

namespace detail {

uint64_t warp_rendezvous(WarpOp op, unsigned mask, uint64_t bits, unsigned size, int param,
                         int width, const char* file, int line) {
  return active_executor(op_name(op)).warp(op, mask, bits, size, param, width, file, line);
}

int block_barrier(BarrierOp op, int predicate, const char* file, int line) {
  return active_executor(op_name(op)).barrier(op, predicate, file, line);
}

}  // namespace detail

}  // namespace mlpx_sim
