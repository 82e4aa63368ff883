// Optimizer steps on the GPU against the CPU in float32, from the same parameters and the same
// gradient sequence: parameters, every state buffer and the device step counter.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "kernels/graph.h"
#include "math/optimizers.h"
#include "mlpx/error.h"
#include "mlpx/optimizer.h"
#include "mlpx/schedule.h"
#include "ops/gradients.h"
#include "ops/nonfinite.h"
#include "test_util.h"

namespace mlpx {

// Friend of Optimizer: reads the step counter that the update kernel advances.
struct OptimizerTestPeer {
  static std::vector<int32_t> step_counter(const Optimizer& optimizer) {
    return optimizer.step_counter_.to_vector<int32_t>();
  }
};

namespace {

constexpr double kAtol = 1e-5;
constexpr double kRtol = 1e-4;
constexpr int kSteps = 20;

struct Case {
  std::string label;
  OptimizerConfig config;
};
void PrintTo(const Case& c, std::ostream* out) { *out << c.label; }

std::vector<Case> cases() {
  std::vector<Case> out;
  auto add = [&](const std::string& label, OptimizerType type, double lr, double momentum,
                 bool nesterov, double weight_decay) {
    OptimizerConfig c;
    c.type = type;
    c.lr = lr;
    c.momentum = momentum;
    c.nesterov = nesterov;
    c.weight_decay = weight_decay;
    out.push_back({label, c});
  };
  add("sgd", OptimizerType::kSgd, 0.05, 0, false, 0);
  add("sgd_weight_decay", OptimizerType::kSgd, 0.05, 0, false, 0.01);
  add("sgd_momentum", OptimizerType::kSgd, 0.05, 0.9, false, 0);
  add("sgd_nesterov_weight_decay", OptimizerType::kSgd, 0.05, 0.9, true, 0.01);
  add("adagrad", OptimizerType::kAdagrad, 0.05, 0, false, 0);
  add("adagrad_weight_decay", OptimizerType::kAdagrad, 0.05, 0, false, 0.01);
  add("rmsprop", OptimizerType::kRmsprop, 0.01, 0, false, 0);
  add("rmsprop_weight_decay", OptimizerType::kRmsprop, 0.01, 0, false, 0.01);
  add("adam", OptimizerType::kAdam, 0.01, 0, false, 0);
  add("adam_weight_decay", OptimizerType::kAdam, 0.01, 0, false, 0.01);
  add("adamw", OptimizerType::kAdamW, 0.01, 0, false, 0.1);
  // Every member of the table (mlpx/enums.h), with momentum where its rule takes it: a member
  // that a backend lacks fails here without a new line.
  for (OptimizerType type : math::kOptimizers) {
    const bool momentum =
        math::visit(type, [](auto member) { return decltype(member)::kTakesMomentum; });
    add("table_" + optimizer_name(type), type, 0.01, momentum ? 0.9 : 0, false, 0.01);
  }
  return out;
}

// Gradient of step k: uniform in [-1, 1), all zeros on step 5.
std::vector<float> gradient(int64_t n, int k) {
  if (k == 5) return std::vector<float>(static_cast<size_t>(n), 0.0f);
  return test::random_values<float>(static_cast<size_t>(n), 500 + k);
}

void expect_same_state(const Optimizer& gpu, const Optimizer& cpu) {
  const auto a = gpu.state(), b = cpu.state();
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].first, b[i].first);
    EXPECT_EQ(a[i].second.device(), Device::cuda());
    EXPECT_TRUE(test::all_close(a[i].second.to_vector<float>(), b[i].second.to_vector<float>(),
                                kAtol, kRtol))
        << a[i].first;
  }
}

class OptimizerParity : public ::testing::TestWithParam<std::tuple<Case, int64_t>> {};

