// The executor (sim/src/executor.cpp) on its own: small kernels written here as CUDA code,
// compiled as C++ against mlpx_sim/device.h and run through mlpx_sim::execute directly (not
// through the runtime's streams). Buffers are host memory: execute() runs on this thread.
#include "mlpx_sim/executor.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <numeric>
#include <set>
#include <stdexcept>
#include <string>
#include <tuple>
#include <vector>

#include "mlpx_sim/device.h"
#include "mlpx_sim/launch.h"

namespace {

using mlpx_sim::KernelLaunch;

// A launch as the Launcher builds one: the arguments captured by value.
template <typename... Params, typename... Args>
KernelLaunch make_launch(void (*kernel)(Params...), const char* name, const char* file, int line,
                         dim3 grid, dim3 block, Args... args) {
  KernelLaunch launch;
  launch.name = name;
  launch.file = file;
  launch.line = line;
  launch.grid = grid;
  launch.block = block;
  launch.body = [kernel, params = std::make_tuple(static_cast<Params>(args)...)]() {
    std::apply(kernel, params);
  };
  return launch;
}
#define MAKE_LAUNCH(kernel, ...) make_launch(kernel, #kernel, __FILE__, __LINE__, __VA_ARGS__)

// Runs the launch; returns "" on success, else the error's message.
std::string run(const KernelLaunch& launch, cudaError_t expected = cudaSuccess) {
  std::string why = "unset";
  const cudaError_t status = mlpx_sim::execute(launch, why);
  EXPECT_EQ(status, expected) << why;
  return status == cudaSuccess ? std::string() : why;
}

// Restores the scheduling seed a test changes.
class SeedGuard {
 public:
  SeedGuard() : saved_(mlpx_sim::schedule_seed()) {}
  ~SeedGuard() { mlpx_sim::set_schedule_seed(saved_); }

 private:
  uint64_t saved_;
};

std::string here(int line) { return std::string(__FILE__) + ":" + std::to_string(line); }

// ---- Kernels -----------------------------------------------------------------------------

constexpr int kReduceThreads = 256;

// Block sum: shared memory and a __syncthreads tree.
__global__ void block_sum_kernel(const float* in, float* out) {
  __shared__ float partial[kReduceThreads];
  const unsigned t = threadIdx.x;
  partial[t] = in[blockIdx.x * blockDim.x + t];
  __syncthreads();
  for (unsigned stride = blockDim.x / 2; stride > 0; stride /= 2) {
    if (t < stride) partial[t] += partial[t + stride];
    __syncthreads();
  }
  if (t == 0) out[blockIdx.x] = partial[0];
}

// Warp sum: the xor butterfly; every lane ends with the warp's total.
template <typename T>
__global__ void warp_butterfly_kernel(const T* in, T* out) {
  const unsigned i = blockIdx.x * blockDim.x + threadIdx.x;
  T v = in[i];
  for (int mask = 16; mask > 0; mask /= 2) v += __shfl_xor_sync(0xffffffffu, v, mask);
  out[i] = v;
}

// Every shuffle form and vote, with full and partial widths.
struct ShuffleResults {
  int idx, up, down, xor8, idx8, down8;
  unsigned ballot;
  int all, any;
};
__global__ void shuffle_forms_kernel(ShuffleResults* out) {
  const int lane = static_cast<int>(threadIdx.x % 32);
  const int v = 100 + lane;
  ShuffleResults r;
  r.idx = __shfl_sync(0xffffffffu, v, 3);
  r.up = __shfl_up_sync(0xffffffffu, v, 2);
  r.down = __shfl_down_sync(0xffffffffu, v, 5);
  r.xor8 = __shfl_xor_sync(0xffffffffu, v, 9, 8);  // 9 & 31 = 9: lane ^ 9 leaves an 8-segment
  r.idx8 = __shfl_sync(0xffffffffu, v, 11, 8);     // lane 11 % 8 = 3 of each segment
  r.down8 = __shfl_down_sync(0xffffffffu, v, 3, 8);
  r.ballot = __ballot_sync(0xffffffffu, lane % 3 == 0);
  r.all = __all_sync(0xffffffffu, lane < 32);
  r.any = __any_sync(0xffffffffu, lane == 7);
  __syncwarp();
  out[threadIdx.x] = r;
}

// __syncthreads_or / _count / _and, and the block-done counter of the optimizer kernels.
__global__ void block_votes_kernel(const int* flags, int* out, unsigned* done, int* last_block) {
  const int f = flags[blockIdx.x * blockDim.x + threadIdx.x];
  const int any = __syncthreads_or(f);
  const int count = __syncthreads_count(f);
  const int all = __syncthreads_and(f);
  if (threadIdx.x == 0) {
    out[3 * blockIdx.x] = any;
    out[3 * blockIdx.x + 1] = count;
    out[3 * blockIdx.x + 2] = all;
    __threadfence();
    if (atomicAdd(done, 1u) == gridDim.x - 1) *last_block = static_cast<int>(blockIdx.x);
  }
}

// Multi-dimensional indices: each thread records its coordinates.
__global__ void coordinates_kernel(unsigned* out) {
  const unsigned block = (blockIdx.z * gridDim.y + blockIdx.y) * gridDim.x + blockIdx.x;
  const unsigned thread = (threadIdx.z * blockDim.y + threadIdx.y) * blockDim.x + threadIdx.x;
  const unsigned threads = blockDim.x * blockDim.y * blockDim.z;
  out[block * threads + thread] = (blockIdx.x << 24) | (blockIdx.y << 20) | (blockIdx.z << 16) |
                                  (threadIdx.x << 8) | (threadIdx.y << 4) | threadIdx.z;
}

// The order in which threads leave a barrier.
__global__ void barrier_order_kernel(int* ticket, int* order) {
  __syncthreads();
  order[threadIdx.x] = atomicAdd(ticket, 1);
}

// Grid-stride elementwise, as kernels/launch.cuh's MLPX_GRID_STRIDE.
__global__ void scale_kernel(int64_t n, const float* x, float* y, float a) {
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    y[i] = a * x[i];
  }
}

