// oneDNN's bf16 matmul, the engine of precision "bf16" on CPUs with bfloat16 instructions
// (AMX, AVX-512 BF16). src/cpu/onednn.cpp when mlpx is built with oneDNN (MLPX_ONEDNN,
// cmake/MlpxDependencies.cmake), else src/cpu/onednn_stub.cpp. Internal.
#pragma once

#include <cstdint>
#include <string>

namespace mlpx::cpu {

// Whether oneDNN runs bf16 matmuls on this CPU (tried once per process; false without
// oneDNN, and on CPUs below AVX-512, where oneDNN 2.x creates no bf16 matmul).
bool onednn_bf16_available();

// oneDNN's instruction set on this CPU, for messages and benchmark reports: e.g.
// "oneDNN 2.6.3, AVX2"; "no oneDNN in this build" without it.
std::string onednn_cpu_isa();

// product[M, N] (float32, row-major) = op(a) [M, K] x op(b) [K, N], a and b bfloat16 bits,
// row-major and dense ([K, M] and [N, K] when transposed), float32 accumulation. Needs
// onednn_bf16_available().
void onednn_bf16_matmul(bool transpose_a, bool transpose_b, int64_t m, int64_t n, int64_t k,
                        const uint16_t* a, const uint16_t* b, float* product);

// The same call with float32 operands, which oneDNN runs on every CPU: the tests run the bf16
// call's plumbing (the memory orders of the transposes, the descriptors, the handles) through
// it on CPUs without bfloat16 instructions too. Throws without oneDNN.
void onednn_f32_matmul(bool transpose_a, bool transpose_b, int64_t m, int64_t n, int64_t k,
                       const float* a, const float* b, float* product);

// The matmul primitives created so far, one per shape (operand type, transposes, m, n, k) and
// kept for the process: a training step's calls create none after its first step.
int64_t onednn_matmul_primitives();

}  // namespace mlpx::cpu
