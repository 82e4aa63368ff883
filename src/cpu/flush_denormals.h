// Denormals flushed to zero for the float32 loops of the optimizer step (and the batch-1 weight
// gradient the step reads). Adam's first moment decays by beta1 every step where a weight's
// gradient is small: after one batch-1 epoch of the default model on Fashion-MNIST, 65% of
// exp_avg was subnormal. On Intel cores every operation that reads or writes a subnormal float
// takes a microcode assist of about a hundred cycles, so the batch-1 step spent most of its
// time in the optimizer (1 in 10 subnormal lanes made an Adam pass 7 times slower, measured).
// A subnormal moment (below 1.2e-38) moves no parameter: lr * m / (sqrt(v) + eps) is below
// 1e-33. x86-64 only; elsewhere a no-op. Internal.
#pragma once

#if defined(__x86_64__)
#include <xmmintrin.h>
#endif

namespace mlpx::cpu {

// MXCSR's flush-to-zero (results) and denormals-are-zero (inputs) bits set on this thread for
// the scope, the previous mode restored on exit.
class FlushDenormals {
 public:
#if defined(__x86_64__)
  FlushDenormals() : saved_(_mm_getcsr()) { _mm_setcsr(saved_ | kFlushBits); }
  ~FlushDenormals() { _mm_setcsr(saved_); }
#else
  FlushDenormals() = default;
#endif
  FlushDenormals(const FlushDenormals&) = delete;
  FlushDenormals& operator=(const FlushDenormals&) = delete;

 private:
#if defined(__x86_64__)
  static constexpr unsigned kFlushBits = 0x8040u;  // FTZ (bit 15) | DAZ (bit 6)
  unsigned saved_;
#endif
};

}  // namespace mlpx::cpu