TEST_P(OptimizerParity, GpuMatchesCpuOverTwentySteps) {
  MLPX_REQUIRE_CUDA();
  const OptimizerConfig config = std::get<0>(GetParam()).config;
  const int64_t n = std::get<1>(GetParam());
  const auto p0 = test::random_values<float>(static_cast<size_t>(n), 99);
  Tensor p_cpu = Tensor::from_vector(p0, {n});
  Tensor p_gpu = Tensor::from_vector(p0, {n}, Device::cuda());
  Optimizer cpu(config, n, DType::kFloat32, Device::cpu());
  Optimizer gpu(config, n, DType::kFloat32, Device::cuda());
  for (int k = 0; k < kSteps; ++k) {
    const auto g = gradient(n, k);
    const double lr = config.lr * (k < 10 ? 1.0 : 0.5);
    cpu.step(p_cpu, Tensor::from_vector(g, {n}), lr);
    gpu.step(p_gpu, Tensor::from_vector(g, {n}, Device::cuda()), lr);
  }
  EXPECT_TRUE(test::all_close(p_gpu.to_vector<float>(), p_cpu.to_vector<float>(), kAtol, kRtol));
  expect_same_state(gpu, cpu);
  EXPECT_EQ(gpu.steps(), kSteps);
  EXPECT_EQ(OptimizerTestPeer::step_counter(gpu), (std::vector<int32_t>{kSteps, 0}));
}

std::string case_name(const ::testing::TestParamInfo<std::tuple<Case, int64_t>>& info) {
  return std::get<0>(info.param).label + "_n" + std::to_string(std::get<1>(info.param));
}

INSTANTIATE_TEST_SUITE_P(EveryOptimizerAndSize, OptimizerParity,
                         ::testing::Combine(::testing::ValuesIn(cases()),
                                            ::testing::Values<int64_t>(0, 1, 1023, 1025)),
                         case_name);

// Past the grid cap (1024 blocks of 256 threads, 4 floats each: 2^20), where every thread
// strides: one case per state count and update rule, each with its extra terms (weight decay,
// Nesterov), rather than all eleven (on the GPU simulator under ASan each costs about 18 s).
std::vector<Case> beyond_the_cap_cases() {
  std::vector<Case> out;
  for (const Case& c : cases()) {
    if (c.label == "sgd" || c.label == "sgd_nesterov_weight_decay" ||
        c.label == "adagrad_weight_decay" || c.label == "rmsprop_weight_decay" ||
        c.label == "adam_weight_decay" || c.label == "adamw") {
      out.push_back(c);
    }
  }
  return out;
}

INSTANTIATE_TEST_SUITE_P(BeyondTheGridCap, OptimizerParity,
                         ::testing::Combine(::testing::ValuesIn(beyond_the_cap_cases()),
                                            ::testing::Values<int64_t>((int64_t{1} << 20) + 3)),
                         case_name);

// Parameters and gradients that start one float into their buffers are not 16-byte aligned:
// the kernel takes its scalar path.
TEST(OptimizerParityUnaligned, ScalarPathMatchesCpu) {
  MLPX_REQUIRE_CUDA();
  OptimizerConfig config;  // adam
  config.weight_decay = 0.01;
  const int64_t n = 4099;
  const auto p0 = test::random_values<float>(static_cast<size_t>(n + 1), 5);
  Tensor p_cpu = Tensor::from_vector(p0, {n + 1}).flat_view(1, {n});
  Tensor p_gpu = Tensor::from_vector(p0, {n + 1}, Device::cuda()).flat_view(1, {n});
  Optimizer cpu(config, n, DType::kFloat32, Device::cpu());
  Optimizer gpu(config, n, DType::kFloat32, Device::cuda());
  for (int k = 0; k < 7; ++k) {
    const auto g = gradient(n + 1, k);
    cpu.step(p_cpu, Tensor::from_vector(g, {n + 1}).flat_view(1, {n}), config.lr);
    gpu.step(p_gpu, Tensor::from_vector(g, {n + 1}, Device::cuda()).flat_view(1, {n}), config.lr);
  }
  EXPECT_TRUE(test::all_close(p_gpu.to_vector<float>(), p_cpu.to_vector<float>(), kAtol, kRtol));
  expect_same_state(gpu, cpu);
}

