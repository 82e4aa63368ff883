#include "mlpx/loss.h"

#include "cpu/loss.h"
#include "memory.h"
#include "mlpx/error.h"
#if MLPX_WITH_CUDA
#include "cuda/runtime.h"
#include "kernels/loss.h"
#endif

namespace mlpx {

namespace {
struct LossName {
  Loss loss;
  const char* name;
};
constexpr LossName kLossNames[] = {
    {Loss::kMse, "mse"},      {Loss::kSse, "sse"}, {Loss::kCrossEntropy, "cross_entropy"},
    {Loss::kKlDiv, "kl_div"}, {Loss::kBce, "bce"},
};

void check_defined(const std::string& op, const char* name, const Tensor& t) {
  MLPX_CHECK(t.defined(), ShapeError, op, ": expected ", name, ", found an undefined tensor");
}

// `t` must have `shape`, `dtype` and `device`.
void check_tensor(const std::string& op, const char* name, const Tensor& t, const Shape& shape,
                  DType dtype, Device device) {
  check_defined(op, name, t);
  MLPX_CHECK(t.shape() == shape && t.dtype() == dtype && t.device() == device, ShapeError, op,
             ": expected ", name, " ", shape_str(shape), " ", dtype_name(dtype), " ", device.str(),
             ", found ", t.describe());
}

// float32 anywhere, float64 on the CPU only.
void check_float(const std::string& op, const char* name, const Tensor& t) {
  MLPX_CHECK(t.dtype() == DType::kFloat32 || (t.dtype() == DType::kFloat64 && t.device().is_cpu()),
             ShapeError, op, ": expected ", name, " float32 (or float64 on the CPU), found ",
             t.describe());
}
}  // namespace

Loss parse_loss(const std::string& name) {
  for (const auto& entry : kLossNames) {
    if (name == entry.name) return entry.loss;
  }
  throw ValueError("loss: expected one of mse, sse, cross_entropy, kl_div, bce; found '" + name +
                   "'");
}

std::string loss_name(Loss loss) {
  for (const auto& entry : kLossNames) {
    if (loss == entry.loss) return entry.name;
  }
  return "?";
}

bool loss_uses_class_labels(Loss loss) { return loss == Loss::kCrossEntropy; }

void loss_forward_backward(Loss loss, const Tensor& output, const Tensor& target, Tensor& row_loss,
                           Tensor* grad) {
  const std::string op = loss_name(loss);
  check_defined(op, "output", output);
  MLPX_CHECK(output.dim() == 2, ShapeError, op, ": expected output [B, K], found ",
             output.describe());
  check_float(op, "output", output);
  const int64_t rows = output.rows(), cols = output.cols();
  const DType dtype = output.dtype();
  const Device device = output.device();
  if (loss_uses_class_labels(loss)) {
    check_tensor(op, "target (class indices)", target, {rows}, DType::kInt32, device);
  } else {
    check_tensor(op, "target", target, output.shape(), dtype, device);
  }
  check_tensor(op, "row_loss", row_loss, {rows}, dtype, device);
  if (grad != nullptr) check_tensor(op, "grad", *grad, output.shape(), dtype, device);

  if (device.is_cuda()) {
#if MLPX_WITH_CUDA
    const cudaStream_t stream = cuda::stream_of(device);
    float* g = grad != nullptr ? grad->data<float>() : nullptr;
    switch (loss) {
      case Loss::kCrossEntropy:
        cuda::cross_entropy(output.data<float>(), target.data<int32_t>(), row_loss.data<float>(), g,
                            rows, cols, cuda::context(device.index).status, stream);
        return;
      case Loss::kKlDiv:
        cuda::kl_div(output.data<float>(), target.data<float>(), row_loss.data<float>(), g, rows,
                     cols, stream);
        return;
      default:
        cuda::elementwise_loss(loss, output.data<float>(), target.data<float>(),
                               row_loss.data<float>(), g, rows, cols, stream);
        return;
    }
#else
    detail::fail_without_cuda("loss_forward_backward");
#endif
  }
  auto run = [&](auto tag) {
    using T = decltype(tag);
    T* g = grad != nullptr ? grad->data<T>() : nullptr;
    switch (loss) {
      case Loss::kCrossEntropy:
        cpu::cross_entropy(output.data<T>(), target.data<int32_t>(), row_loss.data<T>(), g, rows,
                           cols);
        return;
      case Loss::kKlDiv:
        cpu::kl_div(output.data<T>(), target.data<T>(), row_loss.data<T>(), g, rows, cols);
        return;
      default:
        cpu::elementwise_loss(loss, output.data<T>(), target.data<T>(), row_loss.data<T>(), g, rows,
                              cols);
        return;
    }
  };
  if (dtype == DType::kFloat64) {
    run(double{});
  } else {
    run(float{});
  }
}

void accumulate_sum(const Tensor& values, Tensor& accumulator, double scale) {
  check_defined("accumulate_sum", "values", values);
  check_float("accumulate_sum", "values", values);
  MLPX_CHECK(values.dim() == 1, ShapeError, "accumulate_sum: expected values [N], found ",
             values.describe());
  check_tensor("accumulate_sum", "accumulator", accumulator, {1}, values.dtype(), values.device());
  const int64_t n = values.numel();
  if (values.device().is_cuda()) {
#if MLPX_WITH_CUDA
    cuda::accumulate_sum(values.data<float>(), n, accumulator.data<float>(), scale,
                         cuda::stream_of(values.device()));
    return;
#else
    detail::fail_without_cuda("accumulate_sum");
#endif
  }
  if (values.dtype() == DType::kFloat64) {
    cpu::accumulate_sum(values.data<double>(), n, accumulator.data<double>(), scale);
  } else {
    cpu::accumulate_sum(values.data<float>(), n, accumulator.data<float>(), scale);
  }
}

void accumulate_correct(const Tensor& output, const Tensor& labels, Tensor& correct) {
  check_defined("accumulate_correct", "output", output);
  MLPX_CHECK(output.dim() == 2, ShapeError, "accumulate_correct: expected output [B, K], found ",
             output.describe());
  check_float("accumulate_correct", "output", output);
  const int64_t rows = output.rows(), cols = output.cols();
  check_tensor("accumulate_correct", "labels", labels, {rows}, DType::kInt32, output.device());
  check_tensor("accumulate_correct", "correct", correct, {1}, DType::kInt32, output.device());
  if (output.device().is_cuda()) {
#if MLPX_WITH_CUDA
    cuda::accumulate_correct(output.data<float>(), labels.data<int32_t>(), rows, cols,
                             correct.data<int32_t>(), cuda::stream_of(output.device()));
    return;
#else
    detail::fail_without_cuda("accumulate_correct");
#endif
  }
  if (output.dtype() == DType::kFloat64) {
    cpu::accumulate_correct(output.data<double>(), labels.data<int32_t>(), rows, cols,
                            correct.data<int32_t>());
  } else {
    cpu::accumulate_correct(output.data<float>(), labels.data<int32_t>(), rows, cols,
                            correct.data<int32_t>());
  }
}

}  // namespace mlpx
