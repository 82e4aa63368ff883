// The counters of device work (mlpx_sim/counters.h) and the graph-node queries
// (cudaGraphGetNodes, cudaGraphNodeGetType). This file is compiled with the racecheck's
// instrumentation (mlpx_sim_instrument in sim/CMakeLists.txt), as kernels/*.cu are: its kernels'
// device-memory accesses are what the counters count.
#include "mlpx_sim/counters.h"

#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <cub/device/device_radix_sort.cuh>
#include <vector>

#include "mlpx_sim/launch.h"
#include "mlpx_sim/runtime.h"

namespace {

// y[i] = 2 x[i] + y[i]: reads 8 bytes and writes 4 per element.
__global__ void axpy_kernel(const float* x, float* y, int n) {
  const int i = static_cast<int>(blockIdx.x * blockDim.x + threadIdx.x);
  if (i < n) y[i] = 2.0f * x[i] + y[i];
}

class Counters : public ::testing::Test {
 protected:
  void SetUp() override {
    mlpx_sim::reset_fault();
    ASSERT_EQ(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking), cudaSuccess);
    ASSERT_EQ(cudaMalloc(reinterpret_cast<void**>(&x_), kN * sizeof(float)), cudaSuccess);
    ASSERT_EQ(cudaMalloc(reinterpret_cast<void**>(&y_), kN * sizeof(float)), cudaSuccess);
    ASSERT_EQ(cudaMemsetAsync(x_, 0, kN * sizeof(float), stream_), cudaSuccess);
    ASSERT_EQ(cudaMemsetAsync(y_, 0, kN * sizeof(float), stream_), cudaSuccess);
    ASSERT_EQ(cudaStreamSynchronize(stream_), cudaSuccess);
  }
  void TearDown() override {
    mlpx_sim::set_counting(false);
    mlpx_sim::clear_work_records();
    cudaFree(x_);
    cudaFree(y_);
    cudaStreamDestroy(stream_);
    mlpx_sim::reset_fault();
  }
  void launch_axpy() {
    mlpx_sim::Launcher(axpy_kernel, "axpy_kernel", __FILE__, __LINE__, dim3(3), dim3(32), 0,
                       stream_)(static_cast<const float*>(x_), y_, kN);
  }

  static constexpr int kN = 70;  // 3 blocks of 32 threads, 26 of them idle
  cudaStream_t stream_ = nullptr;
  float* x_ = nullptr;
  float* y_ = nullptr;
};

TEST_F(Counters, KernelBytesAreCountedAtEachAccessAndMarksDelimitWork) {
  mlpx_sim::set_counting(true);
  uint64_t before = 99, after = 99;
  ASSERT_EQ(mlpx_sim::enqueue_mark(stream_, &before), cudaSuccess);
  launch_axpy();
  ASSERT_EQ(cudaMemsetAsync(y_, 0, 16, stream_), cudaSuccess);
  ASSERT_EQ(cudaMemcpyAsync(x_, y_, 40, cudaMemcpyDeviceToDevice, stream_), cudaSuccess);
  ASSERT_EQ(mlpx_sim::enqueue_mark(stream_, &after), cudaSuccess);
  EXPECT_EQ(before, 99u);  // nothing has run: marks are stream work
  ASSERT_EQ(cudaStreamSynchronize(stream_), cudaSuccess);
  const std::vector<mlpx_sim::WorkRecord> work = mlpx_sim::work_records_between(before, after);
  ASSERT_EQ(work.size(), 3u);
  EXPECT_EQ(work[0].kind, mlpx_sim::WorkKind::kKernel);
  EXPECT_EQ(work[0].bytes_read, 8u * kN);  // x[i] and y[i]; the idle threads touch nothing
  EXPECT_EQ(work[0].bytes_written, 4u * kN);
  EXPECT_EQ(work[0].flops, 0u);
  EXPECT_EQ(work[1].kind, mlpx_sim::WorkKind::kMemset);
  EXPECT_EQ(work[1].bytes_written, 16u);
  EXPECT_EQ(work[2].kind, mlpx_sim::WorkKind::kCopy);
  EXPECT_EQ(work[2].bytes_read, 40u);
  EXPECT_EQ(work[2].bytes_written, 40u);

  // Off: nothing is recorded.
  mlpx_sim::set_counting(false);
  const uint64_t records = mlpx_sim::work_records();
  launch_axpy();
  ASSERT_EQ(cudaStreamSynchronize(stream_), cudaSuccess);
  EXPECT_EQ(mlpx_sim::work_records(), records);
}

