// The fused narrow-MLP kernels (kernels/fused_mlp.h; design in docs/gpu-speed.md, "Fused MLP").
//
// One block per tile of batch rows. Shared memory holds two tiles of activations (a layer's
// input and its output, swapped after each layer); weights are read from global memory (L2
// keeps them: a 256x256 layer is 256 KiB in fp32), converted at the load. Two kinds of math:
//   - fp32 SIMT: each thread computes elements of the output tile, a k-ascending fma chain;
//   - bf16 tensor cores: each warp owns 16 rows of the tile and computes them 16x8 at a time
//     with mma.sync m16n8k16 (kernels/mma.cuh), A from shared memory (activations, bf16), B
//     from the weights (rounded to bf16 at the load), fp32 accumulators.
// Each output element then goes through one epilogue: forward z = acc + b, f(z) (both written to
// global memory, f(z) to shared memory for the next layer); backward dz = f'(z) * acc.
#include <climits>

#include "kernels/fused_mlp.h"
#include "kernels/launch.cuh"
#include "kernels/mma.cuh"
#include "kernels/reduce.cuh"
#include "kernels/runtime.h"
#include "math/activation.h"
#include "math/bf16.h"
#include "math/loss.h"

namespace mlpx::cuda {

namespace {

constexpr int kSimtThreads = kFusedSimtThreads;
constexpr int kSimtRows = kFusedSimtRows;
constexpr int kMmaThreads = 32 * kFusedMmaWarps;
constexpr int kMmaRows = kFusedMmaRows;
constexpr int kMmaRowPad = kFusedMmaRowPad;

__host__ __device__ inline int round_up(int n, int to) { return (n + to - 1) / to * to; }

__device__ __forceinline__ float activation_value(Activation activation, float x, float alpha) {
  return math::visit_in_kernel(activation,
                               [&](auto member) { return decltype(member)::value(x, alpha); });
}

__device__ __forceinline__ float activation_grad(Activation activation, float x, float y, float dy,
                                                 float alpha) {
  return math::visit_in_kernel(
      activation, [&](auto member) { return decltype(member)::grad(x, y, dy, alpha); });
}

__device__ inline int widest(const FusedMlpPlan& plan) {
  int width = 0;
  for (int l = 0; l < plan.count; ++l) {
    width = plan.layers[l].out > width ? plan.layers[l].out : width;
  }
  return width;
}

// B(k, n) of a layer's product: forward B(k, n) = W[n][k] (z = h W^T), backward
// B(k, n) = W[k][n] (dh = dz W).
struct WeightOperand {
  const float* weight;
  int k_stride, n_stride, k_count, n_count;
  __device__ float at(int k, int n) const {
    return k < k_count && n < n_count ? weight[k * k_stride + n * n_stride] : 0.0f;
  }
};

__device__ inline WeightOperand forward_operand(const FusedMlpLayer& layer) {
  return {layer.weight, 1, layer.in, layer.in, layer.out};
}
__device__ inline WeightOperand backward_operand(const FusedMlpLayer& layer) {
  return {layer.weight, layer.in, 1, layer.out, layer.in};
}

// The softmax-cross-entropy of the tile's rows, one thread a row (the output is narrow: the
// fused widths), reading the logits the block wrote to the last layer's act (global memory,
// float32 on both paths; the caller's barrier makes them visible). The formulas and the
// argmax rule are the loss kernels' (math/loss.h), summed over the row in column order.
__device__ void cross_entropy_rows(const FusedMlpPlan& plan, int64_t first, int tile_rows,
                                   int64_t rows, DeviceStatus* status) {
  const FusedCrossEntropyPlan& loss = plan.loss;
  const FusedMlpLayer& top = plan.layers[plan.count - 1];
  const int cols = top.out;
  const float inv_cols = 1.0f / static_cast<float>(cols);
  int count = 0;
  // The batch's rows in the set, as gather_batch would have copied them (every block reads
  // the position before it reports done: the last block's advance comes after every read).
  const int32_t* rows_in_set = loss.order != nullptr
                                   ? loss.order + static_cast<int64_t>(*loss.position) * loss.stride
                                   : nullptr;
  for (int r = static_cast<int>(threadIdx.x); r < tile_rows && first + r < rows;
       r += static_cast<int>(blockDim.x)) {
    const int64_t row = first + r;
    const float* z = top.act + row * cols;
    float* grad = loss.grad + row * cols;
    const int32_t label = loss.labels[rows_in_set != nullptr ? rows_in_set[row] : row];
    if (label < 0 || label >= cols) {
      if (atomicCAS(&status->code, static_cast<int32_t>(DeviceStatusCode::kOk),
                    static_cast<int32_t>(DeviceStatusCode::kLabelOutOfRange)) ==
          static_cast<int32_t>(DeviceStatusCode::kOk)) {
        status->row = static_cast<int32_t>(row < INT_MAX ? row : INT_MAX);
        status->value = label;
        status->limit = cols;
      }
      loss.row_loss[row] = __int_as_float(0x7fc00000);  // NaN: this row has no loss
      for (int c = 0; c < cols; ++c) grad[c] = 0.0f;
      continue;
    }
    math::MaxSum<float> acc = math::max_sum_empty<float>();
    float z_sum = 0.0f, best = -INFINITY;
    int64_t best_index = LLONG_MAX;  // matches no label
    for (int c = 0; c < cols; ++c) {
      math::max_sum_push(acc, z[c]);
      z_sum += z[c];
      if (math::argmax_beats(z[c], static_cast<int64_t>(c), best, best_index)) {
        best = z[c];
        best_index = c;
      }
    }
    const float weight = math::row_weight_of(loss.row_weight, row);
    loss.row_loss[row] =
        math::smoothed_cross_entropy_row_loss(acc, z[label], z_sum, loss.smoothing, inv_cols) *
        weight;
    const float inv_sum = 1.0f / acc.sum;
    for (int c = 0; c < cols; ++c) {
      grad[c] = math::cross_entropy_grad(z[c], c == label, acc.max, inv_sum,
                                         loss.grad_scale * weight, loss.smoothing, inv_cols);
    }
    count += best_index == label ? 1 : 0;
  }
  // Integer atomics: the total does not depend on the order.
  if (count > 0) atomicAdd(loss.correct, count);
}

// Called by every thread of a block once its share is written: true in the block that
// finished last (all the others' global writes then visible to it), which also resets the
// counter for the next launch (a graph replays the same one).
__device__ bool last_block_done(unsigned* blocks_done) {
  __syncthreads();  // every thread of the block has written its share
  bool last = false;
  if (threadIdx.x == 0) {
    __threadfence();  // this block's writes are visible device-wide before it signals
    last = atomicAdd(blocks_done, 1u) == gridDim.x - 1;
    if (last) *blocks_done = 0;
  }
  if (__syncthreads_or(last ? 1 : 0) == 0) return false;
  __threadfence();  // the other blocks' writes, seen through their signals
  return true;
}

// The step's end, in the forward's last block: the batch loss (accumulate_sum's double sum,
// the rows strided over the block's threads, then group_reduce's fixed tree), then
// commit_batch_loss's moves.
template <int kThreads>
__device__ void commit_batch_loss_rows(const FusedCrossEntropyPlan& loss, int64_t rows) {
  if (loss.loss_sum == nullptr || !last_block_done(loss.blocks_done)) return;
  double sum = 0.0;
  for (int64_t i = threadIdx.x; i < rows; i += kThreads)
    sum += static_cast<double>(loss.row_loss[i]);
  sum = group_reduce<kThreads>(sum, SumOp{});
  if (threadIdx.x == 0) {
    const int32_t position = *loss.position;
    loss.batch_losses[position] =
        static_cast<float>(static_cast<double>(*loss.loss_sum) + loss.sum_scale * sum);
    *loss.loss_sum = 0.0f;
    *loss.position = position + 1;
    if (loss.run_step != nullptr) *loss.run_step += 1;
  }
}

// The tile's partial weight and bias gradients of layer l, dW[n][k] = sum_r dz[r][n] h[r][k]
// and db[n] = sum_r dz[r][n], each a row-ascending fma chain (rows outside the batch are 0 in
// both tiles), written to the block's slice of the workspace. dz, h: the tiles (row strides
// dz_stride, h_stride; DzAt/HAt read an element as float); bias_dz: db's operand.
template <int kThreads, typename DzAt, typename HAt, typename BiasDzAt>
__device__ void write_partial_grads(const FusedMlpPlan& plan, int l, int tile_rows, DzAt&& dz,
                                    HAt&& h, BiasDzAt&& bias_dz) {
  const FusedMlpLayer& layer = plan.layers[l];
  const int in = plan.layers[l - 1].out, out = layer.out;
  int64_t offset = 0;
  for (int j = 1; j < l; ++j)
    offset += static_cast<int64_t>(plan.layers[j].out) * (plan.layers[j - 1].out + 1);
  float* partial =
      plan.partials + static_cast<int64_t>(blockIdx.x) * fused_mlp_partial_floats(plan) + offset;
  for (int i = static_cast<int>(threadIdx.x); i < out * in; i += kThreads) {
    const int n = i / in, k = i % in;
    float acc = 0.0f;
    for (int r = 0; r < tile_rows; ++r) acc = fmaf(dz(r, n), h(r, k), acc);
    partial[i] = acc;
  }
  for (int n = static_cast<int>(threadIdx.x); n < out; n += kThreads) {
    float acc = 0.0f;
    for (int r = 0; r < tile_rows; ++r) acc += bias_dz(r, n);
    partial[out * in + n] = acc;
  }
}

// In the backward's last block: each layer's dweight and dbias, the blocks' partials added in
// block order.
template <int kThreads>
__device__ void sum_partial_grads(const FusedMlpPlan& plan) {
  if (!last_block_done(plan.blocks_done)) return;
  const int64_t floats = fused_mlp_partial_floats(plan);
  const auto blocks = static_cast<int64_t>(gridDim.x);
  int64_t offset = 0;
  for (int l = 1; l < plan.count; ++l) {
    const FusedMlpLayer& layer = plan.layers[l];
    const int64_t weights = static_cast<int64_t>(layer.out) * plan.layers[l - 1].out;
    for (int64_t i = threadIdx.x; i < weights + layer.out; i += kThreads) {
      float sum = plan.partials[offset + i];
      for (int64_t b = 1; b < blocks; ++b) sum += plan.partials[b * floats + offset + i];
      if (i < weights) {
        layer.dweight[i] = sum;
      } else {
        layer.dbias[i - weights] = sum;
      }
    }
    offset += weights + layer.out;
  }
}

// ---- fp32 SIMT ----------------------------------------------------------------------------

// out_tile[r][n] = epilogue(r, n, sum_k in_tile[r][k] B(k, n)) for the tile's rows and n < N.
// A thread takes a column n and every row of the tile: each weight B(k, n) is read from global
// memory once per block, straight into a register that serves all kSimtRows rows, and the
// activations it meets are the same for every thread (one shared-memory broadcast). Each sum is
// a k-ascending fma chain.
template <typename Epilogue>
__device__ void simt_layer(const float* in_tile, int stride, const WeightOperand& b,
                           Epilogue&& epilogue) {
  for (int n = static_cast<int>(threadIdx.x); n < b.n_count; n += kSimtThreads) {
    float acc[kSimtRows] = {};
    for (int k = 0; k < b.k_count; ++k) {
      const float w = b.at(k, n);
      for (int r = 0; r < kSimtRows; ++r) acc[r] = fmaf(in_tile[r * stride + k], w, acc[r]);
    }
    for (int r = 0; r < kSimtRows; ++r) epilogue(r, n, acc[r]);
  }
}

__global__ void fused_forward_simt_kernel(FusedMlpPlan plan, int64_t rows, DeviceStatus* status) {
  MLPX_DYNAMIC_SHARED(float, simt_shared);
  const int stride = widest(plan);
  float* tiles[2] = {simt_shared, simt_shared + kSimtRows * stride};
  const int64_t first = static_cast<int64_t>(blockIdx.x) * kSimtRows;
  const FusedMlpLayer& head = plan.layers[0];
  for (int i = static_cast<int>(threadIdx.x); i < kSimtRows * head.out; i += kSimtThreads) {
    const int r = i / head.out, c = i % head.out;
    tiles[0][r * stride + c] = first + r < rows ? head.act[(first + r) * head.out + c] : 0.0f;
  }
  __syncthreads();
  for (int l = 1; l < plan.count; ++l) {
    const FusedMlpLayer& layer = plan.layers[l];
    float* out_tile = tiles[l % 2];
    simt_layer(tiles[(l - 1) % 2], stride, forward_operand(layer), [&](int r, int n, float acc) {
      const float z = acc + layer.bias[n];
      const float a = activation_value(layer.activation, z, layer.alpha);
      out_tile[r * stride + n] = a;
      if (first + r < rows) {
        layer.pre[(first + r) * layer.out + n] = z;
        layer.act[(first + r) * layer.out + n] = a;
      }
    });
    __syncthreads();
  }
  if (plan.loss.labels != nullptr) {
    cross_entropy_rows(plan, first, kSimtRows, rows, status);
    commit_batch_loss_rows<kSimtThreads>(plan.loss, rows);
  }
}

// dz of layer l at (row, n) from the gradient of its output.
__device__ __forceinline__ float layer_dz(const FusedMlpLayer& layer, int64_t row, int n,
                                          float doutput) {
  const int64_t at = row * layer.out + n;
  return activation_grad(layer.activation, layer.pre[at], layer.act[at], doutput, layer.alpha);
}

__global__ void fused_backward_simt_kernel(FusedMlpPlan plan, const float* doutput, int64_t rows) {
  MLPX_DYNAMIC_SHARED(float, simt_shared);
  const int stride = widest(plan);
  float* tiles[2] = {simt_shared, simt_shared + kSimtRows * stride};
  float* below_tile = simt_shared + 2 * kSimtRows * stride;  // h of the layer below (dW)
  const int64_t first = static_cast<int64_t>(blockIdx.x) * kSimtRows;
  const int last = plan.count - 1;
  const FusedMlpLayer& top = plan.layers[last];
  for (int i = static_cast<int>(threadIdx.x); i < kSimtRows * top.out; i += kSimtThreads) {
    const int r = i / top.out, c = i % top.out;
    float dz = 0.0f;
    if (first + r < rows) {
      dz = layer_dz(top, first + r, c, doutput[(first + r) * top.out + c]);
      top.dpre[(first + r) * top.out + c] = dz;
    }
    tiles[last % 2][r * stride + c] = dz;
  }
  __syncthreads();
  for (int l = last; l >= 1; --l) {
    const FusedMlpLayer& below = plan.layers[l - 1];
    float* out_tile = tiles[(l - 1) % 2];
    simt_layer(tiles[l % 2], stride, backward_operand(plan.layers[l]),
               [&](int r, int n, float acc) {
                 float dz = 0.0f;
                 if (first + r < rows) {
                   dz = layer_dz(below, first + r, n, acc);
                   below.dpre[(first + r) * below.out + n] = dz;
                 }
                 out_tile[r * stride + n] = dz;
               });
    if (plan.partials != nullptr) {
      // dz of layer l stays in tiles[l % 2] (this iteration wrote the other tile).
      for (int i = static_cast<int>(threadIdx.x); i < kSimtRows * below.out; i += kSimtThreads) {
        const int r = i / below.out, c = i % below.out;
        below_tile[r * stride + c] =
            first + r < rows ? below.act[(first + r) * below.out + c] : 0.0f;
      }
      __syncthreads();
      const float* dz_tile = tiles[l % 2];
      const auto dz_at = [&](int r, int n) { return dz_tile[r * stride + n]; };
      write_partial_grads<kSimtThreads>(
          plan, l, kSimtRows, dz_at, [&](int r, int k) { return below_tile[r * stride + k]; },
          dz_at);
    }
    __syncthreads();
  }
  if (plan.partials != nullptr) sum_partial_grads<kSimtThreads>(plan);
}

// ---- bf16 tensor cores --------------------------------------------------------------------

// The layer's B operand, rounded to bf16, into shared memory as w_tile[n][k] (k contiguous,
// rows of w_stride = round_up(K, 16) + kMmaRowPad elements, zeros in the padding), so that
// each weight is read from global memory once per block and each warp's fragments come from
// shared memory. The global reads walk the weight's rows (coalesced in either orientation).
__device__ void stage_weights(const WeightOperand& b, uint16_t* w_tile, int w_stride) {
  const int k_padded = round_up(b.k_count, 16), n_padded = round_up(b.n_count, 16);
  const bool n_fastest = b.n_stride == 1;
  for (int i = static_cast<int>(threadIdx.x); i < k_padded * n_padded; i += kMmaThreads) {
    const int k = n_fastest ? i / n_padded : i % k_padded;
    const int n = n_fastest ? i % n_padded : i / k_padded;
    w_tile[n * w_stride + k] = math::bf16_bits(b.at(k, n));
  }
}

__host__ __device__ inline int weight_stride(int k_count) {
  return round_up(k_count, 16) + kMmaRowPad;
}

// The warp's 16 rows of out = in_tile * B, 16x8 at a time, handing each accumulator element to
// the epilogue (fragment layout: kernels/mma.cuh), B from the staged w_tile (stage_weights).
// Columns n in [N, round_up(N, 16)) come out 0 (B is 0 there), so the next layer's k-padding
// reads zeros.
template <typename Epilogue>
__device__ void mma_layer(const uint16_t* in_tile, int stride, const WeightOperand& b,
                          const uint16_t* w_tile, Epilogue&& epilogue) {
  const int warp = static_cast<int>(threadIdx.x) / 32, lane = static_cast<int>(threadIdx.x) % 32;
  const int group = lane / 4, t = lane % 4;
  const int row0 = warp * 16;
  const int k_padded = round_up(b.k_count, 16), n_padded = round_up(b.n_count, 16);
  const int w_stride = weight_stride(b.k_count);
  for (int n0 = 0; n0 < n_padded; n0 += 8) {
    float acc[4] = {0.0f, 0.0f, 0.0f, 0.0f};
    const uint16_t* column = w_tile + (n0 + group) * w_stride + 2 * t;
    for (int k0 = 0; k0 < k_padded; k0 += 16) {
      const uint16_t* upper = in_tile + (row0 + group) * stride + k0 + 2 * t;
      const uint16_t* lower = upper + 8 * stride;
      const uint32_t a[4] = {mma_pack(upper[0], upper[1]), mma_pack(lower[0], lower[1]),
                             mma_pack(upper[8], upper[9]), mma_pack(lower[8], lower[9])};
      const uint16_t* w = column + k0;
      const uint32_t bb[2] = {mma_pack(w[0], w[1]), mma_pack(w[8], w[9])};
      MLPX_MMA_M16N8K16_BF16(acc, a, bb, acc);
    }
    for (int i = 0; i < 4; ++i) {
      epilogue(row0 + group + (i >= 2 ? 8 : 0), n0 + 2 * t + (i & 1), acc[i]);
    }
  }
}

__global__ void fused_forward_mma_kernel(FusedMlpPlan plan, int64_t rows, DeviceStatus* status) {
  MLPX_DYNAMIC_SHARED(uint16_t, mma_shared);
  const int stride = round_up(widest(plan), 16) + kMmaRowPad;
  uint16_t* tiles[2] = {mma_shared, mma_shared + kMmaRows * stride};
  const int64_t first = static_cast<int64_t>(blockIdx.x) * kMmaRows;
  uint16_t* w_tile = mma_shared + 2 * kMmaRows * stride;
  const FusedMlpLayer& head = plan.layers[0];
  const int head_padded = round_up(head.out, 16);
  for (int i = static_cast<int>(threadIdx.x); i < kMmaRows * head_padded; i += kMmaThreads) {
    const int r = i / head_padded, c = i % head_padded;
    const bool inside = first + r < rows && c < head.out;
    tiles[0][r * stride + c] =
        math::bf16_bits(inside ? head.act[(first + r) * head.out + c] : 0.0f);
  }
  __syncthreads();
  for (int l = 1; l < plan.count; ++l) {
    const FusedMlpLayer& layer = plan.layers[l];
    uint16_t* out_tile = tiles[l % 2];
    const WeightOperand b = forward_operand(layer);
    // The previous layer's barrier ended every read of w_tile; this one ends the staging.
    stage_weights(b, w_tile, weight_stride(b.k_count));
    __syncthreads();
    mma_layer(tiles[(l - 1) % 2], stride, b, w_tile, [&](int r, int n, float acc) {
      float a = 0.0f;
      if (n < layer.out) {
        const float z = acc + layer.bias[n];
        a = activation_value(layer.activation, z, layer.alpha);
        if (first + r < rows) {
          layer.pre[(first + r) * layer.out + n] = z;
          layer.act[(first + r) * layer.out + n] = a;
        }
      }
      out_tile[r * stride + n] = math::bf16_bits(a);
    });
    // Each warp reads back only its own rows, but the next layer's fragments come from other
    // lanes' stores: the block barrier orders them (and keeps the tiles' swap simple).
    __syncthreads();
  }
  if (plan.loss.labels != nullptr) {
    cross_entropy_rows(plan, first, kMmaRows, rows, status);
    commit_batch_loss_rows<kMmaThreads>(plan.loss, rows);
  }
}

__global__ void fused_backward_mma_kernel(FusedMlpPlan plan, const float* doutput, int64_t rows) {
  MLPX_DYNAMIC_SHARED(uint16_t, mma_shared);
  const int stride = round_up(widest(plan), 16) + kMmaRowPad;
  uint16_t* tiles[2] = {mma_shared, mma_shared + kMmaRows * stride};
  const int64_t first = static_cast<int64_t>(blockIdx.x) * kMmaRows;
  const int last = plan.count - 1;
  uint16_t* w_tile = mma_shared + 2 * kMmaRows * stride;
  const FusedMlpLayer& top = plan.layers[last];
  const int top_padded = round_up(top.out, 16);
  for (int i = static_cast<int>(threadIdx.x); i < kMmaRows * top_padded; i += kMmaThreads) {
    const int r = i / top_padded, c = i % top_padded;
    float dz = 0.0f;
    if (first + r < rows && c < top.out) {
      dz = layer_dz(top, first + r, c, doutput[(first + r) * top.out + c]);
      top.dpre[(first + r) * top.out + c] = dz;
    }
    tiles[last % 2][r * stride + c] = math::bf16_bits(dz);
  }
  __syncthreads();
  for (int l = last; l >= 1; --l) {
    const FusedMlpLayer& below = plan.layers[l - 1];
    uint16_t* out_tile = tiles[(l - 1) % 2];
    const WeightOperand b = backward_operand(plan.layers[l]);
    stage_weights(b, w_tile, weight_stride(b.k_count));
    __syncthreads();
    mma_layer(tiles[l % 2], stride, b, w_tile, [&](int r, int n, float acc) {
      float dz = 0.0f;
      if (n < below.out && first + r < rows) {
        dz = layer_dz(below, first + r, n, acc);
        below.dpre[(first + r) * below.out + n] = dz;
      }
      out_tile[r * stride + n] = math::bf16_bits(dz);
    });
    __syncthreads();
    if (plan.partials != nullptr) {
      // The weights' region is free until the next layer stages its own: the layer below's
      // output, rounded to bf16 as the GEMM's operand, goes there as a tile. dz of layer l
      // stays in tiles[l % 2] (bf16, the operand); the bias gradient sums dz in float32, as
      // this block wrote it to dpre (visible to the block after the barrier).
      const FusedMlpLayer& layer = plan.layers[l];
      for (int i = static_cast<int>(threadIdx.x); i < kMmaRows * below.out; i += kMmaThreads) {
        const int r = i / below.out, c = i % below.out;
        w_tile[r * stride + c] =
            math::bf16_bits(first + r < rows ? below.act[(first + r) * below.out + c] : 0.0f);
      }
      __syncthreads();
      const uint16_t* dz_tile = tiles[l % 2];
      write_partial_grads<kMmaThreads>(
          plan, l, kMmaRows,
          [&](int r, int n) { return math::bf16_to_float(dz_tile[r * stride + n]); },
          [&](int r, int k) { return math::bf16_to_float(w_tile[r * stride + k]); },
          [&](int r, int n) {
            return first + r < rows ? layer.dpre[(first + r) * layer.out + n] : 0.0f;
          });
      __syncthreads();
    }
  }
  if (plan.partials != nullptr) sum_partial_grads<kMmaThreads>(plan);
}

template <typename Kernel>
void opt_in(Kernel* kernel, size_t bytes) {
  if (bytes > 48 * 1024) {
    MLPX_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                         static_cast<int>(bytes)));
  }
}

