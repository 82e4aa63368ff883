#include "ops/fused_mlp.h"

#include <algorithm>

#include "core/check.h"
#include "cpu/fused_mlp.h"
#include "kernels/fused_mlp.h"
#include "math/activation.h"
#include "math/loss.h"
#include "mlpx/activation.h"
#include "mlpx/error.h"
#include "mlpx/loss.h"
#include "ops/batching.h"

namespace mlpx {

namespace {

bool is_rowwise(Activation activation) {
  return math::visit(activation, [](auto member) { return decltype(member)::kIsRowwise; });
}

cuda::FusedMath math_of(Precision precision) {
  return precision == Precision::kBf16 ? cuda::FusedMath::kBf16TensorCores
                                       : cuda::FusedMath::kFp32Simt;
}

// Layer l of a fused model as the kernels' (cuda::FusedMlpLayer) or the CPU twin's
// (cpu::FusedMlpLayer) pointers and sizes: the same fields, in int or int64_t. Layer 0's GEMM
// runs outside, so it has no weight or bias there.
template <typename KernelLayer>
void describe_layer(size_t l, FusedLayer& from, KernelLayer& to) {
  using Width = decltype(to.out);
  if (l > 0) {
    to.weight = from.weight.data<float>();
    to.bias = from.bias.data<float>();
    to.in = static_cast<Width>(from.weight.cols());
  }
  to.out = static_cast<Width>(from.act.cols());
  to.activation = from.activation;
  to.alpha = static_cast<float>(from.alpha);
  to.pre = from.pre.data<float>();
  to.act = from.act.data<float>();
  to.dpre = from.dpre.data<float>();
  if (l > 0 && from.dweight.defined()) {
    to.dweight = from.dweight.data<float>();
    to.dbias = from.dbias.data<float>();
  }
}

cuda::FusedMlpPlan plan_of(std::vector<FusedLayer>& layers) {
  cuda::FusedMlpPlan plan;
  plan.count = static_cast<int>(layers.size());
  for (size_t l = 0; l < layers.size(); ++l) describe_layer(l, layers[l], plan.layers[l]);
  return plan;
}

// The same layers for the CPU twin (cpu/fused_mlp.h).
std::vector<cpu::FusedMlpLayer> cpu_layers_of(std::vector<FusedLayer>& layers) {
  std::vector<cpu::FusedMlpLayer> out(layers.size());
  for (size_t l = 0; l < layers.size(); ++l) describe_layer(l, layers[l], out[l]);
  return out;
}

void check_layers(const char* op, const std::vector<FusedLayer>& layers) {
  MLPX_CHECK(layers.size() >= 2 && layers.size() <= static_cast<size_t>(cuda::kFusedMaxLayers),
             ShapeError, op, ": expected 2 to ", cuda::kFusedMaxLayers,
             " layers (layer 0 included), found ", layers.size());
  const Tensor& ref = layers[0].act;
  detail::check_2d(op, "layers[0].act", ref);
  detail::check_float(op, "layers[0].act", ref);
  const int64_t rows = ref.rows();
  for (size_t l = 0; l < layers.size(); ++l) {
    const FusedLayer& layer = layers[l];
    const int64_t out = layer.act.cols();
    detail::check_tensor(op, "pre", layer.pre, {rows, out}, ref);
    detail::check_tensor(op, "act", layer.act, {rows, out}, ref);
    detail::check_tensor(op, "dpre", layer.dpre, {rows, out}, ref);
    MLPX_CHECK(!is_rowwise(layer.activation), ValueError, op, ": layer ", l,
               ": expected an elementwise activation, found ", activation_name(layer.activation));
    if (l == 0) continue;
    detail::check_tensor(op, "weight", layer.weight, {out, layers[l - 1].act.cols()}, ref);
    detail::check_tensor(op, "bias", layer.bias, {out}, ref);
  }
}

void check_loss(const char* op, const std::vector<FusedLayer>& layers,
                const FusedCrossEntropy& loss) {
  const Tensor& top = layers.back().act;
  const int64_t rows = top.rows();
  MLPX_CHECK(layers.back().activation == Activation::kIdentity, ValueError, op,
             ": the cross-entropy takes logits: expected an identity last layer, found ",
             activation_name(layers.back().activation));
  MLPX_CHECK(loss.label_smoothing >= 0.0 && loss.label_smoothing <= 1.0, ValueError, op,
             ": expected label_smoothing in [0, 1], found ", loss.label_smoothing);
  MLPX_CHECK(loss.grad_rows == 0 || loss.grad_rows >= rows, ShapeError, op,
             ": expected grad_rows >= the ", rows, " rows given, found ", loss.grad_rows);
  if (loss.order.defined()) {
    MLPX_CHECK(loss.labels.defined() && loss.labels.dim() == 1 &&
                   loss.labels.dtype() == DType::kInt32 && loss.labels.device() == top.device(),
               ShapeError, op, ": expected the set's labels int32 [N] on ", top.device().str(),
               ", found ", loss.labels.defined() ? loss.labels.describe() : "none");
    MLPX_CHECK(loss.order.dim() == 1 && loss.order.dtype() == DType::kInt32 &&
                   loss.order.device() == top.device(),
               ShapeError, op, ": expected order int32 [M] on ", top.device().str(), ", found ",
               loss.order.describe());
    detail::check_tensor(op, "position", loss.position, {1}, DType::kInt32, top.device());
    MLPX_CHECK(loss.stride >= 0, ShapeError, op, ": expected stride >= 0, found ", loss.stride);
  } else {
    detail::check_tensor(op, "labels", loss.labels, {rows}, DType::kInt32, top.device());
  }
  if (loss.loss_sum.defined()) {
    detail::check_tensor(op, "loss_sum", loss.loss_sum, {1}, top);
    detail::check_tensor(op, "position", loss.position, {1}, DType::kInt32, top.device());
    detail::check_tensor(op, "blocks_done", loss.blocks_done, {1}, DType::kInt32, top.device());
    MLPX_CHECK(loss.batch_losses.defined() && loss.batch_losses.dim() == 1, ShapeError, op,
               ": expected batch_losses [M], found ",
               loss.batch_losses.defined() ? loss.batch_losses.describe() : "none");
    detail::check_tensor(op, "batch_losses", loss.batch_losses, loss.batch_losses.shape(), top);
    if (loss.run_step.defined()) {
      detail::check_tensor(op, "run_step", loss.run_step, {1}, DType::kInt32, top.device());
    }
  }
  detail::check_tensor(op, "row_loss", loss.row_loss, {rows}, top);
  detail::check_tensor(op, "grad", loss.grad, {rows, top.cols()}, top);
  detail::check_tensor(op, "correct", loss.correct, {1}, DType::kInt32, top.device());
  if (loss.row_weight.defined()) {
    detail::check_tensor(op, "row_weight", loss.row_weight, {rows}, top);
  }
}

cuda::FusedCrossEntropyPlan loss_plan_of(const FusedCrossEntropy& loss, int64_t rows,
                                         int64_t cols) {
  cuda::FusedCrossEntropyPlan plan;
  plan.labels = loss.labels.data<int32_t>();
  plan.row_loss = loss.row_loss.data<float>();
  plan.grad = loss.grad.data<float>();
  plan.correct = loss.correct.data<int32_t>();
  plan.row_weight = loss.row_weight.defined() ? loss.row_weight.data<float>() : nullptr;
  const int64_t grad_rows = loss.grad_rows == 0 ? rows : loss.grad_rows;
  plan.grad_scale = static_cast<float>(
      math::loss_scales<math::LossMember<Loss::kCrossEntropy>>(grad_rows, cols).grad);
  plan.smoothing = static_cast<float>(loss.label_smoothing);
  if (loss.order.defined()) {
    plan.order = loss.order.data<int32_t>();
    plan.position = loss.position.data<int32_t>();
    plan.stride = loss.stride;
  }
  if (loss.loss_sum.defined()) {
    plan.position = loss.position.data<int32_t>();
    plan.loss_sum = loss.loss_sum.data<float>();
    plan.batch_losses = loss.batch_losses.data<float>();
    plan.run_step = loss.run_step.defined() ? loss.run_step.data<int32_t>() : nullptr;
    plan.sum_scale = loss.loss_scale;
    plan.blocks_done = reinterpret_cast<unsigned*>(loss.blocks_done.data<int32_t>());
  }
  return plan;
}

}  // namespace

int fused_mlp_max_width(int major) { return major >= 9 ? 256 : 128; }

std::string fused_mlp_unfit_reason(const std::vector<int64_t>& widths,
                                   const std::vector<Activation>& activations,
                                   const std::vector<double>& dropouts, DType dtype,
                                   Precision precision, Device device) {
  if (!device.is_cuda()) {
    return "the fused MLP kernels run on a CUDA device, found " + device.str();
  }
  if (dtype != DType::kFloat32) {
    return "the fused MLP kernels take a float32 model, found " + std::string(dtype_name(dtype));
  }
  if (precision == Precision::kTf32) {
    return "the fused MLP kernels compute in fp32 or bf16, found precision tf32";
  }
  if (widths.size() < 2) return "the fused MLP kernels need at least 2 layers, found 1";
  if (widths.size() > static_cast<size_t>(cuda::kFusedMaxLayers)) {
    return "the fused MLP kernels take at most " + std::to_string(cuda::kFusedMaxLayers) +
           " layers, found " + std::to_string(widths.size());
  }
  const int major = cuda::fused_mlp_device_major(device);
  if (precision == Precision::kBf16 && major < 8) {
    return "the fused MLP kernels' bf16 tensor-core path needs compute capability 8.0 or "
           "later, found " +
           std::to_string(major) + ".x";
  }
  const int64_t limit = fused_mlp_max_width(major);
  for (size_t l = 0; l < widths.size(); ++l) {
    if (is_rowwise(activations[l])) {
      return "layer " + std::to_string(l) + "'s activation " + activation_name(activations[l]) +
             " is rowwise; the fused MLP kernels take elementwise activations";
    }
    if (dropouts[l] > 0.0) {
      return "layer " + std::to_string(l) + " has a dropout; the fused MLP kernels take none";
    }
    if (widths[l] > limit) {
      return "layer " + std::to_string(l) + " has " + std::to_string(widths[l]) +
             " units; the fused MLP kernels take at most " + std::to_string(limit) +
             " on a device of compute capability " + std::to_string(major) + ".x";
    }
  }
  cuda::FusedMlpPlan plan;
  plan.count = static_cast<int>(widths.size());
  for (size_t l = 0; l < widths.size(); ++l) plan.layers[l].out = static_cast<int>(widths[l]);
  const size_t bytes = cuda::fused_mlp_shared_bytes(plan, math_of(precision));
  const auto available = static_cast<size_t>(cuda::fused_mlp_device_shared_limit(device));
  if (bytes > available) {
    return "the fused MLP kernels need " + std::to_string(bytes) +
           " bytes of shared memory per block, the device has " + std::to_string(available);
  }
  return "";
}

void fused_mlp_forward(std::vector<FusedLayer>& layers, Precision precision,
                       const FusedCrossEntropy* loss) {
  check_layers("fused_mlp_forward", layers);
  if (loss != nullptr) check_loss("fused_mlp_forward", layers, *loss);
  const Tensor& input = layers[0].act;
  MLPX_CHECK(precision != Precision::kTf32, ValueError,
             "fused_mlp_forward: expected precision fp32 or bf16, found tf32");
  if (input.device().is_cuda()) {
    cuda::FusedMlpPlan plan = plan_of(layers);
    if (loss != nullptr) plan.loss = loss_plan_of(*loss, input.rows(), layers.back().act.cols());
    cuda::fused_mlp_forward(plan, input.rows(), math_of(precision), input.device());
    if (input.rows() == 0 && loss != nullptr && loss->loss_sum.defined()) {
      // No block ran to end the step: the commit alone (no rows, nothing to sum).
      Tensor loss_sum = loss->loss_sum, batch_losses = loss->batch_losses;
      Tensor position = loss->position, run_step = loss->run_step;
      commit_batch_loss(loss_sum, batch_losses, position, run_step.defined() ? &run_step : nullptr);
    }
    return;
  }
  cpu::fused_mlp_forward(cpu_layers_of(layers), input.rows(), precision == Precision::kBf16);
  if (loss == nullptr) return;
  // The twin of the kernel's loss stage: the loss and metric ops on the same rows, then the
  // step's end as the trainer's ops.
  const Tensor& top = layers.back().act;
  Tensor row_loss = loss->row_loss, grad = loss->grad, correct = loss->correct;
  Tensor labels = loss->labels;
  if (loss->order.defined()) {
    labels = Tensor({top.rows()}, DType::kInt32, top.device());
    gather_batch(loss->labels, loss->order, loss->position, loss->stride, labels);
  }
  loss_forward_backward(Loss::kCrossEntropy, top, labels, row_loss, &grad, loss->grad_rows,
                        loss->row_weight.defined() ? &loss->row_weight : nullptr,
                        loss->label_smoothing);
  accumulate_correct(top, labels, correct);
  if (!loss->loss_sum.defined()) return;
  Tensor loss_sum = loss->loss_sum, batch_losses = loss->batch_losses, position = loss->position;
  Tensor run_step = loss->run_step;
  accumulate_sum(row_loss, loss_sum, loss->loss_scale);
  commit_batch_loss(loss_sum, batch_losses, position, run_step.defined() ? &run_step : nullptr);
}

int64_t fused_mlp_partials_size(const std::vector<int64_t>& widths, int64_t rows,
                                Precision precision) {
  cuda::FusedMlpPlan plan;
  plan.count = static_cast<int>(widths.size());
  for (size_t l = 0; l < widths.size(); ++l) plan.layers[l].out = static_cast<int>(widths[l]);
  return cuda::fused_mlp_blocks(rows, math_of(precision)) * cuda::fused_mlp_partial_floats(plan);
}

void fused_mlp_backward(std::vector<FusedLayer>& layers, const Tensor& doutput, Precision precision,
                        const FusedWeightGrads* grads) {
  const char* op = "fused_mlp_backward";
  check_layers(op, layers);
  const Tensor& top = layers.back().act;
  const int64_t rows = top.rows();
  detail::check_tensor(op, "doutput", doutput, {rows, top.cols()}, top);
  MLPX_CHECK(precision != Precision::kTf32, ValueError, op,
             ": expected precision fp32 or bf16, found tf32");
  if (grads != nullptr) {
    std::vector<int64_t> widths;
    for (size_t l = 0; l < layers.size(); ++l) {
      widths.push_back(layers[l].act.cols());
      if (l == 0) continue;
      detail::check_tensor(op, "dweight", layers[l].dweight, layers[l].weight.shape(), top);
      detail::check_tensor(op, "dbias", layers[l].dbias, layers[l].bias.shape(), top);
    }
    const int64_t size = fused_mlp_partials_size(widths, rows, precision);
    MLPX_CHECK(grads->partials.defined() && grads->partials.numel() >= size, ShapeError, op,
               ": expected partials of at least ", size, " elements, found ",
               grads->partials.defined() ? grads->partials.describe() : "none");
    detail::check_float(op, "partials", grads->partials);
    detail::check_tensor(op, "blocks_done", grads->blocks_done, {1}, DType::kInt32, top.device());
    if (rows == 0) {  // no rows: zero gradients, as a GEMM over no rows writes
      for (size_t l = 1; l < layers.size(); ++l) {
        layers[l].dweight.fill_zero();
        layers[l].dbias.fill_zero();
      }
    }
  }
  if (top.device().is_cuda()) {
    cuda::FusedMlpPlan plan = plan_of(layers);
    if (grads != nullptr) {
      plan.partials = grads->partials.data<float>();
      plan.blocks_done = reinterpret_cast<unsigned*>(grads->blocks_done.data<int32_t>());
    } else {
      for (int l = 0; l < plan.count; ++l) plan.layers[l].dweight = plan.layers[l].dbias = nullptr;
    }
    cuda::fused_mlp_backward(plan, doutput.data<float>(), rows, math_of(precision), top.device());
    return;
  }
  std::vector<cpu::FusedMlpLayer> cpu_layers = cpu_layers_of(layers);
  if (grads == nullptr) {
    for (cpu::FusedMlpLayer& layer : cpu_layers) layer.dweight = layer.dbias = nullptr;
  }
  cpu::fused_mlp_backward(cpu_layers, doutput.data<float>(), rows, precision == Precision::kBf16,
                          cuda::fused_mlp_tile_rows(math_of(precision)));
}

}  // namespace mlpx
