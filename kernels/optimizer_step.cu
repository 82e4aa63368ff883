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
  // Some coefficients depend on t, which only the device knows: formed once per thread.
  __device__ typename Rule::template Coefficients<float> prepare(int64_t t) const {
    return Rule::template coefficients<float>(h, t);
  }
  __device__ float operator()(const typename Rule::template Coefficients<float>& c, float p,
                              float g, float* state) const {
    return Rule::template update<S>(p, g, state, c);
  }
};

}  // namespace

void optimizer_step(OptimizerType type, const OptimizerConfig& config, double lr, int64_t n,
                    float* p, const float* g, float* const* state, int32_t* step_counter,
                    const int32_t* skip, Device device) {
  const cudaStream_t stream = stream_of(device);
  math::visit(type, [&](auto member) {
    using Member = std::decay_t<decltype(member)>;
    using Rule = typename Member::Rule;
    const typename Rule::Hyper hyper = Member::hyper(config, lr);
    math::visit_state_buffers<Rule>(hyper, [&](auto buffers) {
      constexpr int kBuffers = decltype(buffers)::value;
      StateBuffers<kBuffers> pointers{};
      for (int k = 0; k < kBuffers; ++k) pointers.ptr[k] = state[k];
      launch_optimizer_step<kBuffers>(n, p, g, pointers, RuleOp<Rule, kBuffers>{hyper},
                                      step_counter, skip, stream);
    });
  });
}

}  // namespace mlpx::cuda