// Uses a sizeable stack frame in every thread, with every thread of a 1024-thread block
// suspended at a barrier at once.
__global__ void deep_stack_kernel(int* out) {
  volatile int local[4096];  // 16 KiB
  for (int i = 0; i < 4096; ++i) local[i] = static_cast<int>(threadIdx.x) + i;
  __syncthreads();
  int sum = 0;
  for (int i = 0; i < 4096; i += 512) sum += local[i];
  out[blockIdx.x * blockDim.x + threadIdx.x] = sum;
}

// Lanes 0-15 first meet among themselves (__syncwarp and a ballot on half masks) while
// lanes 16-31 already wait at a full-warp shuffle; the half warps vote separately.
__global__ void staggered_rendezvous_kernel(int* out, unsigned* ballots) {
  const unsigned lane = threadIdx.x % 32;
  const unsigned half = lane < 16 ? 0x0000ffffu : 0xffff0000u;
  if (lane < 16) __syncwarp(half);
  ballots[threadIdx.x] = __ballot_sync(half, lane % 2 == 0);
  out[threadIdx.x] =
      __shfl_sync(0xffffffffu, static_cast<int>(lane) * 10, 31 - static_cast<int>(lane));
}

// The math library and intrinsics as device code calls them: unqualified.
__global__ void math_kernel(const float* x, float* y, int* flags) {
  const float v = x[threadIdx.x];
  y[threadIdx.x] = expf(v) + logf(fabsf(v) + 1.0f) + log1pf(fabsf(v)) + expm1f(v) + tanhf(v) +
                   fmaxf(v, 0.0f) - fminf(v, 0.0f) + sqrtf(fabsf(v)) + __expf(v) +
                   rsqrtf(fabsf(v) + 1.0f) + __int_as_float(__float_as_int(v));
  flags[threadIdx.x] = (isfinite(v) ? 1 : 0) | (isnan(v) ? 2 : 0) | (isinf(v) ? 4 : 0) |
                       (signbit(v) ? 8 : 0) | (isfinite(static_cast<double>(v)) ? 16 : 0);
}

// ---- Broken kernels ----------------------------------------------------------------------

int g_fault_line = 0;

// Only even threads reach the barrier; odd threads end.
__global__ void divergent_barrier_kernel(int* out) {
  if (threadIdx.x % 2 == 0) {
    g_fault_line = __LINE__ + 1;  // the line below
    __syncthreads();
  }
  out[threadIdx.x] = 1;
}

