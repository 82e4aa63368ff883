// The simulator's runtime (sim/src/runtime.cpp): device memory (poison, guard pages,
// protection), stream order and synchronisation, graph capture and replay, events, sticky
// faults, and the Thrust sort.
#include "mlpx_sim/runtime.h"

#include <cuda_runtime.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <thrust/device_ptr.h>
#include <thrust/execution_policy.h>
#include <thrust/sort.h>
#include <unistd.h>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "mlpx_sim/launch.h"

namespace {

// Every test starts and ends with a clean device: no sticky fault, no stale last error.
class Runtime : public ::testing::Test {
 protected:
  void SetUp() override {
    mlpx_sim::reset_fault();
    ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  }
  void TearDown() override {
    EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);
    mlpx_sim::reset_fault();
  }
};
using RuntimeDeathTest = Runtime;

template <typename T>
T* device_alloc(size_t n) {
  void* p = nullptr;
  EXPECT_EQ(cudaMalloc(&p, n * sizeof(T)), cudaSuccess);
  return static_cast<T*>(p);
}

// A one-thread launch of `body` through the runtime (name: the kernel's name in messages).
cudaError_t launch_one(cudaStream_t stream, const char* name, std::function<void()> body,
                       dim3 grid = 1, dim3 block = 1) {
  mlpx_sim::KernelLaunch launch;
  launch.name = name;
  launch.file = __FILE__;
  launch.line = __LINE__;
  launch.grid = grid;
  launch.block = block;
  launch.body = std::move(body);
  return mlpx_sim::enqueue_launch(stream, std::move(launch));
}

// ---- Memory ------------------------------------------------------------------------------------

TEST_F(Runtime, CopiesRoundTrip) {
  const size_t n = 37;
  std::vector<float> in(n), out(n, 0.0f);
  for (size_t i = 0; i < n; ++i) in[i] = 0.5f * static_cast<float>(i) - 3.0f;
  float* a = device_alloc<float>(n);
  float* b = device_alloc<float>(n);
  ASSERT_EQ(cudaMemcpy(a, in.data(), n * sizeof(float), cudaMemcpyHostToDevice), cudaSuccess);
  ASSERT_EQ(cudaMemcpy(b, a, n * sizeof(float), cudaMemcpyDeviceToDevice), cudaSuccess);
  ASSERT_EQ(cudaMemcpy(out.data(), b, n * sizeof(float), cudaMemcpyDeviceToHost), cudaSuccess);
  EXPECT_EQ(out, in);

  // The same through a stream, with cudaMemcpyDefault inferring the directions.
  cudaStream_t s = nullptr;
  ASSERT_EQ(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking), cudaSuccess);
  std::vector<float> out2(n, 0.0f);
  ASSERT_EQ(cudaMemsetAsync(b, 0, n * sizeof(float), s), cudaSuccess);
  ASSERT_EQ(cudaMemcpyAsync(b, a, n * sizeof(float), cudaMemcpyDefault, s), cudaSuccess);
  ASSERT_EQ(cudaMemcpyAsync(out2.data(), b, n * sizeof(float), cudaMemcpyDefault, s), cudaSuccess);
  ASSERT_EQ(cudaStreamSynchronize(s), cudaSuccess);
  EXPECT_EQ(out2, in);
  EXPECT_EQ(cudaStreamDestroy(s), cudaSuccess);
  EXPECT_EQ(cudaFree(a), cudaSuccess);
  EXPECT_EQ(cudaFree(b), cudaSuccess);
}

TEST_F(Runtime, FreshAllocationIsPoisoned) {
  const size_t n = 10;
  float* f = device_alloc<float>(n);
  int32_t* i = device_alloc<int32_t>(n);
  std::vector<float> fh(n, 0.0f);
  std::vector<int32_t> ih(n, 0);
  ASSERT_EQ(cudaMemcpy(fh.data(), f, n * sizeof(float), cudaMemcpyDeviceToHost), cudaSuccess);
  ASSERT_EQ(cudaMemcpy(ih.data(), i, n * sizeof(int32_t), cudaMemcpyDeviceToHost), cudaSuccess);
  for (size_t k = 0; k < n; ++k) {
    EXPECT_TRUE(std::isnan(fh[k])) << k;
    EXPECT_EQ(ih[k], -1) << k;
  }
  cudaFree(f);
  cudaFree(i);
}

TEST_F(Runtime, AllocationsAreAlignedAndEndAtTheirGuardPage) {
  const long page = sysconf(_SC_PAGESIZE);
  for (size_t bytes : {size_t{4}, size_t{16}, size_t{100}, size_t{4096}, size_t{5000}}) {
    void* p = nullptr;
    ASSERT_EQ(cudaMalloc(&p, bytes), cudaSuccess);
    const auto a = reinterpret_cast<uintptr_t>(p);
    EXPECT_EQ(a % 16, 0u) << bytes;
    // Rounded up to 16 bytes, the allocation ends at a page boundary (the guard page).
    EXPECT_EQ((a + (bytes + 15) / 16 * 16) % page, 0u) << bytes;
    EXPECT_TRUE(mlpx_sim::is_device_pointer(p));
    EXPECT_FALSE(mlpx_sim::is_device_pointer(static_cast<char*>(p) + bytes + 16));
    cudaFree(p);
  }
  void* zero = reinterpret_cast<void*>(0x1);
  EXPECT_EQ(cudaMalloc(&zero, 0), cudaSuccess);
  EXPECT_EQ(zero, nullptr);
}

TEST_F(Runtime, MemGetInfoAndOutOfMemory) {
  const size_t limit = mlpx_sim::device_memory_limit();
  size_t free_bytes = 0, total = 0;
  ASSERT_EQ(cudaMemGetInfo(&free_bytes, &total), cudaSuccess);
  EXPECT_EQ(total, limit);
  EXPECT_EQ(total, size_t{141} << 30);  // the default: an H200
  mlpx_sim::set_device_memory_limit(mlpx_sim::device_bytes_in_use() + (size_t{1} << 20));
  void* p = nullptr;
  EXPECT_EQ(cudaMalloc(&p, size_t{2} << 20), cudaErrorMemoryAllocation);
  EXPECT_NE(std::string(cudaGetErrorString(cudaErrorMemoryAllocation)).find("out of memory"),
            std::string::npos);
  EXPECT_EQ(cudaGetLastError(), cudaErrorMemoryAllocation);
  EXPECT_EQ(cudaGetLastError(), cudaSuccess);
  ASSERT_EQ(cudaMalloc(&p, 1000), cudaSuccess);
  ASSERT_EQ(cudaMemGetInfo(&free_bytes, &total), cudaSuccess);
  EXPECT_EQ(free_bytes, (size_t{1} << 20) - 1024);  // charged in 256-byte units
  cudaFree(p);
  mlpx_sim::set_device_memory_limit(limit);
}

