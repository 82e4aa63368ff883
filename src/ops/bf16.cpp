// precision bf16's Tensor-level pieces: the rounding of a tensor, and the CPU engine's name
// (the GEMMs themselves are mlpx::gemm's, src/ops/gemm.cpp).
#include "cpu/bf16.h"

#include "cpu/onednn.h"
#include "kernels/bf16.h"
#include "mlpx/error.h"
#include "mlpx/gemm.h"  // declares round_to_bf16 and cpu_bf16_engine beside Precision

namespace mlpx {

void round_to_bf16(const Tensor& x, Tensor& out) {
  MLPX_CHECK(x.dtype() == DType::kFloat32 && out.dtype() == DType::kFloat32 &&
                 x.shape() == out.shape() && x.device() == out.device(),
             ShapeError,
             "round_to_bf16: expected float32 x and out of one shape and device, found x ",
             x.describe(), ", out ", out.describe());
  if (x.device().is_cuda()) {
    cuda::round_to_bf16(x.data<float>(), out.data<float>(), x.numel(), x.device());
  } else {
    cpu::round_to_bf16(x.data<float>(), out.data<float>(), x.numel());
  }
}

std::string cpu_bf16_engine() {
  if (cpu::onednn_bf16_available()) return cpu::onednn_cpu_isa();
  return "emulated through the fp32 GEMM (" + cpu::onednn_cpu_isa() + ": no bf16 matmul)";
}

}  // namespace mlpx
