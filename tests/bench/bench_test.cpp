// The batch-size sweep on a tiny synthetic set: one row per batch size, positive figures,
// "full" = the training-set size, and the reached / time_to_target semantics. No timing
// assertion: only that the figures exist and agree with each other.
#include "tune/bench.h"

#include <gtest/gtest.h>

#include <cmath>
#include <nlohmann/json.hpp>

#include "mlpx/config.h"
#include "mlpx/dataset.h"
#include "mlpx/error.h"
#include "mlpx/model.h"
#include "test_util.h"
#include "train/step_counters.h"
#include "tune/h200_model.h"

namespace mlpx {
namespace {

Config tiny_config(int64_t features = 8) {
  Config c;
  c.device = "cpu";
  c.data.source = DataSource::kSynthetic;
  c.data.synthetic.train_samples = 200;  // 180 train rows after the 10% validation split
  c.data.synthetic.test_samples = 100;
  c.data.synthetic.features = features;
  c.data.synthetic.classes = 3;
  c.model.layers = {{16, Activation::kRelu}, {3, Activation::kIdentity}};
  c.optimizer.lr = 1e-2;
  return c;
}

BenchOptions quick_options() {
  BenchOptions o;
  o.batch_sizes = {1, 16, 0};
  o.target_accuracy = 0.5;
  o.max_seconds = 5.0;
  o.throughput_seconds = 0.02;
  o.warmup_steps = 2;
  o.min_steps = 3;
  return o;
}

TEST(BatchSizes, ParsesListsAndFull) {
  EXPECT_EQ(parse_batch_sizes("1,8,full"), (std::vector<int64_t>{1, 8, 0}));
  EXPECT_EQ(parse_batch_sizes(" 32 , 0"), (std::vector<int64_t>{32, 0}));
  EXPECT_THROW(parse_batch_sizes("8,x"), ValueError);
  EXPECT_THROW(parse_batch_sizes("-3"), ValueError);
  EXPECT_THROW(parse_batch_sizes(""), ValueError);
  EXPECT_THROW(parse_batch_sizes("4,"), ValueError);
}

TEST(BatchSweep, OneRowPerBatchSizeWithPositiveFigures) {
  const Config config = tiny_config();
  int streamed = 0;
  BenchOptions options = quick_options();
  options.on_row = [&](const BenchRow&) { ++streamed; };
  const std::vector<BenchRow> rows = run_batch_sweep(config, options);
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(streamed, 3);
  EXPECT_EQ(rows[0].batch_size, 1);
  EXPECT_EQ(rows[1].batch_size, 16);
  EXPECT_EQ(rows[2].batch_size, 180);  // full batch: the whole training split
  for (const BenchRow& r : rows) {
    EXPECT_EQ(r.device, "cpu");
    EXPECT_GT(r.samples_per_s, 0.0);
    EXPECT_NEAR(r.updates_per_s, r.samples_per_s / static_cast<double>(r.batch_size),
                1e-9 * r.samples_per_s);
    EXPECT_GT(r.epoch_s, 0.0);
    EXPECT_DOUBLE_EQ(r.target_accuracy, 0.5);
    if (r.reached) {
      EXPECT_TRUE(std::isfinite(r.time_to_target_s));
      EXPECT_GE(r.time_to_target_s, 0.0);
      EXPECT_GE(r.final_accuracy, 0.5);
    } else {
      EXPECT_TRUE(std::isnan(r.time_to_target_s));
    }
  }
  // Three well-separated-enough clusters: SGD at batch 1 gets past 50% within seconds.
  EXPECT_TRUE(rows[0].reached);
}

TEST(BatchSweep, TargetZeroSkipsTheTargetRun) {
  BenchOptions options = quick_options();
  options.batch_sizes = {32};
  options.target_accuracy = 0;
  const std::vector<BenchRow> rows = run_batch_sweep(tiny_config(), options);
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_FALSE(rows[0].reached);
  EXPECT_TRUE(std::isnan(rows[0].time_to_target_s));
  EXPECT_EQ(rows[0].target_accuracy, 0.0);
  EXPECT_GT(rows[0].epoch_s, 0.0);
  // No whole epoch was run: epoch_s is the throughput's extrapolation.
  EXPECT_FALSE(rows[0].epoch_measured);
  const double steps = std::ceil(180.0 / 32.0);
  EXPECT_NEAR(rows[0].epoch_s, steps * 32.0 / rows[0].samples_per_s, 1e-9 * rows[0].epoch_s);
}

TEST(BatchSweep, UnreachableTargetStopsAtTheCap) {
  BenchOptions options = quick_options();
  options.batch_sizes = {0};
  options.target_accuracy = 1.0;  // two noisy features, three classes: never all right
  options.max_seconds = 0.3;
  const std::vector<BenchRow> rows = run_batch_sweep(tiny_config(2), options);
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_FALSE(rows[0].reached);
  EXPECT_TRUE(std::isnan(rows[0].time_to_target_s));
  EXPECT_GE(rows[0].epochs, 1);
  EXPECT_LT(rows[0].final_accuracy, 1.0);
}

TEST(BatchSweep, RejectsBadOptions) {
  BenchOptions options = quick_options();
  options.max_seconds = 0;
  EXPECT_THROW(run_batch_sweep(tiny_config(), options), ValueError);
  options = quick_options();
  options.target_accuracy = 1.5;
  EXPECT_THROW(run_batch_sweep(tiny_config(), options), ValueError);
}

TEST(BenchRowJson, HasExactlyTheDocumentedKeys) {
  BenchRow r;
  r.device = "cpu";
  r.precision = "fp32";
  r.gemm_engine = "OpenBLAS";
  r.batch_size = 128;
  r.samples_per_s = 1000;
  r.updates_per_s = 1000.0 / 128;
  r.epoch_s = 2;
  r.time_to_target_s = NAN;
  r.target_accuracy = 0.85;
  const auto j = nlohmann::json::parse(bench_row_json(r));
  ASSERT_TRUE(j.is_object());
  EXPECT_EQ(j.size(), 12u);
  for (const char* key :
       {"device", "precision", "gemm_engine", "batch_size", "samples_per_s", "updates_per_s",
        "epoch_s", "epoch_measured", "time_to_target_s", "target_accuracy", "reached", "score"}) {
    EXPECT_TRUE(j.contains(key)) << key;
  }
  EXPECT_TRUE(j["time_to_target_s"].is_null());
  EXPECT_EQ(j["reached"], false);
  EXPECT_EQ(j["score"], "accuracy");
  r.reached = true;
  r.time_to_target_s = 1.5;
  EXPECT_EQ(nlohmann::json::parse(bench_row_json(r))["time_to_target_s"], 1.5);
}

// The model's arithmetic: each piece takes the slower of its memory and its math, plus the
// per-node cost, and the step adds them up.
TEST(H200Model, EachPieceTakesItsSlowerSidePlusANodeCost) {
  const H200Constants& c = h200_constants();
  DeviceWork copy;
  copy.kind = DeviceWork::Kind::kKernel;
  copy.bytes_read = copy.bytes_written = 4.3e6;  // 8.6 MB: 2 us at 4.3 TB/s
  DeviceWork gemm;
  gemm.kind = DeviceWork::Kind::kGemm;
  gemm.flops = 790e6;  // 1 us in bf16 at 790 TFLOP/s; its 1 KB are nothing
  gemm.bytes_read = 1024;
  gemm.precision = "bf16";
  EXPECT_NEAR(projected_h200_us({copy}), 2.0 + c.graph_node_s * 1e6, 1e-9);
  EXPECT_NEAR(projected_h200_us({gemm}), 1.0 + c.graph_node_s * 1e6, 1e-9);
  EXPECT_NEAR(projected_h200_us({copy, gemm}), 3.0 + 2 * c.graph_node_s * 1e6, 1e-9);
  gemm.precision = "fp32";  // the same FLOPs at the fp32 peak
  EXPECT_NEAR(projected_h200_us({gemm}), 790e6 / c.fp32_flops_per_s * 1e6 + c.graph_node_s * 1e6,
              1e-9);
  EXPECT_EQ(projected_h200_us({}), 0.0);
  EXPECT_FALSE(c.sources.empty());
}

// A GPU step: the captured graph's kernel nodes, no host wait between steps; on the simulator
// the counted work of the step has one record per kernel node and the GEMMs' FLOPs of the
// model: forward 2 B (8 16 + 16 3), the weight gradients as much, and the hidden layer's input
// gradient 2 B 16 3 (the first layer's input needs none).
TEST(StepCounters, GpuStepWaitsForNothingAndItsGraphMatchesTheCountedWork) {
  MLPX_REQUIRE_CUDA();
  Config config = tiny_config();
  config.device = "cuda";
  config.train.batch_size = 16;
  const DataSplits data = load_data(config, 3);
  const Dataset train = data.train.to(Device::parse("cuda"));
  Sequential model(train.features(), config.model.resolved_layers(), DType::kFloat32,
                   train.x.device());
  model.init(config.model.init, config.model.init_std, config.seed);
  const StepCounts counts = count_training_steps(config, model, train, 3);
  EXPECT_EQ(counts.steps, 3);
  EXPECT_EQ(counts.host_waits_per_step, 0);
  EXPECT_EQ(counts.host_waits_per_epoch, 1);  // the epoch's one read-back of its figures
  EXPECT_GT(counts.kernels_per_step, 0);
  if (!counts.device_work_counted) return;  // a GPU: the simulator's figures are not there
  int64_t kernels = 0;
  double flops = 0.0, bytes = 0.0;
  for (const DeviceWork& w : counts.step_work) {
    if (w.kind == DeviceWork::Kind::kKernel || w.kind == DeviceWork::Kind::kGemm) ++kernels;
    flops += w.flops;
    bytes += w.bytes_read + w.bytes_written;
  }
  EXPECT_EQ(kernels, counts.kernels_per_step);
  const double b = 16;
  EXPECT_EQ(flops, 2 * b * (8 * 16 + 16 * 3) * 2 + 2 * b * 16 * 3);
  // At least the optimizer's pass: Adam reads parameter, gradient, m and v and writes three.
  EXPECT_GT(bytes, 7.0 * 4 * static_cast<double>(model.num_params()));
}

// train.gemm_epilogues on a GPU, counted: a ReLU and a gelu_tanh layer below the output. On (the
// default), every bias, activation, activation backward and bias gradient runs in a cuBLASLt
// GEMM: 10 kernels fewer per step than with the key false (forward: 3 bias and 2 activation
// kernels; backward: 2 activation-backward kernels and 3 sum_rows). Off, no cuBLASLt call is
// left in the step.
TEST(BatchSweep, GemmEpiloguesKeyCountsThePlainStep) {
  MLPX_REQUIRE_CUDA();
  Config config = tiny_config();
  config.device = "cuda";
  config.model.layers = {
      {16, Activation::kRelu}, {16, Activation::kGeluTanh}, {3, Activation::kIdentity}};
  config.train.fused = FusedMode::kOff;
  BenchOptions options = quick_options();
  options.batch_sizes = {16};
  options.target_accuracy = 0.0;
  options.count_only = true;
  options.count_steps = 2;
  std::vector<BenchRow> rows;
  for (const bool epilogues : {true, false}) {
    config.train.gemm_epilogues = epilogues;
    rows.push_back(run_batch_sweep(config, options).at(0));
    ASSERT_TRUE(rows.back().counted);
  }
  EXPECT_LT(rows[0].kernels_per_step, rows[1].kernels_per_step);
  if (!rows[0].device_work_counted) return;  // a GPU: no simulator figures
  EXPECT_EQ(rows[1].kernels_per_step - rows[0].kernels_per_step, 5 + 5);
  const auto calls = [](const BenchRow& row, const std::string& what) {
    int n = 0;
    for (const DeviceWork& w : row.step_work) n += w.name.find(what) != std::string::npos;
    return n;
  };
  EXPECT_EQ(calls(rows[0], "epilogue 164"), 1);  // GELU_AUX_BIAS
  EXPECT_EQ(calls(rows[0], "epilogue 208"), 1);  // DGELU_BGRAD
  EXPECT_EQ(calls(rows[0], "epilogue 134"), 1);  // RELU_AUX_BIAS
  EXPECT_EQ(calls(rows[0], "epilogue 136"), 1);  // DRELU
  EXPECT_EQ(calls(rows[1], "cublasLt"), 0);
}

// `mlpx bench --count-only --json` on a GPU: the counting pass's keys, no timing figures.
TEST(BatchSweep, CountOnlyRowsOnAGpuCarryTheCountersAndNoTimes) {
  MLPX_REQUIRE_CUDA();
  Config config = tiny_config();
  config.device = "cuda";
  BenchOptions options = quick_options();
  options.batch_sizes = {16};
  options.target_accuracy = 0.0;
  options.count_only = true;
  options.count_steps = 2;
  const std::vector<BenchRow> rows = run_batch_sweep(config, options);
  ASSERT_EQ(rows.size(), 1u);
  ASSERT_TRUE(rows[0].counted);
  const auto j = nlohmann::json::parse(bench_row_json(rows[0]));
  EXPECT_TRUE(j["samples_per_s"].is_null());
  EXPECT_TRUE(j["epoch_s"].is_null());
  EXPECT_GT(j["kernels_per_step"].get<int64_t>(), 0);
  EXPECT_EQ(j["host_syncs_per_step"].get<int64_t>(), 0);
  EXPECT_EQ(j["host_syncs_per_epoch"].get<int64_t>(), 1);
  if (!rows[0].device_work_counted) return;  // a GPU: no simulator figures
  EXPECT_EQ(j["projection"], "model");
  EXPECT_GT(j["device_bytes_per_step"].get<double>(), 0.0);
  EXPECT_GT(j["gemm_flops_per_step"].get<double>(), 0.0);
  EXPECT_GT(j["projected_h200_us"].get<double>(), 0.0);
  EXPECT_EQ(rows[0].step_work.size(), static_cast<size_t>(rows[0].kernels_per_step));
}

}  // namespace
}  // namespace mlpx
