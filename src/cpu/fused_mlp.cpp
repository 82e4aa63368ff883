#include "cpu/fused_mlp.h"

#include "cpu/activation.h"
#include "cpu/gemm.h"
#include "cpu/linear.h"

namespace mlpx::cpu {
namespace {

// c[M,N] = op(a) op(b) in the fused kernels' precision.
void gemm_in(bool bf16, bool transpose_b, int64_t m, int64_t n, int64_t k, const float* a,
             const float* b, float* c) {
  if (bf16) {
    gemm_bf16(false, transpose_b, m, n, k, 1.0f, a, b, 0.0f, c);
  } else {
    gemm<float>(false, transpose_b, m, n, k, 1.0f, a, b, 0.0f, c);
  }
}

}  // namespace

void fused_mlp_forward(const std::vector<FusedMlpLayer>& layers, int64_t rows, bool bf16) {
  for (size_t l = 1; l < layers.size(); ++l) {
    const FusedMlpLayer& layer = layers[l];
    gemm_in(bf16, true, rows, layer.out, layer.in, layers[l - 1].act, layer.weight, layer.pre);
    add_bias<float>(layer.pre, layer.bias, rows, layer.out);
    if (layer.act != layer.pre || layer.activation != Activation::kIdentity) {
      activation_forward<float>(layer.activation, layer.pre, layer.act, rows, layer.out,
                                layer.alpha);
    }
  }
}

void fused_mlp_backward(const std::vector<FusedMlpLayer>& layers, const float* doutput,
                        int64_t rows, bool bf16) {
  const float* upstream = doutput;
  std::vector<float> below;
  for (size_t l = layers.size(); l-- > 0;) {
    const FusedMlpLayer& layer = layers[l];
    activation_backward<float>(layer.activation, layer.pre, layer.act, upstream, layer.dpre, rows,
                               layer.out, layer.alpha);
    if (l == 0) break;
    // A buffer of its own: dpre of the layer below is written from it next.
    std::vector<float> next(static_cast<size_t>(rows * layer.in));
    gemm_in(bf16, false, rows, layer.in, layer.out, layer.dpre, layer.weight, next.data());
    below.swap(next);
    upstream = below.data();
  }
}

}  // namespace mlpx::cpu