// Two different barriers: threads 0-7 wait at one, the others at another.
int g_other_line = 0;
__global__ void barrier_mismatch_kernel(int* out) {
  if (threadIdx.x < 8) {
    g_other_line = __LINE__ + 1;  // the line below
    __syncthreads();
  } else {
    g_fault_line = __LINE__ + 1;  // the line below
    __syncthreads();
  }
  out[threadIdx.x] = 1;
}

// Thread t writes its slot, then reads its neighbour's without a barrier in between.
__global__ void missing_barrier_kernel(int base, int* out, bool with_barrier) {
  __shared__ int slot[64];
  const unsigned t = threadIdx.x;
  slot[t] = base + static_cast<int>(t);
  if (with_barrier) __syncthreads();
  out[t] = slot[(t + 1) % blockDim.x];
}

// Lanes 16-31 end while lanes 0-15 shuffle with a full mask.
__global__ void shuffle_missing_lane_kernel(int* out) {
  int v = static_cast<int>(threadIdx.x);
  if (threadIdx.x % 32 < 16) {
    g_fault_line = __LINE__ + 1;  // the line below
    v = __shfl_xor_sync(0xffffffffu, v, 1);
  }
  out[threadIdx.x] = v;
}

// Lane 5 waits at a barrier while the rest of the warp shuffles.
__global__ void shuffle_vs_barrier_kernel(int* out) {
  int v = static_cast<int>(threadIdx.x);
  if (threadIdx.x == 5) {
    g_other_line = __LINE__ + 1;  // the line below
    __syncthreads();
  } else {
    g_fault_line = __LINE__ + 1;  // the line below
    v = __shfl_down_sync(0xffffffffu, v, 1);
  }
  out[threadIdx.x] = v;
}

// Half the warp shuffles xor, the other half down, both with the full mask.
__global__ void shuffle_kind_mismatch_kernel(int* out) {
  int v = static_cast<int>(threadIdx.x);
  if (threadIdx.x < 16) {
    v = __shfl_xor_sync(0xffffffffu, v, 1);
  } else {
    v = __shfl_down_sync(0xffffffffu, v, 1);
  }
  out[threadIdx.x] = v;
}

// A 16-thread block shuffling with a full mask: lanes 16-31 do not exist.
__global__ void shuffle_absent_lanes_kernel(int* out) {
  g_fault_line = __LINE__ + 1;  // the line below
  out[threadIdx.x] = __shfl_xor_sync(0xffffffffu, 1, 1);
}

__global__ void throwing_kernel(int* out) {
  if (threadIdx.x == 3 && blockIdx.x == 1) throw std::runtime_error("boom from a kernel");
  out[blockIdx.x * blockDim.x + threadIdx.x] = 1;
}

bool g_ran = false;
__global__ void flag_kernel() { g_ran = true; }

// ---- Tests -------------------------------------------------------------------------------

TEST(Executor, BlockReductionWithSharedMemoryAndBarriers) {
  SeedGuard guard;
  constexpr int kBlocks = 64;
  std::vector<float> in(kBlocks * kReduceThreads);
  for (size_t i = 0; i < in.size(); ++i) in[i] = static_cast<float>(i % 97);
  for (uint64_t seed : {0ull, 1ull, 12345ull}) {
    mlpx_sim::set_schedule_seed(seed);
    std::vector<float> out(kBlocks, -1.0f);
    ASSERT_EQ(run(MAKE_LAUNCH(block_sum_kernel, kBlocks, kReduceThreads, in.data(), out.data())),
              "");
    for (int b = 0; b < kBlocks; ++b) {
      const float expected = std::accumulate(in.begin() + b * kReduceThreads,
                                             in.begin() + (b + 1) * kReduceThreads, 0.0f);
      EXPECT_EQ(out[b], expected) << "block " << b << ", seed " << seed;
    }
  }
}

