// The racecheck (sim/src/racecheck.h): kernels with and without the synchronisation their
// shared-memory accesses need. This file is compiled with the racecheck's instrumentation
// (mlpx_sim_instrument in sim/CMakeLists.txt), as kernels/*.cu are; the kernels run through
// mlpx_sim::execute on host buffers.
#include <gtest/gtest.h>

#include <string>
#include <tuple>
#include <vector>

#include "mlpx_sim/device.h"
#include "mlpx_sim/executor.h"
#include "mlpx_sim/launch.h"

namespace {

using mlpx_sim::KernelLaunch;

template <typename... Params, typename... Args>
KernelLaunch make_launch(void (*kernel)(Params...), const char* name, dim3 grid, dim3 block,
                         Args... args) {
  KernelLaunch launch;
  launch.name = name;
  launch.file = __FILE__;
  launch.line = 1;
  launch.grid = grid;
  launch.block = block;
  launch.body = [kernel, params = std::make_tuple(static_cast<Params>(args)...)]() {
    std::apply(kernel, params);
  };
  return launch;
}
#define MAKE_LAUNCH(kernel, ...) make_launch(kernel, #kernel, __VA_ARGS__)

// "" when the launch succeeds, else its fault.
std::string fault_of(const KernelLaunch& launch) {
  std::string why;
  const cudaError_t status = mlpx_sim::execute(launch, why);
  return status == cudaSuccess ? std::string() : why;
}

constexpr int kThreads = 64;

// Every test here runs with the racecheck on, whatever MLPX_SIM_RACECHECK says.
class Racecheck : public ::testing::Test {
 protected:
  void SetUp() override {
    saved_ = mlpx_sim::racecheck_on();
    mlpx_sim::set_racecheck(true);
  }
  void TearDown() override { mlpx_sim::set_racecheck(saved_); }