// load_state on the GPU sets the device step counter: adam's bias correction continues from it.
TEST(OptimizerParityLoadState, ResumedGpuMatchesCpu) {
  MLPX_REQUIRE_CUDA();
  OptimizerConfig config;  // adam
  const int64_t n = 1000;
  const auto p0 = test::random_values<float>(static_cast<size_t>(n), 8);
  Tensor p_cpu = Tensor::from_vector(p0, {n});
  Optimizer cpu(config, n, DType::kFloat32, Device::cpu());
  for (int k = 0; k < 4; ++k) cpu.step(p_cpu, Tensor::from_vector(gradient(n, k), {n}), config.lr);

  Tensor p_gpu = p_cpu.to(Device::cuda());
  Optimizer gpu(config, n, DType::kFloat32, Device::cuda());
  gpu.load_state(cpu.steps(), cpu.state());  // copies CPU buffers to the device
  EXPECT_EQ(OptimizerTestPeer::step_counter(gpu), (std::vector<int32_t>{4, 0}));
  for (int k = 4; k < 9; ++k) {
    const auto g = gradient(n, k);
    cpu.step(p_cpu, Tensor::from_vector(g, {n}), config.lr);
    gpu.step(p_gpu, Tensor::from_vector(g, {n}, Device::cuda()), config.lr);
  }
  EXPECT_TRUE(test::all_close(p_gpu.to_vector<float>(), p_cpu.to_vector<float>(), kAtol, kRtol));
  expect_same_state(gpu, cpu);
  EXPECT_EQ(OptimizerTestPeer::step_counter(gpu), (std::vector<int32_t>{9, 0}));
}

// The step needs no host synchronisation: it captures into a CUDA graph, and each replay is
// one more step (the device counter advances; the host's steps() counts calls, not replays).
TEST(OptimizerParityGraph, CapturedStepReplaysAsSuccessiveSteps) {
  MLPX_REQUIRE_CUDA();
  OptimizerConfig config;  // adam: every step's bias correction differs
  const int64_t n = 5000;
  const auto p0 = test::random_values<float>(static_cast<size_t>(n), 12);
  const auto g = gradient(n, 1);
  Tensor p_cpu = Tensor::from_vector(p0, {n});
  Tensor p_gpu = Tensor::from_vector(p0, {n}, Device::cuda());
  const Tensor g_gpu = Tensor::from_vector(g, {n}, Device::cuda());
  Optimizer cpu(config, n, DType::kFloat32, Device::cpu());
  Optimizer gpu(config, n, DType::kFloat32, Device::cuda());
  synchronize(Device::cuda());

  cuda::StepGraph graph(Device::cuda());
  std::string why;
  ASSERT_TRUE(graph.capture([&] { gpu.step(p_gpu, g_gpu, config.lr); }, why)) << why;
  constexpr int kReplays = 6;
  for (int k = 0; k < kReplays; ++k) graph.launch();
  synchronize(Device::cuda());

  for (int k = 0; k < kReplays; ++k) cpu.step(p_cpu, Tensor::from_vector(g, {n}), config.lr);
  EXPECT_TRUE(test::all_close(p_gpu.to_vector<float>(), p_cpu.to_vector<float>(), kAtol, kRtol));
  expect_same_state(gpu, cpu);
  EXPECT_EQ(OptimizerTestPeer::step_counter(gpu), (std::vector<int32_t>{kReplays, 0}));
}

// A capture that cannot begin (here: its stream is capturing already) returns false with the
// reason, for the trainer's fallback to plain launches; it does not throw.
TEST(OptimizerParityGraph, CaptureThatCannotBeginReturnsFalse) {
  MLPX_REQUIRE_CUDA();
  cuda::StepGraph outer(Device::cuda()), inner(Device::cuda());
  std::string why_outer, why_inner;
  bool inner_captured = true, inner_body_ran = false;
  EXPECT_NO_THROW(outer.capture(
      [&] { inner_captured = inner.capture([&] { inner_body_ran = true; }, why_inner); },
      why_outer));
  EXPECT_FALSE(inner_captured);
  EXPECT_FALSE(inner_body_ran);
  EXPECT_NE(why_inner.find("cudaStreamBeginCapture"), std::string::npos) << why_inner;
  EXPECT_FALSE(inner.ready());
  synchronize(Device::cuda());  // the stream is usable again
}

