#include "mlpx/loss.h"

#include <type_traits>

#include "core/check.h"
#include "core/dispatch.h"
#include "core/names.h"
#include "cpu/loss.h"
#include "kernels/loss.h"
#include "math/loss.h"
#include "mlpx/error.h"

namespace mlpx {

Loss parse_loss(const std::string& name) {
  return detail::parse_enum(detail::kLossNames, name, "loss");
}

std::string loss_name(Loss loss) { return detail::enum_name(detail::kLossNames, loss); }

bool loss_uses_class_labels(Loss loss) {
  return math::visit(loss, [](auto member) { return decltype(member)::kUsesClassLabels; });
}

Activation prediction_activation(Loss loss) {
  return math::visit(loss, [](auto member) { return decltype(member)::kPrediction; });
}

void loss_forward_backward(Loss loss, const Tensor& output, const Tensor& target, Tensor& row_loss,
                           Tensor* grad, int64_t grad_rows, const Tensor* row_weight,
                           double label_smoothing) {
  const std::string op = loss_name(loss);
  MLPX_CHECK(label_smoothing >= 0.0 && label_smoothing <= 1.0, ValueError, op,
             ": expected label_smoothing in [0, 1], found ", label_smoothing);
  // Only the softmax cross-entropy pass takes a smoothed target (as in PyTorch).
  const bool takes_smoothing = math::visit(loss, [](auto member) {
    using Member = decltype(member);
    if constexpr (Member::kIsRowwise) {
      return std::is_same_v<typename Member::FusedPass, math::CrossEntropyPass>;
    } else {
      return false;
    }
  });
  MLPX_CHECK(label_smoothing == 0.0 || takes_smoothing, ValueError, op,
             ": expected label_smoothing 0 (it applies to cross_entropy), found ", label_smoothing);
  detail::check_2d(op, "output [B, K]", output);
  detail::check_float(op, "output", output);
  const int64_t rows = output.rows(), cols = output.cols();
  if (grad_rows == 0) grad_rows = rows;
  MLPX_CHECK(grad_rows >= rows, ShapeError, op, ": expected grad_rows >= the ", rows,
             " rows given (their batch), found ", grad_rows);
  if (loss_uses_class_labels(loss)) {
    detail::check_tensor(op, "target (class indices)", target, {rows}, DType::kInt32,
                         output.device());
  } else {
    detail::check_tensor(op, "target", target, output.shape(), output);
  }
  detail::check_tensor(op, "row_loss", row_loss, {rows}, output);
  if (grad != nullptr) detail::check_tensor(op, "grad", *grad, output.shape(), output);
  if (row_weight != nullptr) detail::check_tensor(op, "row_weight", *row_weight, {rows}, output);

  math::visit(loss, [&](auto member) {
    using Member = decltype(member);
    detail::dispatch(
        op, output,
        [&] {
          float* g = grad != nullptr ? grad->data<float>() : nullptr;
          const float* w = row_weight != nullptr ? row_weight->data<float>() : nullptr;
          const Device device = output.device();
          if constexpr (!Member::kIsRowwise) {
            cuda::elementwise_loss(loss, output.data<float>(), target.data<float>(),
                                   row_loss.data<float>(), g, rows, cols, grad_rows, w, device);
          } else if constexpr (std::is_same_v<typename Member::FusedPass, math::CrossEntropyPass>) {
            cuda::cross_entropy(output.data<float>(), target.data<int32_t>(),
                                row_loss.data<float>(), g, rows, cols, grad_rows, w,
                                label_smoothing, device);
          } else {
            static_assert(std::is_same_v<typename Member::FusedPass, math::KlDivPass>);
            cuda::kl_div(output.data<float>(), target.data<float>(), row_loss.data<float>(), g,
                         rows, cols, grad_rows, w, device);
          }
        },
        [&](auto zero) {
          using T = decltype(zero);
          T* g = grad != nullptr ? grad->data<T>() : nullptr;
          const T* w = row_weight != nullptr ? row_weight->data<T>() : nullptr;
          if constexpr (!Member::kIsRowwise) {
            cpu::elementwise_loss(loss, output.data<T>(), target.data<T>(), row_loss.data<T>(), g,
                                  rows, cols, grad_rows, w);
          } else if constexpr (std::is_same_v<typename Member::FusedPass, math::CrossEntropyPass>) {
            cpu::cross_entropy(output.data<T>(), target.data<int32_t>(), row_loss.data<T>(), g,
                               rows, cols, grad_rows, w, label_smoothing);
          } else {
            static_assert(std::is_same_v<typename Member::FusedPass, math::KlDivPass>);
            cpu::kl_div(output.data<T>(), target.data<T>(), row_loss.data<T>(), g, rows, cols,
                        grad_rows, w);
          }
        });
  });
}

void accumulate_sum(const Tensor& values, Tensor& accumulator, double scale) {
  detail::check_float("accumulate_sum", "values", values);
  MLPX_CHECK(values.dim() == 1, ShapeError, "accumulate_sum: expected values [N], found ",
             values.describe());
  detail::check_tensor("accumulate_sum", "accumulator", accumulator, {1}, values);
  const int64_t n = values.numel();
  detail::dispatch(
      "accumulate_sum", values,
      [&] {
        cuda::accumulate_sum(values.data<float>(), n, accumulator.data<float>(), scale,
                             values.device());
      },
      [&](auto zero) {
        using T = decltype(zero);
        cpu::accumulate_sum(values.data<T>(), n, accumulator.data<T>(), scale);
      });
}

void normalize_row_weights(const Tensor& weights, Tensor& normalized) {
  detail::check_float("normalize_row_weights", "weights", weights);
  MLPX_CHECK(weights.dim() == 1, ShapeError, "normalize_row_weights: expected weights [N], found ",
             weights.describe());
  detail::check_tensor("normalize_row_weights", "normalized", normalized, weights.shape(), weights);
  const int64_t n = weights.numel();
  detail::dispatch(
      "normalize_row_weights", weights,
      [&] {
        cuda::normalize_row_weights(weights.data<float>(), n, normalized.data<float>(),
                                    weights.device());
      },
      [&](auto zero) {
        using T = decltype(zero);
        cpu::normalize_row_weights(weights.data<T>(), n, normalized.data<T>());
      });
}

void accumulate_correct(const Tensor& output, const Tensor& labels, Tensor& correct) {
  detail::check_2d("accumulate_correct", "output [B, K]", output);
  detail::check_float("accumulate_correct", "output", output);
  const int64_t rows = output.rows(), cols = output.cols();
  detail::check_tensor("accumulate_correct", "labels", labels, {rows}, DType::kInt32,
                       output.device());
  detail::check_tensor("accumulate_correct", "correct", correct, {1}, DType::kInt32,
                       output.device());
  detail::dispatch(
      "accumulate_correct", output,
      [&] {
        cuda::accumulate_correct(output.data<float>(), labels.data<int32_t>(), rows, cols,
                                 correct.data<int32_t>(), output.device());
      },
      [&](auto zero) {
        using T = decltype(zero);
        cpu::accumulate_correct(output.data<T>(), labels.data<int32_t>(), rows, cols,
                                correct.data<int32_t>());
      });
}

void accumulate_correct_per_output(const Tensor& output, const Tensor& target, Tensor& correct) {
  detail::check_2d("accumulate_correct_per_output", "output [B, K]", output);
  detail::check_float("accumulate_correct_per_output", "output", output);
  const int64_t n = output.numel();
  detail::check_tensor("accumulate_correct_per_output", "target", target, output.shape(),
                       output.dtype(), output.device());
  detail::check_tensor("accumulate_correct_per_output", "correct", correct, {1}, DType::kInt32,
                       output.device());
  detail::dispatch(
      "accumulate_correct_per_output", output,
      [&] {
        cuda::accumulate_correct_per_output(output.data<float>(), target.data<float>(), n,
                                            correct.data<int32_t>(), output.device());
      },
      [&](auto zero) {
        using T = decltype(zero);
        cpu::accumulate_correct_per_output(output.data<T>(), target.data<T>(), n,
                                           correct.data<int32_t>());
      });
}

}  // namespace mlpx