TEST_F(Counters, GemmCountsEachOperandOnceAndItsFlops) {
  cublasHandle_t blas = nullptr;
  ASSERT_EQ(cublasCreate(&blas), CUBLAS_STATUS_SUCCESS);
  ASSERT_EQ(cublasSetStream(blas, stream_), CUBLAS_STATUS_SUCCESS);
  mlpx_sim::set_counting(true);
  const uint64_t first = mlpx_sim::work_records();
  const float one = 1.0f, zero = 0.0f;
  // C (2 x 3) = A (2 x 4) B (4 x 3), then C += the same: beta 1 reads C.
  ASSERT_EQ(
      cublasSgemm(blas, CUBLAS_OP_N, CUBLAS_OP_N, 2, 3, 4, &one, x_, 2, x_ + 8, 4, &zero, y_, 2),
      CUBLAS_STATUS_SUCCESS);
  ASSERT_EQ(
      cublasSgemm(blas, CUBLAS_OP_N, CUBLAS_OP_N, 2, 3, 4, &one, x_, 2, x_ + 8, 4, &one, y_, 2),
      CUBLAS_STATUS_SUCCESS);
  ASSERT_EQ(cudaStreamSynchronize(stream_), cudaSuccess);
  const std::vector<mlpx_sim::WorkRecord> work =
      mlpx_sim::work_records_between(first, mlpx_sim::work_records());
  ASSERT_EQ(work.size(), 2u);
  for (const mlpx_sim::WorkRecord& r : work) {
    EXPECT_EQ(r.kind, mlpx_sim::WorkKind::kGemm);
    EXPECT_EQ(r.flops, 2u * 2 * 3 * 4);
    EXPECT_EQ(r.bytes_written, 4u * 2 * 3);
    EXPECT_TRUE(r.precision == "fp32" || r.precision == "tf32") << r.precision;
  }
  EXPECT_EQ(work[0].bytes_read, 4u * (2 * 4 + 4 * 3));
  EXPECT_EQ(work[1].bytes_read, 4u * (2 * 4 + 4 * 3 + 2 * 3));
  cublasDestroy(blas);
}

TEST_F(Counters, GraphNodesHaveTheirTypes) {
  cublasHandle_t blas = nullptr;
  ASSERT_EQ(cublasCreate(&blas), CUBLAS_STATUS_SUCCESS);
  ASSERT_EQ(cublasSetStream(blas, stream_), CUBLAS_STATUS_SUCCESS);
  const float one = 1.0f, zero = 0.0f;
  cudaEvent_t event = nullptr;
  ASSERT_EQ(cudaEventCreate(&event), cudaSuccess);
  ASSERT_EQ(cudaStreamBeginCapture(stream_, cudaStreamCaptureModeThreadLocal), cudaSuccess);
  launch_axpy();
  ASSERT_EQ(cudaEventRecord(event, stream_), cudaSuccess);  // orders, no node
  ASSERT_EQ(cudaMemsetAsync(y_, 0, 16, stream_), cudaSuccess);
  ASSERT_EQ(
      cublasSgemm(blas, CUBLAS_OP_N, CUBLAS_OP_N, 2, 3, 4, &one, x_, 2, x_ + 8, 4, &zero, y_, 2),
      CUBLAS_STATUS_SUCCESS);
  ASSERT_EQ(cudaMemcpyAsync(x_, y_, 40, cudaMemcpyDeviceToDevice, stream_), cudaSuccess);
  cudaGraph_t graph = nullptr;
  ASSERT_EQ(cudaStreamEndCapture(stream_, &graph), cudaSuccess);

  size_t count = 0;
  ASSERT_EQ(cudaGraphGetNodes(graph, nullptr, &count), cudaSuccess);
  ASSERT_EQ(count, 4u);
  std::vector<cudaGraphNode_t> nodes(2);
  size_t room = nodes.size();
  ASSERT_EQ(cudaGraphGetNodes(graph, nodes.data(), &room), cudaSuccess);
  EXPECT_EQ(room, 4u);  // the number of nodes, though only 2 fitted
  nodes.resize(4);
  ASSERT_EQ(cudaGraphGetNodes(graph, nodes.data(), &room), cudaSuccess);
  const cudaGraphNodeType expected[] = {cudaGraphNodeTypeKernel, cudaGraphNodeTypeMemset,
                                        cudaGraphNodeTypeKernel, cudaGraphNodeTypeMemcpy};
  for (size_t i = 0; i < 4; ++i) {
    cudaGraphNodeType type = cudaGraphNodeTypeEmpty;
    ASSERT_EQ(cudaGraphNodeGetType(nodes[i], &type), cudaSuccess);
    EXPECT_EQ(type, expected[i]) << "node " << i;
  }
  EXPECT_EQ(cudaGraphGetNodes(graph, nullptr, nullptr), cudaErrorInvalidValue);
  ASSERT_EQ(cudaGraphDestroy(graph), cudaSuccess);
  cudaGraphNodeType type;
  EXPECT_EQ(cudaGraphNodeGetType(nodes[0], &type), cudaErrorInvalidValue);  // its graph is gone
  cudaGetLastError();
  cudaEventDestroy(event);
  cublasDestroy(blas);
}

