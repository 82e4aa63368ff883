#include "cpu/loss.h"

#include <algorithm>
#include <cstdint>
#include <limits>
#include <string>

#include "cpu/parallel.h"
#include "math/loss.h"
#include "mlpx/error.h"

namespace mlpx::cpu {

namespace {

template <typename Member, typename T>
void elementwise_loss_rows(const T* output, const T* target, T* row_loss, T* grad, int64_t rows,
                           int64_t cols, int64_t grad_rows, const T* row_weight) {
  const math::LossScales scales = math::loss_scales<Member>(grad_rows, cols);
  const T row_scale = static_cast<T>(scales.row), grad_scale = static_cast<T>(scales.grad);
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t base = r * cols;
    const T weight = math::row_weight_of(row_weight, r);
    T sum = T(0);
    for (int64_t c = 0; c < cols; ++c) {
      const math::ElementLoss<T> e = Member::element(output[base + c], target[base + c]);
      sum += e.value;
      if (grad != nullptr) grad[base + c] = e.grad * grad_scale * weight;
    }
    row_loss[r] = sum * row_scale * weight;
  }
}

}  // namespace

template <typename T>
void elementwise_loss(Loss loss, const T* output, const T* target, T* row_loss, T* grad,
                      int64_t rows, int64_t cols, int64_t grad_rows, const T* row_weight) {
  math::visit(loss, [&](auto member) {
    using Member = decltype(member);
    if constexpr (Member::kIsRowwise) {
      throw Error("elementwise_loss: expected an elementwise loss, found " +
                  std::string(Member::kName));
    } else {
      elementwise_loss_rows<Member>(output, target, row_loss, grad, rows, cols, grad_rows,
                                    row_weight);
    }
  });
}

template <typename T>
void cross_entropy(const T* logits, const int32_t* labels, T* row_loss, T* grad, int64_t rows,
                   int64_t cols, int64_t grad_rows, const T* row_weight, double label_smoothing) {
  for (int64_t r = 0; r < rows; ++r) {
    MLPX_CHECK(labels[r] >= 0 && labels[r] < cols, ValueError, "cross_entropy: label ", labels[r],
               " in row ", r, ": expected a class index in [0, ", cols, ")");
  }
  const T grad_scale = static_cast<T>(
      math::loss_scales<math::LossMember<Loss::kCrossEntropy>>(grad_rows, cols).grad);
  const T smoothing = static_cast<T>(label_smoothing);
  const T inv_cols = T(1) / static_cast<T>(cols);
  const auto loss_rows = [&](int64_t first, int64_t last) {
    for (int64_t r = first; r < last; ++r) {
      const T* z = logits + r * cols;
      const int64_t label = labels[r];
      math::MaxSum<T> acc = math::max_sum_empty<T>();
      T z_sum = T(0);
      for (int64_t c = 0; c < cols; ++c) {
        math::max_sum_push(acc, z[c]);
        z_sum += z[c];
      }
      // Read before grad is written, so grad may share memory with the logits.
      const T z_label = z[label];
      const T weight = math::row_weight_of(row_weight, r);
      if (grad != nullptr) {
        const T inv_sum = T(1) / acc.sum;
        T* g = grad + r * cols;
        for (int64_t c = 0; c < cols; ++c) {
          g[c] = math::cross_entropy_grad(z[c], c == label, acc.max, inv_sum, grad_scale * weight,
                                          smoothing, inv_cols);
        }
      }
      row_loss[r] =
          math::smoothed_cross_entropy_row_loss(acc, z_label, z_sum, smoothing, inv_cols) * weight;
    }
  };
  // Rows split over mlpx's threads (cpu/parallel.h), about 65536 logits a chunk: each row alone,
  // so the same bits. A full batch's pass (54,000 rows of 10 exp each) ran on one core while
  // the other waited.
  parallel_for(rows, std::max<int64_t>(1, 65536 / std::max<int64_t>(cols, 1)), loss_rows);
}