TEST_F(Runtime, BadFreesAndCopiesAreInvalidValue) {
  float* a = device_alloc<float>(4);
  EXPECT_EQ(cudaFree(a + 1), cudaErrorInvalidValue);
  float host[8] = {};
  // A copy reaching past the allocation is refused at the call, with the reason.
  EXPECT_EQ(cudaMemcpy(host, a, 5 * sizeof(float), cudaMemcpyDeviceToHost), cudaErrorInvalidValue);
  EXPECT_NE(std::string(cudaGetErrorString(cudaErrorInvalidValue))
                .find("4 bytes past an allocation of 16 bytes"),
            std::string::npos)
      << cudaGetErrorString(cudaErrorInvalidValue);
  // A direction that contradicts the pointers.
  EXPECT_EQ(cudaMemcpy(host, a, 4, cudaMemcpyHostToDevice), cudaErrorInvalidValue);
  EXPECT_EQ(cudaMemsetAsync(host, 0, 4, nullptr), cudaErrorInvalidValue);
  EXPECT_EQ(cudaFree(a), cudaSuccess);
  EXPECT_EQ(cudaFree(a), cudaErrorInvalidValue);  // double free
  EXPECT_NE(std::string(cudaGetErrorString(cudaErrorInvalidValue)).find("already freed"),
            std::string::npos);
  cudaGetLastError();
}

// MLPX_SIM_LEAK_CHECK=1: a process that exits with device memory still allocated says so and
// exits with status 1; one that freed everything exits normally.
TEST_F(RuntimeDeathTest, LeakCheckAtExit) {
  EXPECT_EXIT(
      {
        setenv("MLPX_SIM_LEAK_CHECK", "1", 1);
        void* p = nullptr;
        cudaMalloc(&p, 64);
        std::exit(0);
      },
      ::testing::ExitedWithCode(1),
      "mlpx sim: leak check: 1 device allocation \\(64 bytes\\) never freed: 64 bytes at 0x");
  EXPECT_EXIT(
      {
        setenv("MLPX_SIM_LEAK_CHECK", "1", 1);
        void* p = nullptr;
        cudaMalloc(&p, 64);
        cudaFree(p);
        std::exit(0);
      },
      ::testing::ExitedWithCode(0), "");
}

TEST_F(RuntimeDeathTest, HostDereferenceOfDevicePointerDies) {
  float* p = device_alloc<float>(16);
  EXPECT_DEATH(
      {
        volatile float x = p[3];
        (void)x;
      },
      "mlpx sim: host code touched device memory at 0x[0-9a-f]+ \\(allocation of 64 bytes at "
      "0x[0-9a-f]+\\)");
  EXPECT_DEATH(p[0] = 1.0f, "host code touched device memory");
  cudaFree(p);
  // Freed memory stays protected for a while: a use after free is named as such.
  EXPECT_DEATH(
      {
        volatile float x = p[0];
        (void)x;
      },
      "host code touched freed device memory");
}

TEST_F(RuntimeDeathTest, OtherFaultsGoToThePreviousHandler) {
  float* p = device_alloc<float>(4);  // the handler is installed with the first allocation
  volatile int* wild = reinterpret_cast<volatile int*>(uintptr_t{16});
// Writing to address 16 is the point of this test; the compiler sees it too.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Warray-bounds"
#if defined(__SANITIZE_ADDRESS__)
  EXPECT_DEATH(*wild = 1, "AddressSanitizer: SEGV");  // ASan's handler, chained
#else
  EXPECT_EXIT(*wild = 1, ::testing::KilledBySignal(SIGSEGV), "");  // the default action
#endif
#pragma GCC diagnostic pop
  cudaFree(p);
}

TEST_F(RuntimeDeathTest, KernelUseAfterFreeDies) {
  float* p = device_alloc<float>(4);
  cudaFree(p);
  EXPECT_DEATH(
      {
        launch_one(nullptr, "stale_reader", [p] {
          volatile float x = p[0];
          (void)x;
        });
        cudaDeviceSynchronize();
      },
      "mlpx sim: use of freed device memory at 0x[0-9a-f]+ \\(freed allocation of 16 bytes at "
      "0x[0-9a-f]+\\) in kernel stale_reader");
}

TEST_F(RuntimeDeathTest, OutOfBoundsWriteInKernelHitsTheGuardPage) {
  // 16 floats: 64 bytes, a multiple of the alignment, so p[16] is the guard page's first byte.
  float* p = device_alloc<float>(16);
  EXPECT_DEATH(
      {
        launch_one(nullptr, "oob_write", [p] { p[16] = 1.0f; });
        cudaDeviceSynchronize();
      },
      "mlpx sim: out-of-bounds device access at 0x[0-9a-f]+ \\(0 bytes past an allocation of 64 "
      "bytes at 0x[0-9a-f]+\\) in kernel oob_write");
  cudaFree(p);
}

TEST_F(RuntimeDeathTest, OutOfBoundsWriteIntoTheSlackIsCaughtAfterTheKernel) {
  // 3 floats: 12 bytes, rounded to 16; p[3] lies in the slack before the guard page.
  float* p = device_alloc<float>(3);
  EXPECT_DEATH(
      {
        launch_one(nullptr, "slack_write", [p] { p[3] = 1.0f; });
        cudaDeviceSynchronize();
      },
      "out-of-bounds device access at 0x[0-9a-f]+ \\(0 bytes past an allocation of 12 bytes at "
      "0x[0-9a-f]+\\) in kernel slack_write .*redzone");
  EXPECT_DEATH(
      {
        launch_one(nullptr, "underflow_write", [p] { p[-1] = 1.0f; });
        cudaDeviceSynchronize();
      },
      "\\(4 bytes before an allocation of 12 bytes at 0x[0-9a-f]+\\) in kernel underflow_write");
  cudaFree(p);
}

TEST_F(Runtime, KernelsReadAndWriteDeviceMemoryAtRunTime) {
  float* p = device_alloc<float>(3);
  float seen[2] = {0.0f, 0.0f};
  // The slack past an allocation reads as NaN (its canary), like the poison of fresh memory.
  ASSERT_EQ(launch_one(nullptr, "reader",
                       [p, &seen] {
                         seen[0] = p[0];
                         seen[1] = p[3];
                         p[1] = 42.0f;
                       }),
            cudaSuccess);
  EXPECT_EQ(seen[0], 0.0f);  // queued, not run
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  EXPECT_TRUE(std::isnan(seen[0]));
  EXPECT_TRUE(std::isnan(seen[1]));
  float back = 0.0f;
  ASSERT_EQ(cudaMemcpy(&back, p + 1, sizeof back, cudaMemcpyDeviceToHost), cudaSuccess);
  EXPECT_EQ(back, 42.0f);
  cudaFree(p);
}

