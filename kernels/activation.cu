#include "kernels/activation.h"
#include "kernels/launch.cuh"
#include "kernels/reduce.cuh"
#include "math/activation.h"

namespace mlpx::cuda {

namespace {

template <typename Member>
__global__ void activation_forward_kernel(int64_t n, const float* x, float* y, float alpha) {
  MLPX_GRID_STRIDE(i, n) { y[i] = Member::value(x[i], alpha); }
}

template <typename Member>
__global__ void activation_backward_kernel(int64_t n, const float* x, const float* y,
                                           const float* dy, float* dx, float alpha) {
  MLPX_GRID_STRIDE(i, n) {
    // Only the operand this activation reads is loaded (the other may be nullptr): the table's
    // flags, which the ops entry also reads to decide which tensors to pass.
    float xi = 0.0f, yi = 0.0f;
    if constexpr (Member::kBackwardReadsInput) xi = x[i];
    if constexpr (Member::kBackwardReadsOutput) yi = y[i];
    dx[i] = Member::grad(xi, yi, dy[i], alpha);
  }
}

// Softmax over each row: one read to reduce (max, sum of exp) in a single streaming pass,
// one read and one write for y. y may be x: a group finishes reading its row (the
// reduction waits for every thread of the group) before any thread writes.
template <int kGroup>
__global__ void softmax_forward_kernel(int64_t rows, int64_t cols, const float* x, float* y) {
  const int lane = group_lane<kGroup>();
  for (int64_t row = group_first_row<kGroup>(); row < rows; row += group_row_stride<kGroup>()) {
    const float* xr = x + row * cols;
    float* yr = y + row * cols;
    math::MaxSum<float> acc = math::max_sum_empty<float>();
    for (int64_t c = lane; c < cols; c += kGroup) math::max_sum_push(acc, xr[c]);
    acc = group_reduce<kGroup>(acc, MaxSumOp{});
    const float inv_sum = 1.0f / acc.sum;
    for (int64_t c = lane; c < cols; c += kGroup) {
      yr[c] = math::softmax_value(xr[c], acc.max, inv_sum);
    }
  }
}

// dx = y (dy - sum_j dy_j y_j) per row. dx may be dy (same argument as above).
template <int kGroup>
__global__ void softmax_backward_kernel(int64_t rows, int64_t cols, const float* y, const float* dy,
                                        float* dx) {
  const int lane = group_lane<kGroup>();
  for (int64_t row = group_first_row<kGroup>(); row < rows; row += group_row_stride<kGroup>()) {
    const int64_t base = row * cols;
    float dot = 0.0f;
    for (int64_t c = lane; c < cols; c += kGroup) dot += dy[base + c] * y[base + c];
    dot = group_reduce<kGroup>(dot, SumOp{});
    for (int64_t c = lane; c < cols; c += kGroup) {
      dx[base + c] = math::softmax_grad(y[base + c], dy[base + c], dot);
    }
  }
}

}  // namespace

void activation_forward(Activation activation, const float* x, float* y, int64_t rows, int64_t cols,
                        float alpha, Device device) {
  const cudaStream_t stream = stream_of(device);
  math::visit(activation, [&](auto member) {
    using Member = decltype(member);
    if constexpr (Member::kIsRowwise) {
      static_assert(Member::kKind == Activation::kSoftmax,
                    "a rowwise activation needs its own row kernels here");
      if (cols <= kWarpRowMaxCols) {
        launch_rows<32>(softmax_forward_kernel<32>, rows, cols, stream, x, y);
      } else {
        launch_rows<kBlockThreads>(softmax_forward_kernel<kBlockThreads>, rows, cols, stream, x, y);
      }
    } else if (Member::kKind != Activation::kIdentity || x != y) {  // identity in place: no-op
      launch_elementwise(activation_forward_kernel<Member>, rows * cols, stream, x, y, alpha);
    }
  });
}

void activation_backward(Activation activation, const float* x, const float* y, const float* dy,
                         float* dx, int64_t rows, int64_t cols, float alpha, Device device) {
  const cudaStream_t stream = stream_of(device);
  math::visit(activation, [&](auto member) {
    using Member = decltype(member);
    if constexpr (Member::kIsRowwise) {
      static_assert(Member::kKind == Activation::kSoftmax,
                    "a rowwise activation needs its own row kernels here");
      if (cols <= kWarpRowMaxCols) {
        launch_rows<32>(softmax_backward_kernel<32>, rows, cols, stream, y, dy, dx);
      } else {
        launch_rows<kBlockThreads>(softmax_backward_kernel<kBlockThreads>, rows, cols, stream, y,
                                   dy, dx);
      }
    } else if (Member::kKind != Activation::kIdentity || dy != dx) {
      launch_elementwise(activation_backward_kernel<Member>, rows * cols, stream, x, y, dy, dx,
                         alpha);
    }
  });
}

}  // namespace mlpx::cuda