TEST(Executor, WarpXorButterflyReduction) {
  constexpr int kThreads = 128, kBlocks = 8, n = kThreads * kBlocks;
  std::vector<float> in(n);
  std::vector<double> in_d(n);
  std::vector<long long> in_ll(n);
  for (int i = 0; i < n; ++i) {
    in[i] = static_cast<float>(i % 13);
    in_d[i] = 0.5 * i;
    in_ll[i] = (1ll << 40) + i;
  }
  std::vector<float> out(n);
  std::vector<double> out_d(n);
  std::vector<long long> out_ll(n);
  ASSERT_EQ(
      run(MAKE_LAUNCH(warp_butterfly_kernel<float>, kBlocks, kThreads, in.data(), out.data())), "");
  ASSERT_EQ(
      run(MAKE_LAUNCH(warp_butterfly_kernel<double>, kBlocks, kThreads, in_d.data(), out_d.data())),
      "");
  ASSERT_EQ(run(MAKE_LAUNCH(warp_butterfly_kernel<long long>, kBlocks, kThreads, in_ll.data(),
                            out_ll.data())),
            "");
  for (int w = 0; w < n / 32; ++w) {
    float sum = 0.0f;
    double sum_d = 0.0;
    long long sum_ll = 0;
    for (int l = 0; l < 32; ++l) {
      sum += in[w * 32 + l];
      sum_d += in_d[w * 32 + l];
      sum_ll += in_ll[w * 32 + l];
    }
    for (int l = 0; l < 32; ++l) {
      EXPECT_EQ(out[w * 32 + l], sum) << "warp " << w << " lane " << l;
      EXPECT_EQ(out_d[w * 32 + l], sum_d);
      EXPECT_EQ(out_ll[w * 32 + l], sum_ll);
    }
  }
}

TEST(Executor, ShuffleAndVoteSemantics) {
  std::vector<ShuffleResults> out(64);
  ASSERT_EQ(run(MAKE_LAUNCH(shuffle_forms_kernel, 1, 64, out.data())), "");
  for (int t = 0; t < 64; ++t) {
    const int lane = t % 32;
    const ShuffleResults& r = out[t];
    EXPECT_EQ(r.idx, 103) << t;
    EXPECT_EQ(r.up, 100 + (lane >= 2 ? lane - 2 : lane)) << t;
    EXPECT_EQ(r.down, 100 + (lane + 5 <= 31 ? lane + 5 : lane)) << t;
    const int seg = lane & ~7;
    EXPECT_EQ(r.xor8, 100 + ((lane ^ 9) <= seg + 7 ? lane ^ 9 : lane)) << t;
    EXPECT_EQ(r.idx8, 100 + seg + 3) << t;
    EXPECT_EQ(r.down8, 100 + (lane + 3 <= seg + 7 ? lane + 3 : lane)) << t;
    EXPECT_EQ(r.ballot, 0x49249249u) << t;  // lanes 0, 3, 6, ..., 30
    EXPECT_EQ(r.all, 1) << t;
    EXPECT_EQ(r.any, 1) << t;
  }
}

TEST(Executor, WarpRendezvousWaitsForLanesBusyInAnotherOne) {
  SeedGuard guard;
  for (uint64_t seed : {0ull, 1ull, 2ull, 3ull}) {
    mlpx_sim::set_schedule_seed(seed);
    std::vector<int> out(64, -1);
    std::vector<unsigned> ballots(64, 0);
    ASSERT_EQ(run(MAKE_LAUNCH(staggered_rendezvous_kernel, 1, 64, out.data(), ballots.data())), "");
    for (int t = 0; t < 64; ++t) {
      const int lane = t % 32;
      EXPECT_EQ(out[t], (31 - lane) * 10) << t;
      EXPECT_EQ(ballots[t], lane < 16 ? 0x00005555u : 0x55550000u) << t;
    }
  }
}

TEST(Executor, MathBuiltinsUnqualified) {
  const float inf = INFINITY;
  std::vector<float> x = {0.5f, -2.0f, NAN, inf};
  std::vector<float> y(4);
  std::vector<int> flags(4, -1);
  ASSERT_EQ(run(MAKE_LAUNCH(math_kernel, 1, 4, x.data(), y.data(), flags.data())), "");
  const float v = -2.0f;
  const float expected = std::exp(v) + std::log(std::fabs(v) + 1.0f) + std::log1p(std::fabs(v)) +
                         std::expm1(v) + std::tanh(v) + 0.0f - v + std::sqrt(std::fabs(v)) +
                         std::exp(v) + 1.0f / std::sqrt(std::fabs(v) + 1.0f) + v;
  EXPECT_NEAR(y[1], expected, 1e-5f);
  EXPECT_EQ(flags[0], 1 | 16);
  EXPECT_EQ(flags[1], 1 | 8 | 16);
  EXPECT_EQ(flags[2] & 2, 2);
  EXPECT_EQ(flags[3], 4);
}

