#include "kernels/runtime.h"

#include <cstdlib>
#include <memory>
#include <mutex>
#include <vector>

#include "core/log.h"
#include "kernels/check.h"
#include "mlpx/error.h"

namespace mlpx::cuda {

namespace detail {
bool check(cudaError_t status, const char* stmt, const char* file, int line, bool fatal) {
  if (status == cudaSuccess) return true;
  const std::string msg =
      ::mlpx::detail::concat(file, ":", line, ": ", stmt, " failed: ", cudaGetErrorName(status),
                             " (", cudaGetErrorString(status), ")");
  if (fatal) throw CudaError(msg);
  ::mlpx::detail::log(LogLevel::kError, msg);
  return false;
}

bool check(cublasStatus_t status, const char* stmt, const char* file, int line, bool fatal) {
  if (status == CUBLAS_STATUS_SUCCESS) return true;
  const std::string msg =
      ::mlpx::detail::concat(file, ":", line, ": ", stmt, " failed: ", cublasGetStatusName(status),
                             " (", cublasGetStatusString(status), ")");
  if (fatal) throw CudaError(msg);
  ::mlpx::detail::log(LogLevel::kError, msg);
  return false;
}
}  // namespace detail

bool built() { return true; }

int device_count() {
  static const int count = [] {
    int n = 0;
    // No driver or no device is not an error here: it means "no GPU".
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
      cudaGetLastError();
      return 0;
    }
    return n;
  }();
  return count;
}

namespace {
// 32 MiB: enough for cuBLAS's Hopper kernels; fixed so that algorithm choice (and so the
// bits of the result) does not depend on what memory happens to be free.
constexpr size_t kWorkspaceBytes = size_t{32} << 20;

struct ContextTable {
  std::mutex mutex;
  std::vector<std::unique_ptr<Context>> contexts;
};
ContextTable& table() {
  static ContextTable* t = new ContextTable;  // never destroyed: contexts outlive statics
  return *t;
}
}  // namespace

Context::~Context() {
  if (stream == nullptr) return;  // never got as far as a stream
  MLPX_CUDA_CHECK_NOTHROW(cudaSetDevice(device));
  MLPX_CUDA_CHECK_NOTHROW(cudaStreamSynchronize(stream));
  if (status != nullptr) MLPX_CUDA_CHECK_NOTHROW(cudaFree(status));
  if (workspace != nullptr) MLPX_CUDA_CHECK_NOTHROW(cudaFree(workspace));
  if (blas != nullptr) MLPX_CUDA_CHECK_NOTHROW(cublasDestroy(blas));
  MLPX_CUDA_CHECK_NOTHROW(cudaStreamDestroy(stream));
}

namespace {
void release_contexts() {
  ContextTable& t = table();
  std::lock_guard<std::mutex> lock(t.mutex);
  t.contexts.clear();
}
}  // namespace

Context& context(int device) {
  const int count = device_count();
  MLPX_CHECK(device >= 0 && device < count, CudaError, "cuda:", device,
             ": expected a device index below the ", count, " visible CUDA device(s)");
  ContextTable& t = table();
  std::lock_guard<std::mutex> lock(t.mutex);
  if (t.contexts.size() < static_cast<size_t>(count)) t.contexts.resize(count);
  if (!t.contexts[device]) {
    auto ctx = std::make_unique<Context>();
    ctx->device = device;
    MLPX_CUDA_CHECK(cudaSetDevice(device));
    MLPX_CUDA_CHECK(cudaStreamCreateWithFlags(&ctx->stream, cudaStreamNonBlocking));
    MLPX_CUDA_CHECK(cublasCreate(&ctx->blas));
    MLPX_CUDA_CHECK(cublasSetStream(ctx->blas, ctx->stream));
    ctx->workspace_bytes = kWorkspaceBytes;
    MLPX_CUDA_CHECK(cudaMalloc(&ctx->workspace, ctx->workspace_bytes));
    MLPX_CUDA_CHECK(cublasSetWorkspace(ctx->blas, ctx->workspace, ctx->workspace_bytes));
    // Default math: each GEMM's compute type decides TF32 (kernels/gemm.cpp), so fp32 stays
    // fp32 unless a call asks for TF32.
    MLPX_CUDA_CHECK(cublasSetMathMode(ctx->blas, CUBLAS_DEFAULT_MATH));
    MLPX_CUDA_CHECK(cudaMalloc(reinterpret_cast<void**>(&ctx->status), sizeof(DeviceStatus)));
    MLPX_CUDA_CHECK(cudaMemsetAsync(ctx->status, 0, sizeof(DeviceStatus), ctx->stream));
    t.contexts[device] = std::move(ctx);
    static const bool registered = std::atexit(release_contexts) == 0;
    (void)registered;
  }
  return *t.contexts[device];
}

