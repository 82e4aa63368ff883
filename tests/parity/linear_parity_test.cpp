// The Linear layer on the GPU against the CPU in float32 over 60 (batch, in, out) shapes:
// forward, dW, db, dx, add_bias and sum_rows; sum_rows gives the same bits on both backends
// and on every run.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <iomanip>
#include <random>
#include <sstream>
#include <vector>

#include "mlpx/activation.h"
#include "mlpx/error.h"
#include "mlpx/gemm.h"
#include "mlpx/linear.h"
#include "mlpx/model.h"
#include "test_util.h"

#ifdef MLPX_SIM
#include "mlpx_sim/counters.h"
#endif

namespace mlpx {
namespace {

constexpr double kAtol = 1e-5;
constexpr double kRtol = 1e-4;

// (batch, in, out)
std::vector<std::array<int64_t, 3>> parity_shapes() {
  std::vector<std::array<int64_t, 3>> shapes = {
      {0, 5, 3},    {0, 1, 1},      {1, 1, 1},     {1, 7, 3},      {7, 1, 1},       {7, 3, 1},
      {1, 1025, 2}, {1025, 2, 3},   {3, 257, 5},   {257, 3, 257},  {2, 9, 1025},    {1025, 1, 1},
      {33, 10, 10}, {128, 784, 10}, {513, 31, 17}, {64, 255, 129}, {17, 100, 2049}, {1, 1, 257}};
  std::mt19937_64 gen(77);
  std::uniform_int_distribution<int64_t> batch(1, 300), width(1, 600);
  while (shapes.size() < 60) shapes.push_back({batch(gen), width(gen), width(gen)});
  return shapes;
}

std::vector<float> values(int64_t n, uint64_t seed, double scale) {
  return test::random_values<float>(static_cast<size_t>(n), seed, -scale, scale);
}

TEST(LinearParity, ForwardAndBackwardMatchCpu) {
  MLPX_REQUIRE_CUDA();
  const Device gpu = Device::cuda(0);
  uint64_t seed = 1;
  for (const auto& [batch, in, out] : parity_shapes()) {
    SCOPED_TRACE(::testing::Message() << "batch " << batch << " in " << in << " out " << out);
    // Weight-sized scales keep fp32 GEMM rounding well inside the tolerance.
    const Tensor x = Tensor::from_vector(values(batch * in, seed++, 1.0), {batch, in});
    const Tensor w = Tensor::from_vector(values(out * in, seed++, 0.1), {out, in});
    const Tensor b = Tensor::from_vector(values(out, seed++, 1.0), {out});
    const Tensor dy = Tensor::from_vector(values(batch * out, seed++, 0.1), {batch, out});

    Tensor y({batch, out}), dw({out, in}), db({out}), dx({batch, in});
    linear_forward(x, w, b, y);
    linear_backward(x, w, dy, dw, db, &dx);

    Tensor y_g({batch, out}, DType::kFloat32, gpu), dw_g({out, in}, DType::kFloat32, gpu),
        db_g({out}, DType::kFloat32, gpu), dx_g({batch, in}, DType::kFloat32, gpu);
    linear_forward(x.to(gpu), w.to(gpu), b.to(gpu), y_g);
    linear_backward(x.to(gpu), w.to(gpu), dy.to(gpu), dw_g, db_g, &dx_g);
    EXPECT_TRUE(test::all_close(y_g.to_vector<float>(), y.to_vector<float>(), kAtol, kRtol)) << "y";
    EXPECT_TRUE(test::all_close(dw_g.to_vector<float>(), dw.to_vector<float>(), kAtol, kRtol))
        << "dW";
    EXPECT_TRUE(test::all_close(db_g.to_vector<float>(), db.to_vector<float>(), kAtol, kRtol))
        << "db";
    EXPECT_TRUE(test::all_close(dx_g.to_vector<float>(), dx.to_vector<float>(), kAtol, kRtol))
        << "dx";
  }
  synchronize(gpu);
}

// The cuBLASLt epilogues (bias, bias+ReLU) against the plain path on the GPU (GEMM, bias
// kernel, ReLU kernel) and the CPU. On the simulator both GEMMs accumulate alike, so fused and
// plain are bit for bit there; a real GPU is held to the CPU tolerance.
TEST(LinearParity, EpilogueMatchesPlainPathAndCpu) {
  MLPX_REQUIRE_CUDA();
  const Device gpu = Device::cuda(0);
  uint64_t seed = 500;
  const std::array<std::array<int64_t, 3>, 4> shapes = {
      {{1, 1, 1}, {7, 3, 5}, {33, 10, 129}, {5, 257, 3}}};
  for (const LinearEpilogue epilogue : {LinearEpilogue::kBias, LinearEpilogue::kBiasRelu}) {
    for (const auto& [batch, in, out] : shapes) {
      SCOPED_TRACE(::testing::Message() << "relu " << (epilogue == LinearEpilogue::kBiasRelu)
                                        << " batch " << batch << " in " << in << " out " << out);
      const Tensor x = Tensor::from_vector(values(batch * in, seed++, 1.0), {batch, in});
      const Tensor w = Tensor::from_vector(values(out * in, seed++, 0.1), {out, in});
      const Tensor b = Tensor::from_vector(values(out, seed++, 1.0), {out});
      Tensor y_cpu({batch, out});
      linear_forward_epilogue(x, w, b, y_cpu, epilogue);
      Tensor y_plain({batch, out}, DType::kFloat32, gpu),
          y_fused({batch, out}, DType::kFloat32, gpu);
      linear_forward(x.to(gpu), w.to(gpu), b.to(gpu), y_plain);
      if (epilogue == LinearEpilogue::kBiasRelu)
        activation_forward(Activation::kRelu, y_plain, y_plain);
      linear_forward_epilogue(x.to(gpu), w.to(gpu), b.to(gpu), y_fused, epilogue);
      const std::vector<float> fused = y_fused.to_vector<float>();
      EXPECT_TRUE(test::all_close(fused, y_cpu.to_vector<float>(), kAtol, kRtol)) << "vs CPU";
#ifdef MLPX_SIM
      const std::vector<float> plain = y_plain.to_vector<float>();
      EXPECT_EQ(std::memcmp(fused.data(), plain.data(), fused.size() * sizeof(float)), 0);
#endif
      if (epilogue == LinearEpilogue::kBiasRelu) {
        for (const float v : fused) EXPECT_GE(v, 0.0f);
      }
    }
  }
  synchronize(gpu);
}

// The backward's cuBLASLt epilogues: the layer below's forward with RELU_AUX_BIAS writes its
// ReLU mask, then linear_backward_epilogue forms dW with db in its epilogue (BGRADB) and dx with
// the layer below's ReLU backward in its epilogue (DRELU), against the plain path on the GPU
// (GEMMs, sum_rows, the ReLU backward kernel reading the output) and the CPU. dW and dx are bit
// for bit on the simulator (the same GEMM arithmetic, the mask is the output's sign); db is
// cuBLASLt's sum in its own order (the simulator's: the rows one after another), so it is held
// to the tolerance, and its largest difference from sum_rows's order is recorded.
TEST(LinearParity, BackwardEpilogueMatchesPlainPathAndCpu) {
  MLPX_REQUIRE_CUDA();
  const Device gpu = Device::cuda(0);
  uint64_t seed = 900;
  double worst_db = 0.0, worst_db_relative = 0.0;
  int64_t db_differing = 0, db_elements = 0;
  // (batch, in, out): in is the layer below's units, so the mask's rows of 128, 256 and 384 bits.
  const std::array<std::array<int64_t, 3>, 5> shapes = {
      {{1, 1, 1}, {7, 3, 5}, {33, 129, 10}, {130, 5, 257}, {64, 256, 3}}};
  for (const auto& [batch, in, out] : shapes) {
    SCOPED_TRACE(::testing::Message() << "batch " << batch << " in " << in << " out " << out);
    const int64_t below_in = 6;
    const Tensor x0 = Tensor::from_vector(values(batch * below_in, seed++, 1.0), {batch, below_in});
    const Tensor w0 = Tensor::from_vector(values(in * below_in, seed++, 0.5), {in, below_in});
    const Tensor b0 = Tensor::from_vector(values(in, seed++, 0.5), {in});
    const Tensor w = Tensor::from_vector(values(out * in, seed++, 0.1), {out, in});
    const Tensor dy = Tensor::from_vector(values(batch * out, seed++, 0.1), {batch, out});

    // The CPU: the plain path.
    Tensor x({batch, in}), dw({out, in}), db({out}), dx({batch, in});
    linear_forward_epilogue(x0, w0, b0, x, LinearEpilogue::kBiasRelu);
    linear_backward(x, w, dy, dw, db, &dx);
    activation_backward(Activation::kRelu, x, x, dx, dx);

    // The GPU, plain and with the epilogues.
    Tensor x_g({batch, in}, DType::kFloat32, gpu),
        mask({batch, relu_mask_words(in)}, DType::kInt32, gpu);
    linear_forward_epilogue(x0.to(gpu), w0.to(gpu), b0.to(gpu), x_g, LinearEpilogue::kBiasRelu,
                            Precision::kFp32, &mask);
    Tensor dw_p({out, in}, DType::kFloat32, gpu), db_p({out}, DType::kFloat32, gpu),
        dx_p({batch, in}, DType::kFloat32, gpu);
    linear_backward(x_g, w.to(gpu), dy.to(gpu), dw_p, db_p, &dx_p);
    activation_backward(Activation::kRelu, x_g, x_g, dx_p, dx_p);
    Tensor dw_e({out, in}, DType::kFloat32, gpu), db_e({out}, DType::kFloat32, gpu),
        dx_e({batch, in}, DType::kFloat32, gpu);
    linear_backward_epilogue(x_g, w.to(gpu), dy.to(gpu), dw_e, db_e, &dx_e, &mask);

    // The mask is the sign of the layer below's output, bit o of row r at word o / 32.
    const std::vector<int32_t> bits = mask.to_vector<int32_t>();
    const std::vector<float> below = x_g.to_vector<float>();
    const int64_t words = relu_mask_words(in);
    for (int64_t r = 0; r < batch; ++r) {
      for (int64_t o = 0; o < in; ++o) {
        const auto word = static_cast<uint32_t>(bits[static_cast<size_t>(r * words + o / 32)]);
        ASSERT_EQ((word >> (o % 32)) & 1u, below[static_cast<size_t>(r * in + o)] > 0.0f ? 1u : 0u)
            << "row " << r << " unit " << o;
      }
    }
    const std::vector<float> dw_v = dw_e.to_vector<float>(), db_v = db_e.to_vector<float>(),
                             dx_v = dx_e.to_vector<float>();
    EXPECT_TRUE(test::all_close(dw_v, dw.to_vector<float>(), kAtol, kRtol)) << "dW vs CPU";
    EXPECT_TRUE(test::all_close(db_v, db.to_vector<float>(), kAtol, kRtol)) << "db vs CPU";
    EXPECT_TRUE(test::all_close(dx_v, dx.to_vector<float>(), kAtol, kRtol)) << "dx vs CPU";
    EXPECT_TRUE(test::all_close(db_v, db_p.to_vector<float>(), kAtol, kRtol)) << "db vs plain";
    const std::vector<float> db_plain = db_p.to_vector<float>();
    for (size_t o = 0; o < db_v.size(); ++o) {
      const double diff = std::abs(static_cast<double>(db_v[o]) - db_plain[o]);
      worst_db = std::max(worst_db, diff);
      worst_db_relative =
          std::max(worst_db_relative, diff / std::max(1e-30, std::abs(double{db_plain[o]})));
      db_differing += db_v[o] != db_plain[o] ? 1 : 0;
      db_elements += 1;
    }
#ifdef MLPX_SIM
    EXPECT_EQ(dw_v, dw_p.to_vector<float>()) << "dW vs plain";
    EXPECT_EQ(dx_v, dx_p.to_vector<float>()) << "dx vs plain";
#endif
  }
  std::ostringstream measured;
  measured << db_differing << " of " << db_elements << " db elements differ from sum_rows's bits; "
           << "largest difference " << std::scientific << std::setprecision(2) << worst_db
           << " (relative " << worst_db_relative << ")";
  RecordProperty("db_bgrad_vs_sum_rows", measured.str());
  synchronize(gpu);
}

// Where the epilogues do not run (the CPU) linear_backward_epilogue is linear_backward, and a
// ReLU mask is refused there.
TEST(LinearParity, BackwardEpilogueOnTheCpuIsThePlainBackward) {
  const Tensor x = Tensor::from_vector(values(12, 3, 1.0), {4, 3});
  const Tensor w = Tensor::from_vector(values(6, 4, 0.1), {2, 3});
  const Tensor dy = Tensor::from_vector(values(8, 5, 0.1), {4, 2});
  Tensor dw({2, 3}), db({2}), dx({4, 3}), dw_e({2, 3}), db_e({2}), dx_e({4, 3});
  linear_backward(x, w, dy, dw, db, &dx);
  linear_backward_epilogue(x, w, dy, dw_e, db_e, &dx_e, nullptr);
  EXPECT_EQ(dw_e.to_vector<float>(), dw.to_vector<float>());
  EXPECT_EQ(db_e.to_vector<float>(), db.to_vector<float>());
  EXPECT_EQ(dx_e.to_vector<float>(), dx.to_vector<float>());
  Tensor mask({4, relu_mask_words(3)}, DType::kInt32);
  EXPECT_THROW(linear_backward_epilogue(x, w, dy, dw_e, db_e, &dx_e, &mask), ValueError);
}

// linear_forward_gelu_tanh (cuBLASLt's GELU_AUX_BIAS) and linear_input_grad_gelu_tanh
// (DGELU_BGRAD, and DGELU without the bias gradient) against the plain path on the GPU (GEMM,
// bias kernel, gelu_tanh's forward and backward kernels, sum_rows) and the CPU. On the simulator
// z, y and dx are bit for bit with the plain path (the stand-in computes math::gelu_tanh and its
// slope, as the kernels do); db is cuBLASLt's sum, held to the tolerance. A width that is not a
// multiple of 8 (cuBLASLt's rule for the aux's leading dimension) takes the plain path.
TEST(LinearParity, GeluTanhEpiloguesMatchPlainPathAndCpu) {
  MLPX_REQUIRE_CUDA();
  const Device gpu = Device::cuda(0);
  uint64_t seed = 1300;
  // (batch, in, out): the forward is a gelu_tanh layer in -> out (epilogue when out % 8 == 0);
  // the backward is the input gradient of a layer in -> out above a gelu_tanh layer of `in`
  // units (epilogue when in % 8 == 0).
  const std::array<std::array<int64_t, 3>, 4> shapes = {
      {{1, 8, 8}, {7, 16, 5}, {33, 24, 136}, {5, 13, 3}}};
  for (const auto& [batch, in, out] : shapes) {
    SCOPED_TRACE(::testing::Message() << "batch " << batch << " in " << in << " out " << out);
    const Tensor x = Tensor::from_vector(values(batch * in, seed++, 1.0), {batch, in});
    const Tensor w = Tensor::from_vector(values(out * in, seed++, 0.3), {out, in});
    const Tensor b = Tensor::from_vector(values(out, seed++, 1.0), {out});
    Tensor z({batch, out}), y({batch, out});
    linear_forward_gelu_tanh(x, w, b, z, y);
    Tensor z_e({batch, out}, DType::kFloat32, gpu), y_e({batch, out}, DType::kFloat32, gpu);
    linear_forward_gelu_tanh(x.to(gpu), w.to(gpu), b.to(gpu), z_e, y_e);
    Tensor z_p({batch, out}, DType::kFloat32, gpu), y_p({batch, out}, DType::kFloat32, gpu);
    linear_forward(x.to(gpu), w.to(gpu), b.to(gpu), z_p);
    activation_forward(Activation::kGeluTanh, z_p, y_p);
    EXPECT_TRUE(test::all_close(z_e.to_vector<float>(), z.to_vector<float>(), kAtol, kRtol));
    EXPECT_TRUE(test::all_close(y_e.to_vector<float>(), y.to_vector<float>(), kAtol, kRtol));
#ifdef MLPX_SIM
    EXPECT_EQ(z_e.to_vector<float>(), z_p.to_vector<float>()) << "z vs plain";
    EXPECT_EQ(y_e.to_vector<float>(), y_p.to_vector<float>()) << "y vs plain";
#endif

    const Tensor z_below = Tensor::from_vector(values(batch * in, seed++, 3.0), {batch, in});
    const Tensor dy = Tensor::from_vector(values(batch * out, seed++, 0.3), {batch, out});
    Tensor dx({batch, in}), db({in});
    linear_input_grad_gelu_tanh(dy, w, z_below, dx, db);
    Tensor dx_e({batch, in}, DType::kFloat32, gpu), db_e({in}, DType::kFloat32, gpu);
    linear_input_grad_gelu_tanh(dy.to(gpu), w.to(gpu), z_below.to(gpu), dx_e, db_e);
    Tensor dx_only({batch, in}, DType::kFloat32, gpu), no_db;
    linear_input_grad_gelu_tanh(dy.to(gpu), w.to(gpu), z_below.to(gpu), dx_only, no_db);
    Tensor dx_p({batch, in}, DType::kFloat32, gpu), db_p({in}, DType::kFloat32, gpu);
    gemm(dy.to(gpu), false, w.to(gpu), false, dx_p);
    const Tensor zb = z_below.to(gpu);
    activation_backward(Activation::kGeluTanh, zb, zb, dx_p, dx_p);
    sum_rows(dx_p, db_p);
    EXPECT_TRUE(test::all_close(dx_e.to_vector<float>(), dx.to_vector<float>(), kAtol, kRtol));
    EXPECT_TRUE(test::all_close(db_e.to_vector<float>(), db.to_vector<float>(), kAtol, kRtol));
    EXPECT_TRUE(test::all_close(db_e.to_vector<float>(), db_p.to_vector<float>(), kAtol, kRtol));
    EXPECT_TRUE(test::all_close(dx_only.to_vector<float>(), dx.to_vector<float>(), kAtol, kRtol));
#ifdef MLPX_SIM
    EXPECT_EQ(dx_e.to_vector<float>(), dx_p.to_vector<float>()) << "dx vs plain";
    EXPECT_EQ(dx_only.to_vector<float>(), dx_p.to_vector<float>()) << "dx (DGELU) vs plain";
#endif
  }
  synchronize(gpu);
}

// A Sequential's step with the backward epilogues (every ReLU's and fused gelu_tanh's backward
// in the layer above's input-gradient GEMM, every other bias gradient in its weight-gradient
// GEMM; a tanh layer keeps its plain backward) against the same model with
// set_gemm_epilogues(false) (the plain GPU path) and the CPU. On the simulator the weight gradients
// and the output are bit for bit with the plain path; the bias gradients, and through them nothing
// else, differ in their sum's order.
TEST(LinearParity, ModelBackwardEpiloguesMatchPlainPathAndCpu) {
  MLPX_REQUIRE_CUDA();
  const Device gpu = Device::cuda(0);
  const int64_t batch = 9, inputs = 5;
  // gelu_tanh: 16 and 8 units in their epilogues (a ReLU mask below the first, one gelu_tanh
  // below the other: each one's backward and bias gradient in the input-gradient GEMM above,
  // DGELU_BGRAD); 5 units (not a multiple of 8) plain.
  const std::vector<LayerSpec> layers = {{12, Activation::kRelu},    {16, Activation::kGeluTanh},
                                         {8, Activation::kGeluTanh}, {130, Activation::kRelu},
                                         {7, Activation::kTanh},     {5, Activation::kGeluTanh},
                                         {6, Activation::kRelu},     {3, Activation::kIdentity}};
  Sequential cpu(inputs, layers);
  cpu.init(Init::kHeNormal, 0.0, 3);
  const Tensor x = Tensor::from_vector(values(batch * inputs, 41, 1.0), {batch, inputs});
  const Tensor dout = Tensor::from_vector(values(batch * 3, 42, 0.1), {batch, 3});
  const Tensor y_cpu = cpu.forward(x);
  cpu.backward(dout);
  std::vector<std::vector<float>> grads, outputs;
  for (const bool epilogues : {true, false}) {
    Sequential model = cpu.to(gpu);
    model.set_gemm_epilogues(epilogues);
    outputs.push_back(model.forward(x.to(gpu)).to_vector<float>());
    model.backward(dout.to(gpu));
    grads.push_back(model.grads().to_vector<float>());
    EXPECT_TRUE(test::all_close(outputs.back(), y_cpu.to_vector<float>(), kAtol, kRtol));
    EXPECT_TRUE(test::all_close(grads.back(), cpu.grads().to_vector<float>(), kAtol, kRtol))
        << "epilogues " << epilogues;
  }
#ifdef MLPX_SIM
  EXPECT_EQ(outputs[0], outputs[1]);
  const std::vector<Parameter> layout = Sequential::parameter_layout(inputs, layers);
  for (const Parameter& p : layout) {
    if (p.kind != ParameterKind::kWeight) continue;
    const auto first = static_cast<size_t>(p.offset);
    const auto last = first + static_cast<size_t>(p.shape[0] * p.shape[1]);
    EXPECT_TRUE(
        std::equal(grads[0].begin() + first, grads[0].begin() + last, grads[1].begin() + first))
        << p.name;
  }
#endif
  synchronize(gpu);
}

#ifdef MLPX_SIM
// The cuBLASLt algorithms are chosen once per problem (kernels/gemm.cpp, lt_matmul): the first
// step queries the heuristic, a second step of the same shapes makes no query (nor does one
// inside a cublasLtMatmul, which a call given no algorithm would make).
TEST(LinearParity, SecondStepQueriesNoHeuristic) {
  const Device gpu = Device::cuda(0);
  const int64_t batch = 11, inputs = 6;  // shapes of no other test: the first step queries
  const std::vector<LayerSpec> layers = {
      {24, Activation::kGeluTanh}, {19, Activation::kRelu}, {5, Activation::kIdentity}};
  Sequential model(inputs, layers, DType::kFloat32, gpu);
  model.init(Init::kHeNormal, 0.0, 7);
  const Tensor x = Tensor::from_vector(values(batch * inputs, 51, 1.0), {batch, inputs}, gpu);
  const Tensor dout = Tensor::from_vector(values(batch * 5, 52, 0.1), {batch, 5}, gpu);
  std::vector<uint64_t> queries;
  for (int step = 0; step < 2; ++step) {
    const uint64_t before = mlpx_sim::cublaslt_heuristic_queries();
    model.forward(x);
    model.backward(dout);
    synchronize(gpu);
    queries.push_back(mlpx_sim::cublaslt_heuristic_queries() - before);
  }
  // cuBLASLt GEMMs, one query each: forward 3 (GELU_AUX_BIAS, RELU_AUX_BIAS, BIAS); backward
  // the top two layers' weight gradients (BGRADB) and both input gradients (DRELU,
  // DGELU_BGRAD). Layer 0's weight gradient is a cuBLAS GEMM (its bias gradient came above).
  EXPECT_EQ(queries[0], 7u);
  EXPECT_EQ(queries[1], 0u);
}
#endif

TEST(LinearParity, AddBiasAndSumRowsMatchCpuBitForBit) {
  MLPX_REQUIRE_CUDA();
  const Device gpu = Device::cuda(0);
  uint64_t seed = 100;
  for (const auto& [rows, cols, unused] : parity_shapes()) {
    SCOPED_TRACE(::testing::Message() << "[" << rows << ", " << cols << "]");
    const Tensor x = Tensor::from_vector(values(rows * cols, seed++, 0.1), {rows, cols});
    const Tensor bias = Tensor::from_vector(values(cols, seed++, 1.0), {cols});
    Tensor y = x.clone();
    add_bias(y, bias);
    Tensor y_g = x.to(gpu);
    add_bias(y_g, bias.to(gpu));
    EXPECT_TRUE(test::all_close(y_g.to_vector<float>(), y.to_vector<float>(), kAtol, kRtol));

    Tensor sums({cols});
    sum_rows(x, sums);
    Tensor sums_g1({cols}, DType::kFloat32, gpu), sums_g2({cols}, DType::kFloat32, gpu);
    sum_rows(x.to(gpu), sums_g1);
    sum_rows(x.to(gpu), sums_g2);
    const std::vector<float> c = sums.to_vector<float>(), g1 = sums_g1.to_vector<float>(),
                             g2 = sums_g2.to_vector<float>();
    EXPECT_TRUE(test::all_close(g1, c, kAtol, kRtol));
    // One fixed order of additions (mlpx/math/linear.h) on both backends.
    ASSERT_EQ(g1.size(), c.size());
    EXPECT_EQ(std::memcmp(g1.data(), c.data(), c.size() * sizeof(float)), 0);
    EXPECT_EQ(std::memcmp(g1.data(), g2.data(), c.size() * sizeof(float)), 0);
  }
}

// A tall input (many rows per column tile) stays deterministic.
TEST(LinearParity, SumRowsTallIsDeterministic) {
  MLPX_REQUIRE_CUDA();
  const Device gpu = Device::cuda(0);
  const int64_t rows = 100003, cols = 77;
  const Tensor x = Tensor::from_vector(values(rows * cols, 5, 3.0), {rows, cols}, gpu);
  Tensor a({cols}, DType::kFloat32, gpu), b({cols}, DType::kFloat32, gpu);
  sum_rows(x, a);
  sum_rows(x, b);
  const std::vector<float> va = a.to_vector<float>(), vb = b.to_vector<float>();
  EXPECT_EQ(std::memcmp(va.data(), vb.data(), va.size() * sizeof(float)), 0);
  Tensor c({cols});
  sum_rows(x.to(Device::cpu()), c);
  EXPECT_TRUE(test::all_close(va, c.to_vector<float>(), 1e-3, kRtol));
}

}  // namespace
}  // namespace mlpx
