// MLPX_VECTOR_CLONES: compile one hot elementwise CPU loop once per x86-64 vector width
// (AVX-512F, AVX2, and the SSE2 baseline every x86-64 CPU has), and let the loader pick the
// widest the CPU supports (function multiversioning through an ifunc). The library itself is
// built for the baseline, so without this the loops run 4 floats at a time.
//
// Bits: each element goes through the same operations in the same order at every width
// (sqrt, +, -, *, / are correctly rounded in IEEE arithmetic), and src/CMakeLists.txt builds
// with -ffp-contract=off so that the AVX-512 clone does not turn a * b + c into one FMA. So a
// loop gives the same bits on every x86-64 CPU. For loops whose elements are independent
// (without -ffast-math a floating-point reduction is not reordered, so it does not vectorise).
//
// Clang 14 cannot clone templates: put the attribute on a plain function (float), which may
// call inline templates. Internal.
#pragma once

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define MLPX_VECTOR_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define MLPX_VECTOR_CLONES
#endif
