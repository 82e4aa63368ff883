// precision "bf16" on the GPU against the CPU: the rounding kernel bit for bit (NaN,
// infinities, ties and subnormals included), and cuBLAS's bf16 GEMM against the CPU's (a
// model's forward and backward: SequentialCuda.ForwardBackwardMatchCpu). And the weights' bf16
// copy on the GPU: the optimizer kernel writes it beside the float32 update, the GEMMs read it
// instead of rounding the weights, and every write to the parameters makes it again.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "bf16_copy_steps.h"
#include "kernels/bf16.h"
#include "kernels/graph.h"
#include "math/bf16.h"
#include "mlpx/activation.h"
#include "mlpx/gemm.h"
#include "mlpx/linear.h"
#include "mlpx/model.h"
#include "mlpx/optimizer.h"
#include "ops/gemm_bf16_weight.h"
#include "test_util.h"

namespace mlpx {
namespace {

std::vector<uint32_t> bits_of(const std::vector<float>& v) {
  std::vector<uint32_t> out(v.size());
  std::memcpy(out.data(), v.data(), v.size() * sizeof(float));
  return out;
}

// n bf16 values on `device`, two to an int32 (a Tensor has no 16-bit dtype), and their reading.
Tensor bf16_buffer(int64_t n, Device device) {
  return Tensor::zeros({(n + 1) / 2}, DType::kInt32, device);
}
uint16_t* bf16_data(const Tensor& buffer, int64_t offset = 0) {
  return reinterpret_cast<uint16_t*>(buffer.data<int32_t>()) + offset;
}
// n of the bits in `buffer` (bf16_buffer's), from element `offset` on, read back to the host.
std::vector<uint16_t> read_bf16(const Tensor& buffer, int64_t offset, int64_t n) {
  const std::vector<int32_t> words = buffer.to_vector<int32_t>();
  std::vector<uint16_t> host(static_cast<size_t>(n));
  std::memcpy(host.data(), reinterpret_cast<const uint16_t*>(words.data()) + offset,
              host.size() * sizeof(uint16_t));
  return host;
}
std::vector<uint16_t> rounded(const std::vector<float>& values) {
  std::vector<uint16_t> out(values.size());
  for (size_t i = 0; i < values.size(); ++i) out[i] = math::bf16_bits(values[i]);
  return out;
}

TEST(Bf16Parity, RoundingKernelMatchesCpuBitForBit) {
  MLPX_REQUIRE_CUDA();
  // Every 7th sign-exponent-mantissa top half (NaN and infinity ones included), each with the
  // dropped halves that decide a rounding: 56,178 patterns, and 8 special ones.
  std::vector<uint32_t> patterns;
  for (uint32_t top = 0; top < 0x10000u; top += 7) {
    for (uint32_t low : {0x0000u, 0x0001u, 0x7fffu, 0x8000u, 0x8001u, 0xffffu}) {
      patterns.push_back((top << 16) | low);
    }
  }
  for (uint32_t special : {0x7f800000u, 0xff800000u, 0x7f800001u, 0x7fc00000u, 0x7f7fffffu,
                           0x00008000u, 0x00018000u, 0x80000000u}) {
    patterns.push_back(special);
  }
  std::vector<float> values(patterns.size());
  std::memcpy(values.data(), patterns.data(), patterns.size() * sizeof(float));
  const auto n = static_cast<int64_t>(values.size());
  const Tensor x = Tensor::from_vector(values, {n});
  Tensor cpu_out({n}, DType::kFloat32);
  round_to_bf16(x, cpu_out);
  Tensor gpu = x.to(Device::cuda(0));
  round_to_bf16(gpu, gpu);  // in place
  EXPECT_EQ(bits_of(gpu.to_vector<float>()), bits_of(cpu_out.to_vector<float>()));
}

// The same bf16 products on both devices, summed in different orders (cuBLAS's, OpenBLAS's or
// oneDNN's): float32 rounding apart (near 1e-7), while fp32 on the GPU is bfloat16's rounding
// away (near 1e-3).
TEST(Bf16Parity, GemmMatchesCpuOnEveryTranspose) {
  MLPX_REQUIRE_CUDA();
  const Device gpu = Device::cuda(0);
  const int64_t m = 24, n = 17, k = 160;
  for (bool ta : {false, true}) {
    for (bool tb : {false, true}) {
      SCOPED_TRACE(testing::Message() << "ta " << ta << " tb " << tb);
      const Tensor a =
          Tensor::from_vector(test::random_values<float>(m * k, 31),
                              ta ? std::vector<int64_t>{k, m} : std::vector<int64_t>{m, k});
      const Tensor b =
          Tensor::from_vector(test::random_values<float>(k * n, 32),
                              tb ? std::vector<int64_t>{n, k} : std::vector<int64_t>{k, n});
      Tensor c_cpu({m, n}, DType::kFloat32);
      gemm(a, ta, b, tb, c_cpu, 1.0, 0.0, Precision::kBf16);
      Tensor c_gpu({m, n}, DType::kFloat32, gpu);
      const Tensor a_gpu = a.to(gpu), b_gpu = b.to(gpu);
      gemm(a_gpu, ta, b_gpu, tb, c_gpu, 1.0, 0.0, Precision::kBf16);
      const auto bf16_cpu = c_cpu.to_vector<float>();
      EXPECT_LT(test::relative_error(c_gpu.to_vector<float>(), bf16_cpu), 1e-6);
      gemm(a_gpu, ta, b_gpu, tb, c_gpu, 1.0, 0.0, Precision::kFp32);
      EXPECT_GT(test::relative_error(c_gpu.to_vector<float>(), bf16_cpu), 1e-4);
    }
  }
}

// A captured bf16 GEMM names the context's scratch; a larger bf16 GEMM after the capture (an
// evaluation with bigger batches between two replays of a training step) grows the scratch,
// and the graph must still replay onto memory that exists (the simulator faults on a freed
// allocation) and give the same result.
TEST(Bf16Parity, CapturedGemmReplaysAfterTheScratchGrew) {
  MLPX_REQUIRE_CUDA();
  const Device gpu = Device::cuda(0);
  const int64_t m = 8, n = 6, k = 40;
  const Tensor a = Tensor::from_vector(test::random_values<float>(m * k, 51), {m, k}).to(gpu);
  const Tensor b = Tensor::from_vector(test::random_values<float>(k * n, 52), {k, n}).to(gpu);
  Tensor c({m, n}, DType::kFloat32, gpu);
  gemm(a, false, b, false, c, 1.0, 0.0, Precision::kBf16);  // plain: sizes the scratch
  const auto expected = c.to_vector<float>();
  cuda::StepGraph graph(gpu);
  std::string why;
  ASSERT_TRUE(graph.capture([&] { gemm(a, false, b, false, c, 1.0, 0.0, Precision::kBf16); }, why))
      << why;
  const int64_t big = 96;
  const Tensor x =
      Tensor::from_vector(test::random_values<float>(big * big, 53), {big, big}).to(gpu);
  Tensor y({big, big}, DType::kFloat32, gpu);
  gemm(x, false, x, false, y, 1.0, 0.0, Precision::kBf16);  // grows the scratch
  c.fill_zero();
  graph.launch();
  EXPECT_EQ(c.to_vector<float>(), expected);
}

// The optimizer kernel's bf16 copy: the step's float32 parameters are a step's without a copy,
// bit for bit, and the copy is their nearest-even rounding, on the float4 pass with its scalar
// tail (n = 4k + 3) and on the scalar pass (parameters, gradients and copy one element off
// their alignment); a skipped step leaves the copy as it leaves the parameters.
TEST(Bf16Parity, OptimizerKernelWritesTheCopyBesideTheUpdate) {
  MLPX_REQUIRE_CUDA();
  const Device gpu = Device::cuda(0);
  const int64_t n = 4 * 37 + 3;
  OptimizerConfig config;  // adam
  config.lr = 0.01;
  for (int64_t offset : {0, 1}) {
    SCOPED_TRACE(testing::Message() << "offset " << offset);
    const Tensor start =
        Tensor::from_vector(test::random_values<float>(n + 1, 61), {n + 1}).to(gpu);
    Tensor with_copy = start.clone(), without = start.clone();
    Tensor params = with_copy.flat_view(offset, {n}), reference = without.flat_view(offset, {n});
    const Tensor all_grads =
        Tensor::from_vector(test::random_values<float>(n + 1, 62), {n + 1}).to(gpu);
    const Tensor grads = all_grads.flat_view(offset, {n});
    const Tensor copy = bf16_buffer(n + 1, gpu);
    Optimizer optimizer(config, n, DType::kFloat32, gpu), plain(config, n, DType::kFloat32, gpu);
    for (int step = 0; step < 3; ++step) {
      optimizer.step(params, grads, config.lr, nullptr, bf16_data(copy, offset));
      plain.step(reference, grads, config.lr);
    }
    const std::vector<float> stepped = params.to_vector<float>();
    EXPECT_NE(stepped, start.flat_view(offset, {n}).to_vector<float>());
    EXPECT_EQ(bits_of(stepped), bits_of(reference.to_vector<float>()));
    EXPECT_EQ(read_bf16(copy, offset, n), rounded(stepped));
    const Tensor skip = Tensor::from_vector<int32_t>({1}, {1}).to(gpu);
    const Tensor untouched = bf16_buffer(n + 1, gpu);  // zeros
    optimizer.step(params, grads, config.lr, &skip, bf16_data(untouched, offset));
    EXPECT_EQ(bits_of(params.to_vector<float>()), bits_of(stepped));
    EXPECT_EQ(read_bf16(untouched, offset, n), std::vector<uint16_t>(n, 0));
  }
}

// A bf16 GEMM given its weight operand's bits reads them instead of rounding the weight: the
// same bits of c as rounding it (the bits from the GPU's rounding, equal to the CPU formula's),
// and zeroed bits give zeros whatever the weight holds.
TEST(Bf16Parity, GemmReadsGivenWeightBitsInsteadOfRoundingTheWeight) {
  MLPX_REQUIRE_CUDA();
  const Device gpu = Device::cuda(0);
  const int64_t m = 12, n = 9, k = 40;
  const Tensor a = Tensor::from_vector(test::random_values<float>(m * k, 71), {m, k}).to(gpu);
  for (bool tb : {false, true}) {
    SCOPED_TRACE(testing::Message() << "tb " << tb);
    const std::vector<float> b_values = test::random_values<float>(k * n, 72);
    const Tensor b =
        Tensor::from_vector(b_values, tb ? std::vector<int64_t>{n, k} : std::vector<int64_t>{k, n})
            .to(gpu);
    const Tensor bits = bf16_buffer(k * n, gpu);
    ops::round_to_bf16_bits(b, bf16_data(bits));
    EXPECT_EQ(read_bf16(bits, 0, k * n), rounded(b_values));
    Tensor rounding({m, n}, DType::kFloat32, gpu), reading({m, n}, DType::kFloat32, gpu);
    gemm(a, false, b, tb, rounding, 1.0, 0.0, Precision::kBf16);
    ops::gemm_bf16_weight(a, false, b, bf16_data(bits), tb, reading);
    EXPECT_EQ(bits_of(reading.to_vector<float>()), bits_of(rounding.to_vector<float>()));
    const Tensor zero_bits = bf16_buffer(k * n, gpu);
    ops::gemm_bf16_weight(a, false, b, bf16_data(zero_bits), tb, reading);
    EXPECT_EQ(reading.to_vector<float>(), std::vector<float>(m * n, 0.0f));
  }
}

// A GPU model's bf16 weights written by the optimizer beside its float32 update, against the
// way before it: every GEMM rounding its weight itself (linear_forward / linear_backward without
// a copy). Adam steps of a two-layer model: the same float32 parameters bit for bit, and the
// copy is their nearest-even rounding (tests/numerics/bf16_test.cpp does the same on the CPU).
TEST(Bf16Parity, GpuOptimizersBf16CopyTrainsBitForBitAsRoundingEachGemm) {
  MLPX_REQUIRE_CUDA();
  const Device gpu = Device::cuda(0);
  const int64_t batch = 4, inputs = 6, hidden = 5, outputs = 3, steps = 4;
  const std::vector<LayerSpec> layers = {{hidden, Activation::kTanh},
                                         {outputs, Activation::kIdentity}};
  Sequential initial(inputs, layers);
  initial.init(Init::kXavierNormal, 0, 5);
  Sequential model = initial.to(gpu), rounding_each_gemm = initial.to(gpu);
  model.set_precision(Precision::kBf16);
  test::step_with_copy_and_rounding_each_gemm(model, rounding_each_gemm, batch, steps);
  const std::vector<float> got = model.params().to_vector<float>();
  EXPECT_EQ(bits_of(got), bits_of(rounding_each_gemm.params().to_vector<float>()));
  EXPECT_NE(got, initial.params().to_vector<float>());  // the steps moved the parameters
  // Each weight's copy, read through a bf16 GEMM: I W takes one exact product per element.
  const uint16_t* copy = model.bf16_params_for_step();  // current: returned as written
  for (size_t i = 0; i < model.num_layers(); ++i) {
    const Tensor weight = std::as_const(model).weight(i);
    const int64_t rows = weight.rows(), cols = weight.cols();
    std::vector<float> eye(static_cast<size_t>(rows * rows), 0.0f);
    for (int64_t r = 0; r < rows; ++r) eye[static_cast<size_t>(r * rows + r)] = 1.0f;
    const Tensor identity = Tensor::from_vector(eye, {rows, rows}).to(gpu);
    Tensor read({rows, cols}, DType::kFloat32, gpu);
    ops::gemm_bf16_weight(identity, false, weight, copy + model.layer_offset(i), false, read);
    std::vector<float> want = weight.to_vector<float>();
    for (float& v : want) v = math::round_to_bf16(v);
    EXPECT_EQ(bits_of(read.to_vector<float>()), bits_of(want)) << "layer " << i;
  }
}

// On a GPU too, the GEMMs read the copy and round no weight themselves: zeroed in the copy,
// layer 0's weight contributes nothing. Any write through params(), weight() or init(), and
// set_precision(), makes the model round its parameters again before the next forward.
TEST(Bf16Parity, GpuGemmsReadTheCopyAndAWriteToTheParametersRefreshesIt) {
  MLPX_REQUIRE_CUDA();
  const Device gpu = Device::cuda(0);
  const int64_t batch = 3, inputs = 4, outputs = 2;
  Sequential on_cpu(inputs, {{outputs, Activation::kIdentity}});
  on_cpu.init(Init::kXavierNormal, 0, 7);
  on_cpu.bias(0).copy_from(Tensor::from_vector(std::vector<float>{0.25f, -0.5f}, {outputs}));
  Sequential model = on_cpu.to(gpu);
  model.set_precision(Precision::kBf16);
  const Tensor x =
      Tensor::from_vector(test::random_values<float>(batch * inputs, 8, -2, 2), {batch, inputs})
          .to(gpu);
  const std::vector<float> before = model.forward(x).to_vector<float>();
  const Tensor zeros = Tensor::zeros({outputs * inputs}, DType::kFloat32, gpu);
  auto zero_layer0_copy = [&] {  // layer 0's weight, as bits of +0
    cuda::round_to_bf16_bits(zeros.data<float>(), model.bf16_params_for_step(), outputs * inputs,
                             gpu);
  };
  zero_layer0_copy();
  const std::vector<float> from_zeroed_copy = model.predict(x).to_vector<float>();
  for (int64_t s = 0; s < batch; ++s) {
    EXPECT_EQ(from_zeroed_copy[s * outputs], 0.25f);
    EXPECT_EQ(from_zeroed_copy[s * outputs + 1], -0.5f);
  }
  model.params().copy_from(model.params().clone());  // the same values back, through params()
  EXPECT_EQ(model.forward(x).to_vector<float>(), before);
  zero_layer0_copy();
  model.set_precision(Precision::kBf16);
  EXPECT_EQ(model.forward(x).to_vector<float>(), before);
  zero_layer0_copy();
  model.weight(0).copy_from(
      Tensor::from_vector(std::vector<float>(outputs * inputs, 1.0f), {outputs, inputs}).to(gpu));
  const std::vector<float> ones = model.forward(x).to_vector<float>();
  const auto xv = x.to_vector<float>();
  for (int64_t s = 0; s < batch; ++s) {
    float sum = 0.0f;
    for (int64_t i = 0; i < inputs; ++i) sum += math::round_to_bf16(xv[s * inputs + i]);
    EXPECT_NEAR(ones[s * outputs], sum + 0.25f, 1e-5);
  }
  zero_layer0_copy();
  model.init(Init::kXavierNormal, 0, 7);  // on_cpu's weights again (biases zero now)
  on_cpu.init(Init::kXavierNormal, 0, 7);
  on_cpu.set_precision(Precision::kBf16);
  EXPECT_TRUE(test::all_close(model.forward(x).to_vector<float>(),
                              on_cpu.forward(x.to(Device::cpu())).to_vector<float>(), 1e-6, 1e-5));
}

// The GPU's bf16 step through cuBLASLt epilogues against the CPU's bf16 passes: ReLU and
// identity hidden layers write their outputs as bf16 bits only (RELU_AUX_BIAS / BIAS), a tanh
// layer reads such bits and keeps the plain path, the input-gradient GEMMs write the dz below
// as bits (DRELU, DEFAULT) and every bias gradient sums dz's bf16 values (BGRADB). One
// forward and backward: the output and every gradient within fp32 accumulation-order noise of
// the CPU's (the GEMM operands are the same bits), and a second forward of the same batch
// gives the same output bit for bit.
TEST(Bf16Parity, GpuEpilogueStepMatchesTheCpuBf16Step) {
  MLPX_REQUIRE_CUDA();
  const Device gpu = Device::cuda(0);
  const int64_t batch = 6, inputs = 7, outputs = 3;
  const std::vector<LayerSpec> layers = {{9, Activation::kRelu},
                                         {8, Activation::kIdentity},
                                         {6, Activation::kTanh},
                                         {5, Activation::kRelu},
                                         {outputs, Activation::kIdentity}};
  Sequential on_cpu(inputs, layers);
  on_cpu.init(Init::kHeNormal, 0, 31);
  on_cpu.params().copy_from(Tensor::from_vector(
      test::random_values<float>(on_cpu.num_params(), 32, -0.6, 0.6), {on_cpu.num_params()}));
  Sequential on_gpu = on_cpu.to(gpu);
  on_cpu.set_precision(Precision::kBf16);
  on_gpu.set_precision(Precision::kBf16);
  const Tensor x =
      Tensor::from_vector(test::random_values<float>(batch * inputs, 33, -2, 2), {batch, inputs});
  const Tensor dy =
      Tensor::from_vector(test::random_values<float>(batch * outputs, 34), {batch, outputs});
  const std::vector<float> want_out = on_cpu.forward(x).to_vector<float>();
  on_cpu.backward(dy);
  const Tensor x_gpu = x.to(gpu);
  const std::vector<float> out = on_gpu.forward(x_gpu).to_vector<float>();
  on_gpu.backward(dy.to(gpu));
  EXPECT_LT(test::relative_error(out, want_out), 1e-5);
  const std::vector<float> grads = on_gpu.grads().to_vector<float>();
  const std::vector<float> want_grads = on_cpu.grads().to_vector<float>();
  EXPECT_LT(test::relative_error(grads, want_grads), 1e-5);
  for (size_t i = 0; i < layers.size(); ++i) {
    EXPECT_LT(test::relative_error(std::as_const(on_gpu).bias_grad(i).to_vector<float>(),
                                   std::as_const(on_cpu).bias_grad(i).to_vector<float>()),
              1e-5)
        << "layer " << i;
  }
  EXPECT_NE(grads, std::vector<float>(grads.size(), 0.0f));
  EXPECT_EQ(bits_of(on_gpu.forward(x_gpu).to_vector<float>()), bits_of(out));
}

}  // namespace
}  // namespace mlpx