// CUB's radix sort with the caller's temporary storage: a size query, then a stable sort by key
// that allocates nothing and waits for nothing, so that a capture records it.
TEST_F(Counters, CubSortPairsIsStableAllocatesNothingAndIsCapturable) {
  const int n = 6;
  const std::vector<uint64_t> keys = {5, 1, 5, 0, 1, 5};
  const std::vector<int32_t> rows = {0, 1, 2, 3, 4, 5};
  size_t temp_bytes = 0;
  ASSERT_EQ(cub::DeviceRadixSort::SortPairs(
                nullptr, temp_bytes, static_cast<const uint64_t*>(nullptr),
                static_cast<uint64_t*>(nullptr), static_cast<const int32_t*>(nullptr),
                static_cast<int32_t*>(nullptr), n),
            cudaSuccess);
  ASSERT_GT(temp_bytes, 0u);
  void* buffers[5] = {};
  const size_t sizes[5] = {n * sizeof(uint64_t), n * sizeof(uint64_t), n * sizeof(int32_t),
                           n * sizeof(int32_t), temp_bytes};
  for (int i = 0; i < 5; ++i) ASSERT_EQ(cudaMalloc(&buffers[i], sizes[i]), cudaSuccess);
  auto* keys_in = static_cast<uint64_t*>(buffers[0]);
  auto* keys_out = static_cast<uint64_t*>(buffers[1]);
  auto* rows_in = static_cast<int32_t*>(buffers[2]);
  auto* rows_out = static_cast<int32_t*>(buffers[3]);
  ASSERT_EQ(cudaMemcpy(keys_in, keys.data(), sizes[0], cudaMemcpyHostToDevice), cudaSuccess);
  ASSERT_EQ(cudaMemcpy(rows_in, rows.data(), sizes[2], cudaMemcpyHostToDevice), cudaSuccess);
  size_t too_small = temp_bytes - 1;
  EXPECT_EQ(cub::DeviceRadixSort::SortPairs(buffers[4], too_small, keys_in, keys_out, rows_in,
                                            rows_out, n, 0, 64, stream_),
            cudaErrorInvalidValue);

  const size_t in_use = mlpx_sim::device_bytes_in_use();
  const uint64_t waits = mlpx_sim::host_waits();
  ASSERT_EQ(cudaStreamBeginCapture(stream_, cudaStreamCaptureModeThreadLocal), cudaSuccess);
  ASSERT_EQ(cub::DeviceRadixSort::SortPairs(buffers[4], temp_bytes, keys_in, keys_out, rows_in,
                                            rows_out, n, 0, 64, stream_),
            cudaSuccess);
  cudaGraph_t graph = nullptr;
  ASSERT_EQ(cudaStreamEndCapture(stream_, &graph), cudaSuccess);
  EXPECT_EQ(mlpx_sim::host_waits(), waits);
  EXPECT_EQ(mlpx_sim::device_bytes_in_use(), in_use);
  cudaGraphExec_t exec = nullptr;
  ASSERT_EQ(cudaGraphInstantiate(&exec, graph, 0), cudaSuccess);
  ASSERT_EQ(cudaGraphLaunch(exec, stream_), cudaSuccess);
  ASSERT_EQ(cudaStreamSynchronize(stream_), cudaSuccess);
  std::vector<int32_t> sorted(n);
  std::vector<uint64_t> sorted_keys(n);
  ASSERT_EQ(cudaMemcpy(sorted.data(), rows_out, sizes[3], cudaMemcpyDeviceToHost), cudaSuccess);
  ASSERT_EQ(cudaMemcpy(sorted_keys.data(), keys_out, sizes[1], cudaMemcpyDeviceToHost),
            cudaSuccess);
  EXPECT_EQ(sorted, (std::vector<int32_t>{3, 1, 4, 0, 2, 5}));  // ties keep their order
  EXPECT_EQ(sorted_keys, (std::vector<uint64_t>{0, 1, 1, 5, 5, 5}));
  cudaGraphExecDestroy(exec);
  cudaGraphDestroy(graph);
  for (void* b : buffers) cudaFree(b);
}

}  // namespace
