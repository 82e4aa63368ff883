#include "cpu/norm.h"

#include <cstddef>
#include <vector>

namespace mlpx::cpu {

template <typename T>
void layer_norm_forward(const T* x, const T* weight, const T* bias, T eps, T* y, T* mean, T* rstd,
                        int64_t rows, int64_t cols) {
  for (int64_t r = 0; r < rows; ++r) {
    const T* xr = x + r * cols;
    T* yr = y + r * cols;
    T sum = T(0);
    for (int64_t c = 0; c < cols; ++c) sum += xr[c];
    const T m = sum / static_cast<T>(cols);
    T squares = T(0);
    for (int64_t c = 0; c < cols; ++c) squares += (xr[c] - m) * (xr[c] - m);
    const T s = math::norm_rstd(squares / static_cast<T>(cols), eps);
    for (int64_t c = 0; c < cols; ++c) yr[c] = math::norm_value(xr[c], m, s, weight[c], bias[c]);
    mean[r] = m;
    rstd[r] = s;
  }
}

template <typename T>
void layer_norm_input_grad(const T* x, const T* weight, const T* mean, const T* rstd, const T* dy,
                           T* dx, int64_t rows, int64_t cols) {
  for (int64_t r = 0; r < rows; ++r) {
    const T* xr = x + r * cols;
    const T* dyr = dy + r * cols;
    T* dxr = dx + r * cols;
    T sum = T(0), sum_x_hat = T(0);
    for (int64_t c = 0; c < cols; ++c) {
      const T dx_hat = dyr[c] * weight[c];
      sum += dx_hat;
      sum_x_hat += dx_hat * ((xr[c] - mean[r]) * rstd[r]);
    }
    const T n = static_cast<T>(cols);
    for (int64_t c = 0; c < cols; ++c) {
      const T x_hat = (xr[c] - mean[r]) * rstd[r];
      dxr[c] = math::norm_input_grad(dyr[c], x_hat, weight[c], rstd[r], sum / n, sum_x_hat / n);
    }
  }
}

template <typename T>
void norm_column_sum(math::NormColumnTerm term, const math::NormColumnOperands<T>& operands,
                     T scale, T* out, int64_t rows, int64_t cols) {
  math::visit_column_term(term, [&](auto kind) {
    constexpr math::NormColumnTerm kTerm = decltype(kind)::value;
    constexpr int kLanes = math::kColumnSumLanes;
    // As cpu::sum_rows: lane l sums rows l, l + kLanes, ...; then the lanes' tree.
    std::vector<T> partial(static_cast<std::size_t>(kLanes * cols), T(0));
    for (int64_t r = 0; r < rows; ++r) {
      T* p = partial.data() + (r % kLanes) * cols;
      for (int64_t c = 0; c < cols; ++c) {
        p[c] += math::norm_column_term<kTerm>(operands, r, c, cols);
      }
    }
    T lanes[kLanes];
    for (int64_t c = 0; c < cols; ++c) {
      for (int l = 0; l < kLanes; ++l) lanes[l] = partial[l * cols + c];
      out[c] = scale * math::combine_column_lanes(lanes);
    }
  });
}

template <typename T>
void batch_norm_apply(const T* x, const T* mean, const T* var, const T* weight, const T* bias,
                      T eps, T* y, int64_t rows, int64_t cols) {
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < cols; ++c) {
      const int64_t i = r * cols + c;
      y[i] = math::norm_value(x[i], mean[c], math::norm_rstd(var[c], eps), weight[c], bias[c]);
    }
  }
}

template <typename T>
void batch_norm_input_grad(const T* x, const T* dy, const T* mean, const T* var, const T* weight,
                           const T* dweight_sum, const T* dbias_sum, T eps, T inv_count, T* dx,
                           int64_t rows, int64_t cols) {
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < cols; ++c) {
      const int64_t i = r * cols + c;
      const T rstd = math::norm_rstd(var[c], eps);
      dx[i] = math::norm_input_grad(dy[i], (x[i] - mean[c]) * rstd, weight[c], rstd,
                                    weight[c] * dbias_sum[c] * inv_count,
                                    weight[c] * dweight_sum[c] * inv_count);
    }
  }
}

template <typename T>
void batch_norm_update_running(const T* mean, const T* var, T count, T momentum, T* running_mean,
                               T* running_var, T* batches, int64_t cols) {
  batches[0] += T(1);
  const T unbias = count / (count - T(1));
  for (int64_t c = 0; c < cols; ++c) {
    running_mean[c] = math::running_update(running_mean[c], mean[c], momentum);
    running_var[c] = math::running_update(running_var[c], var[c] * unbias, momentum);
  }
}

template void layer_norm_forward(const float*, const float*, const float*, float, float*, float*,
                                 float*, int64_t, int64_t);
template void layer_norm_input_grad(const float*, const float*, const float*, const float*,
                                    const float*, float*, int64_t, int64_t);
template void norm_column_sum(math::NormColumnTerm, const math::NormColumnOperands<float>&, float,
                              float*, int64_t, int64_t);
template void batch_norm_apply(const float*, const float*, const float*, const float*, const float*,
                               float, float*, int64_t, int64_t);
template void batch_norm_input_grad(const float*, const float*, const float*, const float*,
                                    const float*, const float*, const float*, float, float, float*,
                                    int64_t, int64_t);
template void batch_norm_update_running(const float*, const float*, float, float, float*, float*,
                                        float*, int64_t);
template void layer_norm_forward(const double*, const double*, const double*, double, double*,
                                 double*, double*, int64_t, int64_t);
template void layer_norm_input_grad(const double*, const double*, const double*, const double*,
                                    const double*, double*, int64_t, int64_t);
template void norm_column_sum(math::NormColumnTerm, const math::NormColumnOperands<double>&, double,
                              double*, int64_t, int64_t);
template void batch_norm_apply(const double*, const double*, const double*, const double*,
                               const double*, double, double*, int64_t, int64_t);
template void batch_norm_input_grad(const double*, const double*, const double*, const double*,
                                    const double*, const double*, const double*, double, double,
                                    double*, int64_t, int64_t);
template void batch_norm_update_running(const double*, const double*, double, double, double*,
                                        double*, double*, int64_t);

}  // namespace mlpx::cpu