TEST(Executor, BlockVotesAndLastBlockCounter) {
  constexpr int kThreads = 64, kBlocks = 5;
  std::vector<int> flags(kThreads * kBlocks, 0);
  // block 0: none; block 1: one; block 2: all; block 3: half; block 4: none
  flags[1 * kThreads + 17] = 1;
  for (int t = 0; t < kThreads; ++t) flags[2 * kThreads + t] = 1;
  for (int t = 0; t < kThreads; t += 2) flags[3 * kThreads + t] = 1;
  std::vector<int> out(3 * kBlocks, -1);
  unsigned done = 0;
  int last = -1;
  ASSERT_EQ(run(MAKE_LAUNCH(block_votes_kernel, kBlocks, kThreads, flags.data(), out.data(), &done,
                            &last)),
            "");
  const int expected[kBlocks][3] = {{0, 0, 0}, {1, 1, 0}, {1, 64, 1}, {1, 32, 0}, {0, 0, 0}};
  for (int b = 0; b < kBlocks; ++b) {
    EXPECT_EQ(out[3 * b], expected[b][0]) << b;
    EXPECT_EQ(out[3 * b + 1], expected[b][1]) << b;
    EXPECT_EQ(out[3 * b + 2], expected[b][2]) << b;
  }
  EXPECT_EQ(done, static_cast<unsigned>(kBlocks));
  EXPECT_GE(last, 0);
  EXPECT_LT(last, kBlocks);
}

TEST(Executor, MultiDimensionalIndices) {
  const dim3 grid(3, 2, 2), block(4, 3, 2);
  std::vector<unsigned> out(3 * 2 * 2 * 4 * 3 * 2, 0xffffffffu);
  ASSERT_EQ(run(MAKE_LAUNCH(coordinates_kernel, grid, block, out.data())), "");
  std::set<unsigned> seen(out.begin(), out.end());
  EXPECT_EQ(seen.size(), out.size());
  for (unsigned bz = 0; bz < 2; ++bz)
    for (unsigned by = 0; by < 2; ++by)
      for (unsigned bx = 0; bx < 3; ++bx)
        for (unsigned tz = 0; tz < 2; ++tz)
          for (unsigned ty = 0; ty < 3; ++ty)
            for (unsigned tx = 0; tx < 4; ++tx) {
              const unsigned b = (bz * 2 + by) * 3 + bx, t = (tz * 3 + ty) * 4 + tx;
              EXPECT_EQ(out[b * 24 + t],
                        (bx << 24) | (by << 20) | (bz << 16) | (tx << 8) | (ty << 4) | tz);
            }
}

TEST(Executor, SeedShufflesTheOrderThreadsLeaveABarrier) {
  SeedGuard guard;
  constexpr int kThreads = 128;
  std::vector<int> identity(kThreads);
  std::iota(identity.begin(), identity.end(), 0);

  mlpx_sim::set_schedule_seed(0);  // index order
  int ticket = 0;
  std::vector<int> order(kThreads, -1);
  ASSERT_EQ(run(MAKE_LAUNCH(barrier_order_kernel, 1, kThreads, &ticket, order.data())), "");
  EXPECT_EQ(order, identity);

  mlpx_sim::set_schedule_seed(7);
  ticket = 0;
  ASSERT_EQ(run(MAKE_LAUNCH(barrier_order_kernel, 1, kThreads, &ticket, order.data())), "");
  EXPECT_NE(order, identity);
  std::vector<int> sorted = order;
  std::sort(sorted.begin(), sorted.end());
  EXPECT_EQ(sorted, identity);  // a permutation: each thread left exactly once

  // Reproducible: the same seed gives the same order.
  mlpx_sim::set_schedule_seed(7);
  ticket = 0;
  std::vector<int> again(kThreads, -1);
  ASSERT_EQ(run(MAKE_LAUNCH(barrier_order_kernel, 1, kThreads, &ticket, again.data())), "");
  EXPECT_EQ(again, order);
}

TEST(Executor, LargeBlocksAndDeepStacks) {
  constexpr int kThreads = 1024, kBlocks = 3;
  std::vector<int> out(kThreads * kBlocks, -1);
  ASSERT_EQ(run(MAKE_LAUNCH(deep_stack_kernel, kBlocks, kThreads, out.data())), "");
  for (int i = 0; i < kThreads * kBlocks; ++i) {
    const int t = i % kThreads;
    EXPECT_EQ(out[i], 8 * t + (0 + 512 + 1024 + 1536 + 2048 + 2560 + 3072 + 3584)) << i;
  }
}