// ---- Streams -----------------------------------------------------------------------------------

TEST_F(Runtime, MissingSynchronisationGivesStaleData) {
  cudaStream_t s = nullptr;
  ASSERT_EQ(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking), cudaSuccess);
  int32_t* d = device_alloc<int32_t>(4);
  std::vector<int32_t> host(4, 7);
  ASSERT_EQ(cudaMemsetAsync(d, 0, 4 * sizeof(int32_t), s), cudaSuccess);
  ASSERT_EQ(cudaMemcpyAsync(host.data(), d, 4 * sizeof(int32_t), cudaMemcpyDeviceToHost, s),
            cudaSuccess);
  EXPECT_EQ(host, std::vector<int32_t>(4, 7));  // not synchronised: nothing has run
  // A synchronisation of another stream, or a blocking copy on the legacy stream, does not run
  // a non-blocking stream's work.
  int32_t one = 0;
  ASSERT_EQ(cudaMemcpy(&one, d, sizeof one, cudaMemcpyDeviceToHost), cudaSuccess);
  EXPECT_EQ(one, -1);  // poison: the memset has not run
  EXPECT_EQ(host, std::vector<int32_t>(4, 7));
  ASSERT_EQ(cudaStreamSynchronize(s), cudaSuccess);
  EXPECT_EQ(host, std::vector<int32_t>(4, 0));
  cudaStreamDestroy(s);
  cudaFree(d);
}

TEST_F(Runtime, LegacyStreamWaitsForBlockingStreams) {
  cudaStream_t blocking = nullptr;
  ASSERT_EQ(cudaStreamCreate(&blocking), cudaSuccess);
  int32_t* d = device_alloc<int32_t>(1);
  ASSERT_EQ(cudaMemsetAsync(d, 0, sizeof(int32_t), blocking), cudaSuccess);
  int32_t v = 7;
  // cudaMemcpy goes on the legacy stream, which waits for earlier work of blocking streams.
  ASSERT_EQ(cudaMemcpy(&v, d, sizeof v, cudaMemcpyDeviceToHost), cudaSuccess);
  EXPECT_EQ(v, 0);
  cudaStreamDestroy(blocking);
  cudaFree(d);
}

TEST_F(Runtime, StreamOrderedAllocation) {
  cudaStream_t s = nullptr;
  ASSERT_EQ(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking), cudaSuccess);
  const size_t before = mlpx_sim::device_bytes_in_use();
  void* p = nullptr;
  ASSERT_EQ(cudaMallocAsync(&p, 1000, s), cudaSuccess);
  ASSERT_EQ(cudaMemsetAsync(p, 0, 1000, s), cudaSuccess);
  ASSERT_EQ(cudaFreeAsync(p, s), cudaSuccess);
  EXPECT_TRUE(mlpx_sim::is_device_pointer(p));  // freed when the stream gets there
  ASSERT_EQ(cudaStreamSynchronize(s), cudaSuccess);
  EXPECT_FALSE(mlpx_sim::is_device_pointer(p));
  EXPECT_EQ(mlpx_sim::device_bytes_in_use(), before);
  cudaStreamDestroy(s);
}

TEST_F(Runtime, DestroyedStreamStillCompletesItsWork) {
  cudaStream_t s = nullptr;
  ASSERT_EQ(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking), cudaSuccess);
  int32_t host = 7;
  int32_t* d = device_alloc<int32_t>(1);
  ASSERT_EQ(cudaMemsetAsync(d, 0, sizeof(int32_t), s), cudaSuccess);
  ASSERT_EQ(cudaMemcpyAsync(&host, d, sizeof host, cudaMemcpyDeviceToHost, s), cudaSuccess);
  ASSERT_EQ(cudaStreamDestroy(s), cudaSuccess);
  EXPECT_EQ(cudaStreamSynchronize(s), cudaErrorInvalidResourceHandle);
  EXPECT_EQ(host, 7);
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  EXPECT_EQ(host, 0);
  cudaGetLastError();
  cudaFree(d);
}

TEST_F(Runtime, EventsOrderAndTime) {
  cudaStream_t s = nullptr;
  ASSERT_EQ(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking), cudaSuccess);
  cudaEvent_t start = nullptr, stop = nullptr;
  ASSERT_EQ(cudaEventCreate(&start), cudaSuccess);
  ASSERT_EQ(cudaEventCreate(&stop), cudaSuccess);
  int32_t host = 7;
  int32_t* d = device_alloc<int32_t>(1);
  ASSERT_EQ(cudaEventRecord(start, s), cudaSuccess);
  ASSERT_EQ(cudaMemsetAsync(d, 0, sizeof(int32_t), s), cudaSuccess);
  ASSERT_EQ(cudaMemcpyAsync(&host, d, sizeof host, cudaMemcpyDeviceToHost, s), cudaSuccess);
  ASSERT_EQ(cudaEventRecord(stop, s), cudaSuccess);
  float ms = -1.0f;
  EXPECT_EQ(cudaEventElapsedTime(&ms, start, stop), cudaErrorNotReady);
  ASSERT_EQ(cudaEventSynchronize(stop), cudaSuccess);
  EXPECT_EQ(host, 0);
  ASSERT_EQ(cudaEventElapsedTime(&ms, start, stop), cudaSuccess);
  EXPECT_GE(ms, 0.0f);
  EXPECT_EQ(cudaEventDestroy(start), cudaSuccess);
  EXPECT_EQ(cudaEventDestroy(stop), cudaSuccess);
  EXPECT_EQ(cudaEventDestroy(stop), cudaErrorInvalidResourceHandle);
  cudaGetLastError();
  cudaStreamDestroy(s);
  cudaFree(d);
}

