#include "mlpx/linear.h"

#include "core/check.h"
#include "core/dispatch.h"
#include "cpu/activation.h"
#include "cpu/bf16.h"
#include "cpu/linear.h"
#include "kernels/gemm.h"
#include "kernels/linear.h"
#include "mlpx/activation.h"
#include "mlpx/error.h"
#include "ops/gemm_bf16_weight.h"
#include "ops/linear_bf16.h"

namespace mlpx {

void add_bias(Tensor& y, const Tensor& bias) {
  detail::check_2d("add_bias", "y", y);
  detail::check_float("add_bias", "y", y);
  detail::check_tensor("add_bias", "bias", bias, {y.cols()}, y);
  detail::dispatch(
      "add_bias", y,
      [&] { cuda::add_bias(y.data<float>(), bias.data<float>(), y.rows(), y.cols(), y.device()); },
      [&](auto zero) {
        using T = decltype(zero);
        cpu::add_bias(y.data<T>(), bias.data<T>(), y.rows(), y.cols());
      });
}

void sum_rows(const Tensor& x, Tensor& sums) {
  detail::check_2d("sum_rows", "x", x);
  detail::check_float("sum_rows", "x", x);
  detail::check_tensor("sum_rows", "sums", sums, {x.cols()}, x);
  detail::dispatch(
      "sum_rows", x,
      [&] { cuda::sum_rows(x.data<float>(), sums.data<float>(), x.rows(), x.cols(), x.device()); },
      [&](auto zero) {
        using T = decltype(zero);
        cpu::sum_rows(x.data<T>(), sums.data<T>(), x.rows(), x.cols());
      });
}

void linear_forward(const Tensor& x, const Tensor& weight, const Tensor& bias, Tensor& y,
                    Precision precision, const uint16_t* weight_bf16) {
  detail::check_2d("linear_forward", "x", x);
  detail::check_float("linear_forward", "x", x);
  detail::check_2d("linear_forward", "weight", weight);
  const int64_t batch = x.rows(), in = x.cols(), out = weight.rows();
  detail::check_tensor("linear_forward", "weight", weight, {out, in}, x);
  // An undefined bias: a Linear without one (nn.Linear(bias=False)).
  if (bias.defined()) detail::check_tensor("linear_forward", "bias", bias, {out}, x);
  detail::check_tensor("linear_forward", "y", y, {batch, out}, x);
  if (precision == Precision::kBf16) {
    ops::gemm_bf16_weight(x, false, weight, weight_bf16, true, y);
  } else {
    gemm(x, false, weight, true, y, 1.0, 0.0, precision);
  }
  if (bias.defined()) add_bias(y, bias);
}

int64_t relu_mask_words(int64_t units) { return (units + 127) / 128 * 4; }

namespace {
// The cuBLASLt epilogue GEMMs take float32 on a CUDA device in fp32 or tf32 only.
bool takes_lt_epilogues(const Tensor& x, Precision precision) {
  return x.device().is_cuda() && precision != Precision::kBf16 && x.dtype() == DType::kFloat32;
}
}  // namespace

void linear_forward_epilogue(const Tensor& x, const Tensor& weight, const Tensor& bias, Tensor& y,
                             LinearEpilogue epilogue, Precision precision, Tensor* relu_mask) {
  MLPX_CHECK(epilogue != LinearEpilogue::kPlain && epilogue != LinearEpilogue::kBiasGeluTanh,
             ValueError, "linear_forward_epilogue: expected epilogue bias or bias+relu, found ",
             epilogue == LinearEpilogue::kPlain ? "plain" : "bias+gelu_tanh");
  const bool relu = epilogue == LinearEpilogue::kBiasRelu;
  MLPX_CHECK(relu_mask == nullptr || (relu && takes_lt_epilogues(x, precision)), ValueError,
             "linear_forward_epilogue: expected a ReLU mask only with bias+relu on a CUDA device "
             "in fp32 or tf32, found ",
             relu ? "" : "epilogue bias, ", x.describe(), " in ", precision_name(precision));
  if (!takes_lt_epilogues(x, precision)) {
    linear_forward(x, weight, bias, y, precision);
    if (relu) activation_forward(Activation::kRelu, y, y);
    return;
  }
  detail::check_2d("linear_forward_epilogue", "x", x);
  detail::check_2d("linear_forward_epilogue", "weight", weight);
  const int64_t batch = x.rows(), in = x.cols(), out = weight.rows();
  detail::check_tensor("linear_forward_epilogue", "weight", weight, {out, in}, x);
  detail::check_tensor("linear_forward_epilogue", "bias", bias, {out}, x);
  detail::check_tensor("linear_forward_epilogue", "y", y, {batch, out}, x);
  void* mask = nullptr;
  if (relu_mask != nullptr) {
    detail::check_tensor("linear_forward_epilogue", "relu_mask", *relu_mask,
                         {batch, relu_mask_words(out)}, DType::kInt32, x.device());
    mask = relu_mask->data<int32_t>();
  }
  cuda::gemm_bias_epilogue(x.device().index, batch, in, out, x.data<float>(), weight.data<float>(),
                           bias.data<float>(), y.data<float>(), relu, precision, mask,
                           relu_mask_words(out) * 32);
}

void linear_backward_epilogue(const Tensor& x, const Tensor& weight, const Tensor& dy,
                              Tensor& dweight, Tensor& dbias, Tensor* dx,
                              const Tensor* relu_mask_below, Precision precision) {
  const char* what = "linear_backward_epilogue";
  MLPX_CHECK(relu_mask_below == nullptr || (dx != nullptr && takes_lt_epilogues(x, precision)),
             ValueError, what,
             ": expected a ReLU mask of the layer below only with dx, on a CUDA device in fp32 "
             "or tf32, found ",
             dx == nullptr ? "no dx, " : "", x.describe(), " in ", precision_name(precision));
  if (!takes_lt_epilogues(x, precision) || x.rows() == 0) {
    linear_backward(x, weight, dy, dweight, dbias, dx, precision);
    return;
  }
  detail::check_2d(what, "x", x);
  detail::check_2d(what, "weight", weight);
  const int64_t batch = x.rows(), in = x.cols(), out = weight.rows();
  detail::check_tensor(what, "weight", weight, {out, in}, x);
  detail::check_tensor(what, "dy", dy, {batch, out}, x);
  detail::check_tensor(what, "dweight", dweight, {out, in}, x);
  if (dbias.defined()) detail::check_tensor(what, "dbias", dbias, {out}, x);
  if (dx != nullptr) detail::check_tensor(what, "dx", *dx, {batch, in}, x);
  const int device = x.device().index;
  if (dbias.defined()) {
    cuda::gemm_weight_grad_bgrad(device, batch, in, out, x.data<float>(), dy.data<float>(),
                                 dweight.data<float>(), dbias.data<float>(), precision);
  } else {
    gemm(dy, true, x, false, dweight, 1.0, 0.0, precision);  // dW[out, in] = dy^T x
  }
  if (dx == nullptr) return;
  if (relu_mask_below == nullptr) {
    gemm(dy, false, weight, false, *dx, 1.0, 0.0, precision);  // dx = dy W
    return;
  }
  detail::check_tensor(what, "relu_mask_below", *relu_mask_below, {batch, relu_mask_words(in)},
                       DType::kInt32, x.device());
  cuda::gemm_input_grad_drelu(device, batch, in, out, dy.data<float>(), weight.data<float>(),
                              relu_mask_below->data<int32_t>(), relu_mask_words(in) * 32,
                              dx->data<float>(), precision);
}

bool gelu_tanh_epilogue_fits(int64_t units) { return units > 0 && units % 8 == 0; }

void linear_forward_gelu_tanh(const Tensor& x, const Tensor& weight, const Tensor& bias, Tensor& z,
                              Tensor& y, Precision precision) {
  const char* what = "linear_forward_gelu_tanh";
  detail::check_2d(what, "x", x);
  detail::check_2d(what, "weight", weight);
  const int64_t batch = x.rows(), in = x.cols(), out = weight.rows();
  detail::check_tensor(what, "z", z, {batch, out}, x);
  detail::check_tensor(what, "y", y, {batch, out}, x);
  if (!takes_lt_epilogues(x, precision) || !gelu_tanh_epilogue_fits(out) || !bias.defined()) {
    linear_forward(x, weight, bias, z, precision);
    activation_forward(Activation::kGeluTanh, z, y);
    return;
  }
  detail::check_tensor(what, "weight", weight, {out, in}, x);
  detail::check_tensor(what, "bias", bias, {out}, x);
  // z is [batch, out] row-major: as cuBLASLt's aux (z^T column-major) its leading dimension is out.
  cuda::gemm_bias_gelu_tanh_epilogue(x.device().index, batch, in, out, x.data<float>(),
                                     weight.data<float>(), bias.data<float>(), y.data<float>(),
                                     z.data<float>(), out, precision);
}

void linear_input_grad_gelu_tanh(const Tensor& dy, const Tensor& weight, const Tensor& z_below,
                                 Tensor& dx, Tensor& dbias_below, Precision precision) {
  const char* what = "linear_input_grad_gelu_tanh";
  detail::check_2d(what, "dy", dy);
  detail::check_2d(what, "weight", weight);
  const int64_t batch = dy.rows(), in = weight.cols(), out = weight.rows();
  detail::check_tensor(what, "dy", dy, {batch, out}, dy);
  detail::check_tensor(what, "weight", weight, {out, in}, dy);
  detail::check_tensor(what, "z_below", z_below, {batch, in}, dy);
  detail::check_tensor(what, "dx", dx, {batch, in}, dy);
  if (dbias_below.defined()) detail::check_tensor(what, "dbias_below", dbias_below, {in}, dy);
  if (!takes_lt_epilogues(dy, precision) || !gelu_tanh_epilogue_fits(in) || batch == 0) {
    gemm(dy, false, weight, false, dx, 1.0, 0.0, precision);  // dx = dy W
    activation_backward(Activation::kGeluTanh, z_below, z_below, dx, dx);
    if (dbias_below.defined()) sum_rows(dx, dbias_below);
    return;
  }
  cuda::gemm_input_grad_dgelu(dy.device().index, batch, in, out, dy.data<float>(),
                              weight.data<float>(), z_below.data<float>(), in, dx.data<float>(),
                              dbias_below.defined() ? dbias_below.data<float>() : nullptr,
                              precision);
}

void linear_backward(const Tensor& x, const Tensor& weight, const Tensor& dy, Tensor& dweight,
                     Tensor& dbias, Tensor* dx, Precision precision, const uint16_t* weight_bf16) {
  detail::check_2d("linear_backward", "x", x);
  detail::check_float("linear_backward", "x", x);
  detail::check_2d("linear_backward", "weight", weight);
  const int64_t batch = x.rows(), in = x.cols(), out = weight.rows();
  detail::check_tensor("linear_backward", "weight", weight, {out, in}, x);
  detail::check_tensor("linear_backward", "dy", dy, {batch, out}, x);
  detail::check_tensor("linear_backward", "dweight", dweight, {out, in}, x);
  if (dbias.defined()) detail::check_tensor("linear_backward", "dbias", dbias, {out}, x);
  if (dx != nullptr) detail::check_tensor("linear_backward", "dx", *dx, {batch, in}, x);
  gemm(dy, true, x, false, dweight, 1.0, 0.0, precision);  // dW[out, in] = dy^T x
  if (dbias.defined()) sum_rows(dy, dbias);                // db[out] = sum over rows of dy
  if (dx == nullptr) return;
  if (precision == Precision::kBf16) {
    ops::gemm_bf16_weight(dy, false, weight, weight_bf16, false, *dx);  // dx = dy W
  } else {
    gemm(dy, false, weight, false, *dx, 1.0, 0.0, precision);  // dx = dy W
  }
}

}  // namespace mlpx