template <typename T>
void kl_div(const T* logits, const T* target, T* row_loss, T* grad, int64_t rows, int64_t cols,
            int64_t grad_rows, const T* row_weight) {
  const T grad_scale =
      static_cast<T>(math::loss_scales<math::LossMember<Loss::kKlDiv>>(grad_rows, cols).grad);
  for (int64_t r = 0; r < rows; ++r) {
    const T* z = logits + r * cols;
    const T* t = target + r * cols;
    math::MaxSum<T> acc = math::max_sum_empty<T>();
    T target_sum = T(0);
    for (int64_t c = 0; c < cols; ++c) {
      math::max_sum_push(acc, z[c]);
      target_sum += t[c];
    }
    const T log_sum = math::log_of(acc.sum), inv_sum = T(1) / acc.sum;
    const T weight = math::row_weight_of(row_weight, r);
    T loss = T(0);
    for (int64_t c = 0; c < cols; ++c) {
      loss += math::kl_div_term(z[c], t[c], acc.max, log_sum);
      if (grad != nullptr) {
        grad[r * cols + c] =
            math::kl_div_grad(z[c], t[c], acc.max, inv_sum, target_sum, grad_scale * weight);
      }
    }
    row_loss[r] = loss * weight;
  }
}

template <typename T>
void accumulate_sum(const T* values, int64_t n, T* accumulator, double scale) {
  double sum = 0.0;
  for (int64_t i = 0; i < n; ++i) sum += static_cast<double>(values[i]);
  accumulator[0] = static_cast<T>(static_cast<double>(accumulator[0]) + scale * sum);
}

template <typename T>
void normalize_row_weights(const T* weights, int64_t n, T* normalized) {
  double sum = 0.0;
  for (int64_t i = 0; i < n; ++i) sum += static_cast<double>(weights[i]);
  for (int64_t i = 0; i < n; ++i) {
    normalized[i] = static_cast<T>(
        math::normalized_row_weight(static_cast<double>(weights[i]), static_cast<double>(n), sum));
  }
}

template <typename T>
void accumulate_correct(const T* output, const int32_t* labels, int64_t rows, int64_t cols,
                        int32_t* correct) {
  int32_t count = 0;
  for (int64_t r = 0; r < rows; ++r) {
    const T* z = output + r * cols;
    T best = -std::numeric_limits<T>::infinity();
    int64_t best_index = std::numeric_limits<int64_t>::max();  // matches no label
    for (int64_t c = 0; c < cols; ++c) {
      if (math::argmax_beats(z[c], c, best, best_index)) {
        best = z[c];
        best_index = c;
      }
    }
    if (best_index == labels[r]) ++count;
  }
  correct[0] += count;
}

template <typename T>
void accumulate_correct_per_output(const T* output, const T* target, int64_t n, int32_t* correct) {
  int32_t count = 0;
  for (int64_t i = 0; i < n; ++i) count += math::output_correct(output[i], target[i]) ? 1 : 0;
  correct[0] += count;
}

template void elementwise_loss(Loss, const float*, const float*, float*, float*, int64_t, int64_t,
                               int64_t, const float*);
template void elementwise_loss(Loss, const double*, const double*, double*, double*, int64_t,
                               int64_t, int64_t, const double*);
template void cross_entropy(const float*, const int32_t*, float*, float*, int64_t, int64_t, int64_t,
                            const float*, double);
template void cross_entropy(const double*, const int32_t*, double*, double*, int64_t, int64_t,
                            int64_t, const double*, double);
template void kl_div(const float*, const float*, float*, float*, int64_t, int64_t, int64_t,
                     const float*);
template void kl_div(const double*, const double*, double*, double*, int64_t, int64_t, int64_t,
                     const double*);
template void normalize_row_weights(const float*, int64_t, float*);
template void normalize_row_weights(const double*, int64_t, double*);
template void accumulate_sum(const float*, int64_t, float*, double);
template void accumulate_sum(const double*, int64_t, double*, double);
template void accumulate_correct(const float*, const int32_t*, int64_t, int64_t, int32_t*);
template void accumulate_correct(const double*, const int32_t*, int64_t, int64_t, int32_t*);
template void accumulate_correct_per_output(const float*, const float*, int64_t, int32_t*);
template void accumulate_correct_per_output(const double*, const double*, int64_t, int32_t*);

}  // namespace mlpx::cpu
