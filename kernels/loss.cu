#include <algorithm>
#include <climits>

#include "kernels/loss.h"
#include "kernels/reduce.cuh"
#include "math/loss.h"

namespace mlpx::cuda {

namespace {

struct ArgMax {
  float value;
  long long index;
};

__device__ __forceinline__ ArgMax shfl_xor(ArgMax v, int mask) {
  return {__shfl_xor_sync(0xffffffffu, v.value, mask), __shfl_xor_sync(0xffffffffu, v.index, mask)};
}

struct ArgMaxOp {
  __device__ __forceinline__ ArgMax operator()(ArgMax a, ArgMax b) const {
    return math::argmax_beats(b.value, b.index, a.value, a.index) ? b : a;
  }
};

// Elementwise losses (mse, sse, bce): one read of output and target, one write of grad;
// the row sum is reduced by the row group.
template <typename Member, int kGroup>
__global__ void elementwise_loss_kernel(int64_t rows, int64_t cols, const float* output,
                                        const float* target, float* row_loss, float* grad,
                                        float row_scale, float grad_scale,
                                        const float* row_weight) {
  const int lane = group_lane<kGroup>();
  for (int64_t row = group_first_row<kGroup>(); row < rows; row += group_row_stride<kGroup>()) {
    const int64_t base = row * cols;
    const float weight = math::row_weight_of(row_weight, row);
    float sum = 0.0f;
    for (int64_t c = lane; c < cols; c += kGroup) {
      const math::ElementLoss<float> e = Member::element(output[base + c], target[base + c]);
      sum += e.value;
      if (grad != nullptr) grad[base + c] = e.grad * grad_scale * weight;
    }
    sum = group_reduce<kGroup>(sum, SumOp{});
    if (lane == 0) row_loss[row] = sum * row_scale * weight;
  }
}

// cross_entropy: one streaming read of the row for (max, sum of exp), one more read to
// write dlogits = (softmax - onehot) * grad_scale. Probabilities are never stored.
template <int kGroup>
__global__ void cross_entropy_kernel(int64_t rows, int64_t cols, const float* logits,
                                     const int32_t* labels, float* row_loss, float* grad,
                                     float grad_scale, const float* row_weight, float smoothing,
                                     DeviceStatus* status) {
  const int lane = group_lane<kGroup>();
  for (int64_t row = group_first_row<kGroup>(); row < rows; row += group_row_stride<kGroup>()) {
    const float* z = logits + row * cols;
    const int32_t label = labels[row];
    // Every thread of the group sees the same label, so the whole group takes this branch.
    if (label < 0 || label >= cols) {
      if (lane == 0) {
        if (atomicCAS(&status->code, static_cast<int32_t>(DeviceStatusCode::kOk),
                      static_cast<int32_t>(DeviceStatusCode::kLabelOutOfRange)) ==
            static_cast<int32_t>(DeviceStatusCode::kOk)) {
          status->row = static_cast<int32_t>(row < INT_MAX ? row : INT_MAX);
          status->value = label;
          status->limit = static_cast<int32_t>(cols < INT_MAX ? cols : INT_MAX);
        }
        row_loss[row] = __int_as_float(0x7fc00000);  // NaN: this row has no loss
      }
      if (grad != nullptr) {
        for (int64_t c = lane; c < cols; c += kGroup) grad[row * cols + c] = 0.0f;
      }
      continue;
    }
    // Read before the reduction (which every thread of the group waits for), so grad may
    // share memory with the logits.
    const float z_label = z[label];
    math::MaxSum<float> acc = math::max_sum_empty<float>();
    float z_sum = 0.0f;
    for (int64_t c = lane; c < cols; c += kGroup) {
      math::max_sum_push(acc, z[c]);
      z_sum += z[c];
    }
    acc = group_reduce<kGroup>(acc, MaxSumOp{});
    const float weight = math::row_weight_of(row_weight, row);
    // Label smoothing's uniform term needs the row's sum; the flag is the same for the group.
    if (smoothing != 0.0f) z_sum = group_reduce<kGroup>(z_sum, SumOp{});
    const float inv_cols = 1.0f / static_cast<float>(cols);
    if (lane == 0) {
      row_loss[row] =
          math::smoothed_cross_entropy_row_loss(acc, z_label, z_sum, smoothing, inv_cols) * weight;
    }
    if (grad != nullptr) {
      const float inv_sum = 1.0f / acc.sum;
      float* g = grad + row * cols;
      for (int64_t c = lane; c < cols; c += kGroup) {
        g[c] = math::cross_entropy_grad(z[c], c == label, acc.max, inv_sum, grad_scale * weight,
                                        smoothing, inv_cols);
      }
    }
  }
}

// kl_div: first read reduces (max, sum of exp) of z and sum_k t_k; second read sums the
// loss terms and writes the gradient (softmax(z) sum_k t_k - t) * grad_scale.
template <int kGroup>
__global__ void kl_div_kernel(int64_t rows, int64_t cols, const float* logits, const float* target,
                              float* row_loss, float* grad, float grad_scale,
                              const float* row_weight) {
  const int lane = group_lane<kGroup>();
  for (int64_t row = group_first_row<kGroup>(); row < rows; row += group_row_stride<kGroup>()) {
    const int64_t base = row * cols;
    math::MaxSum<float> acc = math::max_sum_empty<float>();
    float target_sum = 0.0f;
    for (int64_t c = lane; c < cols; c += kGroup) {
      math::max_sum_push(acc, logits[base + c]);
      target_sum += target[base + c];
    }
    acc = group_reduce<kGroup>(acc, MaxSumOp{});
    target_sum = group_reduce<kGroup>(target_sum, SumOp{});
    const float log_sum = logf(acc.sum), inv_sum = 1.0f / acc.sum;
    const float weight = math::row_weight_of(row_weight, row);
    float loss = 0.0f;
    for (int64_t c = lane; c < cols; c += kGroup) {
      const float z = logits[base + c], t = target[base + c];
      loss += math::kl_div_term(z, t, acc.max, log_sum);
      if (grad != nullptr) {
        grad[base + c] = math::kl_div_grad(z, t, acc.max, inv_sum, target_sum, grad_scale * weight);
      }
    }
    loss = group_reduce<kGroup>(loss, SumOp{});
    if (lane == 0) row_loss[row] = loss * weight;
  }
}

constexpr int kSumThreads = 1024;

// One block: thread i adds values i, i + 1024, ... in double, then a fixed tree. The launch
// bound lets the compiler budget registers for 1024 threads (without it, a register-hungry
// build could fail to launch with "too many resources requested").
__global__ void __launch_bounds__(kSumThreads)
    accumulate_sum_kernel(const float* values, int64_t n, float* accumulator, double scale) {
  double sum = 0.0;
  for (int64_t i = threadIdx.x; i < n; i += kSumThreads) sum += static_cast<double>(values[i]);
  sum = group_reduce<kSumThreads>(sum, SumOp{});
  if (threadIdx.x == 0) {
    accumulator[0] = static_cast<float>(static_cast<double>(accumulator[0]) + scale * sum);
  }
}

// One block: the weights' sum as accumulate_sum_kernel's (double, fixed tree), then each
// thread writes its weights normalised. Every weight is read into the sum before any is
// written (the reduction waits for all threads), so normalized may be weights.
__global__ void __launch_bounds__(kSumThreads)
    normalize_row_weights_kernel(const float* weights, int64_t n, float* normalized) {
  double sum = 0.0;
  for (int64_t i = threadIdx.x; i < n; i += kSumThreads) sum += static_cast<double>(weights[i]);
  sum = group_reduce<kSumThreads>(sum, SumOp{});
  for (int64_t i = threadIdx.x; i < n; i += kSumThreads) {
    normalized[i] = static_cast<float>(
        math::normalized_row_weight(static_cast<double>(weights[i]), static_cast<double>(n), sum));
  }
}

template <int kGroup>
__global__ void accumulate_correct_kernel(int64_t rows, int64_t cols, const float* output,
                                          const int32_t* labels, int32_t* correct) {
  const int lane = group_lane<kGroup>();
  int count = 0;
  for (int64_t row = group_first_row<kGroup>(); row < rows; row += group_row_stride<kGroup>()) {
    const float* z = output + row * cols;
    ArgMax best{-INFINITY, LLONG_MAX};  // LLONG_MAX matches no label
    for (int64_t c = lane; c < cols; c += kGroup) {
      if (math::argmax_beats(z[c], static_cast<int64_t>(c), best.value,
                             static_cast<int64_t>(best.index))) {
        best = {z[c], static_cast<long long>(c)};
      }
    }
    best = group_reduce<kGroup>(best, ArgMaxOp{});
    if (lane == 0 && best.index == labels[row]) ++count;
  }
  // Integer atomics: the total does not depend on the order.
  if (lane == 0 && count > 0) atomicAdd(correct, count);
}

__global__ void accumulate_correct_per_output_kernel(const float* output, const float* target,
                                                     int64_t n, int32_t* correct) {
  int count = 0;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += stride) {
    count += math::output_correct(output[i], target[i]) ? 1 : 0;
  }
  // Integer atomics: the total does not depend on the order.
  if (count > 0) atomicAdd(correct, count);
}

// Launches kernel<32> (a warp per row) for narrow rows, kernel<kBlockThreads> otherwise.
#define MLPX_LAUNCH_ROWS(kernel, rows, cols, stream, ...)                                 \
  do {                                                                                    \
    if ((cols) <= kWarpRowMaxCols) {                                                      \
      launch_rows<32>(kernel<32>, rows, cols, stream, __VA_ARGS__);                       \
    } else {                                                                              \
      launch_rows<kBlockThreads>(kernel<kBlockThreads>, rows, cols, stream, __VA_ARGS__); \
    }                                                                                     \
  } while (0)

template <typename Member, int kGroup>
void launch_elementwise_loss(const float* output, const float* target, float* row_loss, float* grad,
                             int64_t rows, int64_t cols, int64_t grad_rows, const float* row_weight,
                             cudaStream_t stream) {
  const math::LossScales scales = math::loss_scales<Member>(grad_rows, cols);
  launch_rows<kGroup>(elementwise_loss_kernel<Member, kGroup>, rows, cols, stream, output, target,
                      row_loss, grad, static_cast<float>(scales.row),
                      static_cast<float>(scales.grad), row_weight);
}

template <typename Member>
void elementwise_loss_for(const float* output, const float* target, float* row_loss, float* grad,
                          int64_t rows, int64_t cols, int64_t grad_rows, const float* row_weight,
                          cudaStream_t stream) {
  if (cols <= kWarpRowMaxCols) {
    launch_elementwise_loss<Member, 32>(output, target, row_loss, grad, rows, cols, grad_rows,
                                        row_weight, stream);
  } else {
    launch_elementwise_loss<Member, kBlockThreads>(output, target, row_loss, grad, rows, cols,
                                                   grad_rows, row_weight, stream);
  }
}

}  // namespace