 private:
  bool saved_ = true;
};

// Each thread reads its neighbour's element: needs a barrier between the write and the read.
template <bool kBarrier>
__global__ void rotate_kernel(const float* in, float* out) {
  __shared__ float buffer[kThreads];
  const unsigned t = threadIdx.x;
  buffer[t] = in[blockIdx.x * kThreads + t];
  if (kBarrier) __syncthreads();
  out[blockIdx.x * kThreads + t] = buffer[(t + 1) % kThreads];
}

TEST_F(Racecheck, ReadOfAnotherThreadsWriteWithoutBarrierIsAFault) {
  std::vector<float> in(kThreads), out(kThreads);
  const std::string why =
      fault_of(MAKE_LAUNCH(rotate_kernel<false>, dim3(1), dim3(kThreads), in.data(), out.data()));
  EXPECT_NE(why.find("race on shared memory in rotate_kernel<false>: thread ("), std::string::npos)
      << why;
  // Which access comes second depends on the scheduling seed: a read after the neighbour's write,
  // or the neighbour's write after the read. Either is the same missing barrier.
  const bool read_after_write =
      why.find(" reads 4 bytes at 0x") != std::string::npos &&
      why.find(" wrote, with no __syncthreads between") != std::string::npos;
  const bool write_after_read =
      why.find(" writes 4 bytes at 0x") != std::string::npos &&
      why.find(" read, with no __syncthreads between") != std::string::npos;
  EXPECT_TRUE(read_after_write || write_after_read) << why;
  EXPECT_NE(why.find("racecheck_test"), std::string::npos) << why;  // where the second access is
  EXPECT_NE(why.find("kernel launched at"), std::string::npos) << why;
}

TEST_F(Racecheck, TheSameWithABarrierIsCleanInEveryBlock) {
  constexpr int kBlocks = 8;
  std::vector<float> in(kBlocks * kThreads), out(in.size());
  for (size_t i = 0; i < in.size(); ++i) in[i] = static_cast<float>(i);
  EXPECT_EQ(fault_of(MAKE_LAUNCH(rotate_kernel<true>, dim3(kBlocks), dim3(kThreads), in.data(),
                                 out.data())),
            "");
  for (int b = 0; b < kBlocks; ++b) {
    for (int t = 0; t < kThreads; ++t) {
      EXPECT_EQ(out[b * kThreads + t], in[b * kThreads + (t + 1) % kThreads]);
    }
  }
}

// The classic tree reduction: a barrier after every level.
__global__ void tree_sum_kernel(const float* in, float* out) {
  __shared__ float partial[kThreads];
  const unsigned t = threadIdx.x;
  partial[t] = in[t];
  __syncthreads();
  for (unsigned stride = kThreads / 2; stride > 0; stride /= 2) {
    if (t < stride) partial[t] += partial[t + stride];
    __syncthreads();
  }
  if (t == 0) *out = partial[0];
}

TEST_F(Racecheck, TreeReductionWithBarriersIsClean) {
  std::vector<float> in(kThreads, 1.0f);
  float sum = 0.0f;
  EXPECT_EQ(fault_of(MAKE_LAUNCH(tree_sum_kernel, dim3(1), dim3(kThreads), in.data(), &sum)), "");
  EXPECT_EQ(sum, static_cast<float>(kThreads));
}

// Thread 0 publishes a value every thread reads; thread 5 then overwrites it with no barrier
// after the reads.
__global__ void overwrite_after_read_kernel(int* out) {
  __shared__ int value;
  const unsigned t = threadIdx.x;
  if (t == 0) value = 7;
  __syncthreads();
  const int seen = value;
  if (t == 5) value = seen + 1;
  out[t] = seen;
}

TEST_F(Racecheck, WriteAfterOtherThreadsReadIsAFault) {
  std::vector<int> out(kThreads);
  const std::string why =
      fault_of(MAKE_LAUNCH(overwrite_after_read_kernel, dim3(1), dim3(kThreads), out.data()));
  EXPECT_NE(why.find("thread (5, 0, 0) writes 4 bytes"), std::string::npos) << why;
  EXPECT_NE(why.find(" read, with no __syncthreads between"), std::string::npos) << why;
}

// Every thread stores to one shared word.
__global__ void all_write_one_kernel(int* out) {
  __shared__ int last;
  last = static_cast<int>(threadIdx.x);
  __syncthreads();
  if (threadIdx.x == 0) *out = last;
}

TEST_F(Racecheck, WritesOfOneWordByTwoThreadsAreAFault) {
  int out = 0;
  const std::string why =
      fault_of(MAKE_LAUNCH(all_write_one_kernel, dim3(1), dim3(kThreads), &out));
  EXPECT_NE(why.find(" writes 4 bytes at "), std::string::npos) << why;
  EXPECT_NE(why.find(" wrote, with no __syncthreads between"), std::string::npos) << why;
}

// Lanes exchange through shared memory inside one warp: __syncwarp orders them.
template <bool kSyncWarp>
__global__ void warp_exchange_kernel(int* out) {
  __shared__ int lanes[32];
  const unsigned t = threadIdx.x;
  lanes[t] = static_cast<int>(t) * 10;
  if (kSyncWarp) __syncwarp();
  out[t] = lanes[t ^ 1];
}

TEST_F(Racecheck, WarpExchangeNeedsASyncwarp) {
  std::vector<int> out(32);
  EXPECT_EQ(fault_of(MAKE_LAUNCH(warp_exchange_kernel<true>, dim3(1), dim3(32), out.data())), "");
  for (int t = 0; t < 32; ++t) EXPECT_EQ(out[t], (t ^ 1) * 10);
  const std::string why =
      fault_of(MAKE_LAUNCH(warp_exchange_kernel<false>, dim3(1), dim3(32), out.data()));
  EXPECT_NE(why.find("with no __syncthreads between and no warp rendezvous of both"),
            std::string::npos)
      << why;
}

// Atomics on one shared counter from every thread are not a hazard; reading it after the
// barrier is not either.
__global__ void shared_counter_kernel(int* out) {
  __shared__ int count;
  if (threadIdx.x == 0) count = 0;
  __syncthreads();
  atomicAdd(&count, 1);
  __syncthreads();
  out[threadIdx.x] = count;
}

TEST_F(Racecheck, SharedAtomicsAreNoHazard) {
  std::vector<int> out(kThreads);
  EXPECT_EQ(fault_of(MAKE_LAUNCH(shared_counter_kernel, dim3(2), dim3(kThreads), out.data())), "");
  for (int v : out) EXPECT_EQ(v, kThreads);
}

// The launch after a race runs normally: nothing is left over from the faulted one.
TEST_F(Racecheck, NextLaunchIsUnaffected) {
  std::vector<float> in(kThreads, 2.0f), out(kThreads);
  EXPECT_NE(
      fault_of(MAKE_LAUNCH(rotate_kernel<false>, dim3(1), dim3(kThreads), in.data(), out.data())),
      "");
  EXPECT_EQ(
      fault_of(MAKE_LAUNCH(rotate_kernel<true>, dim3(1), dim3(kThreads), in.data(), out.data())),
      "");
}

}  // namespace

namespace {

TEST(RacecheckSwitch, OffMeansNoReport) {
  const bool saved = mlpx_sim::racecheck_on();
  mlpx_sim::set_racecheck(false);
  std::vector<float> in(kThreads, 1.0f), out(kThreads);
  EXPECT_EQ(
      fault_of(MAKE_LAUNCH(rotate_kernel<false>, dim3(1), dim3(kThreads), in.data(), out.data())),
      "");
  mlpx_sim::set_racecheck(saved);
}

}  // namespace