// The device skip flag: a flagged step inside a replayed graph changes nothing and does not
// advance the device counter; the host learns the count through sync_steps().
TEST(OptimizerParityGraph, SkipFlagInsideACapturedStep) {
  MLPX_REQUIRE_CUDA();
  OptimizerConfig config;
  const int64_t n = 4099;  // a scalar tail after the float4 pass
  const auto p0 = test::random_values<float>(static_cast<size_t>(n), 31);
  auto g = gradient(n, 2);
  Tensor p_cpu = Tensor::from_vector(p0, {n});
  Tensor p_gpu = Tensor::from_vector(p0, {n}, Device::cuda());
  Tensor g_gpu = Tensor::from_vector(g, {n}, Device::cuda());
  Tensor loss = Tensor::from_vector<float>({1.0f}, {1}, Device::cuda());
  Tensor flag = Tensor::zeros({4}, DType::kInt32, Device::cuda());
  Optimizer cpu(config, n, DType::kFloat32, Device::cpu());
  Optimizer gpu(config, n, DType::kFloat32, Device::cuda());
  synchronize(Device::cuda());

  cuda::StepGraph graph(Device::cuda());
  std::string why;
  ASSERT_TRUE(graph.capture(
      [&] {
        flag_nonfinite(loss, g_gpu, flag);
        gpu.step(p_gpu, g_gpu, config.lr, &flag);
      },
      why))
      << why;
  // Replays: good, good, NaN gradient (skipped), Inf loss (skipped), good.
  const Tensor nan_value = Tensor::from_vector<float>({std::nanf("")}, {1});
  const Tensor inf_value = Tensor::from_vector<float>({INFINITY}, {1});
  const Tensor one = Tensor::from_vector<float>({1.0f}, {1});
  const float g_last = g[n - 1];
  for (int k = 0; k < 5; ++k) {
    Tensor g_tail = g_gpu.rows(n - 1, n);
    g_tail.copy_from(k == 2 ? nan_value : Tensor::from_vector<float>({g_last}, {1}));
    loss.copy_from(k == 3 ? inf_value : one);
    graph.launch();
    synchronize(Device::cuda());
  }
  for (int k = 0; k < 3; ++k) cpu.step(p_cpu, Tensor::from_vector(g, {n}), config.lr);
  EXPECT_TRUE(test::all_close(p_gpu.to_vector<float>(), p_cpu.to_vector<float>(), kAtol, kRtol));
  expect_same_state(gpu, cpu);
  EXPECT_EQ(OptimizerTestPeer::step_counter(gpu), (std::vector<int32_t>{3, 0}));
  EXPECT_EQ(flag.to_vector<int32_t>(), (std::vector<int32_t>{0, 0, 2, 0}));
  gpu.sync_steps();
  EXPECT_EQ(gpu.steps(), 3);
}

// The per-step pieces on the GPU against the CPU: clipping's norm and scale computed on the
// device (and read by the kernel), gradients summed for accumulation, the decay mask of
// optimizer.decay "weights", onecycle's rate and beta1 from the device's step counter. Odd
// sizes (the scalar tail, and a norm over more elements than the reduction's threads).
TEST(OptimizerParityKnobs, ClipAccumulateDecayAndOneCycleMatchCpu) {
  MLPX_REQUIRE_CUDA();
  for (const int64_t n : {int64_t{1}, int64_t{37}, int64_t{3001}}) {
    SCOPED_TRACE("n " + std::to_string(n));
    OptimizerConfig config;
    config.type = OptimizerType::kAdamW;
    config.lr = 0.01;
    config.weight_decay = 0.1;
    ScheduleConfig schedule;
    schedule.type = ScheduleType::kOneCycle;
    const OneCyclePlan plan = one_cycle_plan(schedule, config.lr, 12);
    const auto p0 = test::random_values<float>(static_cast<size_t>(n), 7);
    Tensor p_cpu = Tensor::from_vector(p0, {n});
    Tensor p_gpu = Tensor::from_vector(p0, {n}, Device::cuda());
    Optimizer cpu(config, n, DType::kFloat32, Device::cpu());
    Optimizer gpu(config, n, DType::kFloat32, Device::cuda());
    const std::vector<std::pair<int64_t, int64_t>> decayed = {{0, n / 2}};
    for (Optimizer* o : {&cpu, &gpu}) {
      o->set_one_cycle(plan);
      o->set_decayed_ranges(decayed);
    }
    Tensor sum_cpu = Tensor::zeros({n}),
           sum_gpu = Tensor::zeros({n}, DType::kFloat32, Device::cuda());
    Tensor norms_cpu = Tensor::zeros({1}, DType::kFloat64);
    Tensor norms_gpu = Tensor::zeros({1}, DType::kFloat64, Device::cuda());
    Tensor scratch_cpu = ops::norm_scratch(Device::cpu());
    Tensor scratch_gpu = ops::norm_scratch(Device::cuda());
    for (int k = 0; k < 12; ++k) {
      const auto g = gradient(n, k + 1);
      ops::add_gradients(Tensor::from_vector(g, {n}), sum_cpu);
      ops::add_gradients(Tensor::from_vector(g, {n}, Device::cuda()), sum_gpu);
      ops::clip_scale(sum_cpu, 0.5, cpu.step_scalars(), norms_cpu, scratch_cpu);
      ops::clip_scale(sum_gpu, 0.5, gpu.step_scalars(), norms_gpu, scratch_gpu);
      cpu.step(p_cpu, sum_cpu, config.lr);
      gpu.step(p_gpu, sum_gpu, config.lr);
    }
    EXPECT_TRUE(test::all_close(sum_gpu.to_vector<float>(), sum_cpu.to_vector<float>(), 0, 0));
    EXPECT_NEAR(norms_gpu.item<double>(), norms_cpu.item<double>(),
                1e-9 * norms_cpu.item<double>());
    EXPECT_TRUE(test::all_close(p_gpu.to_vector<float>(), p_cpu.to_vector<float>(), kAtol, kRtol));
    expect_same_state(gpu, cpu);
    // Clipping acted: the last scale was below 1.
    EXPECT_LT(cpu.step_scalars().to_vector<double>()[1], 1.0);
  }
}

