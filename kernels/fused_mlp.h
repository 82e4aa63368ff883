// Launchers of the fused narrow-MLP kernels (kernels/fused_mlp.cu). Internal.
//
// The fused part of a Sequential model is its layers 1..L-1 (all but the first, input-width
// GEMM). Forward: one kernel per tile of batch rows; the tile's activations stay in shared
// memory through every fused layer, and each layer's pre-activation z and output f(z) are
// written once (what the backward and the weight-gradient GEMMs read). Backward: one kernel
// through the layers in reverse, from d loss / d output to every layer's dz (layer 0's too),
// the input gradients staying on chip; weight and bias gradients are then separate GEMMs and
// column sums over the written dz (docs/gpu-speed.md, "Fused MLP", says why).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "math/hd.h"
#include "mlpx/device.h"
#include "mlpx/enums.h"

namespace mlpx::cuda {

inline constexpr int kFusedMaxLayers = 8;  // layer 0 (not computed, its outputs are the input)
                                           // and up to 7 fused layers

// One layer, row-major float32 buffers of `rows` rows. For layer 0 only activation, alpha, out,
// pre, act and dpre are used.
struct FusedMlpLayer {
  const float* weight = nullptr;  // [out, in]
  const float* bias = nullptr;    // [out]
  int in = 0, out = 0;
  Activation activation = Activation::kIdentity;
  float alpha = 0.0f;
  float* pre = nullptr;   // [rows, out] z (forward writes)
  float* act = nullptr;   // [rows, out] f(z) (forward writes; may be pre for identity)
  float* dpre = nullptr;  // [rows, out] d loss / dz (backward writes)
  // Layers 1..L-1: d loss / d weight [out, in] and d loss / d bias [out], which the backward
  // kernel writes when the plan has a workspace (FusedMlpPlan::partials); else nullptr.
  float* dweight = nullptr;
  float* dbias = nullptr;
};

// The softmax-cross-entropy after the last layer (identity), inside the forward kernel: per
// row what cross_entropy() and accumulate_correct() (kernels/loss.h) compute, the loss, its
// gradient and the correct count, from the logits the block has just written.
struct FusedCrossEntropyPlan {
  const int32_t* labels = nullptr;    // [rows]; nullptr: the kernel computes no loss
  float* row_loss = nullptr;          // [rows]
  float* grad = nullptr;              // [rows, out of the last layer]
  int32_t* correct = nullptr;         // [1], added to
  const float* row_weight = nullptr;  // [rows] or nullptr
  float grad_scale = 0.0f;            // of the batch mean (1 / grad_rows)
  float smoothing = 0.0f;             // label smoothing in [0, 1]
  // The batch's labels read through the shuffle order, as gather_batch (kernels/batching.h)
  // would have gathered them: row r's label is labels[order[*position * stride + r]], labels
  // then being the whole set's [N]. order nullptr: labels is the batch's [rows].
  const int32_t* order = nullptr;
  int32_t* position = nullptr;  // [1]; also advanced by the commit below
  int64_t stride = 0;
  // The step's end in the kernel's last block (blocks_done counts the blocks that finished):
  // accumulate_sum(row_loss, loss_sum, sum_scale) then commit_batch_loss(loss_sum,
  // batch_losses, position, run_step) (kernels/loss.h, kernels/batching.h), the sum in their
  // fixed order (double, one block's tree). loss_sum nullptr: neither.
  float* loss_sum = nullptr;      // [1]
  float* batch_losses = nullptr;  // [batches]
  int32_t* run_step = nullptr;    // [1] or nullptr
  double sum_scale = 0.0;
  unsigned* blocks_done = nullptr;  // [1], 0 between launches (the last block resets it)
};

struct FusedMlpPlan {
  int count = 0;  // layers, layer 0 included
  FusedMlpLayer layers[kFusedMaxLayers];
  FusedCrossEntropyPlan loss;
  // The backward's weight and bias gradients of layers 1..L-1 (FusedMlpLayer::dweight, dbias):
  // each block writes its tile's partial sums to partials (fused_mlp_partial_floats a block),
  // the last block to finish (blocks_done) adds them up in block order. nullptr: the kernel
  // writes dpre only, and the caller computes those gradients.
  float* partials = nullptr;
  unsigned* blocks_done = nullptr;  // [1], 0 between launches (the last block resets it)
};

// How the fused layers multiply: fp32 SIMT, or bf16 operands with fp32 accumulation on tensor
// cores (mma.sync m16n8k16; GEMM inputs rounded to bf16 as precision "bf16" does).
enum class FusedMath { kFp32Simt, kBf16TensorCores };

// The launch shapes: fp32 SIMT blocks of 256 threads over 32 rows (32 rather than 16: half the
// blocks, so half the weights' rereads and of the backward's partial gradients, for 32
// accumulators a thread); tensor-core blocks of 4
// warps, each owning 16 rows (64 in all). A bf16 row in shared memory is padded by 8 elements
// (16 bytes) so that the 8 rows one fragment load touches start in different banks.
inline constexpr int kFusedSimtThreads = 256;
inline constexpr int kFusedSimtRows = 32;
inline constexpr int kFusedMmaWarps = 4;
inline constexpr int kFusedMmaRows = 16 * kFusedMmaWarps;
inline constexpr int kFusedMmaRowPad = 8;

// The widest layer of the plan (layer 0's output included): the shared tiles' width.
inline int fused_mlp_widest(const FusedMlpPlan& plan) {
  int width = 0;
  for (int l = 0; l < plan.count; ++l) {
    width = plan.layers[l].out > width ? plan.layers[l].out : width;
  }
  return width;
}

// Rows of a batch tile (one block each).
inline int fused_mlp_tile_rows(FusedMath math) {
  return math == FusedMath::kFp32Simt ? kFusedSimtRows : kFusedMmaRows;
}

// Floats of one block's partial gradients: sum over layers 1..L-1 of out * in + out.
MLPX_HD int64_t fused_mlp_partial_floats(const FusedMlpPlan& plan) {
  int64_t floats = 0;
  for (int l = 1; l < plan.count; ++l) {
    floats += static_cast<int64_t>(plan.layers[l].out) * (plan.layers[l - 1].out + 1);
  }
  return floats;
}

// Blocks of a pass over `rows` rows (one tile each).
inline int64_t fused_mlp_blocks(int64_t rows, FusedMath math) {
  const int tile = fused_mlp_tile_rows(math);
  return (rows + tile - 1) / tile;
}

// The dynamic shared memory of a launch: three activation tiles (a layer's input and output,
// and in the backward the layer below's output for the weight gradient); on tensor cores two
// tiles and the largest layer's weights in bf16, [N][K] with padded rows, in the forward (N =
// out, K = in) or the backward (N = in, K = out) orientation, a region the backward's weight
// gradient reuses for its third tile. Width 256 on sm_90: 2 x 64 x 264 x 2 + 256 x 264 x 2 =
// 198 KiB, within the 227 KiB of a block.
inline size_t fused_mlp_shared_bytes(const FusedMlpPlan& plan, FusedMath math) {
  const auto width = static_cast<size_t>(fused_mlp_widest(plan));
  if (math == FusedMath::kFp32Simt) return size_t{3} * kFusedSimtRows * width * sizeof(float);
  const auto padded = [](int n) { return (static_cast<size_t>(n) + 15) / 16 * 16; };
  const size_t stride = padded(static_cast<int>(width)) + kFusedMmaRowPad;
  size_t weights = kFusedMmaRows * stride;
  for (int l = 1; l < plan.count; ++l) {
    const int in = plan.layers[l - 1].out, out = plan.layers[l].out;
    weights = std::max({weights, padded(out) * (padded(in) + kFusedMmaRowPad),
                        padded(in) * (padded(out) + kFusedMmaRowPad)});
  }
  return (size_t{2} * kFusedMmaRows * stride + weights) * sizeof(uint16_t);
}
// The device's per-block shared memory limit with the opt-in (bytes), and its compute
// capability major version (9 on Hopper).
int fused_mlp_device_shared_limit(Device device);
int fused_mlp_device_major(Device device);

// Forward of layers 1..count-1 over `rows` rows: reads layers[0].act, writes pre/act of the rest;
// then, with plan.loss.labels, the cross-entropy (a label outside [0, out) sets the device's
// status flag, as cross_entropy() does).
void fused_mlp_forward(const FusedMlpPlan& plan, int64_t rows, FusedMath math, Device device);
// Backward: from doutput [rows, last.out] (d loss / d f(z) of the last layer) writes dpre of
// every layer, layer 0 included; reads pre/act as the forward wrote them. With plan.partials
// (fused_mlp_blocks x fused_mlp_partial_floats floats), also dweight and dbias of layers
// 1..L-1: dW = dz^T h_below and db = column sums of dz, each block's tile summed row by row
// (ascending), then the tiles' partials added in block order (the CPU twin's order).
void fused_mlp_backward(const FusedMlpPlan& plan, const float* doutput, int64_t rows,
                        FusedMath math, Device device);

}  // namespace mlpx::cuda
