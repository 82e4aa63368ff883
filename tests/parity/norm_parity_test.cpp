// LayerNorm, BatchNorm and the skip connection on the GPU against the CPU in float32: each op
// over shapes around the warp/block switch of the row kernels (1024, 1025) and the 32-column
// tiles of the column sums, in place as well; then a model with both norms, a Linear without a
// bias, residual layers and dropout, forward, backward, running statistics and predict.
#include <gtest/gtest.h>

#include <utility>
#include <vector>

#include "mlpx/model.h"
#include "mlpx/norm.h"
#include "mlpx/residual.h"
#include "test_util.h"

namespace mlpx {
namespace {

constexpr double kAtol = 1e-5;
constexpr double kRtol = 1e-4;

const std::vector<std::pair<int64_t, int64_t>> kShapes = {{2, 1},   {3, 7},    {33, 10}, {5, 1025},
                                                          {70, 33}, {2, 2049}, {17, 64}};

Tensor random(Shape shape, uint64_t seed, double low = -2.0, double high = 2.0) {
  const int64_t n = shape.size() == 2 ? shape[0] * shape[1] : shape[0];
  return Tensor::from_vector(test::random_values<float>(static_cast<size_t>(n), seed, low, high),
                             shape);
}

void expect_close(const Tensor& gpu, const Tensor& cpu) {
  EXPECT_TRUE(test::all_close(gpu.to_vector<float>(), cpu.to_vector<float>(), kAtol, kRtol));
}

TEST(NormParity, LayerNormMatchesCpu) {
  MLPX_REQUIRE_CUDA();
  const Device gpu = Device::cuda(0);
  uint64_t seed = 1;
  for (const auto& [rows, cols] : kShapes) {
    SCOPED_TRACE(::testing::Message() << "[" << rows << ", " << cols << "]");
    const Tensor x = random({rows, cols}, seed++), dy = random({rows, cols}, seed++);
    const Tensor w = random({cols}, seed++, 0.5, 1.5), b = random({cols}, seed++);
    Tensor y({rows, cols}), mean({rows}), rstd({rows}), dx({rows, cols}), dw({cols}), db({cols});
    layer_norm_forward(x, w, b, 1e-5, y, mean, rstd);
    layer_norm_backward(x, w, mean, rstd, dy, dx, dw, db);
    const Tensor xg = x.to(gpu), wg = w.to(gpu);
    Tensor yg = xg.clone(), meang({rows}, DType::kFloat32, gpu),
           rstdg({rows}, DType::kFloat32, gpu);
    layer_norm_forward(xg, wg, b.to(gpu), 1e-5, yg, meang, rstdg);
    Tensor dxg = dy.to(gpu), dwg({cols}, DType::kFloat32, gpu), dbg({cols}, DType::kFloat32, gpu);
    layer_norm_backward(xg, wg, meang, rstdg, dxg, dxg, dwg, dbg);  // dx over dy: in place
    expect_close(yg, y);
    expect_close(meang, mean);
    expect_close(rstdg, rstd);
    expect_close(dxg, dx);
    expect_close(dwg, dw);
    expect_close(dbg, db);
  }
  synchronize(gpu);
}

TEST(NormParity, BatchNormMatchesCpu) {
  MLPX_REQUIRE_CUDA();
  const Device gpu = Device::cuda(0);
  uint64_t seed = 100;
  for (const auto& [rows, cols] : kShapes) {
    SCOPED_TRACE(::testing::Message() << "[" << rows << ", " << cols << "]");
    const Tensor x = random({rows, cols}, seed++), dy = random({rows, cols}, seed++);
    const Tensor w = random({cols}, seed++, 0.5, 1.5), b = random({cols}, seed++);
    const double n = static_cast<double>(rows);
    Tensor mean({cols}), var({cols}), y({rows, cols}), dw({cols}), db({cols}), dx({rows, cols});
    Tensor running_mean = random({cols}, seed++), running_var = random({cols}, seed++, 0.5, 2.0);
    Tensor batches = Tensor::zeros({1});
    const Tensor rm_gpu_start = running_mean.to(gpu), rv_gpu_start = running_var.to(gpu);
    batch_norm_mean(x, n, mean);
    batch_norm_variance(x, mean, n, var);
    batch_norm_update_running(mean, var, n, 0.1, running_mean, running_var, batches);
    batch_norm_apply(x, mean, var, w, b, 1e-5, y);
    batch_norm_param_grads(x, mean, var, 1e-5, dy, dw, db);
    batch_norm_input_grad(x, mean, var, w, dw, db, 1e-5, n, dy, dx);

    const Tensor xg = x.to(gpu), wg = w.to(gpu);
    Tensor meang({cols}, DType::kFloat32, gpu), varg({cols}, DType::kFloat32, gpu);
    Tensor rmg = rm_gpu_start.clone(), rvg = rv_gpu_start.clone();
    Tensor batchesg = Tensor::zeros({1}, DType::kFloat32, gpu);
    batch_norm_mean(xg, n, meang);
    batch_norm_variance(xg, meang, n, varg);
    batch_norm_update_running(meang, varg, n, 0.1, rmg, rvg, batchesg);
    Tensor yg = xg.clone();
    batch_norm_apply(yg, meang, varg, wg, b.to(gpu), 1e-5, yg);  // in place
    Tensor dwg({cols}, DType::kFloat32, gpu), dbg({cols}, DType::kFloat32, gpu);
    Tensor dxg = dy.to(gpu);
    batch_norm_param_grads(xg, meang, varg, 1e-5, dxg, dwg, dbg);
    batch_norm_input_grad(xg, meang, varg, wg, dwg, dbg, 1e-5, n, dxg, dxg);  // in place
    expect_close(meang, mean);
    expect_close(varg, var);
    expect_close(rmg, running_mean);
    expect_close(rvg, running_var);
    EXPECT_EQ(batchesg.to_vector<float>(), std::vector<float>{1.0f});
    expect_close(yg, y);
    expect_close(dwg, dw);
    expect_close(dbg, db);
    expect_close(dxg, dx);
  }
  synchronize(gpu);
}

TEST(NormParity, ResidualAddMatchesCpu) {
  MLPX_REQUIRE_CUDA();
  const Device gpu = Device::cuda(0);
  const Tensor x = random({37, 29}, 7), y = random({37, 29}, 8);
  Tensor out({37, 29});
  residual_add(x, y, out);
  Tensor outg = y.to(gpu);
  residual_add(x.to(gpu), outg, outg);
  EXPECT_EQ(outg.to_vector<float>(), out.to_vector<float>());
}

// A model with every new layer key on the GPU against the same model on the CPU: two training
// steps' outputs and gradients, the running statistics, and predict() in eval form.
TEST(NormParity, ModelWithNormsAndResidualLayersMatchesCpu) {
  MLPX_REQUIRE_CUDA();
  const Device gpu = Device::cuda(0);
  LayerSpec first(24, Activation::kGelu);
  first.bias = false;
  first.norm = Norm::kBatch;
  LayerSpec second(24, Activation::kSigmoid, std::nullopt, 0.2);
  second.norm = Norm::kLayer;
  second.residual = true;
  LayerSpec third(24, Activation::kGeluTanh);
  third.norm = Norm::kBatch;
  third.residual = true;
  const std::vector<LayerSpec> layers = {first, second, third, {5, Activation::kIdentity}};
  Sequential cpu(7, layers);
  cpu.init(Init::kHeNormal, 0.0, 3);
  Sequential gpu_model = cpu.to(gpu);
  const Tensor x = random({40, 7}, 11), dout = random({40, 5}, 12);
  for (int64_t step = 0; step < 2; ++step) {
    DropoutStep drop;
    drop.seed = 5;
    drop.step = step;
    const Tensor out = cpu.forward(x, drop);
    const Tensor out_gpu = gpu_model.forward(x.to(gpu), drop);
    expect_close(out_gpu, out);
    cpu.backward(dout);
    gpu_model.backward(dout.to(gpu));
    EXPECT_TRUE(test::all_close(gpu_model.grads().to_vector<float>(),
                                cpu.grads().to_vector<float>(), 1e-4, 1e-3));
  }
  expect_close(gpu_model.buffers(), cpu.buffers());
  expect_close(gpu_model.predict(x.to(gpu)), cpu.predict(x));
  synchronize(gpu);
}

}  // namespace
}  // namespace mlpx
