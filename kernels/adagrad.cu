#include "kernels/adagrad.h"
#include "kernels/optimizer_step.cuh"

namespace mlpx::cuda {

namespace {
struct AdagradOp {
  math::AdagradHyper h;
  __device__ math::AdagradCoefficients<float> prepare(int64_t) const {
    return math::adagrad_coefficients<float>(h);
  }
  __device__ float operator()(const math::AdagradCoefficients<float>& c, float p, float g,
                              float* state) const {
    return math::adagrad_update(p, g, state[0], c);
  }
};
}  // namespace

void adagrad_step(int64_t n, float* p, const float* g, float* sum, const math::AdagradHyper& h,
                  int32_t* step_counter, const int32_t* skip, Device device) {
  const cudaStream_t stream = stream_of(device);
  launch_optimizer_step<1>(n, p, g, StateBuffers<1>{{sum}}, AdagradOp{h}, step_counter, skip,
                           stream);
}

}  // namespace mlpx::cuda