TEST_F(Runtime, StreamWaitEventOrdersWorkAcrossStreams) {
  cudaStream_t a = nullptr, b = nullptr;
  ASSERT_EQ(cudaStreamCreateWithFlags(&a, cudaStreamNonBlocking), cudaSuccess);
  ASSERT_EQ(cudaStreamCreateWithFlags(&b, cudaStreamNonBlocking), cudaSuccess);
  cudaEvent_t written = nullptr;
  ASSERT_EQ(cudaEventCreateWithFlags(&written, cudaEventDisableTiming), cudaSuccess);
  int32_t* d = device_alloc<int32_t>(1);
  int32_t host = 7;
  // Without a wait, b's copy runs alone and reads the poison a has not yet overwritten.
  ASSERT_EQ(cudaMemsetAsync(d, 0, sizeof(int32_t), a), cudaSuccess);
  ASSERT_EQ(cudaMemcpyAsync(&host, d, sizeof host, cudaMemcpyDeviceToHost, b), cudaSuccess);
  ASSERT_EQ(cudaStreamSynchronize(b), cudaSuccess);
  EXPECT_EQ(host, -1);
  ASSERT_EQ(cudaStreamSynchronize(a), cudaSuccess);
  // With one, synchronising b runs a up to the record first; a's later work stays queued.
  ASSERT_EQ(cudaMemsetAsync(d, 1, sizeof(int32_t), a), cudaSuccess);
  ASSERT_EQ(cudaEventRecord(written, a), cudaSuccess);
  ASSERT_EQ(cudaMemsetAsync(d, 2, sizeof(int32_t), a), cudaSuccess);
  ASSERT_EQ(cudaStreamWaitEvent(b, written, 0), cudaSuccess);
  ASSERT_EQ(cudaMemcpyAsync(&host, d, sizeof host, cudaMemcpyDeviceToHost, b), cudaSuccess);
  ASSERT_EQ(cudaStreamSynchronize(b), cudaSuccess);
  EXPECT_EQ(host, 0x01010101);
  ASSERT_EQ(cudaStreamSynchronize(a), cudaSuccess);
  // A wait on a record that has run, or on an event never recorded, waits for nothing.
  ASSERT_EQ(cudaStreamWaitEvent(b, written, 0), cudaSuccess);
  cudaEvent_t never = nullptr;
  ASSERT_EQ(cudaEventCreate(&never), cudaSuccess);
  ASSERT_EQ(cudaStreamWaitEvent(b, never, 0), cudaSuccess);
  EXPECT_EQ(cudaStreamWaitEvent(b, written, 1), cudaErrorInvalidValue);
  ASSERT_EQ(cudaStreamSynchronize(b), cudaSuccess);
  cudaGetLastError();
  cudaEventDestroy(never);
  cudaEventDestroy(written);
  cudaStreamDestroy(a);
  cudaStreamDestroy(b);
  cudaFree(d);
}

TEST_F(Runtime, HostWaitsAreCounted) {
  cudaStream_t s = nullptr;
  ASSERT_EQ(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking), cudaSuccess);
  const uint64_t before = mlpx_sim::host_waits();
  void* p = nullptr;
  ASSERT_EQ(cudaMallocAsync(&p, 64, s), cudaSuccess);
  ASSERT_EQ(cudaMemsetAsync(p, 0, 64, s), cudaSuccess);
  ASSERT_EQ(cudaFreeAsync(p, s), cudaSuccess);
  EXPECT_EQ(mlpx_sim::host_waits(), before);  // stream-ordered: nothing waited
  void* q = device_alloc<char>(64);
  ASSERT_EQ(cudaFree(q), cudaSuccess);  // waits for the device
  ASSERT_EQ(cudaStreamSynchronize(s), cudaSuccess);
  EXPECT_EQ(mlpx_sim::host_waits(), before + 2);
  cudaStreamDestroy(s);
}

// Several simulated devices (MLPX_SIM_DEVICES, or set_device_count as here).
class Devices : public Runtime {
 protected:
  void SetUp() override {
    Runtime::SetUp();
    saved_ = mlpx_sim::device_count();
    mlpx_sim::set_device_count(2);
  }
  void TearDown() override {
    cudaSetDevice(0);
    mlpx_sim::set_device_count(saved_);
    Runtime::TearDown();
  }
  int saved_ = 1;
};

TEST_F(Devices, CurrentDeviceIsPerThreadAndChecked) {
  int n = 0, current = -1;
  ASSERT_EQ(cudaGetDeviceCount(&n), cudaSuccess);
  EXPECT_EQ(n, 2);
  ASSERT_EQ(cudaSetDevice(1), cudaSuccess);
  ASSERT_EQ(cudaGetDevice(&current), cudaSuccess);
  EXPECT_EQ(current, 1);
  std::thread([] {
    int other = -1;
    EXPECT_EQ(cudaGetDevice(&other), cudaSuccess);
    EXPECT_EQ(other, 0);
  }).join();
  EXPECT_EQ(cudaSetDevice(2), cudaErrorInvalidDevice);
  EXPECT_NE(std::string(cudaGetErrorString(cudaErrorInvalidDevice)).find("ordinal 2"),
            std::string::npos);
  cudaGetLastError();
}

TEST_F(Devices, LaunchesAndRecordsNeedTheStreamsDevice) {
  ASSERT_EQ(cudaSetDevice(1), cudaSuccess);
  cudaStream_t s1 = nullptr;
  cudaEvent_t e1 = nullptr;
  ASSERT_EQ(cudaStreamCreateWithFlags(&s1, cudaStreamNonBlocking), cudaSuccess);
  ASSERT_EQ(cudaEventCreate(&e1), cudaSuccess);
  ASSERT_EQ(cudaSetDevice(0), cudaSuccess);
  cudaStream_t s0 = nullptr;
  ASSERT_EQ(cudaStreamCreateWithFlags(&s0, cudaStreamNonBlocking), cudaSuccess);
  EXPECT_EQ(launch_one(s1, "elsewhere", [] {}), cudaErrorInvalidResourceHandle);
  EXPECT_EQ(cudaEventRecord(e1, s0), cudaErrorInvalidResourceHandle);
  EXPECT_EQ(cudaEventRecord(e1, s1), cudaSuccess);  // its own device's stream, any current one
  EXPECT_EQ(cudaStreamWaitEvent(s0, e1, 0), cudaSuccess);  // waits cross devices
  ASSERT_EQ(cudaSetDevice(1), cudaSuccess);
  EXPECT_EQ(launch_one(s1, "here", [] {}), cudaSuccess);
  ASSERT_EQ(cudaStreamSynchronize(s1), cudaSuccess);
  ASSERT_EQ(cudaStreamSynchronize(s0), cudaSuccess);
  cudaGetLastError();
  cudaEventDestroy(e1);
  cudaStreamDestroy(s0);
  cudaStreamDestroy(s1);
}