void elementwise_loss(Loss loss, const float* output, const float* target, float* row_loss,
                      float* grad, int64_t rows, int64_t cols, int64_t grad_rows,
                      const float* row_weight, Device device) {
  const cudaStream_t stream = stream_of(device);
  math::visit(loss, [&](auto member) {
    using Member = decltype(member);
    // The public entry sends only elementwise losses here.
    if constexpr (!Member::kIsRowwise) {
      elementwise_loss_for<Member>(output, target, row_loss, grad, rows, cols, grad_rows,
                                   row_weight, stream);
    }
  });
}

void cross_entropy(const float* logits, const int32_t* labels, float* row_loss, float* grad,
                   int64_t rows, int64_t cols, int64_t grad_rows, const float* row_weight,
                   double label_smoothing, Device device) {
  const cudaStream_t stream = stream_of(device);
  DeviceStatus* status = context(device.index).status;
  const float grad_scale = static_cast<float>(
      math::loss_scales<math::LossMember<Loss::kCrossEntropy>>(grad_rows, cols).grad);
  MLPX_LAUNCH_ROWS(cross_entropy_kernel, rows, cols, stream, logits, labels, row_loss, grad,
                   grad_scale, row_weight, static_cast<float>(label_smoothing), status);
}

void kl_div(const float* logits, const float* target, float* row_loss, float* grad, int64_t rows,
            int64_t cols, int64_t grad_rows, const float* row_weight, Device device) {
  const cudaStream_t stream = stream_of(device);
  const float grad_scale =
      static_cast<float>(math::loss_scales<math::LossMember<Loss::kKlDiv>>(grad_rows, cols).grad);
  MLPX_LAUNCH_ROWS(kl_div_kernel, rows, cols, stream, logits, target, row_loss, grad, grad_scale,
                   row_weight);
}

