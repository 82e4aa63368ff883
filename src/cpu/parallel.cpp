#include "cpu/parallel.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "cpu/gemm.h"

namespace mlpx::cpu {

namespace {

// The job word: generation (24 bits) | chunk count (20) | next unclaimed chunk (20). A claim is
// one compare-and-swap on it, so a helper that wakes late, after its job finished, cannot claim
// a chunk of it (the count says none is left) nor of the next job (the generation differs).
constexpr int kChunkBits = 20;
constexpr uint64_t kChunkMask = (uint64_t{1} << kChunkBits) - 1;
constexpr int64_t kMaxChunks = int64_t{1} << kChunkBits;

// Set on a thread while it runs a chunk: a parallel_for inside one runs inline (the pool runs
// one job at a time).
thread_local bool running_a_chunk = false;

uint64_t pack(uint64_t generation, uint64_t chunks, uint64_t next) {
  return (generation << (2 * kChunkBits)) | (chunks << kChunkBits) | next;
}

class Pool {
 public:
  explicit Pool(int helpers) {
    for (int i = 0; i < helpers; ++i) threads_.emplace_back([this] { serve(); });
  }
  ~Pool() {
    {
      const std::lock_guard<std::mutex> lock(mutex_);
      stopping_ = true;
    }
    wake_.notify_all();
    for (std::thread& t : threads_) t.join();
  }
  Pool(const Pool&) = delete;
  Pool& operator=(const Pool&) = delete;

  int helpers() const { return static_cast<int>(threads_.size()); }

  // One job at a time (callers serialise on run_mutex_).
  void run(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& body) {
    const std::lock_guard<std::mutex> one_job(run_mutex_);
    const int64_t chunks = (n + grain - 1) / grain;
    body_ = &body;
    n_ = n;
    grain_ = grain;
    done_.store(0, std::memory_order_relaxed);
    {
      const std::lock_guard<std::mutex> lock(mutex_);
      generation_ = (generation_ + 1) & 0xffffff;
      word_.store(pack(generation_, static_cast<uint64_t>(chunks), 0), std::memory_order_release);
    }
    wake_.notify_all();
    int64_t mine = 0;
    while (claim_and_run()) ++mine;
    // Only chunks a helper claimed are outstanding: they are running now.
    while (done_.load(std::memory_order_acquire) + mine < chunks) std::this_thread::yield();
  }

 private:
  // Claims the next chunk of the current job and runs it; false when none is left.
  bool claim_and_run() {
    uint64_t word = word_.load(std::memory_order_acquire);
    for (;;) {
      const uint64_t chunks = (word >> kChunkBits) & kChunkMask, next = word & kChunkMask;
      if (next >= chunks) return false;
      if (word_.compare_exchange_weak(word, word + 1, std::memory_order_acq_rel)) {
        const int64_t first = static_cast<int64_t>(next) * grain_;
        running_a_chunk = true;
        (*body_)(first, std::min(n_, first + grain_));
        running_a_chunk = false;
        return true;
      }
    }
  }

  void serve() {
    uint64_t seen = 0;
    for (;;) {
      {
        std::unique_lock<std::mutex> lock(mutex_);
        wake_.wait(lock, [&] { return stopping_ || generation_ != seen; });
        if (stopping_) return;
        seen = generation_;
      }
      while (claim_and_run()) done_.fetch_add(1, std::memory_order_acq_rel);
    }
  }

  std::vector<std::thread> threads_;
  std::mutex mutex_, run_mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  uint64_t generation_ = 0;  // under mutex_
  std::atomic<uint64_t> word_{0};
  std::atomic<int64_t> done_{0};  // chunks finished by helpers
  // The current job; read by a helper only while it holds an unfinished chunk of it.
  const std::function<void(int64_t, int64_t)>* body_ = nullptr;
  int64_t n_ = 0, grain_ = 1;
};

Pool& pool() {
  // Sized once, at the first parallel loop, from OpenBLAS's thread count then.
  static Pool instance(std::max(gemm_threads(), 1) - 1);
  return instance;
}

}  // namespace

int parallel_threads() { return pool().helpers() + 1; }

void parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& body) {
  if (n <= 0) return;
  grain = std::max<int64_t>(grain, (n + kMaxChunks - 1) / kMaxChunks);
  if (n <= grain || running_a_chunk || pool().helpers() == 0) {
    body(0, n);
    return;
  }
  pool().run(n, grain, body);
}

}  // namespace mlpx::cpu
