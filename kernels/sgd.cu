#include "kernels/optimizer_step.cuh"
#include "kernels/sgd.h"

namespace mlpx::cuda {

namespace {
struct SgdOp {
  math::SgdHyper h;
  __device__ math::SgdCoefficients<float> prepare(int64_t) const {
    return math::sgd_coefficients<float>(h);
  }
  __device__ float operator()(const math::SgdCoefficients<float>& c, float p, float g,
                              float*) const {
    return math::sgd_update(p, g, c);
  }
};

struct SgdMomentumOp {
  math::SgdHyper h;
  __device__ math::SgdCoefficients<float> prepare(int64_t) const {
    return math::sgd_coefficients<float>(h);
  }
  __device__ float operator()(const math::SgdCoefficients<float>& c, float p, float g,
                              float* state) const {
    return math::sgd_momentum_update(p, g, state[0], c);
  }
};
}  // namespace

void sgd_step(int64_t n, float* p, const float* g, float* momentum_buffer, const math::SgdHyper& h,
              int32_t* step_counter, const int32_t* skip, Device device) {
  const cudaStream_t stream = stream_of(device);
  if (momentum_buffer == nullptr) {
    launch_optimizer_step<0>(n, p, g, StateBuffers<0>{{nullptr}}, SgdOp{h}, step_counter, skip,
                             stream);
  } else {
    launch_optimizer_step<1>(n, p, g, StateBuffers<1>{{momentum_buffer}}, SgdMomentumOp{h},
                             step_counter, skip, stream);
  }
}

}  // namespace mlpx::cuda
