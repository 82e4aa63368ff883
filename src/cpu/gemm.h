// Row-major GEMM on the CPU: float32 and float64 through CBLAS (OpenBLAS); precision "bf16"
// through oneDNN where the CPU has bfloat16 instructions. Internal.
#pragma once

#include <cstdint>

namespace mlpx::cpu {
// c[M,N] = alpha * op(a) * op(b) + beta * c with op(a): [M,K], op(b): [K,N], row-major,
// dense (leading dimension = row length).
template <typename T>
void gemm(bool transpose_a, bool transpose_b, int64_t m, int64_t n, int64_t k, T alpha, const T* a,
          const T* b, T beta, T* c);

// How gemm_bf16 computes. kBest: oneDNN where it runs bf16 matmuls on this CPU, else kEmulated.
// kOneDnn: oneDNN's bf16 matmul (bf16 inputs, float32 accumulation and output): its AMX or
// AVX-512 BF16 kernels; ValueError where this build or CPU has none. kEmulated: the rounded
// inputs, held as float32, through the float32 GEMM: the same products (a bf16 x bf16 product
// is exact in float32), accumulated in float32, at float32 speed.
enum class Bf16Engine { kBest, kOneDnn, kEmulated };

// c[M,N] = alpha * op(a) * op(b) + beta * c as gemm<float>, with every element of a and b first
// rounded to the nearest bfloat16 (math/bf16.h); c stays float32. The sums may differ from the
// float32 GEMM's in order, so two engines agree to float32 rounding, not bit for bit.
// b_bits, when given, is b already rounded (b_bits[i] == math::bf16_bits(b[i]) for each of b's
// k * n elements): a weight's copy written by the optimizer, so b is not rounded again here.
// a_bits likewise for a's m * k elements: an activation rounded by the pass that wrote it
// (bias_activation_round_forward, activation_backward_round in cpu/activation.h).
void gemm_bf16(bool transpose_a, bool transpose_b, int64_t m, int64_t n, int64_t k, float alpha,
               const float* a, const float* b, float beta, float* c,
               Bf16Engine engine = Bf16Engine::kBest, const uint16_t* b_bits = nullptr,
               const uint16_t* a_bits = nullptr);

// OpenBLAS's thread count for every later CPU GEMM of the process; and what it is now.
void set_gemm_threads(int threads);
int gemm_threads();
}  // namespace mlpx::cpu
