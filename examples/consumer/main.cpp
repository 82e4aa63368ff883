// A program that uses the installed mlpx package: trains a small MLP on the built-in
// synthetic data set through the public C++ API, on the GPU when one can be used, and checks
// that it learned. Exits non-zero when it did not.
#include <mlpx/mlpx.h>

#include <cstdio>
#include <exception>

int main() try {
  const mlpx::Device device = mlpx::cuda_available() ? mlpx::Device::cuda(0) : mlpx::Device::cpu();

  // Data: 4 Gaussian classes in 16 dimensions (part 0 = train, part 1 = test).
  mlpx::SyntheticConfig data;
  data.features = 16;
  data.classes = 4;
  const mlpx::Dataset train = mlpx::make_synthetic(data, 2000, /*seed=*/1, /*part=*/0).to(device);
  const mlpx::Dataset test = mlpx::make_synthetic(data, 500, /*seed=*/1, /*part=*/1).to(device);

  // Model: 16 -> 32 (relu) -> 4 logits; parameters in one flat buffer on `device`.
  mlpx::Sequential model(16, {{32, mlpx::Activation::kRelu}, {4, mlpx::Activation::kIdentity}},
                         mlpx::DType::kFloat32, device);
  model.init(mlpx::Init::kHeNormal, /*param=*/0.0, /*seed=*/1);

  // Training: cross-entropy and Adam (the defaults), lr 0.01, mini-batches of 64, 5 epochs.
  mlpx::TrainerOptions options;
  options.optimizer.lr = 0.01;
  options.train.batch_size = 64;
  mlpx::Trainer trainer(options, model, train);
  for (int epoch = 0; epoch < 5; ++epoch) trainer.run_epoch(options.optimizer.lr);

  const mlpx::Evaluation result = mlpx::evaluate(model, options.loss, test);
  const bool learned = result.accuracy > 0.6;  // chance is 0.25
  std::printf("mlpx consumer on %s: test accuracy %.3f: %s\n", device.str().c_str(),
              result.accuracy, learned ? "PASS" : "FAIL");
  return learned ? 0 : 1;
} catch (const std::exception& e) {
  std::fprintf(stderr, "error: %s\n", e.what());
  return 1;
}
