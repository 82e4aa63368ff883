#include "cpu/optimizer_step.h"

#include <algorithm>
#include <type_traits>

#include "cpu/bf16.h"
#include "cpu/flush_denormals.h"
#include "cpu/parallel.h"
#include "cpu/vector_clones.h"
#include "math/optimizers.h"

namespace mlpx::cpu {

namespace {

// The rule's update over the flat buffers, S state buffers; every gradient times grad_scale
// (exactly the gradient when it is 1).
template <typename Rule, int S, typename T>
inline void rule_loop(int64_t n, T* p, const T* g, T* const* state,
                      const typename Rule::template Coefficients<T>& c, T grad_scale) {
  T* buffers[std::max(S, 1)] = {};
  for (int k = 0; k < S; ++k) buffers[k] = state[k];
  for (int64_t i = 0; i < n; ++i) {
    T s[std::max(S, 1)] = {};
    for (int k = 0; k < S; ++k) s[k] = buffers[k][i];
    p[i] = Rule::template update<S>(p[i], g[i] * grad_scale, s, c);
    for (int k = 0; k < S; ++k) buffers[k][i] = s[k];
  }
}

// float32, the training path: one clone per vector width (cpu/vector_clones.h), so one plain
// function per member and state count, written out from the table (clones cannot be templates).
template <OptimizerType kType>
struct Float32Loops;

#define MLPX_FLOAT32_LOOPS(kind, name, rule)                                               \
  MLPX_VECTOR_CLONES void kind##_loop_fewest(                                              \
      int64_t n, float* p, const float* g, float* const* state,                            \
      const math::rule::Coefficients<float>& c, float grad_scale) {                        \
    rule_loop<math::rule, math::rule::kFewestStateBuffers>(n, p, g, state, c, grad_scale); \
  }                                                                                        \
  MLPX_VECTOR_CLONES void kind##_loop_most(                                                \
      int64_t n, float* p, const float* g, float* const* state,                            \
      const math::rule::Coefficients<float>& c, float grad_scale) {                        \
    rule_loop<math::rule, math::rule::kMostStateBuffers>(n, p, g, state, c, grad_scale);   \
  }                                                                                        \
  template <>                                                                              \
  struct Float32Loops<OptimizerType::kind> {                                               \
    static constexpr auto kFewest = &kind##_loop_fewest;                                   \
    static constexpr auto kMost = &kind##_loop_most;                                       \
  };
MLPX_OPTIMIZERS(MLPX_FLOAT32_LOOPS)
#undef MLPX_FLOAT32_LOOPS

}  // namespace

// Elements per chunk of the parallel update (cpu/parallel.h): some tens of microseconds of
// Adam; a model of fewer parameters runs on the calling thread alone.
inline constexpr int64_t kParallelGrain = 16384;

template <typename T>
void optimizer_step(OptimizerType type, const OptimizerConfig& config, double lr, int64_t n, T* p,
                    const T* g, T* const* state, int64_t t, const OneCyclePlan& cycle, T grad_scale,
                    const T* decays, uint16_t* bf16_p) {
  math::visit(type, [&](auto member) {
    using Member = std::decay_t<decltype(member)>;
    using Rule = typename Member::Rule;
    const typename Rule::Hyper base = Member::hyper(config, lr);
    const typename Rule::Hyper hyper = math::step_hyper<Rule>(base, lr, cycle, t);
    const auto coefficients = math::decay_pair<Rule, T>(hyper, t);
    math::visit_state_buffers<Rule>(base, [&](auto buffers) {
      constexpr int kBuffers = decltype(buffers)::value;
      // [begin, end) of the buffers with one set of coefficients.
      auto run = [&](int64_t begin, int64_t end, const typename Rule::template Coefficients<T>& c) {
        if constexpr (std::is_same_v<T, float>) {
          // Every element is updated alone: split over mlpx's threads (cpu/parallel.h), same bits.
          parallel_for(end - begin, kParallelGrain, [&](int64_t first, int64_t last) {
            first += begin;
            last += begin;
            const FlushDenormals flush;  // cpu/flush_denormals.h: float32 only, per thread
            float* moved[std::max(kBuffers, 1)] = {};
            for (int k = 0; k < kBuffers; ++k) moved[k] = state[k] + first;
            if constexpr (kBuffers == Rule::kFewestStateBuffers) {
              Float32Loops<Member::kKind>::kFewest(last - first, p + first, g + first, moved, c,
                                                   grad_scale);
            } else {
              Float32Loops<Member::kKind>::kMost(last - first, p + first, g + first, moved, c,
                                                 grad_scale);
            }
            // The bf16 GEMMs' copy of the chunk just written, read back from cache.
            if (bf16_p != nullptr) round_to_bf16_bits(p + first, bf16_p + first, last - first);
          });
        } else {
          T* shifted[std::max(kBuffers, 1)] = {};
          for (int k = 0; k < kBuffers; ++k) shifted[k] = state[k] + begin;
          rule_loop<Rule, kBuffers>(end - begin, p + begin, g + begin, shifted, c, grad_scale);
        }
      };
      if (decays == nullptr) {
        run(0, n, coefficients.decayed);
        return;
      }
      // The parameters come in runs of one kind (a layer's weight, then its bias).
      for (int64_t begin = 0; begin < n;) {
        const bool decayed = decays[begin] != T(0);
        int64_t end = begin + 1;
        while (end < n && (decays[end] != T(0)) == decayed) ++end;
        run(begin, end, decayed ? coefficients.decayed : coefficients.plain);
        begin = end;
      }
    });
  });
}

template void optimizer_step(OptimizerType, const OptimizerConfig&, double, int64_t, float*,
                             const float*, float* const*, int64_t, const OneCyclePlan&, float,
                             const float*, uint16_t*);
template void optimizer_step(OptimizerType, const OptimizerConfig&, double, int64_t, double*,
                             const double*, double* const*, int64_t, const OneCyclePlan&, double,
                             const double*, uint16_t*);

}  // namespace mlpx::cpu
