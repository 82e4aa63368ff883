#include "mlpx/norm.h"

#include "core/check.h"
#include "core/dispatch.h"
#include "cpu/norm.h"
#include "kernels/norm.h"
#include "mlpx/error.h"

namespace mlpx {

namespace {

using math::NormColumnOperands;
using math::NormColumnTerm;

// out[C] = scale * column sums of `term` over x's rows (x or dy gives the shape).
void column_sum(const char* op, NormColumnTerm term, const Tensor& shaped, const Tensor& x,
                const Tensor& dy, const Tensor& mean, const Tensor& stat, double eps, double scale,
                Tensor& out) {
  const int64_t rows = shaped.rows(), cols = shaped.cols();
  auto ptr = [](const Tensor& t, auto zero) {
    using T = decltype(zero);
    return t.defined() ? t.data<T>() : static_cast<const T*>(nullptr);
  };
  detail::dispatch(
      op, shaped,
      [&] {
        const NormColumnOperands<float> o{ptr(x, 0.0f), ptr(dy, 0.0f), ptr(mean, 0.0f),
                                          ptr(stat, 0.0f), static_cast<float>(eps)};
        cuda::norm_column_sum(term, o, static_cast<float>(scale), out.data<float>(), rows, cols,
                              shaped.device());
      },
      [&](auto zero) {
        using T = decltype(zero);
        const NormColumnOperands<T> o{ptr(x, zero), ptr(dy, zero), ptr(mean, zero), ptr(stat, zero),
                                      static_cast<T>(eps)};
        cpu::norm_column_sum(term, o, static_cast<T>(scale), out.data<T>(), rows, cols);
      });
}

void check_columns(const char* op, const Tensor& x, std::initializer_list<const Tensor*> vectors,
                   std::initializer_list<const char*> names) {
  const auto* name = names.begin();
  for (const Tensor* v : vectors) detail::check_tensor(op, *name++, *v, {x.cols()}, x);
}

void check_count(const char* op, double count) {
  MLPX_CHECK(count >= 1.0, ShapeError, op, ": expected a row count >= 1, found ", count);
}

}  // namespace

void layer_norm_forward(const Tensor& x, const Tensor& weight, const Tensor& bias, double eps,
                        Tensor& y, Tensor& mean, Tensor& rstd) {
  const char* op = "layer_norm_forward";
  detail::check_2d(op, "x", x);
  detail::check_float(op, "x", x);
  check_columns(op, x, {&weight, &bias}, {"weight", "bias"});
  detail::check_like(op, "y (like x)", y, x);
  detail::check_tensor(op, "mean", mean, {x.rows()}, x);
  detail::check_tensor(op, "rstd", rstd, {x.rows()}, x);
  const int64_t rows = x.rows(), cols = x.cols();
  detail::dispatch(
      op, x,
      [&] {
        cuda::layer_norm_forward(x.data<float>(), weight.data<float>(), bias.data<float>(),
                                 static_cast<float>(eps), y.data<float>(), mean.data<float>(),
                                 rstd.data<float>(), rows, cols, x.device());
      },
      [&](auto zero) {
        using T = decltype(zero);
        cpu::layer_norm_forward(x.data<T>(), weight.data<T>(), bias.data<T>(), static_cast<T>(eps),
                                y.data<T>(), mean.data<T>(), rstd.data<T>(), rows, cols);
      });
}

void layer_norm_backward(const Tensor& x, const Tensor& weight, const Tensor& mean,
                         const Tensor& rstd, const Tensor& dy, Tensor& dx, Tensor& dweight,
                         Tensor& dbias) {
  const char* op = "layer_norm_backward";
  detail::check_2d(op, "x", x);
  detail::check_float(op, "x", x);
  detail::check_like(op, "dy (like x)", dy, x);
  detail::check_like(op, "dx (like x)", dx, x);
  check_columns(op, x, {&weight, &dweight, &dbias}, {"weight", "dweight", "dbias"});
  detail::check_tensor(op, "mean", mean, {x.rows()}, x);
  detail::check_tensor(op, "rstd", rstd, {x.rows()}, x);
  // The parameter gradients read dy before dx (which may be dy) is written.
  column_sum(op, NormColumnTerm::kDyXhatByRow, x, x, dy, mean, rstd, 0.0, 1.0, dweight);
  column_sum(op, NormColumnTerm::kDy, x, Tensor(), dy, Tensor(), Tensor(), 0.0, 1.0, dbias);
  const int64_t rows = x.rows(), cols = x.cols();
  detail::dispatch(
      op, x,
      [&] {
        cuda::layer_norm_input_grad(x.data<float>(), weight.data<float>(), mean.data<float>(),
                                    rstd.data<float>(), dy.data<float>(), dx.data<float>(), rows,
                                    cols, x.device());
      },
      [&](auto zero) {
        using T = decltype(zero);
        cpu::layer_norm_input_grad(x.data<T>(), weight.data<T>(), mean.data<T>(), rstd.data<T>(),
                                   dy.data<T>(), dx.data<T>(), rows, cols);
      });
}

void batch_norm_mean(const Tensor& x, double count, Tensor& mean) {
  const char* op = "batch_norm_mean";
  detail::check_2d(op, "x", x);
  detail::check_float(op, "x", x);
  check_columns(op, x, {&mean}, {"mean"});
  check_count(op, count);
  column_sum(op, NormColumnTerm::kX, x, x, Tensor(), Tensor(), Tensor(), 0.0, 1.0 / count, mean);
}

void batch_norm_variance(const Tensor& x, const Tensor& mean, double count, Tensor& var) {
  const char* op = "batch_norm_variance";
  detail::check_2d(op, "x", x);
  detail::check_float(op, "x", x);
  check_columns(op, x, {&mean, &var}, {"mean", "var"});
  check_count(op, count);
  column_sum(op, NormColumnTerm::kCenteredSquare, x, x, Tensor(), mean, Tensor(), 0.0, 1.0 / count,
             var);
}

void batch_norm_apply(const Tensor& x, const Tensor& mean, const Tensor& var, const Tensor& weight,
                      const Tensor& bias, double eps, Tensor& y) {
  const char* op = "batch_norm_apply";
  detail::check_2d(op, "x", x);
  detail::check_float(op, "x", x);
  check_columns(op, x, {&mean, &var, &weight, &bias}, {"mean", "var", "weight", "bias"});
  detail::check_like(op, "y (like x)", y, x);
  const int64_t rows = x.rows(), cols = x.cols();
  detail::dispatch(
      op, x,
      [&] {
        cuda::batch_norm_apply(x.data<float>(), mean.data<float>(), var.data<float>(),
                               weight.data<float>(), bias.data<float>(), static_cast<float>(eps),
                               y.data<float>(), rows, cols, x.device());
      },
      [&](auto zero) {
        using T = decltype(zero);
        cpu::batch_norm_apply(x.data<T>(), mean.data<T>(), var.data<T>(), weight.data<T>(),
                              bias.data<T>(), static_cast<T>(eps), y.data<T>(), rows, cols);
      });
}

void batch_norm_update_running(const Tensor& mean, const Tensor& var, double count, double momentum,
                               Tensor& running_mean, Tensor& running_var,
                               Tensor& num_batches_tracked) {
  const char* op = "batch_norm_update_running";
  detail::check_float(op, "mean", mean);
  MLPX_CHECK(mean.dim() == 1, ShapeError, op, ": expected mean [C], found ", mean.describe());
  detail::check_like(op, "var (like mean)", var, mean);
  detail::check_like(op, "running_mean (like mean)", running_mean, mean);
  detail::check_like(op, "running_var (like mean)", running_var, mean);
  detail::check_tensor(op, "num_batches_tracked", num_batches_tracked, {1}, mean);
  // torch refuses a training batch of one row: its unbiased variance divides by zero.
  MLPX_CHECK(count >= 2.0, ValueError, "batch norm: expected more than 1 row per training batch ",
             "(the running variance is unbiased), found ", count);
  const int64_t cols = mean.numel();
  detail::dispatch(
      op, mean,
      [&] {
        cuda::batch_norm_update_running(mean.data<float>(), var.data<float>(),
                                        static_cast<float>(count), static_cast<float>(momentum),
                                        running_mean.data<float>(), running_var.data<float>(),
                                        num_batches_tracked.data<float>(), cols, mean.device());
      },
      [&](auto zero) {
        using T = decltype(zero);
        cpu::batch_norm_update_running(mean.data<T>(), var.data<T>(), static_cast<T>(count),
                                       static_cast<T>(momentum), running_mean.data<T>(),
                                       running_var.data<T>(), num_batches_tracked.data<T>(), cols);
      });
}

void batch_norm_param_grads(const Tensor& x, const Tensor& mean, const Tensor& var, double eps,
                            const Tensor& dy, Tensor& dweight, Tensor& dbias) {
  const char* op = "batch_norm_param_grads";
  detail::check_2d(op, "x", x);
  detail::check_float(op, "x", x);
  detail::check_like(op, "dy (like x)", dy, x);
  check_columns(op, x, {&mean, &var, &dweight, &dbias}, {"mean", "var", "dweight", "dbias"});
  column_sum(op, NormColumnTerm::kDyXhatByColumn, x, x, dy, mean, var, eps, 1.0, dweight);
  column_sum(op, NormColumnTerm::kDy, x, Tensor(), dy, Tensor(), Tensor(), 0.0, 1.0, dbias);
}

void batch_norm_input_grad(const Tensor& x, const Tensor& mean, const Tensor& var,
                           const Tensor& weight, const Tensor& dweight_sum, const Tensor& dbias_sum,
                           double eps, double count, const Tensor& dy, Tensor& dx) {
  const char* op = "batch_norm_input_grad";
  detail::check_2d(op, "x", x);
  detail::check_float(op, "x", x);
  detail::check_like(op, "dy (like x)", dy, x);
  detail::check_like(op, "dx (like x)", dx, x);
  check_columns(op, x, {&mean, &var, &weight, &dweight_sum, &dbias_sum},
                {"mean", "var", "weight", "dweight_sum", "dbias_sum"});
  check_count(op, count);
  const int64_t rows = x.rows(), cols = x.cols();
  detail::dispatch(
      op, x,
      [&] {
        cuda::batch_norm_input_grad(x.data<float>(), dy.data<float>(), mean.data<float>(),
                                    var.data<float>(), weight.data<float>(),
                                    dweight_sum.data<float>(), dbias_sum.data<float>(),
                                    static_cast<float>(eps), static_cast<float>(1.0 / count),
                                    dx.data<float>(), rows, cols, x.device());
      },
      [&](auto zero) {
        using T = decltype(zero);
        cpu::batch_norm_input_grad(x.data<T>(), dy.data<T>(), mean.data<T>(), var.data<T>(),
                                   weight.data<T>(), dweight_sum.data<T>(), dbias_sum.data<T>(),
                                   static_cast<T>(eps), static_cast<T>(1.0 / count), dx.data<T>(),
                                   rows, cols);
      });
}

}  // namespace mlpx
