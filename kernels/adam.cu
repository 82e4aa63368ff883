#include "kernels/adam.h"
#include "kernels/optimizer_step.cuh"

namespace mlpx::cuda {

namespace {
struct AdamOp {
  math::AdamHyper h;
  // The bias corrections depend on t, which only the device knows: formed once per thread.
  __device__ math::AdamCoefficients<float> prepare(int64_t t) const {
    return math::adam_coefficients<float>(h, t);
  }
  __device__ float operator()(const math::AdamCoefficients<float>& c, float p, float g,
                              float* state) const {
    return math::adam_update(p, g, state[0], state[1], c);
  }
};
}  // namespace

void adam_step(int64_t n, float* p, const float* g, float* exp_avg, float* exp_avg_sq,
               const math::AdamHyper& h, int32_t* step_counter, const int32_t* skip,
               Device device) {
  const cudaStream_t stream = stream_of(device);
  launch_optimizer_step<2>(n, p, g, StateBuffers<2>{{exp_avg, exp_avg_sq}}, AdamOp{h}, step_counter,
                           skip, stream);
}

}  // namespace mlpx::cuda