// The norm's two passes on the GPU (64 blocks of fixed chunks, then the partials in order)
// against the CPU's loop; a chunk longer than a block's threads, a slice at an odd offset (a
// layer's weight in the flat buffer), and the same bits run to run.
TEST(OptimizerParityKnobs, TwoPassNormMatchesCpuAndRepeatsItsBits) {
  MLPX_REQUIRE_CUDA();
  const int64_t n = 20011;
  const auto g = test::random_values<float>(static_cast<size_t>(n), 11);
  const Tensor g_cpu = Tensor::from_vector(g, {n});
  const Tensor g_gpu = Tensor::from_vector(g, {n}, Device::cuda());
  Tensor scratch_cpu = ops::norm_scratch(Device::cpu());
  Tensor scratch_gpu = ops::norm_scratch(Device::cuda());
  for (const auto& [first, last] : std::vector<std::pair<int64_t, int64_t>>{{0, n}, {3, 1500}}) {
    SCOPED_TRACE("rows " + std::to_string(first) + ".." + std::to_string(last));
    Tensor sum_cpu = Tensor::zeros({1}, DType::kFloat64, Device::cpu());
    ops::add_norm(g_cpu.rows(first, last), sum_cpu, scratch_cpu);
    std::vector<double> runs;
    for (int run = 0; run < 2; ++run) {
      Tensor sum_gpu = Tensor::zeros({1}, DType::kFloat64, Device::cuda());
      ops::add_norm(g_gpu.rows(first, last), sum_gpu, scratch_gpu);
      runs.push_back(sum_gpu.item<double>());
    }
    EXPECT_GT(sum_cpu.item<double>(), 0.0);
    EXPECT_NEAR(runs[0], sum_cpu.item<double>(), 1e-12 * sum_cpu.item<double>());
    EXPECT_EQ(std::memcmp(&runs[0], &runs[1], sizeof(double)), 0);
  }
  // The clipping scale from the same reduction: max_norm / (norm + 1e-6) below the norm.
  Optimizer optimizer(OptimizerConfig{}, n, DType::kFloat32, Device::cuda());
  Tensor norm_gpu = Tensor::zeros({1}, DType::kFloat64, Device::cuda());
  ops::clip_scale(g_gpu, 1.0, optimizer.step_scalars(), norm_gpu, scratch_gpu);
  const double norm = norm_gpu.item<double>();
  EXPECT_NEAR(optimizer.step_scalars().to_vector<double>()[1], 1.0 / (norm + 1e-6), 1e-15);
}

TEST(OptimizerParityChecks, CudaNeedsFloat32) {
  MLPX_REQUIRE_CUDA();
  EXPECT_THROW(Optimizer(OptimizerConfig{}, 4, DType::kFloat64, Device::cuda()), ShapeError);
}

}  // namespace
}  // namespace mlpx