TEST_F(Devices, PeerCopyChecksTheDevicesOfItsPointers) {
  cudaStream_t s0 = nullptr;
  ASSERT_EQ(cudaStreamCreateWithFlags(&s0, cudaStreamNonBlocking), cudaSuccess);
  ASSERT_EQ(cudaSetDevice(1), cudaSuccess);
  cudaStream_t s1 = nullptr;
  ASSERT_EQ(cudaStreamCreateWithFlags(&s1, cudaStreamNonBlocking), cudaSuccess);
  void* on1 = nullptr;
  ASSERT_EQ(cudaMallocAsync(&on1, 16, s1), cudaSuccess);  // from device 1's pool
  ASSERT_EQ(cudaMemsetAsync(on1, 0, 16, s1), cudaSuccess);
  ASSERT_EQ(cudaSetDevice(0), cudaSuccess);
  void* on0 = nullptr;
  ASSERT_EQ(cudaMallocAsync(&on0, 16, s0), cudaSuccess);
  ASSERT_EQ(cudaStreamSynchronize(s1), cudaSuccess);
  EXPECT_EQ(cudaMemcpyPeerAsync(on0, 1, on1, 0, 16, s0), cudaErrorInvalidValue);
  EXPECT_EQ(cudaMemcpyPeerAsync(on0, 0, on1, 2, 16, s0), cudaErrorInvalidDevice);
  ASSERT_EQ(cudaMemcpyPeerAsync(on0, 0, on1, 1, 16, s0), cudaSuccess);
  std::vector<int32_t> host(4, 7);
  ASSERT_EQ(cudaMemcpyAsync(host.data(), on0, 16, cudaMemcpyDeviceToHost, s0), cudaSuccess);
  ASSERT_EQ(cudaStreamSynchronize(s0), cudaSuccess);
  EXPECT_EQ(host, std::vector<int32_t>(4, 0));
  cudaGetLastError();
  ASSERT_EQ(cudaFreeAsync(on0, s0), cudaSuccess);
  ASSERT_EQ(cudaFreeAsync(on1, s1), cudaSuccess);
  ASSERT_EQ(cudaStreamSynchronize(s0), cudaSuccess);
  ASSERT_EQ(cudaStreamSynchronize(s1), cudaSuccess);
  cudaStreamDestroy(s0);
  cudaStreamDestroy(s1);
}

// ---- Launches and faults -----------------------------------------------------------------------

TEST_F(Runtime, BadLaunchConfigurationFailsAtTheCall) {
  EXPECT_EQ(launch_one(
                nullptr, "empty_grid", [] {}, dim3(0)),
            cudaErrorInvalidConfiguration);
  EXPECT_EQ(cudaGetLastError(), cudaErrorInvalidConfiguration);
  EXPECT_EQ(cudaGetLastError(), cudaSuccess);
  EXPECT_NE(std::string(cudaGetErrorString(cudaErrorInvalidConfiguration)).find("empty_grid"),
            std::string::npos);
  EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);  // not sticky
}

TEST_F(Runtime, KernelFaultIsStickyWithTheExecutorsMessage) {
  int32_t* d = device_alloc<int32_t>(1);
  ASSERT_EQ(launch_one(
                nullptr, "divergent_barrier",
                [] {
                  if (threadIdx.x == 0) __syncthreads();
                },
                1, 2),
            cudaSuccess);
  ASSERT_EQ(cudaMemsetAsync(d, 0, sizeof(int32_t), nullptr), cudaSuccess);  // dropped by the fault
  testing::internal::CaptureStderr();
  EXPECT_EQ(cudaDeviceSynchronize(), cudaErrorLaunchFailure);
  const std::string printed = testing::internal::GetCapturedStderr();
  EXPECT_NE(printed.find("mlpx sim: "), std::string::npos);
  const std::string why = cudaGetErrorString(cudaErrorLaunchFailure);
  EXPECT_NE(why.find("divergent"), std::string::npos) << why;
  EXPECT_NE(why.find("divergent_barrier"), std::string::npos) << why;
  // Sticky: later calls report it; cudaGetLastError returns it and keeps reporting it.
  EXPECT_EQ(cudaGetLastError(), cudaErrorLaunchFailure);
  EXPECT_EQ(cudaGetLastError(), cudaErrorLaunchFailure);
  EXPECT_EQ(cudaStreamSynchronize(nullptr), cudaErrorLaunchFailure);
  void* p = nullptr;
  EXPECT_EQ(cudaMalloc(&p, 16), cudaErrorLaunchFailure);
  mlpx_sim::reset_fault();
  int32_t v = 0;
  ASSERT_EQ(cudaMemcpy(&v, d, sizeof v, cudaMemcpyDeviceToHost), cudaSuccess);
  EXPECT_EQ(v, -1);  // the memset queued after the fault never ran
  cudaFree(d);
}

// ---- Graph capture -----------------------------------------------------------------------------

class Capture : public Runtime {
 protected:
  void SetUp() override {
    Runtime::SetUp();
    ASSERT_EQ(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking), cudaSuccess);
  }
  void TearDown() override {
    cudaStreamDestroy(stream_);
    Runtime::TearDown();
  }
  // Ends the capture expecting it invalidated: cudaErrorStreamCaptureInvalidated, no graph.
  void expect_invalidated() {
    cudaGraph_t graph = reinterpret_cast<cudaGraph_t>(0x1);
    EXPECT_EQ(cudaStreamEndCapture(stream_, &graph), cudaErrorStreamCaptureInvalidated);
    EXPECT_EQ(graph, nullptr);
    cudaStreamCaptureStatus status;
    ASSERT_EQ(cudaStreamIsCapturing(stream_, &status), cudaSuccess);
    EXPECT_EQ(status, cudaStreamCaptureStatusNone);
    cudaGetLastError();
  }
  cudaStream_t stream_ = nullptr;
};

TEST_F(Capture, RejectsCudaMalloc) {
  float* d = device_alloc<float>(4);
  ASSERT_EQ(cudaStreamBeginCapture(stream_, cudaStreamCaptureModeThreadLocal), cudaSuccess);
  ASSERT_EQ(cudaMemsetAsync(d, 0, 4 * sizeof(float), stream_), cudaSuccess);  // recorded
  void* p = nullptr;
  EXPECT_EQ(cudaMalloc(&p, 64), cudaErrorStreamCaptureUnsupported);
  EXPECT_EQ(p, nullptr);
  EXPECT_EQ(cudaGetLastError(), cudaErrorStreamCaptureUnsupported);
  EXPECT_EQ(cudaGetLastError(), cudaSuccess);
  cudaStreamCaptureStatus status;
  ASSERT_EQ(cudaStreamIsCapturing(stream_, &status), cudaSuccess);
  EXPECT_EQ(status, cudaStreamCaptureStatusInvalidated);
  // Further use of the stream fails until the capture ends.
  EXPECT_EQ(cudaMemsetAsync(d, 0, 4 * sizeof(float), stream_), cudaErrorStreamCaptureInvalidated);
  expect_invalidated();
  // The stream works again, and nothing recorded ran.
  float host[4] = {};
  ASSERT_EQ(cudaMemcpyAsync(host, d, sizeof host, cudaMemcpyDeviceToHost, stream_), cudaSuccess);
  ASSERT_EQ(cudaStreamSynchronize(stream_), cudaSuccess);
  EXPECT_TRUE(std::isnan(host[0]));
  cudaFree(d);
}