TEST(Executor, ElementwiseSpeed) {
  constexpr int64_t n = 1 << 20;
  std::vector<float> x(n), y(n, 0.0f);
  for (int64_t i = 0; i < n; ++i) x[i] = static_cast<float>(i);
  const KernelLaunch launch = MAKE_LAUNCH(scale_kernel, 4096, 256, n, x.data(), y.data(), 2.0f);
  ASSERT_EQ(run(launch), "");  // warm the stack pool
  constexpr int kRepeats = 5;
  const auto start = std::chrono::steady_clock::now();
  for (int r = 0; r < kRepeats; ++r) ASSERT_EQ(run(launch), "");
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() / kRepeats;
  for (int64_t i = 0; i < n; i += 4099) ASSERT_EQ(y[i], 2.0f * static_cast<float>(i));
  std::printf("[ timing   ] 1M-float grid-stride kernel, 4096 x 256 threads: %.2f ms per launch\n",
              seconds * 1e3);
  RecordProperty("elementwise_1M_ms", std::to_string(seconds * 1e3));
  EXPECT_LT(seconds, 5.0);  // generous: Debug and sanitizer builds are much slower than Release
}

TEST(ExecutorFaults, DivergentBarrierIsReported) {
  std::vector<int> out(32, 0);
  const std::string why =
      run(MAKE_LAUNCH(divergent_barrier_kernel, 2, 32, out.data()), cudaErrorLaunchFailure);
  EXPECT_NE(why.find("divergent __syncthreads in divergent_barrier_kernel at " +
                     here(g_fault_line) + ": 16 of 32 threads arrived, the others ended"),
            std::string::npos)
      << why;
  EXPECT_NE(why.find("kernel launched at " + std::string(__FILE__)), std::string::npos) << why;
}

TEST(ExecutorFaults, BarrierMismatchIsReported) {
  std::vector<int> out(32, 0);
  const std::string why =
      run(MAKE_LAUNCH(barrier_mismatch_kernel, 1, 32, out.data()), cudaErrorLaunchFailure);
  EXPECT_NE(why.find("divergent __syncthreads in barrier_mismatch_kernel at " + here(g_fault_line) +
                     ": 24 of 32 threads arrived, the others wait at __syncthreads at " +
                     here(g_other_line) + " (8)"),
            std::string::npos)
      << why;
}

TEST(ExecutorFaults, MissingBarrierRaceIsExposedBySeeds) {
  SeedGuard guard;
  constexpr int kThreads = 64;
  // Which threads read their neighbour's value written in this launch (fresh), rather than
  // whatever shared memory held before (a different `base` each launch makes those differ).
  auto fresh = [&](uint64_t seed, int base, bool with_barrier) {
    mlpx_sim::set_schedule_seed(seed);
    std::vector<int> out(kThreads, 0);
    EXPECT_EQ(run(MAKE_LAUNCH(missing_barrier_kernel, 1, kThreads, base, out.data(), with_barrier)),
              "");
    std::vector<bool> result(kThreads);
    for (int t = 0; t < kThreads; ++t) result[t] = out[t] == base + (t + 1) % kThreads;
    return result;
  };
  // In index order every thread reads before its right neighbour writes, except the last one.
  const std::vector<bool> in_order = fresh(0, 1000, false);
  for (int t = 0; t < kThreads; ++t) EXPECT_EQ(in_order[t], t == kThreads - 1) << t;
  // Two seeds, two different outcomes: the race shows.
  const std::vector<bool> a = fresh(1, 2000, false);
  const std::vector<bool> b = fresh(2, 3000, false);
  EXPECT_NE(a, b);
  EXPECT_NE(std::count(a.begin(), a.end(), true), 0);
  EXPECT_NE(std::count(a.begin(), a.end(), false), 0);
  // With the barrier, every seed gives every thread the fresh value.
  for (uint64_t seed : {0ull, 1ull, 2ull}) {
    const std::vector<bool> fixed = fresh(seed, 4000 + static_cast<int>(seed), true);
    EXPECT_EQ(std::count(fixed.begin(), fixed.end(), true), kThreads) << seed;
  }
}

