#include "cpu/fused_mlp.h"

#include <algorithm>
#include <cmath>

#include "cpu/activation.h"
#include "cpu/gemm.h"
#include "cpu/linear.h"
#include "math/bf16.h"

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

// dweight and dbias of `layer` from its dpre and the layer below's act, as the backward kernel
// sums them (fused_mlp_backward).
void weight_grads_by_tile(const FusedMlpLayer& layer, const float* below, int64_t rows,
                          int64_t tile_rows, bool bf16) {
  const int64_t in = layer.in, out = layer.out;
  const auto operand = [bf16](float x) { return bf16 ? math::round_to_bf16(x) : x; };
  std::vector<float> partial(static_cast<size_t>(out * in + out));
  for (int64_t first = 0; first < rows; first += tile_rows) {
    const int64_t end = std::min(rows, first + tile_rows);
    for (int64_t n = 0; n < out; ++n) {
      for (int64_t k = 0; k < in; ++k) {
        float acc = 0.0f;
        for (int64_t r = first; r < end; ++r) {
          acc = std::fma(operand(layer.dpre[r * out + n]), operand(below[r * in + k]), acc);
        }
        partial[static_cast<size_t>(n * in + k)] = acc;
      }
      float acc = 0.0f;
      for (int64_t r = first; r < end; ++r) acc += layer.dpre[r * out + n];
      partial[static_cast<size_t>(out * in + n)] = acc;
    }
    for (int64_t i = 0; i < out * in + out; ++i) {
      float& sum = i < out * in ? layer.dweight[i] : layer.dbias[i - out * in];
      sum = first == 0 ? partial[static_cast<size_t>(i)] : sum + partial[static_cast<size_t>(i)];
    }
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
                        int64_t rows, bool bf16, int64_t tile_rows) {
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
  for (size_t l = 1; l < layers.size(); ++l) {
    if (layers[l].dweight == nullptr || rows <= 0) continue;
    weight_grads_by_tile(layers[l], layers[l - 1].act, rows, tile_rows, bf16);
  }
}

}  // namespace mlpx::cpu
