#include "cpu/optimizer_outer_step.h"

#include <algorithm>
#include <type_traits>

#include "cpu/flush_denormals.h"
#include "cpu/optimizer_step.h"
#include "cpu/parallel.h"
#include "cpu/vector_clones.h"
#include "math/optimizers.h"
#include "mlpx/error.h"

namespace mlpx::cpu {

namespace {

// The rule's update over one block, S state buffers; p and state point at the block's first
// element.
template <typename Rule, int S, typename T>
inline void outer_rule_loop(int64_t rows, int64_t cols, const T* row_factor, const T* col_factor,
                            T* p, T* const* state,
                            const typename Rule::template Coefficients<T>& c) {
  for (int64_t r = 0; r < rows; ++r) {
    const T a = row_factor[r];
    T* pr = p + r * cols;
    T* sr[std::max(S, 1)] = {};
    for (int k = 0; k < S; ++k) sr[k] = state[k] + r * cols;
    for (int64_t j = 0; j < cols; ++j) {
      // gemm's product for k == 1 (cpu/gemm.cpp), alpha (a b + 0) + 0 with alpha 1: the same
      // rounding, and the + 0 makes a -0 product +0 as there.
      const T gj = a * col_factor[j] + T(0);
      T s[std::max(S, 1)] = {};
      for (int k = 0; k < S; ++k) s[k] = sr[k][j];
      pr[j] = Rule::template update<S>(pr[j], gj, s, c);
      for (int k = 0; k < S; ++k) sr[k][j] = s[k];
    }
  }
}

// float32: one clone per vector width (cpu/vector_clones.h), written out per member and state
// count from the table, as cpu/optimizer_step.cpp does.
template <OptimizerType kType>
struct Float32OuterLoops;

#define MLPX_FLOAT32_OUTER_LOOPS(kind, name, rule)                                               \
  MLPX_VECTOR_CLONES void kind##_outer_fewest(int64_t rows, int64_t cols, const float* a,        \
                                              const float* b, float* p, float* const* state,     \
                                              const math::rule::Coefficients<float>& c) {        \
    outer_rule_loop<math::rule, math::rule::kFewestStateBuffers>(rows, cols, a, b, p, state, c); \
  }                                                                                              \
  MLPX_VECTOR_CLONES void kind##_outer_most(int64_t rows, int64_t cols, const float* a,          \
                                            const float* b, float* p, float* const* state,       \
                                            const math::rule::Coefficients<float>& c) {          \
    outer_rule_loop<math::rule, math::rule::kMostStateBuffers>(rows, cols, a, b, p, state, c);   \
  }                                                                                              \
  template <>                                                                                    \
  struct Float32OuterLoops<OptimizerType::kind> {                                                \
    static constexpr auto kFewest = &kind##_outer_fewest;                                        \
    static constexpr auto kMost = &kind##_outer_most;                                            \
  };
MLPX_OPTIMIZERS(MLPX_FLOAT32_OUTER_LOOPS)
#undef MLPX_FLOAT32_OUTER_LOOPS

// Elements per chunk of the parallel update: some tens of microseconds of Adam, well above the
// cost of handing a chunk to another thread; a block of fewer elements runs on one thread.
inline constexpr int64_t kParallelGrain = 16384;

// The state buffers moved to element `offset`.
template <typename T>
std::vector<T*> state_at(T* const* state, int buffers, int64_t offset) {
  std::vector<T*> moved(static_cast<size_t>(std::max(buffers, 1)), nullptr);
  for (int k = 0; k < buffers; ++k) moved[static_cast<size_t>(k)] = state[k] + offset;
  return moved;
}

// One block through the rule of `type`.
template <typename T>
void outer_block_step(OptimizerType type, const OptimizerConfig& config, double lr, T* p,
                      T* const* state, int64_t t, const OuterProductBlock<T>& block) {
  math::visit(type, [&](auto member) {
    using Member = std::decay_t<decltype(member)>;
    using Rule = typename Member::Rule;
    const typename Rule::Hyper hyper = Member::hyper(config, lr);
    const auto c = Rule::template coefficients<T>(hyper, t);
    math::visit_state_buffers<Rule>(hyper, [&](auto buffers) {
      constexpr int kBuffers = decltype(buffers)::value;
      // Rows [first, last) of the block.
      const auto rows = [&](int64_t first, int64_t last) {
        const int64_t offset = block.offset + first * block.cols;
        const std::vector<T*> moved = state_at(state, kBuffers, offset);
        const T* a = block.row_factor + first;
        if constexpr (std::is_same_v<T, float>) {
          const FlushDenormals flush;  // as optimizer_step and gemm's k == 1 product
          if constexpr (kBuffers == Rule::kFewestStateBuffers) {
            Float32OuterLoops<Member::kKind>::kFewest(last - first, block.cols, a, block.col_factor,
                                                      p + offset, moved.data(), c);
          } else {
            Float32OuterLoops<Member::kKind>::kMost(last - first, block.cols, a, block.col_factor,
                                                    p + offset, moved.data(), c);
          }
        } else {
          outer_rule_loop<Rule, kBuffers>(last - first, block.cols, a, block.col_factor, p + offset,
                                          moved.data(), c);
        }
      };
      // Every element is updated alone, so the split changes no bit.
      parallel_for(block.rows,
                   std::max<int64_t>(1, kParallelGrain / std::max<int64_t>(block.cols, 1)), rows);
    });
  });
}

int state_buffer_count(const OptimizerConfig& config, double lr) {
  return math::visit(config.type, [&](auto member) {
    using Member = std::decay_t<decltype(member)>;
    return Member::state_buffers(Member::hyper(config, lr));
  });
}

}  // namespace

template <typename T>
void optimizer_outer_step(OptimizerType type, const OptimizerConfig& config, double lr, int64_t n,
                          T* p, const T* g, T* const* state, int64_t t,
                          const std::vector<OuterProductBlock<T>>& blocks) {
  std::vector<OuterProductBlock<T>> sorted = blocks;
  std::sort(sorted.begin(), sorted.end(),
            [](const auto& x, const auto& y) { return x.offset < y.offset; });
  const int buffers = state_buffer_count(config, lr);
  // Between and after the blocks, the stored gradient through the plain loop.
  const auto plain = [&](int64_t first, int64_t last) {
    if (last <= first) return;
    const std::vector<T*> moved = state_at(state, buffers, first);
    optimizer_step<T>(type, config, lr, last - first, p + first, g + first, moved.data(), t,
                      OneCyclePlan{}, T(1), nullptr);
  };
  int64_t done = 0;
  for (const OuterProductBlock<T>& block : sorted) {
    const int64_t size = block.rows * block.cols;
    MLPX_CHECK(block.offset >= done && block.offset + size <= n, ShapeError,
               "optimizer outer step: expected disjoint blocks inside [0, ", n, "), found one at [",
               block.offset, ", ", block.offset + size, ")");
    plain(done, block.offset);
    outer_block_step(type, config, lr, p, state, t, block);
    done = block.offset + size;
  }
  plain(done, n);
}

template void optimizer_outer_step(OptimizerType, const OptimizerConfig&, double, int64_t, float*,
                                   const float*, float* const*, int64_t,
                                   const std::vector<OuterProductBlock<float>>&);
template void optimizer_outer_step(OptimizerType, const OptimizerConfig&, double, int64_t, double*,
                                   const double*, double* const*, int64_t,
                                   const std::vector<OuterProductBlock<double>>&);

}  // namespace mlpx::cpu