cudaStream_t stream_of(Device device) {
  Context& ctx = context(device.index);
  MLPX_CUDA_CHECK(cudaSetDevice(ctx.device));
  return ctx.stream;
}

void synchronize_and_check(int device) {
  Context& ctx = context(device);
  DeviceStatus status{};
  MLPX_CUDA_CHECK(
      cudaMemcpyAsync(&status, ctx.status, sizeof status, cudaMemcpyDeviceToHost, ctx.stream));
  MLPX_CUDA_CHECK(cudaStreamSynchronize(ctx.stream));
  if (status.code == static_cast<int32_t>(DeviceStatusCode::kOk)) return;
  MLPX_CUDA_CHECK(cudaMemsetAsync(ctx.status, 0, sizeof(DeviceStatus), ctx.stream));
  MLPX_CUDA_CHECK(cudaStreamSynchronize(ctx.stream));
  switch (static_cast<DeviceStatusCode>(status.code)) {
    case DeviceStatusCode::kLabelOutOfRange:
      throw ValueError(::mlpx::detail::concat("label ", status.value, " in row ", status.row,
                                              ": expected a class index in [0, ", status.limit,
                                              ")"));
    default:
      throw CudaError(::mlpx::detail::concat("device code reported fault code ", status.code));
  }
}

void* allocate(size_t bytes, int device) {
  Context& ctx = context(device);
  MLPX_CUDA_CHECK(cudaSetDevice(ctx.device));
  void* ptr = nullptr;
  const cudaError_t status = cudaMalloc(&ptr, bytes);
  if (status == cudaErrorMemoryAllocation) {
    cudaGetLastError();
    size_t free_bytes = 0, total_bytes = 0;
    cudaMemGetInfo(&free_bytes, &total_bytes);
    throw CudaError(::mlpx::detail::concat("out of memory on cuda:", device, ": asked for ", bytes,
                                           " bytes, ", free_bytes, " of ", total_bytes,
                                           " bytes free"));
  }
  MLPX_CUDA_CHECK(status);
  return ptr;
}

void deallocate(void* ptr, int device) noexcept {
  // Work queued on the stream may still read this memory: wait for it first.
  MLPX_CUDA_CHECK_NOTHROW(cudaStreamSynchronize(context(device).stream));
  MLPX_CUDA_CHECK_NOTHROW(cudaFree(ptr));
}

void copy_bytes(void* dst, Device dst_device, const void* src, Device src_device, size_t bytes) {
  const Device on = dst_device.is_cuda() ? dst_device : src_device;
  Context& ctx = context(on.index);
  MLPX_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDefault, ctx.stream));
  // Host memory is pageable: the copy must be complete before the caller reuses it.
  if (dst_device.is_cpu() || src_device.is_cpu())
    MLPX_CUDA_CHECK(cudaStreamSynchronize(ctx.stream));
}

void zero_bytes(void* dst, int device, size_t bytes) {
  MLPX_CUDA_CHECK(cudaMemsetAsync(dst, 0, bytes, context(device).stream));
}

}  // namespace mlpx::cuda
