// The fused narrow-MLP passes' CPU twin (kernels/fused_mlp.cu): layers 1..L-1 of a float32
// model, forward and backward, computed layer by layer with the CPU's GEMM and activation
// loops. The reference the kernels are checked against, in the same precision. Internal.
#pragma once

#include <cstdint>
#include <vector>

#include "mlpx/enums.h"

namespace mlpx::cpu {

// Layer l of the fused part, row-major over `rows` rows. Layer 0 gives only `act` (the fused
// part's input, written by the unfused first layer) and, for the backward, `pre`/`dpre`.
struct FusedMlpLayer {
  const float* weight = nullptr;  // [out, in] (layers 1..L-1)
  const float* bias = nullptr;    // [out]
  int64_t in = 0, out = 0;
  Activation activation = Activation::kIdentity;
  float alpha = 0.0f;
  float* pre = nullptr;      // [rows, out]: z = act of the layer below x W^T + b
  float* act = nullptr;      // [rows, out]: f(z) (may be pre for identity)
  float* dpre = nullptr;     // [rows, out]: d loss / d z
  float* dweight = nullptr;  // [out, in] (layers 1..L-1): d loss / d weight, or nullptr
  float* dbias = nullptr;    // [out]: d loss / d bias, written with dweight
};

// pre and act of layers 1..L-1 from layers[0].act; GEMMs in bf16 (inputs rounded, float32
// accumulation) when `bf16`, else float32.
void fused_mlp_forward(const std::vector<FusedMlpLayer>& layers, int64_t rows, bool bf16);

// dpre of every layer, layer 0 included, from doutput [rows, out of the last layer]:
// dz_l = f'(z_l) dy_l, then dy_{l-1} = dz_l W_l. Where a layer gives dweight, also
// dW_l = dz_l^T act_{l-1} and db_l = column sums of dz_l in the kernel's order: each tile of
// `tile_rows` rows summed row by row (one fma chain per element; in bf16 of both operands
// rounded to bf16, db from dz in float32), then the tiles' sums added in tile order.
void fused_mlp_backward(const std::vector<FusedMlpLayer>& layers, const float* doutput,
                        int64_t rows, bool bf16, int64_t tile_rows = 1);

}  // namespace mlpx::cpu
