// Warp-level matrix multiply-accumulate on tensor cores: D (16x8, fp32) = A (16x16, bf16) *
// B (16x8, bf16) + C, PTX's mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 (sm_80 and
// later). Operands are spread over the warp's lanes in the fragment layout of the PTX ISA
// ("Matrix Fragments for mma.m16n8k16 with floating point type"); with g = lane / 4, t = lane % 4:
//   A: a[0] = (row g, cols 2t, 2t+1), a[1] = (row g+8, cols 2t, 2t+1), a[2] = (row g, cols
//      2t+8, 2t+9), a[3] = (row g+8, cols 2t+8, 2t+9), two bf16 each, the lower column in the
//      low half;
//   B: b[0] = (rows k 2t, 2t+1, column g), b[1] = (rows 2t+8, 2t+9, column g);
//   C, D: c[0], c[1] = (row g, cols 2t, 2t+1), c[2], c[3] = (row g+8, cols 2t, 2t+1).
// In the simulator build the same layout is computed on the CPU (sim/include/mlpx_sim/
// tensor_core.h), so a misplaced operand shows there as a wrong product. Internal.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

namespace mlpx::cuda {

// Two bf16 (bits) in one 32-bit register, `low` in the lower half.
__host__ __device__ __forceinline__ uint32_t mma_pack(uint16_t low, uint16_t high) {
  return static_cast<uint32_t>(high) << 16 | low;
}

}  // namespace mlpx::cuda

// MLPX_MMA_M16N8K16_BF16(d, a, b, c): float d[4], const uint32_t a[4], b[2], const float c[4];
// every lane of the warp must execute it (d may be c).
#if MLPX_SIM
#define MLPX_MMA_M16N8K16_BF16(d, a, b, c) \
  ::mlpx_sim::mma_m16n8k16_bf16_at(__FILE__, __LINE__, d, a, b, c)
#elif defined(__CUDA_ARCH__) && __CUDA_ARCH__ < 800
// bf16 mma needs sm_80; the host never launches the tensor-core kernels there
// (fused_mlp_unfit_reason), so this only keeps the build of older targets going.
#define MLPX_MMA_M16N8K16_BF16(d, a, b, c) __trap()
#else
#define MLPX_MMA_M16N8K16_BF16(d, a, b, c)                                                         \
  asm volatile(                                                                                    \
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, "   \
      "{%8, %9}, {%10, %11, %12, %13};\n"                                                          \
      : "=f"((d)[0]), "=f"((d)[1]), "=f"((d)[2]), "=f"((d)[3])                                     \
      : "r"((a)[0]), "r"((a)[1]), "r"((a)[2]), "r"((a)[3]), "r"((b)[0]), "r"((b)[1]), "f"((c)[0]), \
        "f"((c)[1]), "f"((c)[2]), "f"((c)[3]))
#endif
