// The fused narrow-MLP pass over a Sequential model's layers 1..L-1 (kernels/fused_mlp.cu on a
// CUDA device; on the CPU, its twin: the same layers through the unfused ops, which is what
// the parity tests compare against). Internal: the model's forward and backward call it.
#pragma once

#include <string>
#include <vector>

#include "mlpx/enums.h"
#include "mlpx/gemm.h"
#include "mlpx/tensor.h"

namespace mlpx {

// One layer's parameters and buffers, all [rows, out] but weight [out, in] and bias [out].
// Layer 0 is the one before the fused part: only activation, alpha, pre, act and dpre are used.
struct FusedLayer {
  Tensor weight, bias;
  Activation activation = Activation::kIdentity;
  double alpha = 0.0;
  int64_t dropout_free = 1;  // 0: the layer drops (never fused)
  Tensor pre, act, dpre;     // z, f(z) (may be one tensor for identity), d loss / dz
  // Layers 1..L-1, for fused_mlp_backward with a workspace: d loss / d weight [out, in] and
  // d loss / d bias [out], written by the backward pass. Undefined: not computed there.
  Tensor dweight, dbias;
};

// The softmax-cross-entropy of the last layer's output, computed inside the fused forward pass:
// the same as loss_forward_backward(Loss::kCrossEntropy, output, labels, row_loss, &grad,
// grad_rows, row_weight, label_smoothing) then accumulate_correct(output, labels, correct)
// (mlpx/loss.h), with no kernel of their own. The last layer must be identity.
struct FusedCrossEntropy {
  Tensor labels;          // int32 [rows]
  Tensor row_loss;        // [rows]
  Tensor grad;            // [rows, outputs]: d(batch loss) / d output
  Tensor correct;         // int32 [1], added to
  Tensor row_weight;      // [rows], or undefined: no sample weights
  int64_t grad_rows = 0;  // 0: rows
  double label_smoothing = 0.0;
  // With `order` defined, labels is the whole set's int32 [N] and row r's label is
  // labels[order[position[0] * stride + r]], the rows gather_batch(labels, order, position,
  // stride, ...) would copy (mlpx/ops: no gather of its own). order: int32 [M]; position:
  // int32 [1].
  Tensor order, position;
  int64_t stride = 0;
  // With `loss_sum` defined, the step's end too: accumulate_sum(row_loss, loss_sum, loss_scale)
  // then commit_batch_loss(loss_sum, batch_losses, position, run_step) (the trainer's), in
  // the kernel's last block; `blocks_done` int32 [1], zero between passes, is its counter.
  // position, as above, then read before it advances.
  Tensor loss_sum, batch_losses, run_step, blocks_done;
  double loss_scale = 0.0;
};

// The backward's workspace for the weight and bias gradients of layers 1..L-1
// (FusedLayer::dweight, dbias): float32 partials of fused_mlp_partials_size() elements and an
// int32 [1] counter, zero between passes. Both on the layers' device.
struct FusedWeightGrads {
  Tensor partials, blocks_done;
};

// The widest layer the fused kernels take on a device of compute capability `major` (128; 256
// on Hopper, sm_90, whose 227 KiB of shared memory per block hold its tiles).
int fused_mlp_max_width(int major);

// Why the fused kernels cannot run these layers (widths of layer 0 and every later layer,
// their activations and dropouts) on `device` in `precision` for a `dtype` model; "" when they
// can. One line, for `train.fused: on`'s error.
std::string fused_mlp_unfit_reason(const std::vector<int64_t>& widths,
                                   const std::vector<Activation>& activations,
                                   const std::vector<double>& dropouts, DType dtype,
                                   Precision precision, Device device);

// Forward through layers 1..L-1: layer l reads layers[l-1].act, writes pre and act; with
// `loss`, then the cross-entropy of the last layer's act.
void fused_mlp_forward(std::vector<FusedLayer>& layers, Precision precision,
                       const FusedCrossEntropy* loss = nullptr);
// Backward: from doutput [rows, last out] = d loss / d act of the last layer, writes dpre of
// every layer, layer 0 included (pre/act as the forward wrote them). With `grads`, also dweight
// and dbias of layers 1..L-1 (each tile's sums added in tile order: deterministic).
void fused_mlp_backward(std::vector<FusedLayer>& layers, const Tensor& doutput, Precision precision,
                        const FusedWeightGrads* grads = nullptr);

// The elements of FusedWeightGrads::partials for `rows` rows of layers of these widths (layer
// 0's included) in `precision`: one tile's partial gradients per block.
int64_t fused_mlp_partials_size(const std::vector<int64_t>& widths, int64_t rows,
                                Precision precision);

}  // namespace mlpx
