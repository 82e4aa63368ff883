// Uses the installed mlpx package: a Linear layer's forward pass y = x W^T + b by gemm, on
// the CPU and, when one can be used, on the GPU. Exits non-zero when a result is wrong.
#include <mlpx/mlpx.h>

#include <cmath>
#include <cstdio>
#include <exception>
#include <vector>

namespace {

// y[2, 2] = x[2, 3] W[2, 3]^T + b[2] on `device`, returned on the host.
std::vector<float> linear_forward(mlpx::Device device) {
  const mlpx::Tensor x = mlpx::Tensor::from_vector<float>({1, 2, 3, 4, 5, 6}, {2, 3}, device);
  const mlpx::Tensor w = mlpx::Tensor::from_vector<float>({1, 0, -1, 2, 1, 0}, {2, 3}, device);
  mlpx::Tensor y({2, 2}, mlpx::DType::kFloat32, device);
  mlpx::gemm(x, false, w, true, y);
  std::vector<float> out = y.to_vector<float>();
  const float bias[2] = {0.5f, -1.0f};
  for (size_t i = 0; i < out.size(); ++i) out[i] += bias[i % 2];
  return out;
}

bool check(const char* where, const std::vector<float>& y) {
  const std::vector<float> expected = {-1.5f, 3.0f, -1.5f, 12.0f};
  bool ok = y.size() == expected.size();
  for (size_t i = 0; ok && i < y.size(); ++i) ok = std::fabs(y[i] - expected[i]) < 1e-6f;
  std::printf("%s: y = [%g, %g; %g, %g] %s\n", where, y[0], y[1], y[2], y[3],
              ok ? "ok" : "WRONG (expected [-1.5, 3; -1.5, 12])");
  return ok;
}

}  // namespace

int main() try {
  bool ok = check("cpu", linear_forward(mlpx::Device::cpu()));

  // The same seed gives the same weights: draw twice and compare.
  mlpx::Tensor w1({4, 8}), w2({4, 8});
  mlpx::init_tensor(w1, mlpx::Init::kHeNormal, 8, 0.0, 42, 0);
  mlpx::init_tensor(w2, mlpx::Init::kHeNormal, 8, 0.0, 42, 0);
  const bool same = w1.to_vector<float>() == w2.to_vector<float>();
  std::printf("init: he_normal draws %s\n", same ? "repeat" : "DIFFER");
  ok = ok && same;

  if (mlpx::cuda_available()) {
    ok = check("cuda:0", linear_forward(mlpx::Device::cuda(0))) && ok;
  } else {
    std::printf("cuda: %s\n",
                mlpx::built_with_cuda() ? "built with CUDA, no usable GPU" : "built without CUDA");
  }
  std::printf("mlpx consumer: %s\n", ok ? "PASS" : "FAIL");
  return ok ? 0 : 1;
} catch (const std::exception& e) {
  std::fprintf(stderr, "error: %s\n", e.what());
  return 1;
}