TEST(ExecutorFaults, ShuffleMaskNamingALaneThatEndsIsReported) {
  SeedGuard guard;
  for (uint64_t seed : {0ull, 3ull, 99ull}) {
    mlpx_sim::set_schedule_seed(seed);
    std::vector<int> out(64, 0);
    const std::string why =
        run(MAKE_LAUNCH(shuffle_missing_lane_kernel, 1, 64, out.data()), cudaErrorLaunchFailure);
    EXPECT_NE(why.find("shuffle mask 0xffffffff in shuffle_missing_lane_kernel at " +
                       here(g_fault_line) + " (__shfl_xor_sync by lane "),
              std::string::npos)
        << why;
    EXPECT_NE(why.find(", which never arrives: it ended"), std::string::npos) << why;
    const size_t at = why.find("names lane ");
    ASSERT_NE(at, std::string::npos) << why;
    const int lane = std::stoi(why.substr(at + 11));
    EXPECT_GE(lane, 16) << why;
    EXPECT_LT(lane, 32) << why;
  }
}

TEST(ExecutorFaults, ShuffleMaskNamingALaneAtABarrierIsReported) {
  std::vector<int> out(32, 0);
  const std::string why =
      run(MAKE_LAUNCH(shuffle_vs_barrier_kernel, 1, 32, out.data()), cudaErrorLaunchFailure);
  EXPECT_NE(
      why.find("shuffle mask 0xffffffff in shuffle_vs_barrier_kernel at " + here(g_fault_line)),
      std::string::npos)
      << why;
  EXPECT_NE(why.find("names lane 5, which never arrives: it waits at __syncthreads at " +
                     here(g_other_line)),
            std::string::npos)
      << why;
}

TEST(ExecutorFaults, ShuffleKindMismatchIsReported) {
  std::vector<int> out(32, 0);
  const std::string why =
      run(MAKE_LAUNCH(shuffle_kind_mismatch_kernel, 1, 32, out.data()), cudaErrorLaunchFailure);
  EXPECT_NE(why.find("shuffle_kind_mismatch_kernel"), std::string::npos) << why;
  EXPECT_NE(why.find("which never arrives: it waits at __shfl_"), std::string::npos) << why;
}

TEST(ExecutorFaults, ShuffleMaskBeyondTheBlockIsReported) {
  std::vector<int> out(16, 0);
  const std::string why =
      run(MAKE_LAUNCH(shuffle_absent_lanes_kernel, 1, 16, out.data()), cudaErrorLaunchFailure);
  EXPECT_NE(
      why.find("shuffle mask 0xffffffff in shuffle_absent_lanes_kernel at " + here(g_fault_line)),
      std::string::npos)
      << why;
  EXPECT_NE(why.find("names lane 16, which never arrives: the block has only 16 threads"),
            std::string::npos)
      << why;
}

TEST(ExecutorFaults, ExceptionInAKernelIsAFault) {
  std::vector<int> out(4 * 8, 0);
  const std::string why =
      run(MAKE_LAUNCH(throwing_kernel, 4, 8, out.data()), cudaErrorLaunchFailure);
  EXPECT_NE(why.find("exception in throwing_kernel: boom from a kernel (block (1, 0, 0), thread "
                     "(3, 0, 0)"),
            std::string::npos)
      << why;
}

TEST(ExecutorFaults, TheExecutorCarriesOnAfterAFault) {
  // A fault abandons suspended threads (their stacks are unwound and reused); the next
  // launch runs normally.
  std::vector<int> junk(64, 0);
  run(MAKE_LAUNCH(divergent_barrier_kernel, 4, 64, junk.data()), cudaErrorLaunchFailure);
  run(MAKE_LAUNCH(shuffle_vs_barrier_kernel, 1, 32, junk.data()), cudaErrorLaunchFailure);
  std::vector<float> in(kReduceThreads, 1.0f), out(1, 0.0f);
  ASSERT_EQ(run(MAKE_LAUNCH(block_sum_kernel, 1, kReduceThreads, in.data(), out.data())), "");
  EXPECT_EQ(out[0], static_cast<float>(kReduceThreads));
}

