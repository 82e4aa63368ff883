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

namespace mlpx {

namespace {
template <typename T>
void commit_on_cpu(Tensor& loss, Tensor& batch_losses, int32_t* position) {
  batch_losses.data<T>()[*position] = loss.data<T>()[0];
  loss.data<T>()[0] = T(0);
  *position += 1;
}
}  // namespace

void gather_batch(const Tensor& src, const Tensor& order, const Tensor& position, int64_t stride,
                  Tensor& dst) {
  MLPX_CHECK(order.defined() && order.dim() == 1 && order.dtype() == DType::kInt32, ShapeError,
             "gather_batch: expected int32 [M] order, found ", order.describe());
  MLPX_CHECK(position.defined() && position.numel() == 1 && position.dtype() == DType::kInt32 &&
                 position.device() == dst.device(),
             ShapeError, "gather_batch: expected an int32 [1] position on ", dst.device().str(),
             ", found ", position.describe());
  MLPX_CHECK(stride >= 0, ShapeError, "gather_batch: expected stride >= 0, found ", stride);
  const int64_t rows = dst.rows();
  if (dst.device().is_cuda()) {
#if MLPX_WITH_CUDA
    MLPX_CHECK(dst.cols() == src.cols() && dst.dim() == src.dim() && dst.dtype() == src.dtype() &&
                   src.device() == dst.device() && order.device() == dst.device(),
               ShapeError, "gather_batch: expected dst [", rows, ", ", src.cols(), "] ",
               dtype_name(src.dtype()), " with src, order and dst on one device, found src ",
               src.describe(), ", order ", order.describe(), ", dst ", dst.describe());
    const cudaStream_t stream = cuda::stream_of(dst.device());
    if (src.dtype() == DType::kInt32) {
      cuda::gather_batch(src.data<int32_t>(), order.data<int32_t>(), position.data<int32_t>(),
                         stride, dst.data<int32_t>(), rows, src.cols(), stream);
    } else {
      MLPX_CHECK(src.dtype() == DType::kFloat32, ShapeError, "gather_batch on ", dst.device().str(),
                 ": expected float32 or int32, found ", src.describe());
      cuda::gather_batch(src.data<float>(), order.data<int32_t>(), position.data<int32_t>(), stride,
                         dst.data<float>(), rows, src.cols(), stream);
    }
    return;
#else
    detail::fail_without_cuda("gather_batch");
#endif
  }
  const int64_t begin = static_cast<int64_t>(position.data<int32_t>()[0]) * stride;
  MLPX_CHECK(begin >= 0 && begin + rows <= order.numel(), ValueError,
             "gather_batch: expected the batch at position ", position.data<int32_t>()[0],
             " (rows ", begin, " to ", begin + rows, ") inside the order of ", order.numel(),
             " rows");
  gather_rows(src, order.rows(begin, begin + rows), dst);
}

void commit_batch_loss(Tensor& loss, Tensor& batch_losses, Tensor& position) {
  MLPX_CHECK(loss.defined() && batch_losses.defined() && position.defined() && loss.numel() == 1 &&
                 batch_losses.dim() == 1 && loss.dtype() == batch_losses.dtype() &&
                 position.numel() == 1 && position.dtype() == DType::kInt32 &&
                 loss.device() == batch_losses.device() && position.device() == loss.device(),
             ShapeError,
             "commit_batch_loss: expected loss [1], batch_losses [M] of its dtype and an int32 "
             "[1] position on one device, found ",
             loss.describe(), ", ", batch_losses.describe(), ", ", position.describe());
  if (loss.device().is_cuda()) {
#if MLPX_WITH_CUDA
    MLPX_CHECK(loss.dtype() == DType::kFloat32, ShapeError, "commit_batch_loss on ",
               loss.device().str(), ": expected float32, found ", loss.describe());
    cuda::commit_batch_loss(loss.data<float>(), batch_losses.data<float>(),
                            position.data<int32_t>(), cuda::stream_of(loss.device()));
    return;
#else
    detail::fail_without_cuda("commit_batch_loss");
#endif
  }
  int32_t* p = position.data<int32_t>();
  MLPX_CHECK(*p >= 0 && *p < batch_losses.numel(), ValueError, "commit_batch_loss: position ", *p,
             ": expected a slot in [0, ", batch_losses.numel(), ")");
  if (loss.dtype() == DType::kFloat64) {
    commit_on_cpu<double>(loss, batch_losses, p);
  } else {
    commit_on_cpu<float>(loss, batch_losses, p);
  }
}

}  // namespace mlpx