TEST_F(Capture, RejectsSynchronousCopiesAndMemsets) {
  float* d = device_alloc<float>(4);
  float host[4];
  ASSERT_EQ(cudaStreamBeginCapture(stream_, cudaStreamCaptureModeThreadLocal), cudaSuccess);
  EXPECT_EQ(cudaMemcpy(host, d, sizeof host, cudaMemcpyDeviceToHost),
            cudaErrorStreamCaptureUnsupported);
  EXPECT_EQ(cudaMemsetAsync(d, 0, sizeof host, stream_), cudaErrorStreamCaptureInvalidated);
  expect_invalidated();

  ASSERT_EQ(cudaStreamBeginCapture(stream_, cudaStreamCaptureModeThreadLocal), cudaSuccess);
  EXPECT_EQ(cudaMemset(d, 0, sizeof host), cudaErrorStreamCaptureUnsupported);
  expect_invalidated();

  ASSERT_EQ(cudaStreamBeginCapture(stream_, cudaStreamCaptureModeThreadLocal), cudaSuccess);
  EXPECT_EQ(cudaFree(d), cudaErrorStreamCaptureUnsupported);
  expect_invalidated();
  EXPECT_EQ(cudaFree(d), cudaSuccess);
}

TEST_F(Capture, RejectsSynchronisation) {
  ASSERT_EQ(cudaStreamBeginCapture(stream_, cudaStreamCaptureModeThreadLocal), cudaSuccess);
  EXPECT_EQ(cudaStreamSynchronize(stream_), cudaErrorStreamCaptureUnsupported);
  EXPECT_NE(std::string(cudaGetErrorString(cudaErrorStreamCaptureUnsupported))
                .find("cudaStreamSynchronize"),
            std::string::npos);
  expect_invalidated();

  ASSERT_EQ(cudaStreamBeginCapture(stream_, cudaStreamCaptureModeThreadLocal), cudaSuccess);
  EXPECT_EQ(cudaDeviceSynchronize(), cudaErrorStreamCaptureUnsupported);
  expect_invalidated();

  cudaEvent_t e = nullptr;
  ASSERT_EQ(cudaEventCreate(&e), cudaSuccess);
  ASSERT_EQ(cudaStreamBeginCapture(stream_, cudaStreamCaptureModeThreadLocal), cudaSuccess);
  ASSERT_EQ(cudaEventRecord(e, stream_), cudaSuccess);
  EXPECT_EQ(cudaEventSynchronize(e), cudaErrorCapturedEvent);
  expect_invalidated();

  ASSERT_EQ(cudaEventRecord(e, nullptr), cudaSuccess);
  ASSERT_EQ(cudaStreamBeginCapture(stream_, cudaStreamCaptureModeThreadLocal), cudaSuccess);
  EXPECT_EQ(cudaEventSynchronize(e), cudaErrorStreamCaptureUnsupported);
  expect_invalidated();
  cudaEventDestroy(e);
}

TEST_F(Capture, RelaxedModeAllowsCudaMalloc) {
  ASSERT_EQ(cudaStreamBeginCapture(stream_, cudaStreamCaptureModeRelaxed), cudaSuccess);
  void* p = nullptr;
  EXPECT_EQ(cudaMalloc(&p, 64), cudaSuccess);
  cudaGraph_t graph = nullptr;
  ASSERT_EQ(cudaStreamEndCapture(stream_, &graph), cudaSuccess);
  ASSERT_NE(graph, nullptr);
  EXPECT_EQ(cudaGraphDestroy(graph), cudaSuccess);
  EXPECT_EQ(cudaFree(p), cudaSuccess);
}

TEST_F(Capture, LegacyStreamCannotBeCapturedAndEndWithoutBeginFails) {
  EXPECT_EQ(cudaStreamBeginCapture(nullptr, cudaStreamCaptureModeThreadLocal),
            cudaErrorStreamCaptureUnsupported);
  cudaGraph_t graph = nullptr;
  EXPECT_EQ(cudaStreamEndCapture(stream_, &graph), cudaErrorIllegalState);
  cudaGetLastError();
}

TEST_F(Capture, BlockingStreamCaptureMakesLegacyUseImplicit) {
  cudaStream_t blocking = nullptr;
  ASSERT_EQ(cudaStreamCreate(&blocking), cudaSuccess);
  float* d = device_alloc<float>(1);
  ASSERT_EQ(cudaStreamBeginCapture(blocking, cudaStreamCaptureModeRelaxed), cudaSuccess);
  EXPECT_EQ(cudaMemsetAsync(d, 0, sizeof(float), nullptr), cudaErrorStreamCaptureImplicit);
  cudaGraph_t graph = nullptr;
  EXPECT_EQ(cudaStreamEndCapture(blocking, &graph), cudaErrorStreamCaptureInvalidated);
  cudaGetLastError();
  cudaStreamDestroy(blocking);
  cudaFree(d);
}