TEST(ExecutorLimits, TooManyThreadsPerBlock) {
  g_ran = false;
  std::string why;
  const KernelLaunch x = MAKE_LAUNCH(flag_kernel, 1, 1025);
  EXPECT_EQ(mlpx_sim::validate_launch(x, why), cudaErrorInvalidConfiguration);
  EXPECT_NE(why.find("invalid configuration for flag_kernel at " + std::string(__FILE__)),
            std::string::npos)
      << why;
  EXPECT_NE(why.find("blockDim (1025, 1, 1): blockDim.x is at most 1024"), std::string::npos)
      << why;
  const KernelLaunch xyz = MAKE_LAUNCH(flag_kernel, 1, dim3(32, 16, 4));
  EXPECT_EQ(mlpx_sim::validate_launch(xyz, why), cudaErrorInvalidConfiguration);
  EXPECT_NE(why.find("blockDim (32, 16, 4) has 2048 threads; a block has at most 1024"),
            std::string::npos)
      << why;
  const KernelLaunch z = MAKE_LAUNCH(flag_kernel, 1, dim3(1, 1, 65));
  EXPECT_EQ(mlpx_sim::validate_launch(z, why), cudaErrorInvalidConfiguration);
  EXPECT_NE(why.find("blockDim.z is at most 64"), std::string::npos) << why;
  EXPECT_EQ(mlpx_sim::execute(x, why), cudaErrorInvalidConfiguration);
  EXPECT_FALSE(g_ran);
  const KernelLaunch ok = MAKE_LAUNCH(flag_kernel, 1, 1024);
  EXPECT_EQ(mlpx_sim::validate_launch(ok, why), cudaSuccess);
}

TEST(ExecutorLimits, GridDimensions) {
  g_ran = false;
  std::string why;
  const KernelLaunch y = MAKE_LAUNCH(flag_kernel, dim3(1, 65536, 1), 32);
  EXPECT_EQ(mlpx_sim::validate_launch(y, why), cudaErrorInvalidConfiguration);
  EXPECT_NE(why.find("gridDim (1, 65536, 1): gridDim.y is at most 65535"), std::string::npos)
      << why;
  EXPECT_EQ(mlpx_sim::execute(y, why), cudaErrorInvalidConfiguration);
  const KernelLaunch y_max = MAKE_LAUNCH(flag_kernel, dim3(1, 65535, 1), 1);
  EXPECT_EQ(mlpx_sim::validate_launch(y_max, why), cudaSuccess);
  const KernelLaunch x_max = MAKE_LAUNCH(flag_kernel, dim3(2147483647u, 1, 1), 1);
  EXPECT_EQ(mlpx_sim::validate_launch(x_max, why), cudaSuccess);
  EXPECT_FALSE(g_ran);
}

TEST(ExecutorLimits, ZeroSizedGridAndBlock) {
  g_ran = false;
  std::string why;
  const KernelLaunch grid0 = MAKE_LAUNCH(flag_kernel, 0, 32);
  EXPECT_EQ(mlpx_sim::validate_launch(grid0, why), cudaErrorInvalidConfiguration);
  EXPECT_NE(why.find("gridDim (0, 1, 1) has a zero dimension"), std::string::npos) << why;
  EXPECT_EQ(mlpx_sim::execute(grid0, why), cudaErrorInvalidConfiguration);
  const KernelLaunch block0 = MAKE_LAUNCH(flag_kernel, 4, dim3(32, 0, 1));
  EXPECT_EQ(mlpx_sim::validate_launch(block0, why), cudaErrorInvalidConfiguration);
  EXPECT_NE(why.find("blockDim (32, 0, 1) has a zero dimension"), std::string::npos) << why;
  EXPECT_FALSE(g_ran);
}

TEST(ExecutorLimits, DynamicSharedMemory) {
  std::string why;
  KernelLaunch launch = MAKE_LAUNCH(flag_kernel, 1, 32);
  launch.shared_bytes = 48 * 1024;
  EXPECT_EQ(mlpx_sim::validate_launch(launch, why), cudaSuccess);
  launch.shared_bytes = 48 * 1024 + 1;
  EXPECT_EQ(mlpx_sim::validate_launch(launch, why), cudaErrorInvalidConfiguration);
  EXPECT_NE(why.find("49153 bytes of dynamic shared memory"), std::string::npos) << why;
}

TEST(ExecutorDeath, RendezvousOutsideAKernelAborts) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(__syncthreads(), "__syncthreads called outside a kernel");
}

}  // namespace