int device_attribute(cudaDeviceAttr attribute, Device device) {
  int value = 0;
  MLPX_CUDA_CHECK(cudaDeviceGetAttribute(&value, attribute, device.index));
  return value;
}

}  // namespace

int fused_mlp_device_shared_limit(Device device) {
  return device_attribute(cudaDevAttrMaxSharedMemoryPerBlockOptin, device);
}
int fused_mlp_device_major(Device device) {
  return device_attribute(cudaDevAttrComputeCapabilityMajor, device);
}

void fused_mlp_forward(const FusedMlpPlan& plan, int64_t rows, FusedMath math, Device device) {
  if (rows <= 0 || plan.count < 2) return;
  DeviceStatus* status = context(device.index).status;
  const size_t bytes = fused_mlp_shared_bytes(plan, math);
  const auto blocks = static_cast<unsigned>(fused_mlp_blocks(rows, math));
  if (math == FusedMath::kFp32Simt) {
    opt_in(fused_forward_simt_kernel, bytes);
    MLPX_LAUNCH(fused_forward_simt_kernel, blocks, kSimtThreads, bytes, stream_of(device))
    (plan, rows, status);
  } else {
    opt_in(fused_forward_mma_kernel, bytes);
    MLPX_LAUNCH(fused_forward_mma_kernel, blocks, kMmaThreads, bytes, stream_of(device))
    (plan, rows, status);
  }
  MLPX_CUDA_CHECK_LAUNCH();
}

void fused_mlp_backward(const FusedMlpPlan& plan, const float* doutput, int64_t rows,
                        FusedMath math, Device device) {
  if (rows <= 0 || plan.count < 2) return;
  const size_t bytes = fused_mlp_shared_bytes(plan, math);
  const auto blocks = static_cast<unsigned>(fused_mlp_blocks(rows, math));
  if (math == FusedMath::kFp32Simt) {
    opt_in(fused_backward_simt_kernel, bytes);
    MLPX_LAUNCH(fused_backward_simt_kernel, blocks, kSimtThreads, bytes, stream_of(device))
    (plan, doutput, rows);
  } else {
    opt_in(fused_backward_mma_kernel, bytes);
    MLPX_LAUNCH(fused_backward_mma_kernel, blocks, kMmaThreads, bytes, stream_of(device))
    (plan, doutput, rows);
  }
  MLPX_CUDA_CHECK_LAUNCH();
}

}  // namespace mlpx::cuda
