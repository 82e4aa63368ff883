// The fused narrow-MLP kernels (kernels/fused_mlp.cu) against the unfused path: the fp32 SIMT
// kernels against the unfused GPU model within fp32 rounding; the bf16 tensor-core kernels
// against the CPU's bf16 model within bf16's; and when they fit (train.fused's rules).
#include <gtest/gtest.h>

#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

#include "mlpx/config.h"
#include "mlpx/dataset.h"
#include "mlpx/error.h"
#include "mlpx/loss.h"
#include "mlpx/model.h"
#include "mlpx/training.h"
#include "ops/fused_mlp.h"
#include "test_util.h"
#if MLPX_SIM
#include "mlpx_sim/counters.h"
#endif

namespace mlpx {
namespace {

// 12 inputs -> 32 relu -> 24 elu -> 10 identity: the fused part is two layers of unequal widths,
// none a multiple of 16 but one, so the tensor-core kernel's padding is exercised.
Sequential make_model(Device device) {
  Sequential model(12,
                   {{32, Activation::kRelu}, {24, Activation::kElu}, {10, Activation::kIdentity}},
                   DType::kFloat32, device);
  model.init(Init::kHeNormal, 0.0, 7);
  return model;
}

struct Pass {
  std::vector<float> output, grads;
};

// Forward and backward of a batch of `rows` (not a multiple of any tile: a partial last tile).
Pass run(Sequential& model, int64_t rows) {
  const Device device = model.device();
  const Tensor x =
      Tensor::from_vector(test::random_values<float>(rows * 12, 3), {rows, 12}).to(device);
  const Tensor dy =
      Tensor::from_vector(test::random_values<float>(rows * 10, 4), {rows, 10}).to(device);
  Pass pass;
  pass.output = model.forward(x).to(Device::cpu()).to_vector<float>();
  model.backward(dy);
  pass.grads = model.grads().to(Device::cpu()).to_vector<float>();
  return pass;
}

TEST(FusedMlpParity, SimtMatchesUnfusedWithinFp32Rounding) {
  MLPX_REQUIRE_CUDA();
  Sequential unfused = make_model(Device::cuda(0));
  Sequential fused = make_model(Device::cuda(0));
  ASSERT_EQ(fused.fused_unfit_reason(), "");
  fused.set_fused(true);
  const Pass a = run(unfused, 37), b = run(fused, 37);
  EXPECT_LT(test::relative_error(b.output, a.output), 1e-6);
  EXPECT_LT(test::relative_error(b.grads, a.grads), 1e-6);
}

TEST(FusedMlpParity, TensorCoresMatchCpuBf16WithinBf16Rounding) {
  MLPX_REQUIRE_CUDA();
  Sequential cpu = make_model(Device::cpu());
  cpu.set_precision(Precision::kBf16);
  Sequential fused = make_model(Device::cuda(0));
  fused.set_precision(Precision::kBf16);
  fused.set_fused(true);
  Sequential fp32 = make_model(Device::cpu());
  const Pass reference = run(cpu, 70), tc = run(fused, 70), exact = run(fp32, 70);
  // The same bf16 operands, summed in another order: an activation that rounds to a
  // neighbouring bf16 moves results by bf16's rounding (2^-8) at most, and rarely.
  EXPECT_LT(test::relative_error(tc.output, reference.output), 4e-3);
  EXPECT_LT(test::relative_error(tc.grads, reference.grads), 4e-3);
  // ... and bf16 is really in use: fp32 is further away.
  EXPECT_GT(test::relative_error(exact.output, reference.output),
            test::relative_error(tc.output, reference.output));
}

// Width 256 on the simulated sm_90: the tensor-core kernels stage a 256x256 bf16 weight matrix
// (132 KiB) beside their activation tiles, 198 KiB of the block's 227 (racecheck on by default).
TEST(FusedMlpParity, TensorCoresAtWidth256StageTheirWeightsInSharedMemory) {
  MLPX_REQUIRE_CUDA();
  const auto wide = [](Device device) {
    Sequential model(
        8, {{256, Activation::kRelu}, {256, Activation::kTanh}, {10, Activation::kIdentity}},
        DType::kFloat32, device);
    model.init(Init::kHeNormal, 0.0, 11);
    model.set_precision(Precision::kBf16);
    return model;
  };
  Sequential cpu = wide(Device::cpu()), fused = wide(Device::cuda(0));
  fused.set_fused(true);
  const int64_t rows = 20;
  const Tensor x = Tensor::from_vector(test::random_values<float>(rows * 8, 3), {rows, 8});
  const Tensor dy = Tensor::from_vector(test::random_values<float>(rows * 10, 4), {rows, 10});
  const std::vector<float> expected = cpu.forward(x).to_vector<float>();
  cpu.backward(dy);
  const std::vector<float> output =
      fused.forward(x.to(Device::cuda(0))).to(Device::cpu()).to_vector<float>();
  fused.backward(dy.to(Device::cuda(0)));
  EXPECT_LT(test::relative_error(output, expected), 4e-3);
  EXPECT_LT(test::relative_error(fused.grads().to(Device::cpu()).to_vector<float>(),
                                 cpu.grads().to_vector<float>()),
            4e-3);
}

// The loss stage of the forward kernel (forward(x, step, FusedCrossEntropy)) against the loss
// and metric ops after an unfused forward: row losses, dlogits and the correct count, with
// label smoothing and sample weights, over a partial last tile; then a label out of range.
struct LossPass {
  std::vector<float> row_loss, grad;
  int32_t correct = 0;
};

LossPass run_loss(Sequential& model, int64_t rows, bool in_kernel, const Tensor& labels) {
  const Device device = model.device();
  const Tensor x =
      Tensor::from_vector(test::random_values<float>(rows * 12, 3), {rows, 12}).to(device);
  std::vector<float> weights = test::random_values<float>(rows, 6);
  for (float& w : weights) w = 0.5f + w * w;  // positive, not all equal
  const Tensor row_weight = Tensor::from_vector(weights, {rows}).to(device);
  Tensor row_loss = Tensor::zeros({rows}, DType::kFloat32, device);
  Tensor grad = Tensor::zeros({rows, 10}, DType::kFloat32, device);
  Tensor correct = Tensor::zeros({1}, DType::kInt32, device);
  const int64_t grad_rows = 2 * rows;  // as one of two ranks, or accumulation steps
  if (in_kernel) {
    FusedCrossEntropy loss;
    loss.labels = labels;
    loss.row_loss = row_loss;
    loss.grad = grad;
    loss.correct = correct;
    loss.row_weight = row_weight;
    loss.grad_rows = grad_rows;
    loss.label_smoothing = 0.1;
    model.forward(x, {}, loss);
  } else {
    const Tensor out = model.forward(x);
    loss_forward_backward(Loss::kCrossEntropy, out, labels, row_loss, &grad, grad_rows, &row_weight,
                          0.1);
    accumulate_correct(out, labels, correct);
  }
  synchronize(device);
  return {row_loss.to(Device::cpu()).to_vector<float>(), grad.to(Device::cpu()).to_vector<float>(),
          correct.to(Device::cpu()).to_vector<int32_t>()[0]};
}

TEST(FusedMlpParity, CrossEntropyInTheForwardKernelMatchesTheLossOps) {
  MLPX_REQUIRE_CUDA();
  const int64_t rows = 70;
  std::vector<int32_t> classes(rows);
  for (int64_t i = 0; i < rows; ++i) classes[static_cast<size_t>(i)] = static_cast<int32_t>(i % 10);
  const Tensor labels = Tensor::from_vector(classes, {rows}).to(Device::cuda(0));
  for (const Precision precision : {Precision::kFp32, Precision::kBf16}) {
    SCOPED_TRACE(precision_name(precision));
    Sequential unfused = make_model(Device::cuda(0));
    Sequential fused = make_model(Device::cuda(0));
    unfused.set_precision(precision);
    fused.set_precision(precision);
    fused.set_fused(true);
    ASSERT_TRUE(fused.fuses_cross_entropy());
    EXPECT_FALSE(unfused.fuses_cross_entropy());
    // fp32: the same logits within fp32 rounding; bf16: the fused kernel against the fused
    // kernel without its loss stage (the unfused bf16 GEMMs sum in another order).
    Sequential& reference = precision == Precision::kFp32 ? unfused : fused;
    const LossPass a = run_loss(reference, rows, false, labels);
    const LossPass b = run_loss(fused, rows, true, labels);
    const double tolerance = precision == Precision::kFp32 ? 1e-5 : 1e-6;
    EXPECT_LT(test::relative_error(b.row_loss, a.row_loss), tolerance);
    EXPECT_LT(test::relative_error(b.grad, a.grad), tolerance);
    EXPECT_EQ(b.correct, a.correct);
  }
  // A label outside [0, 10): the status flag, raised at the next synchronize().
  Sequential fused = make_model(Device::cuda(0));
  fused.set_fused(true);
  classes[5] = 10;
  const Tensor bad = Tensor::from_vector(classes, {rows}).to(Device::cuda(0));
  EXPECT_THROW(run_loss(fused, rows, true, bad), ValueError);
  Sequential unfused = make_model(Device::cuda(0));
  EXPECT_THROW(unfused.forward(Tensor::zeros({rows, 12}, DType::kFloat32, Device::cuda(0)), {},
                               FusedCrossEntropy{}),
               ValueError);
}

// The fused passes called directly (ops/fused_mlp.h) on one device: layer 0's output given,
// 32 relu -> 24 elu -> 10 identity over a partial last tile.
struct DirectLayers {
  std::vector<FusedLayer> layers;
  Tensor partials, blocks_done;
};

DirectLayers direct_layers(Device device, int64_t rows, Precision precision) {
  const std::vector<int64_t> widths = {32, 24, 10};
  const std::vector<Activation> activations = {Activation::kRelu, Activation::kElu,
                                               Activation::kIdentity};
  DirectLayers d;
  for (size_t l = 0; l < widths.size(); ++l) {
    FusedLayer layer;
    const int64_t out = widths[l];
    layer.activation = activations[l];
    layer.alpha = 1.0;
    layer.act = Tensor::zeros({rows, out}, DType::kFloat32, device);
    layer.pre = layer.act;
    if (l == 0) {
      std::vector<float> h = test::random_values<float>(static_cast<size_t>(rows * out), 21);
      for (float& v : h) v = v > 0.0f ? v : 0.0f;  // a ReLU's output, which is z where it counts
      layer.act = layer.pre = Tensor::from_vector(h, {rows, out}).to(device);
    } else {
      const int64_t in = widths[l - 1];
      layer.weight =
          Tensor::from_vector(test::random_values<float>(out * in, 30 + l, -0.4, 0.4), {out, in})
              .to(device);
      layer.bias = Tensor::from_vector(test::random_values<float>(out, 40 + l), {out}).to(device);
      layer.pre = Tensor::zeros({rows, out}, DType::kFloat32, device);
      if (activations[l] != Activation::kIdentity) {
        layer.act = Tensor::zeros({rows, out}, DType::kFloat32, device);
      } else {
        layer.act = layer.pre;
      }
      layer.dweight = Tensor::zeros({out, in}, DType::kFloat32, device);
      layer.dbias = Tensor::zeros({out}, DType::kFloat32, device);
    }
    layer.dpre = Tensor::zeros({rows, out}, DType::kFloat32, device);
    d.layers.push_back(layer);
  }
  d.partials =
      Tensor::zeros({fused_mlp_partials_size(widths, rows, precision)}, DType::kFloat32, device);
  d.blocks_done = Tensor::zeros({1}, DType::kInt32, device);
  return d;
}

std::vector<float> host(const Tensor& t) { return t.to(Device::cpu()).to_vector<float>(); }

// The backward kernel's weight and bias gradients of layers 1..L-1 (per-tile partials added in
// tile order) against the CPU twin, which sums in that order: fp32 SIMT within fp32 rounding
// (the twin's dz come from its own GEMMs), bf16 tensor cores within bf16's; a second pass
// (the counter reset by the last block) gives the same bits.
TEST(FusedMlpParity, BackwardKernelWritesWeightGradsAsItsCpuTwin) {
  MLPX_REQUIRE_CUDA();
  const int64_t rows = 70;
  const Tensor doutput = Tensor::from_vector(test::random_values<float>(rows * 10, 22), {rows, 10});
  for (const Precision precision : {Precision::kFp32, Precision::kBf16}) {
    SCOPED_TRACE(precision_name(precision));
    DirectLayers cpu = direct_layers(Device::cpu(), rows, precision);
    DirectLayers gpu = direct_layers(Device::cuda(0), rows, precision);
    fused_mlp_forward(cpu.layers, precision);
    fused_mlp_forward(gpu.layers, precision);
    const FusedWeightGrads cpu_grads{cpu.partials, cpu.blocks_done};
    const FusedWeightGrads gpu_grads{gpu.partials, gpu.blocks_done};
    fused_mlp_backward(cpu.layers, doutput, precision, &cpu_grads);
    fused_mlp_backward(gpu.layers, doutput.to(Device::cuda(0)), precision, &gpu_grads);
    const double tolerance = precision == Precision::kFp32 ? 1e-5 : 4e-3;
    for (size_t l = 1; l < cpu.layers.size(); ++l) {
      SCOPED_TRACE(l);
      EXPECT_LT(test::relative_error(host(gpu.layers[l].dweight), host(cpu.layers[l].dweight)),
                tolerance);
      EXPECT_LT(test::relative_error(host(gpu.layers[l].dbias), host(cpu.layers[l].dbias)),
                tolerance);
    }
    const std::vector<float> first = host(gpu.layers[1].dweight);
    fused_mlp_backward(gpu.layers, doutput.to(Device::cuda(0)), precision, &gpu_grads);
    EXPECT_EQ(host(gpu.layers[1].dweight), first);
    EXPECT_EQ(gpu.blocks_done.to(Device::cpu()).to_vector<int32_t>()[0], 0);
  }
}

// The forward kernel's loss stage reading the labels through the shuffle order and ending the
// step in its last block (the batch loss's sum and commit) against its CPU twin (gather_batch,
// the loss ops, accumulate_sum, commit_batch_loss), two batches in a row.
TEST(FusedMlpParity, ForwardKernelReadsLabelsThroughTheOrderAndCommitsTheLoss) {
  MLPX_REQUIRE_CUDA();
  const int64_t rows = 70, set = 3 * rows;
  std::vector<int32_t> classes(static_cast<size_t>(set)), order(static_cast<size_t>(set));
  for (int64_t i = 0; i < set; ++i) {
    classes[static_cast<size_t>(i)] = static_cast<int32_t>((i * 7) % 10);
    order[static_cast<size_t>(i)] = static_cast<int32_t>((i * 37 + 11) % set);
  }
  struct Step {
    std::vector<float> row_loss, batch_losses, loss_sum;
    std::vector<int32_t> correct, position, run_step;
  };
  const auto run = [&](Device device) {
    DirectLayers d = direct_layers(device, rows, Precision::kFp32);
    FusedCrossEntropy loss;
    loss.labels = Tensor::from_vector(classes, {set}).to(device);
    loss.order = Tensor::from_vector(order, {set}).to(device);
    loss.position = Tensor::zeros({1}, DType::kInt32, device);
    loss.stride = rows;
    loss.row_loss = Tensor::zeros({rows}, DType::kFloat32, device);
    loss.grad = Tensor::zeros({rows, 10}, DType::kFloat32, device);
    loss.correct = Tensor::zeros({1}, DType::kInt32, device);
    loss.loss_sum = Tensor::from_vector(std::vector<float>{0.25f}, {1}).to(device);
    loss.batch_losses = Tensor::zeros({3}, DType::kFloat32, device);
    loss.run_step = Tensor::zeros({1}, DType::kInt32, device);
    loss.blocks_done = d.blocks_done;
    loss.loss_scale = 1.0 / static_cast<double>(rows);
    fused_mlp_forward(d.layers, Precision::kFp32, &loss);
    fused_mlp_forward(d.layers, Precision::kFp32, &loss);
    synchronize(device);
    Step step;
    step.row_loss = host(loss.row_loss);
    step.batch_losses = host(loss.batch_losses);
    step.loss_sum = host(loss.loss_sum);
    step.correct = loss.correct.to(Device::cpu()).to_vector<int32_t>();
    step.position = loss.position.to(Device::cpu()).to_vector<int32_t>();
    step.run_step = loss.run_step.to(Device::cpu()).to_vector<int32_t>();
    return step;
  };
  const Step cpu = run(Device::cpu()), gpu = run(Device::cuda(0));
  EXPECT_LT(test::relative_error(gpu.row_loss, cpu.row_loss), 1e-5);
  EXPECT_LT(test::relative_error(gpu.batch_losses, cpu.batch_losses), 1e-5);
  EXPECT_EQ(gpu.batch_losses[2], 0.0f);
  EXPECT_EQ(gpu.loss_sum, std::vector<float>{0.0f});
  EXPECT_EQ(gpu.correct, cpu.correct);
  EXPECT_EQ(gpu.position, std::vector<int32_t>{2});
  EXPECT_EQ(gpu.run_step, std::vector<int32_t>{2});
  // The second batch's labels are other rows of the set: another loss.
  EXPECT_NE(gpu.batch_losses[0], gpu.batch_losses[1]);
}

TEST(FusedMlpParity, FitFollowsWidthDeviceAndPrecision) {
  Sequential cpu = make_model(Device::cpu());
  EXPECT_NE(cpu.fused_unfit_reason().find("run on a CUDA device, found cpu"), std::string::npos)
      << cpu.fused_unfit_reason();
  EXPECT_THROW(cpu.set_fused(true), ValueError);
  cpu.set_fused(false);
  EXPECT_FALSE(cpu.fused());
  MLPX_REQUIRE_CUDA();
  // The simulated device (and an H200) is compute capability 9.0: 256 units fit, 257 do not.
  Sequential wide(8,
                  {{256, Activation::kRelu}, {256, Activation::kTanh}, {4, Activation::kIdentity}},
                  DType::kFloat32, Device::cuda(0));
  EXPECT_EQ(wide.fused_unfit_reason(), "");
  Sequential wider(8, {{257, Activation::kRelu}, {4, Activation::kIdentity}}, DType::kFloat32,
                   Device::cuda(0));
  EXPECT_NE(wider.fused_unfit_reason().find("layer 0 has 257 units; the fused MLP kernels take at "
                                            "most 256 on a device of compute capability 9.x"),
            std::string::npos)
      << wider.fused_unfit_reason();
  Sequential softmax(8, {{16, Activation::kRelu}, {4, Activation::kSoftmax}}, DType::kFloat32,
                     Device::cuda(0));
  EXPECT_NE(softmax.fused_unfit_reason().find("rowwise"), std::string::npos);
  Sequential tf32 = make_model(Device::cuda(0));
  tf32.set_precision(Precision::kTf32);
  EXPECT_NE(tf32.fused_unfit_reason().find("found precision tf32"), std::string::npos);
}

#if MLPX_SIM
// Kernels of one training step (kernel launches and cuBLAS GEMMs the simulator ran, plain
// launches: a graph replay runs the same ones): an epoch of 2 steps less an epoch of 1, each
// after a first epoch, so one-time work and per-epoch work cancel.
int64_t kernels_per_step(int64_t inputs, const std::vector<int64_t>& hidden, int64_t outputs,
                         int64_t batch, bool fused) {
  TrainerOptions options;
  options.train.batch_size = batch;
  options.train.cuda_graph = false;
  options.train.shuffle = true;
  std::vector<LayerSpec> layers;
  for (int64_t units : hidden) layers.emplace_back(units, Activation::kRelu);
  layers.emplace_back(outputs, Activation::kIdentity);
  const Device gpu = Device::cuda(0);
  const auto epoch_kernels = [&](int64_t steps) {
    Sequential model(inputs, layers, DType::kFloat32, gpu);
    model.init(Init::kHeNormal, 0.0, 1);
    model.set_fused(fused);
    const int64_t rows = steps * batch;
    std::vector<int32_t> labels(static_cast<size_t>(rows));
    for (int64_t i = 0; i < rows; ++i)
      labels[static_cast<size_t>(i)] = static_cast<int32_t>(i % outputs);
    Dataset data;
    data.x = Tensor::from_vector(test::random_values<float>(static_cast<size_t>(rows * inputs), 5),
                                 {rows, inputs})
                 .to(gpu);
    data.labels = Tensor::from_vector(labels, {rows}).to(gpu);
    data.name = "train";
    Trainer trainer(options, model, data);
    trainer.run_epoch(1e-3);
    synchronize(gpu);
    const bool was_counting = mlpx_sim::counting();
    mlpx_sim::set_counting(true);
    const uint64_t before = mlpx_sim::work_records();
    trainer.run_epoch(1e-3);
    synchronize(gpu);
    mlpx_sim::set_counting(was_counting);
    int64_t kernels = 0;
    for (const auto& work : mlpx_sim::work_records_between(before, mlpx_sim::work_records()))
      kernels += work.kind == mlpx_sim::WorkKind::kKernel || work.kind == mlpx_sim::WorkKind::kGemm;
    return kernels;
  };
  return epoch_kernels(2) - epoch_kernels(1);
}

// The fused step runs fewer kernels: per step, layers 1..L-1 lose their forward GEMMs and their
// backward activation and input-gradient GEMMs, for one forward and one backward kernel, and
// the loss and correct-count kernels go into the forward kernel.
TEST(FusedMlpCount, FusedStepRunsFewerKernels) {
  const std::vector<int64_t> hidden = {16, 16, 16};
  const int64_t unfused = kernels_per_step(8, hidden, 4, 8, false);
  const int64_t fused = kernels_per_step(8, hidden, 4, 8, true);
  RecordProperty("unfused", static_cast<int>(unfused));
  RecordProperty("fused", static_cast<int>(fused));
  // Unfused, every layer's bias (and ReLU) runs in its GEMM's cuBLASLt epilogue
  // (layer_epilogue), each ReLU's backward in the input-gradient GEMM of the layer above (DRELU),
  // each bias gradient in its weight-gradient GEMM (BGRADB); a fused model runs layer 0 the
  // same way. Layers 1..3 take 3 forward GEMMs, 3 input-gradient GEMMs and 3 weight-gradient
  // GEMMs, which the fused step replaces by 2 kernels; the cross-entropy and the correct count
  // (2) run in the forward kernel, which also reads the labels through the order (no gather:
  // 1, counted twice here, as the one-step epoch reads the set in place and kernels_per_step
  // also counts its batch's gathers) and ends the step (the batch loss's sum and commit, one
  // kernel in the unfused step: 1).
  EXPECT_EQ(unfused - fused, 3 + 3 + 3 - 2 + 2 + 2 * 1 + 1) << unfused << " " << fused;
}

// The kernel counts of docs/benchmarks.md ("Fused MLP: kernels and bytes per step"): only with
// MLPX_FUSED_COUNT=1 in the environment (minutes on the simulator).
TEST(FusedMlpCount, DocumentedShapes) {
  if (std::getenv("MLPX_FUSED_COUNT") == nullptr) GTEST_SKIP() << "set MLPX_FUSED_COUNT=1";
  const std::vector<std::vector<int64_t>> shapes = {
      {256, 128}, {128, 128, 128, 128}, {256, 256, 256, 256}};
  for (int64_t batch : {128, 1024}) {
    for (const auto& hidden : shapes) {
      const int64_t unfused = kernels_per_step(784, hidden, 10, batch, false);
      const int64_t fused = kernels_per_step(784, hidden, 10, batch, true);
      std::string name = "784";
      for (int64_t units : hidden) name += "-" + std::to_string(units);
      std::cout << "count " << name << "-10 batch " << batch << ": unfused " << unfused
                << ", fused " << fused << std::endl;  // each line as it comes: minutes apart
      EXPECT_LT(fused, unfused);
    }
  }
}
#endif

}  // namespace
}  // namespace mlpx
