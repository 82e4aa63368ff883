#include "ops/batching.h"

#include <algorithm>
#include <limits>
#include <string>

#include "core/check.h"
#include "core/dispatch.h"
#include "cpu/batching.h"
#include "kernels/batching.h"
#include "mlpx/error.h"
#include "mlpx/loss.h"

namespace mlpx {

namespace {

void check_index_range(int64_t n) {
  MLPX_CHECK(n >= 0 && n <= std::numeric_limits<int32_t>::max(), ShapeError,
             "indices: expected at most ", std::numeric_limits<int32_t>::max(), " rows, found ", n);
}

// dst holds rows of src: src's rank, row width and dtype, on src's device.
void check_rows_of(std::string_view op, const Tensor& src, const Tensor& dst) {
  detail::check_defined(op, "src", src);
  detail::check_defined(op, "dst", dst);
  MLPX_CHECK(dst.cols() == src.cols() && dst.dim() == src.dim() && dst.dtype() == src.dtype() &&
                 src.device() == dst.device(),
             ShapeError, op, ": expected dst [", dst.rows(), ", ", src.cols(), "] ",
             dtype_name(src.dtype()), " on src's device, found src ", src.describe(), ", dst ",
             dst.describe());
}

}  // namespace

Tensor random_permutation(int64_t n, uint64_t seed, uint64_t stream, Device device) {
  check_index_range(n);
  Tensor out({n}, DType::kInt32, device);
  if (device.is_cuda()) {
    cuda::random_permutation(out.data<int32_t>(), n, seed, stream, device);
  } else {
    cpu::random_permutation(out.data<int32_t>(), n, seed, stream);
  }
  return out;
}

Tensor permutation_workspace(int64_t n, Device device) {
  check_index_range(n);
  if (!device.is_cuda()) return {};
  const auto bytes = static_cast<int64_t>(cuda::permutation_workspace_bytes(n));
  return Tensor({std::max<int64_t>(1, (bytes + 3) / 4)}, DType::kInt32, device);
}

void random_permutation_into(Tensor& out, Tensor& workspace, uint64_t seed, uint64_t stream) {
  const int64_t n = out.numel();
  MLPX_CHECK(out.dtype() == DType::kInt32 && out.dim() == 1, ShapeError,
             "random_permutation: expected int32 [n] out, found ", out.describe());
  check_index_range(n);
  if (!out.device().is_cuda()) {
    cpu::random_permutation(out.data<int32_t>(), n, seed, stream);
    return;
  }
  const size_t needed = cuda::permutation_workspace_bytes(n);
  MLPX_CHECK(workspace.defined() && workspace.device() == out.device() &&
                 static_cast<size_t>(workspace.numel()) * 4 >= needed,
             ShapeError, "random_permutation: expected a workspace of ", needed, " bytes on ",
             out.device().str(), ", found ",
             workspace.defined() ? workspace.describe() : std::string("none"));
  cuda::random_permutation(out.data<int32_t>(), n, seed, stream, workspace.data<int32_t>(),
                           static_cast<size_t>(workspace.numel()) * 4, out.device());
}

Tensor identity_indices(int64_t n, Device device) {
  check_index_range(n);
  Tensor out({n}, DType::kInt32, device);
  if (device.is_cuda()) {
    cuda::identity_indices(out.data<int32_t>(), n, device);
  } else {
    for (int64_t i = 0; i < n; ++i) out.data<int32_t>()[i] = static_cast<int32_t>(i);
  }
  return out;
}

void gather_rows(const Tensor& src, const Tensor& indices, Tensor& dst) {
  MLPX_CHECK(indices.defined() && indices.dim() == 1 && indices.dtype() == DType::kInt32,
             ShapeError, "gather_rows: expected int32 [B] indices, found ", indices.describe());
  check_rows_of("gather_rows", src, dst);
  MLPX_CHECK(dst.rows() == indices.rows() && indices.device() == dst.device(), ShapeError,
             "gather_rows: expected ", indices.rows(), " dst rows and indices on ",
             dst.device().str(), ", found indices ", indices.describe(), ", dst ", dst.describe());
  const int64_t rows = indices.rows(), width = src.cols();
  const int32_t* idx = indices.data<int32_t>();
  detail::dispatch_any(
      "gather_rows", src,
      [&](auto zero) {
        // Indices come from random_permutation/identity_indices over src's rows: in range by
        // construction, so the kernel does not re-check them.
        using T = decltype(zero);
        cuda::gather_rows(src.data<T>(), idx, dst.data<T>(), rows, width, dst.device());
      },
      [&](auto zero) {
        using T = decltype(zero);
        for (int64_t i = 0; i < rows; ++i) {
          MLPX_CHECK(idx[i] >= 0 && idx[i] < src.rows(), ValueError, "gather_rows: index ", idx[i],
                     " at position ", i, ": expected a row in [0, ", src.rows(), ")");
        }
        cpu::gather_rows(src.data<T>(), idx, dst.data<T>(), rows, width);
      });
}

void gather_batch(const Tensor& src, const Tensor& order, const Tensor& position, int64_t stride,
                  Tensor& dst) {
  MLPX_CHECK(order.defined() && order.dim() == 1 && order.dtype() == DType::kInt32 &&
                 order.device() == dst.device(),
             ShapeError, "gather_batch: expected int32 [M] order on dst's device, found ",
             order.describe());
  detail::check_tensor("gather_batch", "position", position, {1}, DType::kInt32, dst.device());
  MLPX_CHECK(stride >= 0, ShapeError, "gather_batch: expected stride >= 0, found ", stride);
  check_rows_of("gather_batch", src, dst);
  const int64_t rows = dst.rows();
  detail::dispatch_any(
      "gather_batch", src,
      [&](auto zero) {
        using T = decltype(zero);
        cuda::gather_batch(src.data<T>(), order.data<int32_t>(), position.data<int32_t>(), stride,
                           dst.data<T>(), rows, src.cols(), dst.device());
      },
      [&](auto) {
        // The CPU reads the position now and checks the range the GPU kernel trusts.
        const int64_t begin = static_cast<int64_t>(position.data<int32_t>()[0]) * stride;
        MLPX_CHECK(begin >= 0 && begin + rows <= order.numel(), ValueError,
                   "gather_batch: expected the batch at position ", position.data<int32_t>()[0],
                   " (rows ", begin, " to ", begin + rows, ") inside the order of ", order.numel(),
                   " rows");
        gather_rows(src, order.rows(begin, begin + rows), dst);
      });
}

void commit_batch_loss(Tensor& loss, Tensor& batch_losses, Tensor& position, Tensor* run_step) {
  detail::check_float("commit_batch_loss", "loss", loss);
  detail::check_tensor("commit_batch_loss", "loss", loss, {1}, loss);
  MLPX_CHECK(batch_losses.defined() && batch_losses.dim() == 1, ShapeError,
             "commit_batch_loss: expected batch_losses [M], found ",
             batch_losses.defined() ? batch_losses.describe() : "an undefined tensor");
  detail::check_tensor("commit_batch_loss", "batch_losses", batch_losses, batch_losses.shape(),
                       loss);
  detail::check_tensor("commit_batch_loss", "position", position, {1}, DType::kInt32,
                       loss.device());
  if (run_step != nullptr) {
    detail::check_tensor("commit_batch_loss", "run_step", *run_step, {1}, DType::kInt32,
                         loss.device());
  }
  int32_t* step = run_step != nullptr ? run_step->data<int32_t>() : nullptr;
  detail::dispatch(
      "commit_batch_loss", loss,
      [&] {
        cuda::commit_batch_loss(loss.data<float>(), batch_losses.data<float>(),
                                position.data<int32_t>(), step, loss.device());
      },
      [&](auto zero) {
        using T = decltype(zero);
        int32_t* p = position.data<int32_t>();
        MLPX_CHECK(*p >= 0 && *p < batch_losses.numel(), ValueError, "commit_batch_loss: position ",
                   *p, ": expected a slot in [0, ", batch_losses.numel(), ")");
        batch_losses.data<T>()[*p] = loss.data<T>()[0];
        loss.data<T>()[0] = T(0);
        *p += 1;
        if (step != nullptr) *step += 1;
      });
}

void sum_and_commit_batch_loss(const Tensor& row_loss, double scale, Tensor& loss,
                               Tensor& batch_losses, Tensor& position, Tensor* run_step) {
  if (!loss.device().is_cuda()) {
    accumulate_sum(row_loss, loss, scale);
    commit_batch_loss(loss, batch_losses, position, run_step);
    return;
  }
  const char* op = "sum_and_commit_batch_loss";
  detail::check_float(op, "row_loss", row_loss);
  MLPX_CHECK(row_loss.dim() == 1, ShapeError, op, ": expected row_loss [N], found ",
             row_loss.describe());
  detail::check_tensor(op, "loss", loss, {1}, row_loss);
  MLPX_CHECK(batch_losses.defined() && batch_losses.dim() == 1, ShapeError, op,
             ": expected batch_losses [M], found ",
             batch_losses.defined() ? batch_losses.describe() : "an undefined tensor");
  detail::check_tensor(op, "batch_losses", batch_losses, batch_losses.shape(), loss);
  detail::check_tensor(op, "position", position, {1}, DType::kInt32, loss.device());
  if (run_step != nullptr) {
    detail::check_tensor(op, "run_step", *run_step, {1}, DType::kInt32, loss.device());
  }
  MLPX_CHECK(loss.dtype() == DType::kFloat32, ValueError, op,
             ": expected float32 on a CUDA device, found ", dtype_name(loss.dtype()));
  cuda::sum_and_commit_batch_loss(
      row_loss.data<float>(), row_loss.numel(), scale, loss.data<float>(),
      batch_losses.data<float>(), position.data<int32_t>(),
      run_step != nullptr ? run_step->data<int32_t>() : nullptr, loss.device());
}

}  // namespace mlpx
