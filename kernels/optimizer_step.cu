#include <type_traits>

#include "kernels/optimizer_step.cuh"
#include "kernels/optimizer_step.h"
#include "math/optimizers.h"

namespace mlpx::cuda {

namespace {

// The kernel's Op (kernels/optimizer_step.cuh) of a rule with S state buffers.
template <typename Rule, int S>
struct RuleOp {
  typename Rule::Hyper h;
  const double* scalars;  // nullptr, or [0] the rate, [1] the gradient scale: read per step
  OneCyclePlan cycle;     // total_steps 0: none
  const float* decays;    // nullptr: every parameter decays; else 0 where it does not
  struct Prepared {
    math::DecayPair<Rule, float> c;
    float grad_scale;
  };
  // The rate, the gradient scale and some coefficients change with the step, which only the
  // device knows: formed once per thread.
  __device__ Prepared prepare(int64_t t) const {
    const double lr = scalars != nullptr ? scalars[0] : h.lr;
    Prepared out;
    out.c = math::decay_pair<Rule, float>(math::step_hyper<Rule>(h, lr, cycle, t), t);
    out.grad_scale = scalars != nullptr ? static_cast<float>(scalars[1]) : 1.0f;
    return out;
  }
  __device__ float operator()(const Prepared& c, int64_t i, float p, float g, float* state) const {
    const bool decayed = decays == nullptr || decays[i] != 0.0f;
    return Rule::template update<S>(p, g * c.grad_scale, state, decayed ? c.c.decayed : c.c.plain);
  }
};

}  // namespace

void optimizer_step(OptimizerType type, const OptimizerConfig& config, double lr, int64_t n,
                    float* p, const float* g, float* const* state, int32_t* step_counter,
                    const int32_t* skip, const double* scalars, const OneCyclePlan& cycle,
                    const float* decays, Device device, uint16_t* bf16_p) {
  const cudaStream_t stream = stream_of(device);
  math::visit(type, [&](auto member) {
    using Member = std::decay_t<decltype(member)>;
    using Rule = typename Member::Rule;
    const typename Rule::Hyper hyper = Member::hyper(config, lr);
    math::visit_state_buffers<Rule>(hyper, [&](auto buffers) {
      constexpr int kBuffers = decltype(buffers)::value;
      StateBuffers<kBuffers> pointers{};
      for (int k = 0; k < kBuffers; ++k) pointers.ptr[k] = state[k];
      launch_optimizer_step<kBuffers>(n, p, g, pointers,
                                      RuleOp<Rule, kBuffers>{hyper, scalars, cycle, decays},
                                      step_counter, skip, stream, bf16_p);
    });
  });
}

}  // namespace mlpx::cuda
