#include "mlpx/batching.h"

#include <limits>

#include "cpu/batching.h"
#include "memory.h"
#include "mlpx/error.h"
#if MLPX_WITH_CUDA
#include "cuda/runtime.h"
#include "kernels/batching.h"
#endif

namespace mlpx {

namespace {
void check_index_range(int64_t n) {
  MLPX_CHECK(n >= 0 && n <= std::numeric_limits<int32_t>::max(), ShapeError,
             "indices: expected at most ", std::numeric_limits<int32_t>::max(), " rows, found ", n);
}
}  // namespace

Tensor random_permutation(int64_t n, uint64_t seed, uint64_t stream, Device device) {
  check_index_range(n);
  Tensor out({n}, DType::kInt32, device);
  if (device.is_cuda()) {
#if MLPX_WITH_CUDA
    cuda::random_permutation(out.data<int32_t>(), n, seed, stream, cuda::stream_of(device));
    return out;
#else
    detail::fail_without_cuda("random_permutation");
#endif
  }
  cpu::random_permutation(out.data<int32_t>(), n, seed, stream);
  return out;
}

Tensor identity_indices(int64_t n, Device device) {
  check_index_range(n);
  Tensor out({n}, DType::kInt32, device);
  if (device.is_cuda()) {
#if MLPX_WITH_CUDA
    cuda::identity_indices(out.data<int32_t>(), n, cuda::stream_of(device));
    return out;
#else
    detail::fail_without_cuda("identity_indices");
#endif
  }
  for (int64_t i = 0; i < n; ++i) out.data<int32_t>()[i] = static_cast<int32_t>(i);
  return out;
}

void gather_rows(const Tensor& src, const Tensor& indices, Tensor& dst) {
  MLPX_CHECK(indices.dim() == 1 && indices.dtype() == DType::kInt32, ShapeError,
             "gather_rows: expected int32 [B] indices, found ", indices.describe());
  MLPX_CHECK(dst.rows() == indices.rows() && dst.cols() == src.cols() && dst.dim() == src.dim() &&
                 dst.dtype() == src.dtype(),
             ShapeError, "gather_rows: expected dst [", indices.rows(), ", ", src.cols(), "] ",
             dtype_name(src.dtype()), ", found ", dst.describe());
  MLPX_CHECK(src.device() == dst.device() && indices.device() == dst.device(), ShapeError,
             "gather_rows: expected one device, found src ", src.describe(), ", indices ",
             indices.describe(), ", dst ", dst.describe());
  const int64_t rows = indices.rows(), width = src.cols();
  if (dst.device().is_cuda()) {
#if MLPX_WITH_CUDA
    // Indices come from random_permutation/identity_indices over src's rows: in range by
    // construction, so the kernel does not re-check them.
    const cudaStream_t stream = cuda::stream_of(dst.device());
    if (src.dtype() == DType::kInt32) {
      cuda::gather_rows(src.data<int32_t>(), indices.data<int32_t>(), dst.data<int32_t>(), rows,
                        width, stream);
    } else {
      cuda::gather_rows(src.data<float>(), indices.data<int32_t>(), dst.data<float>(), rows, width,
                        stream);
    }
    return;
#else
    detail::fail_without_cuda("gather_rows");
#endif
  }
  const int32_t* idx = indices.data<int32_t>();
  for (int64_t i = 0; i < rows; ++i) {
    MLPX_CHECK(idx[i] >= 0 && idx[i] < src.rows(), ValueError, "gather_rows: index ", idx[i],
               " at position ", i, ": expected a row in [0, ", src.rows(), ")");
  }
  switch (src.dtype()) {
    case DType::kFloat32:
      cpu::gather_rows(src.data<float>(), idx, dst.data<float>(), rows, width);
      break;
    case DType::kFloat64:
      cpu::gather_rows(src.data<double>(), idx, dst.data<double>(), rows, width);
      break;
    case DType::kInt32:
      cpu::gather_rows(src.data<int32_t>(), idx, dst.data<int32_t>(), rows, width);
      break;
  }
}

}  // namespace mlpx