void accumulate_sum(const float* values, int64_t n, float* accumulator, double scale,
                    Device device) {
  const cudaStream_t stream = stream_of(device);
  if (n <= 0) return;
  MLPX_LAUNCH(accumulate_sum_kernel, 1, kSumThreads, 0, stream)(values, n, accumulator, scale);
  MLPX_CUDA_CHECK_LAUNCH();
}

void normalize_row_weights(const float* weights, int64_t n, float* normalized, Device device) {
  const cudaStream_t stream = stream_of(device);
  if (n <= 0) return;
  MLPX_LAUNCH(normalize_row_weights_kernel, 1, kSumThreads, 0, stream)(weights, n, normalized);
  MLPX_CUDA_CHECK_LAUNCH();
}

void accumulate_correct(const float* output, const int32_t* labels, int64_t rows, int64_t cols,
                        int32_t* correct, Device device) {
  const cudaStream_t stream = stream_of(device);
  MLPX_LAUNCH_ROWS(accumulate_correct_kernel, rows, cols, stream, output, labels, correct);
}

void accumulate_correct_per_output(const float* output, const float* target, int64_t n,
                                   int32_t* correct, Device device) {
  const cudaStream_t stream = stream_of(device);
  if (n <= 0) return;
  constexpr int kThreads = 256;
  const int64_t blocks = std::min<int64_t>((n + kThreads - 1) / kThreads, 1024);
  MLPX_LAUNCH(accumulate_correct_per_output_kernel, static_cast<unsigned>(blocks), kThreads, 0,
              stream)
  (output, target, n, correct);
  MLPX_CUDA_CHECK_LAUNCH();
}

}  // namespace mlpx::cuda
