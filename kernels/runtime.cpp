#include "kernels/runtime.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <vector>

#include "core/log.h"
#include "kernels/check.h"
#include "kernels/device_counters.h"
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

DeviceGuard::DeviceGuard(int device, bool fatal) : device_(device) {
  if (!detail::check(cudaGetDevice(&previous_), "cudaGetDevice(&previous_)", __FILE__, __LINE__,
                     fatal)) {
    previous_ = device;  // nothing to restore
    return;
  }
  if (previous_ != device) {
    detail::check(cudaSetDevice(device), "cudaSetDevice(device)", __FILE__, __LINE__, fatal);
  }
}

DeviceGuard::~DeviceGuard() {
  if (previous_ != device_) MLPX_CUDA_CHECK_NOTHROW(cudaSetDevice(previous_));
}

Context::~Context() {
  if (stream == nullptr) return;  // never got as far as a stream
  DeviceGuard guard(device, false);
  // Also runs the frees still queued on the stream (deallocate).
  MLPX_CUDA_CHECK_NOTHROW(cudaStreamSynchronize(stream));
  if (status != nullptr) MLPX_CUDA_CHECK_NOTHROW(cudaFree(status));
  if (workspace != nullptr) MLPX_CUDA_CHECK_NOTHROW(cudaFree(workspace));
  if (bf16_scratch != nullptr) MLPX_CUDA_CHECK_NOTHROW(cudaFree(bf16_scratch));
  if (readback != nullptr) MLPX_CUDA_CHECK_NOTHROW(cudaFree(readback));
  for (void* buffer : retired) MLPX_CUDA_CHECK_NOTHROW(cudaFree(buffer));
  if (ready != nullptr) MLPX_CUDA_CHECK_NOTHROW(cudaEventDestroy(ready));
  if (blas != nullptr) MLPX_CUDA_CHECK_NOTHROW(cublasDestroy(blas));
  if (blas_lt != nullptr) MLPX_CUDA_CHECK_NOTHROW(cublasLtDestroy(blas_lt));
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
  MLPX_CHECK(count > 0, CudaError, "cuda:", device,
             ": no CUDA device is visible (a CUDA device needs an NVIDIA GPU and its driver); "
             "use the device cpu");
  MLPX_CHECK(device >= 0 && device < count, CudaError, "cuda:", device,
             ": expected a device index below the ", count, " visible CUDA device(s)");
  ContextTable& t = table();
  std::lock_guard<std::mutex> lock(t.mutex);
  if (t.contexts.size() < static_cast<size_t>(count)) t.contexts.resize(count);
  if (!t.contexts[device]) {
    auto ctx = std::make_unique<Context>();
    ctx->device = device;
    DeviceGuard guard(device);
    MLPX_CUDA_CHECK(cudaStreamCreateWithFlags(&ctx->stream, cudaStreamNonBlocking));
    MLPX_CUDA_CHECK(cudaEventCreateWithFlags(&ctx->ready, cudaEventDisableTiming));
    MLPX_CUDA_CHECK(cublasCreate(&ctx->blas));
    MLPX_CUDA_CHECK(cublasSetStream(ctx->blas, ctx->stream));
    MLPX_CUDA_CHECK(cublasLtCreate(&ctx->blas_lt));
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

void* bf16_scratch(Context& ctx, size_t bytes) {
  if (bytes <= ctx.bf16_scratch_bytes) return ctx.bf16_scratch;
  DeviceGuard guard(ctx.device);
  const size_t grown = std::max(bytes, 2 * ctx.bf16_scratch_bytes);
  void* buffer = nullptr;
  MLPX_CUDA_CHECK(cudaMalloc(&buffer, grown));
  // Not freed: queued GEMMs, and graphs captured with it (a training epoch's step, replayed
  // after an evaluation with larger batches grew the scratch), still read the old one.
  if (ctx.bf16_scratch != nullptr) ctx.retired.push_back(ctx.bf16_scratch);
  ctx.bf16_scratch = buffer;
  ctx.bf16_scratch_bytes = grown;
  return buffer;
}

cudaStream_t stream_of(Device device) {
  Context& ctx = context(device.index);
  MLPX_CUDA_CHECK(cudaSetDevice(ctx.device));
  return ctx.stream;
}

namespace {
// After a read-back of the status block: throws what device code reported, once the block is
// cleared for the next run (the error path may wait again).
void check_status(Context& ctx, const DeviceStatus& status) {
  if (status.code == static_cast<int32_t>(DeviceStatusCode::kOk)) return;
  MLPX_CUDA_CHECK(cudaMemsetAsync(ctx.status, 0, sizeof(DeviceStatus), ctx.stream));
  note_host_wait();
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

size_t align8(size_t bytes) { return (bytes + 7) / 8 * 8; }
}  // namespace

void synchronize_and_check(int device) {
  Context& ctx = context(device);
  DeviceGuard guard(ctx.device);
  DeviceStatus status{};
  MLPX_CUDA_CHECK(
      cudaMemcpyAsync(&status, ctx.status, sizeof status, cudaMemcpyDeviceToHost, ctx.stream));
  note_host_wait();
  MLPX_CUDA_CHECK(cudaStreamSynchronize(ctx.stream));
  check_status(ctx, status);
}

void copy_to_host_and_check(void* const* dst, const void* const* src, const size_t* bytes,
                            size_t count, int device) {
  Context& ctx = context(device);
  DeviceGuard guard(ctx.device);
  size_t total = align8(sizeof(DeviceStatus));
  for (size_t i = 0; i < count; ++i) total += align8(bytes[i]);
  if (ctx.readback_bytes < total) {
    // Stream-ordered: the old buffer goes after the work that may still use it.
    if (ctx.readback != nullptr) MLPX_CUDA_CHECK(cudaFreeAsync(ctx.readback, ctx.stream));
    ctx.readback = nullptr;
    ctx.readback_bytes = 0;
    MLPX_CUDA_CHECK(cudaMallocAsync(&ctx.readback, total, ctx.stream));
    ctx.readback_bytes = total;
  }
  // Gathered on the device (copies that do not wait), then one copy to the host and one wait:
  // a copy to pageable host memory can block until it is done, so each one would be a wait.
  auto* staging = static_cast<unsigned char*>(ctx.readback);
  MLPX_CUDA_CHECK(cudaMemcpyAsync(staging, ctx.status, sizeof(DeviceStatus),
                                  cudaMemcpyDeviceToDevice, ctx.stream));
  size_t at = align8(sizeof(DeviceStatus));
  for (size_t i = 0; i < count; ++i) {
    if (bytes[i] > 0) {
      MLPX_CUDA_CHECK(
          cudaMemcpyAsync(staging + at, src[i], bytes[i], cudaMemcpyDeviceToDevice, ctx.stream));
    }
    at += align8(bytes[i]);
  }
  std::vector<unsigned char> host(total);
  MLPX_CUDA_CHECK(cudaMemcpyAsync(host.data(), staging, total, cudaMemcpyDeviceToHost, ctx.stream));
  note_host_wait();
  MLPX_CUDA_CHECK(cudaStreamSynchronize(ctx.stream));
  at = align8(sizeof(DeviceStatus));
  for (size_t i = 0; i < count; ++i) {
    if (bytes[i] > 0) std::memcpy(dst[i], host.data() + at, bytes[i]);
    at += align8(bytes[i]);
  }
  DeviceStatus status{};
  std::memcpy(&status, host.data(), sizeof status);
  check_status(ctx, status);
}

namespace {
// True while `stream` records a graph capture (or the query fails).
bool capturing(cudaStream_t stream) noexcept {
  cudaStreamCaptureStatus status = cudaStreamCaptureStatusNone;
  if (!MLPX_CUDA_CHECK_NOTHROW(cudaStreamIsCapturing(stream, &status))) return true;
  return status != cudaStreamCaptureStatusNone;
}
}  // namespace

// Memory is stream-ordered (the device's pool): it is allocated and freed in the order of the
// device's stream, where every mlpx launch on the device goes, so a free need not wait for the
// device: loops that allocate temporaries per batch (predict, evaluate) never synchronize. A
// graph capture in progress is the exception: there cudaMallocAsync and cudaFreeAsync would
// become nodes of the graph, so the plain calls are made, which the capture rejects (the
// trainer then falls back to plain launches, kernels/graph.h), as before.
void* allocate(size_t bytes, int device) {
  Context& ctx = context(device);
  DeviceGuard guard(ctx.device);
  void* ptr = nullptr;
  const cudaError_t status =
      capturing(ctx.stream) ? cudaMalloc(&ptr, bytes) : cudaMallocAsync(&ptr, bytes, ctx.stream);
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
  Context& ctx = context(device);
  DeviceGuard guard(ctx.device, false);
  if (!capturing(ctx.stream)) {
    // Runs after the work queued so far on the stream, which may still read this memory.
    MLPX_CUDA_CHECK_NOTHROW(cudaFreeAsync(ptr, ctx.stream));
    return;
  }
  note_host_wait();
  MLPX_CUDA_CHECK_NOTHROW(cudaStreamSynchronize(ctx.stream));
  MLPX_CUDA_CHECK_NOTHROW(cudaFree(ptr));
}

namespace {
// Enqueued on the destination's stream (where dst was allocated) after the work queued so far
// on the source's stream, which may still be writing src; the source's stream then waits for
// the copy, so that its later work (overwriting or freeing src) cannot run before the copy has
// read src. A peer copy, not cudaMemcpyAsync: memory from two devices' stream-ordered pools is
// copied between them reliably only by cudaMemcpyPeerAsync.
void copy_between_devices(void* dst, Context& to, const void* src, Context& from, size_t bytes) {
  {
    DeviceGuard guard(from.device);
    MLPX_CUDA_CHECK(cudaEventRecord(from.ready, from.stream));
  }
  {
    DeviceGuard guard(to.device);
    MLPX_CUDA_CHECK(cudaStreamWaitEvent(to.stream, from.ready, 0));
    MLPX_CUDA_CHECK(cudaMemcpyPeerAsync(dst, to.device, src, from.device, bytes, to.stream));
    MLPX_CUDA_CHECK(cudaEventRecord(to.ready, to.stream));
  }
  DeviceGuard guard(from.device);
  MLPX_CUDA_CHECK(cudaStreamWaitEvent(from.stream, to.ready, 0));
}
}  // namespace

void copy_bytes(void* dst, Device dst_device, const void* src, Device src_device, size_t bytes) {
  if (dst_device.is_cuda() && src_device.is_cuda() && dst_device.index != src_device.index) {
    copy_between_devices(dst, context(dst_device.index), src, context(src_device.index), bytes);
    return;
  }
  const Device on = dst_device.is_cuda() ? dst_device : src_device;
  Context& ctx = context(on.index);
  DeviceGuard guard(ctx.device);
  MLPX_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDefault, ctx.stream));
  // Host memory is pageable: the copy must be complete before the caller reuses it.
  if (dst_device.is_cpu() || src_device.is_cpu()) {
    note_host_wait();
    MLPX_CUDA_CHECK(cudaStreamSynchronize(ctx.stream));
  }
}

void zero_bytes(void* dst, int device, size_t bytes) {
  Context& ctx = context(device);
  DeviceGuard guard(ctx.device);
  MLPX_CUDA_CHECK(cudaMemsetAsync(dst, 0, bytes, ctx.stream));
}

}  // namespace mlpx::cuda
