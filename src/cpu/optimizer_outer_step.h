// CPU loop of an optimizer step whose weight gradients are outer products (a batch of one row:
// the gradient of a Linear weight [out, in] is dz^T x, dz [out] and x [in]). The gradient of
// each such weight is formed element by element inside the update and never stored: the pass
// moves the parameter and its state only, where optimizer_step also reads a stored gradient
// that the backward pass wrote just before. Internal.
#pragma once

#include <cstdint>
#include <vector>

#include "mlpx/enums.h"
#include "mlpx/optimizer.h"

namespace mlpx::cpu {

// A block of the flat buffer, rows x cols from `offset`, whose gradient is
// g[offset + r * cols + c] = row_factor[r] * col_factor[c].
template <typename T>
struct OuterProductBlock {
  int64_t offset = 0, rows = 0, cols = 0;
  const T* row_factor = nullptr;  // [rows]
  const T* col_factor = nullptr;  // [cols]
};

// optimizer_step (cpu/optimizer_step.h) over p: [n] and the rule's state buffers, with the
// gradient of each of `blocks` (disjoint, in any order) their outer product, and of every
// other element g[i]. Bit for bit what optimizer_step gives after gemm (cpu/gemm.h) wrote each
// block's product into g: the same product, rounded once, then the same update.
template <typename T>
void optimizer_outer_step(OptimizerType type, const OptimizerConfig& config, double lr, int64_t n,
                          T* p, const T* g, T* const* state, int64_t t,
                          const std::vector<OuterProductBlock<T>>& blocks);

}  // namespace mlpx::cpu