TEST_F(Capture, CapturedMemsetAndCopiesReplay) {
  const size_t n = 8;
  int32_t* a = device_alloc<int32_t>(n);
  int32_t* b = device_alloc<int32_t>(n);
  std::vector<int32_t> host(n, 7), values(n);
  ASSERT_EQ(cudaStreamBeginCapture(stream_, cudaStreamCaptureModeThreadLocal), cudaSuccess);
  ASSERT_EQ(cudaMemsetAsync(b, 0, n * sizeof(int32_t), stream_), cudaSuccess);
  ASSERT_EQ(cudaMemcpyAsync(b, a, n / 2 * sizeof(int32_t), cudaMemcpyDeviceToDevice, stream_),
            cudaSuccess);
  ASSERT_EQ(cudaMemcpyAsync(host.data(), b, n * sizeof(int32_t), cudaMemcpyDeviceToHost, stream_),
            cudaSuccess);
  cudaGraph_t graph = nullptr;
  ASSERT_EQ(cudaStreamEndCapture(stream_, &graph), cudaSuccess);
  cudaGraphExec_t exec = nullptr;
  ASSERT_EQ(cudaGraphInstantiate(&exec, graph, 0), cudaSuccess);
  ASSERT_EQ(cudaGraphDestroy(graph), cudaSuccess);  // the executable keeps what it needs
  ASSERT_EQ(cudaStreamSynchronize(stream_), cudaSuccess);
  EXPECT_EQ(host, std::vector<int32_t>(n, 7));  // capturing ran nothing

  for (int replay = 1; replay <= 2; ++replay) {
    for (size_t i = 0; i < n; ++i) values[i] = replay * 100 + static_cast<int32_t>(i);
    ASSERT_EQ(cudaMemcpy(a, values.data(), n * sizeof(int32_t), cudaMemcpyHostToDevice),
              cudaSuccess);
    ASSERT_EQ(cudaGraphLaunch(exec, stream_), cudaSuccess);
    ASSERT_EQ(cudaStreamSynchronize(stream_), cudaSuccess);
    // The replay read a as it is now: the copies run with the same arguments, on fresh data.
    for (size_t i = 0; i < n; ++i)
      EXPECT_EQ(host[i], i < n / 2 ? values[i] : 0) << "replay " << replay << " i " << i;
  }
  EXPECT_EQ(cudaGraphExecDestroy(exec), cudaSuccess);
  cudaFree(a);
  cudaFree(b);
}

// A second stream joins the capture by waiting on an event recorded in it, and is joined back
// by the capturing stream's wait on its own record: the graph replays both streams' work, in an
// order that keeps the dependencies (the fork/join pattern a communication stream uses).
TEST_F(Capture, ForkedStreamJoinsAndReplaysInOrder) {
  const size_t n = 4;
  int32_t* a = device_alloc<int32_t>(n);
  int32_t* b = device_alloc<int32_t>(n);
  std::vector<int32_t> host(n, -1), values = {1, 2, 3, 4};
  cudaStream_t side = nullptr;
  cudaEvent_t fork = nullptr, join = nullptr;
  ASSERT_EQ(cudaStreamCreateWithFlags(&side, cudaStreamNonBlocking), cudaSuccess);
  ASSERT_EQ(cudaEventCreateWithFlags(&fork, cudaEventDisableTiming), cudaSuccess);
  ASSERT_EQ(cudaEventCreateWithFlags(&join, cudaEventDisableTiming), cudaSuccess);
  ASSERT_EQ(cudaStreamBeginCapture(stream_, cudaStreamCaptureModeThreadLocal), cudaSuccess);
  ASSERT_EQ(cudaMemcpyAsync(a, values.data(), n * sizeof(int32_t), cudaMemcpyHostToDevice, stream_),
            cudaSuccess);
  ASSERT_EQ(cudaEventRecord(fork, stream_), cudaSuccess);
  ASSERT_EQ(cudaStreamWaitEvent(side, fork), cudaSuccess);  // side joins the capture
  cudaStreamCaptureStatus status;
  ASSERT_EQ(cudaStreamIsCapturing(side, &status), cudaSuccess);
  EXPECT_EQ(status, cudaStreamCaptureStatusActive);
  ASSERT_EQ(cudaMemcpyAsync(b, a, n * sizeof(int32_t), cudaMemcpyDeviceToDevice, side),
            cudaSuccess);
  ASSERT_EQ(cudaEventRecord(join, side), cudaSuccess);
  ASSERT_EQ(cudaStreamWaitEvent(stream_, join), cudaSuccess);  // joined back
  ASSERT_EQ(cudaMemcpyAsync(host.data(), b, n * sizeof(int32_t), cudaMemcpyDeviceToHost, stream_),
            cudaSuccess);
  cudaGraph_t graph = nullptr;
  ASSERT_EQ(cudaStreamEndCapture(stream_, &graph), cudaSuccess);
  ASSERT_EQ(cudaStreamIsCapturing(side, &status), cudaSuccess);
  EXPECT_EQ(status, cudaStreamCaptureStatusNone);  // the end releases the joined stream
  cudaGraphExec_t exec = nullptr;
  ASSERT_EQ(cudaGraphInstantiate(&exec, graph, 0), cudaSuccess);
  ASSERT_EQ(cudaGraphLaunch(exec, stream_), cudaSuccess);
  ASSERT_EQ(cudaStreamSynchronize(stream_), cudaSuccess);
  EXPECT_EQ(host, values);
  EXPECT_EQ(cudaGraphExecDestroy(exec), cudaSuccess);
  EXPECT_EQ(cudaGraphDestroy(graph), cudaSuccess);
  cudaEventDestroy(fork);
  cudaEventDestroy(join);
  cudaStreamDestroy(side);
  cudaFree(a);
  cudaFree(b);
}

// A capture of stream_ that side_ joined (a fork) and queued work on, not joined back yet.
class ForkedCapture : public Capture {
 protected:
  void SetUp() override {
    Capture::SetUp();
    buffer_ = device_alloc<int32_t>(4);
    ASSERT_EQ(cudaStreamCreateWithFlags(&side_, cudaStreamNonBlocking), cudaSuccess);
    ASSERT_EQ(cudaEventCreateWithFlags(&fork_, cudaEventDisableTiming), cudaSuccess);
    ASSERT_EQ(cudaStreamBeginCapture(stream_, cudaStreamCaptureModeThreadLocal), cudaSuccess);
    ASSERT_EQ(cudaEventRecord(fork_, stream_), cudaSuccess);
    ASSERT_EQ(cudaStreamWaitEvent(side_, fork_), cudaSuccess);
    ASSERT_EQ(cudaMemsetAsync(buffer_, 0, 4 * sizeof(int32_t), side_), cudaSuccess);
  }
  void TearDown() override {
    cudaEventDestroy(fork_);
    cudaStreamDestroy(side_);
    cudaFree(buffer_);
    Capture::TearDown();
  }
  int32_t* buffer_ = nullptr;
  cudaStream_t side_ = nullptr;
  cudaEvent_t fork_ = nullptr;
};

// Only the stream that began a capture ends it; a joined stream's try invalidates the capture.
TEST_F(ForkedCapture, EndingFromAJoinedStreamIsUnmatched) {
  cudaGraph_t graph = reinterpret_cast<cudaGraph_t>(0x1);
  EXPECT_EQ(cudaStreamEndCapture(side_, &graph), cudaErrorStreamCaptureUnmatched);
  cudaGetLastError();
  graph = reinterpret_cast<cudaGraph_t>(0x1);
  EXPECT_EQ(cudaStreamEndCapture(stream_, &graph), cudaErrorStreamCaptureInvalidated);
  EXPECT_EQ(graph, nullptr);
  cudaGetLastError();
  cudaStreamCaptureStatus status;
  ASSERT_EQ(cudaStreamIsCapturing(side_, &status), cudaSuccess);
  EXPECT_EQ(status, cudaStreamCaptureStatusNone);
}

