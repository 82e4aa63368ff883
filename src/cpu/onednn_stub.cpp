// src/cpu/onednn.h without oneDNN (MLPX_ONEDNN OFF, or AUTO without libdnnl-dev): precision
// "bf16" on the CPU then runs its emulated engine (src/cpu/gemm.cpp).
#include "cpu/onednn.h"
#include "mlpx/error.h"

namespace mlpx::cpu {

bool onednn_bf16_available() { return false; }

std::string onednn_cpu_isa() { return "no oneDNN in this build"; }

void onednn_bf16_matmul(bool, bool, int64_t, int64_t, int64_t, const uint16_t*, const uint16_t*,
                        float*) {
  throw ValueError("gemm: bf16 through oneDNN: expected a build with oneDNN, found none");
}

void onednn_f32_matmul(bool, bool, int64_t, int64_t, int64_t, const float*, const float*, float*) {
  throw ValueError("gemm: float32 through oneDNN: expected a build with oneDNN, found none");
}

int64_t onednn_matmul_primitives() { return 0; }

}  // namespace mlpx::cpu
