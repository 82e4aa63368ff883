// gemm() in precision kBf16 with b's bfloat16 rounding given, so no pass rounds b again: the
// GEMMs of a layer read its weight's copy that the optimizer wrote beside the float32 update.
// Internal.
#pragma once

#include <cstdint>

#include "mlpx/tensor.h"

namespace mlpx::ops {

// c = op(a) op(b) in precision kBf16 (mlpx/gemm.h), shapes as gemm(). b_bits: nullptr (b is
// rounded here, as gemm() does), or b's numel() bits on b's device (host memory on the CPU)
// with b_bits[i] == math::bf16_bits(element i of b in row-major order), which the GEMM reads
// instead of rounding b. The same bits of c either way.
void gemm_bf16_weight(const Tensor& a, bool transpose_a, const Tensor& b, const uint16_t* b_bits,
                      bool transpose_b, Tensor& c);

// The same with a's rounding given too: a_bits nullptr (a is rounded here), or a's numel() bits
// on a's device, as b_bits are b's: an activation or a gradient rounded once by the pass that
// wrote it (the CPU's fused bias-activation pass; the GPU's bf16 step) for the GEMMs that read it.
void gemm_bf16_bits(const Tensor& a, const uint16_t* a_bits, bool transpose_a, const Tensor& b,
                    const uint16_t* b_bits, bool transpose_b, Tensor& c);

// bits[i] = math::bf16_bits(x's element i) for a float32 tensor x, bits on x's device (split
// over mlpx's threads on the CPU, one kernel on a GPU): the whole copy of a model's parameters,
// made again after a write to them.
void round_to_bf16_bits(const Tensor& x, uint16_t* bits);

}  // namespace mlpx::ops
