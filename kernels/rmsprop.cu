#include "kernels/optimizer_step.cuh"
#include "kernels/rmsprop.h"

namespace mlpx::cuda {

namespace {
struct RmspropOp {
  math::RmspropHyper h;
  __device__ math::RmspropCoefficients<float> prepare(int64_t) const {
    return math::rmsprop_coefficients<float>(h);
  }
  __device__ float operator()(const math::RmspropCoefficients<float>& c, float p, float g,
                              float* state) const {
    return math::rmsprop_update(p, g, state[0], c);
  }
};
}  // namespace

void rmsprop_step(int64_t n, float* p, const float* g, float* square_avg,
                  const math::RmspropHyper& h, int32_t* step_counter, const int32_t* skip,
                  Device device) {
  const cudaStream_t stream = stream_of(device);
  launch_optimizer_step<1>(n, p, g, StateBuffers<1>{{square_avg}}, RmspropOp{h}, step_counter, skip,
                           stream);
}

}  // namespace mlpx::cuda