// Work on a joined stream that the capturing stream never waited for: the capture cannot end.
TEST_F(ForkedCapture, UnjoinedForkedWorkFailsTheEnd) {
  cudaGraph_t graph = reinterpret_cast<cudaGraph_t>(0x1);
  EXPECT_EQ(cudaStreamEndCapture(stream_, &graph), cudaErrorStreamCaptureUnjoined);
  EXPECT_EQ(graph, nullptr);
  cudaGetLastError();
}

TEST_F(Capture, CapturedKernelAndGraphAllocationReplay) {
  int32_t* counter = device_alloc<int32_t>(1);
  // On stream_: a cudaMemset would go on the legacy stream, which a non-blocking stream does
  // not wait for (the simulator runs it at the next legacy synchronisation, after the replays).
  ASSERT_EQ(cudaMemsetAsync(counter, 0, sizeof(int32_t), stream_), cudaSuccess);
  ASSERT_EQ(cudaStreamBeginCapture(stream_, cudaStreamCaptureModeThreadLocal), cudaSuccess);
  int32_t* scratch = nullptr;
  ASSERT_EQ(cudaMallocAsync(reinterpret_cast<void**>(&scratch), sizeof(int32_t), stream_),
            cudaSuccess);
  ASSERT_EQ(launch_one(stream_, "bump",
                       [counter, scratch] {
                         // The graph's allocation is poison at each replay.
                         if (*scratch == -1) *counter += 1;
                         *scratch = 5;
                       }),
            cudaSuccess);
  ASSERT_EQ(cudaFreeAsync(scratch, stream_), cudaSuccess);
  cudaGraph_t graph = nullptr;
  ASSERT_EQ(cudaStreamEndCapture(stream_, &graph), cudaSuccess);
  cudaGraphExec_t exec = nullptr;
  ASSERT_EQ(cudaGraphInstantiate(&exec, graph, 0), cudaSuccess);
  for (int i = 0; i < 3; ++i) ASSERT_EQ(cudaGraphLaunch(exec, stream_), cudaSuccess);
  ASSERT_EQ(cudaStreamSynchronize(stream_), cudaSuccess);
  int32_t v = 0;
  ASSERT_EQ(cudaMemcpy(&v, counter, sizeof v, cudaMemcpyDeviceToHost), cudaSuccess);
  EXPECT_EQ(v, 3);
  const size_t in_use = mlpx_sim::device_bytes_in_use();
  cudaGraphExecDestroy(exec);
  cudaGraphDestroy(graph);
  EXPECT_EQ(mlpx_sim::device_bytes_in_use(), in_use - 256);  // the graph's allocation is gone
  cudaFree(counter);
}

// ---- Thrust ------------------------------------------------------------------------------------

TEST_F(Runtime, ThrustStableSortByKey) {
  cudaStream_t s = nullptr;
  ASSERT_EQ(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking), cudaSuccess);
  const std::vector<uint64_t> keys = {5, 1, 5, 3, 1, 9, 0, 3};
  std::vector<int32_t> rows(keys.size());
  for (size_t i = 0; i < rows.size(); ++i) rows[i] = static_cast<int32_t>(i);
  uint64_t* dk = device_alloc<uint64_t>(keys.size());
  int32_t* dv = device_alloc<int32_t>(rows.size());
  ASSERT_EQ(cudaMemcpyAsync(dk, keys.data(), keys.size() * 8, cudaMemcpyHostToDevice, s),
            cudaSuccess);
  ASSERT_EQ(cudaMemcpyAsync(dv, rows.data(), rows.size() * 4, cudaMemcpyHostToDevice, s),
            cudaSuccess);
  thrust::stable_sort_by_key(thrust::cuda::par.on(s), thrust::device_pointer_cast(dk),
                             thrust::device_pointer_cast(dk + keys.size()),
                             thrust::device_pointer_cast(dv));
  ASSERT_EQ(cudaGetLastError(), cudaSuccess);
  std::vector<uint64_t> sorted_keys(keys.size());
  std::vector<int32_t> sorted_rows(rows.size());
  ASSERT_EQ(cudaMemcpyAsync(sorted_keys.data(), dk, keys.size() * 8, cudaMemcpyDeviceToHost, s),
            cudaSuccess);
  ASSERT_EQ(cudaMemcpyAsync(sorted_rows.data(), dv, rows.size() * 4, cudaMemcpyDeviceToHost, s),
            cudaSuccess);
  ASSERT_EQ(cudaStreamSynchronize(s), cudaSuccess);
  EXPECT_EQ(sorted_keys, (std::vector<uint64_t>{0, 1, 1, 3, 3, 5, 5, 9}));
  EXPECT_EQ(sorted_rows, (std::vector<int32_t>{6, 1, 4, 3, 7, 0, 2, 5}));  // stable

  // Like real Thrust, the sort allocates with cudaMalloc: refused while the stream captures.
  ASSERT_EQ(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal), cudaSuccess);
  EXPECT_THROW(thrust::stable_sort_by_key(thrust::cuda::par.on(s), thrust::device_pointer_cast(dk),
                                          thrust::device_pointer_cast(dk + keys.size()),
                                          thrust::device_pointer_cast(dv)),
               thrust::system_error);
  cudaGraph_t graph = nullptr;
  EXPECT_EQ(cudaStreamEndCapture(s, &graph), cudaErrorStreamCaptureInvalidated);
  cudaGetLastError();
  cudaStreamDestroy(s);
  cudaFree(dk);
  cudaFree(dv);
}

TEST_F(Runtime, ThrustSortOfHostMemoryIsAnIllegalAddress) {
  std::vector<uint64_t> keys = {2, 1};
  std::vector<int32_t> rows = {0, 1};
  testing::internal::CaptureStderr();
  EXPECT_THROW(
      thrust::stable_sort_by_key(thrust::cuda::par, keys.data(), keys.data() + 2, rows.data()),
      thrust::system_error);
  testing::internal::GetCapturedStderr();
  EXPECT_EQ(cudaGetLastError(), cudaErrorIllegalAddress);
  EXPECT_NE(std::string(cudaGetErrorString(cudaErrorIllegalAddress)).find("is not device memory"),
            std::string::npos);
  EXPECT_EQ(keys, (std::vector<uint64_t>{2, 1}));
  mlpx_sim::reset_fault();
}

}  // namespace