namespace mlpx::ops {

void linear_activation_forward_bf16(const Tensor& x, const uint16_t* x_bits, const Tensor& weight,
                                    const uint16_t* weight_bits, const Tensor& bias,
                                    Activation activation, double alpha, Tensor& z, Tensor& a,
                                    uint16_t* a_bits) {
  detail::check_2d("linear_forward", "x", x);
  detail::check_2d("linear_forward", "weight", weight);
  const int64_t batch = x.rows(), out = weight.rows();
  if (bias.defined()) detail::check_tensor("linear_forward", "bias", bias, {out}, x);
  detail::check_tensor("linear_forward", "z", z, {batch, out}, x);
  detail::check_tensor("linear_forward", "a", a, {batch, out}, x);
  gemm_bf16_bits(x, x_bits, false, weight, weight_bits, true, z);  // z = x W^T
  cpu::bias_activation_round_forward(activation, z.data<float>(),
                                     bias.defined() ? bias.data<float>() : nullptr, a.data<float>(),
                                     a_bits, batch, out, static_cast<float>(alpha));
}

void activation_linear_backward_bf16(const Tensor& x, const uint16_t* x_bits, const Tensor& weight,
                                     const uint16_t* weight_bits, const Tensor& z, const Tensor& a,
                                     Activation activation, double alpha, const Tensor& upstream,
                                     Tensor& dz, uint16_t* dz_bits, Tensor& dweight, Tensor& dbias,
                                     Tensor* dx) {
  detail::check_2d("linear_backward", "x", x);
  detail::check_2d("linear_backward", "weight", weight);
  const int64_t batch = x.rows(), in = x.cols(), out = weight.rows();
  detail::check_tensor("linear_backward", "upstream", upstream, {batch, out}, x);
  detail::check_tensor("linear_backward", "dz", dz, {batch, out}, x);
  detail::check_tensor("linear_backward", "dweight", dweight, {out, in}, x);
  if (dbias.defined()) detail::check_tensor("linear_backward", "dbias", dbias, {out}, x);
  if (dx != nullptr) detail::check_tensor("linear_backward", "dx", *dx, {batch, in}, x);
  // Only the operand the activation's backward reads is needed (the other may be anything).
  cpu::activation_backward_round(activation, z.data<float>(), a.data<float>(),
                                 upstream.data<float>(), dz.data<float>(), dz_bits, batch, out,
                                 static_cast<float>(alpha));
  gemm_bf16_bits(dz, dz_bits, true, x, x_bits, false, dweight);  // dW[out, in] = dz^T x
  if (dbias.defined()) {
    // The bias gradient sums dz's bf16 values, those its GEMMs read (as the GPU's BGRADB
    // epilogue from the same bits does): dz holds them from here on.
    cpu::bf16_to_float(dz_bits, dz.data<float>(), dz.numel());
    sum_rows(dz, dbias);
  }
  if (dx != nullptr) gemm_bf16_bits(dz, dz_bits, false, weight, weight_bits, false, *dx);  // dz W
}

void linear_forward_epilogue_bf16(const Tensor& x, const uint16_t* x_bits, const Tensor& weight,
                                  const uint16_t* weight_bits, const Tensor& bias,
                                  LinearEpilogue epilogue, Tensor* y, uint16_t* y_bits,
                                  Tensor* relu_mask) {
  const char* what = "linear_forward_epilogue_bf16";
  MLPX_CHECK(epilogue != LinearEpilogue::kPlain && x.device().is_cuda() && x_bits != nullptr &&
                 weight_bits != nullptr,
             ValueError, what,
             ": expected epilogue bias or bias+relu on a CUDA device with the operands' bits, "
             "found ",
             epilogue == LinearEpilogue::kPlain ? "plain on " : "", x.describe());
  MLPX_CHECK(relu_mask == nullptr || epilogue == LinearEpilogue::kBiasRelu, ValueError, what,
             ": expected a ReLU mask only with bias+relu");
  detail::check_2d(what, "x", x);
  detail::check_2d(what, "weight", weight);
  const int64_t batch = x.rows(), in = x.cols(), out = weight.rows();
  detail::check_tensor(what, "weight", weight, {out, in}, x);
  detail::check_tensor(what, "bias", bias, {out}, x);
  if (y != nullptr) detail::check_tensor(what, "y", *y, {batch, out}, x);
  void* mask = nullptr;
  if (relu_mask != nullptr) {
    detail::check_tensor(what, "relu_mask", *relu_mask, {batch, relu_mask_words(out)},
                         DType::kInt32, x.device());
    mask = relu_mask->data<int32_t>();
  }
  cuda::gemm_bias_epilogue_bf16(x.device().index, batch, in, out, x_bits, weight_bits,
                                bias.data<float>(), y != nullptr ? y->data<float>() : nullptr,
                                y_bits, epilogue == LinearEpilogue::kBiasRelu, mask,
                                relu_mask_words(out) * 32);
}

void linear_weight_grad_bf16(const Tensor& x, const uint16_t* x_bits, const Tensor& dz,
                             const uint16_t* dz_bits, Tensor& dweight, Tensor& dbias) {
  const char* what = "linear_weight_grad_bf16";
  detail::check_2d(what, "x", x);
  detail::check_2d(what, "dz", dz);
  const int64_t batch = x.rows(), in = x.cols(), out = dz.cols();
  detail::check_tensor(what, "dz", dz, {batch, out}, x);
  detail::check_tensor(what, "dweight", dweight, {out, in}, x);
  if (dbias.defined()) detail::check_tensor(what, "dbias", dbias, {out}, x);
  MLPX_CHECK(x.device().is_cuda() && x_bits != nullptr && dz_bits != nullptr, ValueError, what,
             ": expected a CUDA device and both operands' bits, found ", x.describe());
  cuda::gemm_weight_grad_bf16(x.device().index, batch, in, out, x_bits, dz_bits,
                              dweight.data<float>(),
                              dbias.defined() ? dbias.data<float>() : nullptr);
}

void linear_input_grad_bf16(const Tensor& dz, const uint16_t* dz_bits, const Tensor& weight,
                            const uint16_t* weight_bits, const Tensor* relu_mask_below,
                            const Tensor& dx, uint16_t* dx_bits) {
  const char* what = "linear_input_grad_bf16";
  detail::check_2d(what, "dz", dz);
  detail::check_2d(what, "weight", weight);
  const int64_t batch = dz.rows(), out = weight.rows(), in = weight.cols();
  detail::check_tensor(what, "weight", weight, {dz.cols(), in}, dz);
  detail::check_tensor(what, "dx", dx, {batch, in}, dz);
  MLPX_CHECK(
      dz.device().is_cuda() && dz_bits != nullptr && weight_bits != nullptr && dx_bits != nullptr,
      ValueError, what, ": expected a CUDA device and the operands' and dx's bits, found ",
      dz.describe());
  const void* mask = nullptr;
  if (relu_mask_below != nullptr) {
    detail::check_tensor(what, "relu_mask_below", *relu_mask_below, {batch, relu_mask_words(in)},
                         DType::kInt32, dz.device());
    mask = relu_mask_below->data<int32_t>();
  }
  cuda::gemm_input_grad_bf16(dz.device().index, batch, in, out, dz_bits, weight_bits, mask,
                             relu_mask_words(in) * 32, dx_bits);
}

}  // namespace mlpx::ops
