#include "cpu/gemm.h"

#include <cblas.h>

#include <algorithm>
#include <atomic>
#include <climits>
#include <type_traits>
#include <vector>

#include "cpu/bf16.h"
#include "cpu/flush_denormals.h"
#include "cpu/onednn.h"
#include "cpu/parallel.h"
#include "mlpx/error.h"

namespace mlpx::cpu {

namespace {
int blas_int(int64_t v, const char* what) {
  MLPX_CHECK(v <= INT_MAX, ShapeError, "gemm: expected ", what, " <= ", INT_MAX,
             " for CBLAS, found ", v);
  return static_cast<int>(v);
}
// c [m, n] = alpha op(a) op(b) when k == 1 and beta == 0 (a batch of one row: its weight
// gradient dy^T x is an outer product). One pass writing c, where BLAS would zero c, pack both
// operands and then add the products into c: most of a batch-1 step's GEMM time. op(a) and
// op(b) are contiguous vectors whether transposed or not. The bits are BLAS's: its kernel forms
// acc = fma(a_i, b_j, 0), then c = fma(alpha, acc, c = 0), and `alpha * (a_i b_j + 0) + 0` is
// the same roundings (the + 0 makes a -0 product +0, as those FMAs do).
// Products of fewer multiply-adds (m n k) than this run on the calling thread alone, below
// OpenBLAS's own switch to its threads (m n k > 2^18). Waking and joining a second thread costs
// little on an idle machine but a scheduler time slice when the other core is busy: measured on
// 2 cores at load 10, the threaded sgemm was 1.1 to 100 times slower than one thread on every
// GEMM of the default model's step from batch 32 to 1024 (best of 30 calls each). Threads
// stay for the largest products (batch 1024's first layer, full-batch GD), where they pay on
// an idle machine.
inline constexpr double kThreadedMinMacs = 33554432.0;  // 2^25

// The thread count set_gemm_threads() asked for (0: OpenBLAS's default, read on first use).
std::atomic<int> requested_threads{0};

int configured_threads() {
  int threads = requested_threads.load(std::memory_order_relaxed);
  if (threads == 0) {
    threads = openblas_get_num_threads();
    requested_threads.store(threads, std::memory_order_relaxed);
  }
  return threads;
}

// Runs blas() single-threaded when the product is small (kThreadedMinMacs). OpenBLAS's count
// is process-wide: restored to the configured count, not to what was read, so that two host
// threads calling gemm at once cannot leave it at 1.
template <typename Blas>
void with_gemm_threads(int64_t m, int64_t n, int64_t k, Blas&& blas) {
  const int threads = configured_threads();
  const double macs = static_cast<double>(m) * static_cast<double>(n) * static_cast<double>(k);
  if (threads <= 1 || macs >= kThreadedMinMacs) {
    blas();
    return;
  }
  openblas_set_num_threads(1);
  blas();
  openblas_set_num_threads(threads);
}

// A product with at least kRowBlockedMinRows rows of c (and kThreadedMinMacs multiply-adds) is cut
// into row blocks of c, each a one-thread BLAS call, that mlpx's threads claim one at a time
// (cpu/parallel.h): the batch dimension of a forward or `dz W` GEMM from batch 512 up. With
// OpenBLAS's own threads each thread gets a fixed share and the call ends with the slowest, so
// a thread the scheduler leaves waiting (other jobs on the cores) stalls the whole GEMM; here the
// caller goes on with the blocks the other has not claimed. Each block runs the one-thread
// kernels on its rows with the same K blocking, so c's bits are one thread's at any thread count.
inline constexpr int64_t kRowBlockedMinRows = 512;
// The least height of a row block.
inline constexpr int64_t kRowBlockMinHeight = 256;
// Blocks per thread: enough for a stalled thread's share to be taken over, few enough that each
// block's packing of op(b) (the weight, read once per block) stays small against its products.
inline constexpr int64_t kRowBlocksPerThread = 8;
// Row block heights are multiples of this (the sgemm kernels' row unrolls divide it).
inline constexpr int64_t kRowBlockAlign = 64;

int64_t row_block_rows(int64_t m, int threads) {
  const int64_t blocks = kRowBlocksPerThread * threads;
  const int64_t rows = std::max<int64_t>(kRowBlockMinHeight, (m + blocks - 1) / blocks);
  return (rows + kRowBlockAlign - 1) / kRowBlockAlign * kRowBlockAlign;
}

template <typename T>
void outer_product(int64_t m, int64_t n, T alpha, const T* a, const T* b, T* c) {
  for (int64_t i = 0; i < m; ++i) {
    const T ai = a[i];
    T* ci = c + i * n;
    for (int64_t j = 0; j < n; ++j) ci[j] = alpha * (ai * b[j] + T(0)) + T(0);
  }
}

}  // namespace

template <typename T>
void gemm(bool transpose_a, bool transpose_b, int64_t m, int64_t n, int64_t k, T alpha, const T* a,
          const T* b, T beta, T* c) {
  if (m == 0 || n == 0) return;
  if (k == 0) {  // op(a) op(b) is all zeros; BLAS would read no input
    for (int64_t i = 0; i < m * n; ++i) c[i] = beta == T(0) ? T(0) : beta * c[i];
    return;
  }
  if (k == 1 && beta == T(0)) {
    // float32: subnormal products flushed to zero, as the optimizer that reads a batch-1 weight
    // gradient flushes them (cpu/flush_denormals.h); so the step that forms the gradient inside
    // its update (cpu/optimizer_outer_step.h) gives the same bits.
    [[maybe_unused]] const std::conditional_t<std::is_same_v<T, float>, FlushDenormals, int>
        flush{};
    outer_product(m, n, alpha, a, b, c);
    return;
  }
  const int M = blas_int(m, "M"), N = blas_int(n, "N"), K = blas_int(k, "K");
  const int lda = transpose_a ? std::max(M, 1) : std::max(K, 1);
  const int ldb = transpose_b ? std::max(K, 1) : std::max(N, 1);
  const CBLAS_TRANSPOSE ta = transpose_a ? CblasTrans : CblasNoTrans;
  const CBLAS_TRANSPOSE tb = transpose_b ? CblasTrans : CblasNoTrans;
  // beta == 0: c is zeroed here and BLAS adds the product into it (beta 1). OpenBLAS does the
  // same two steps itself (its beta pass writes zeros, its kernels then add alpha * the block
  // products into c), so the bits are the same; but its beta pass was a slower store loop than
  // memset: measured 4-5% of a batch-1024 or full-batch training step, against 1-2% for the
  // fill. Zeroing first also keeps a NaN in c's old contents out of the result.
  const T blas_beta = beta == T(0) ? T(1) : beta;
  const int threads = configured_threads();
  const double macs = static_cast<double>(m) * static_cast<double>(n) * static_cast<double>(k);
  if (threads > 1 && m >= kRowBlockedMinRows && macs >= kThreadedMinMacs) {
    // Row blocks of c (see kRowBlockedMinRows); rows [first, last) of op(a) start at row `first`
    // of a, or at its column `first` when transposed (lda unchanged).
    openblas_set_num_threads(1);
    parallel_for(m, row_block_rows(m, threads), [&](int64_t first, int64_t last) {
      const T* a_rows = transpose_a ? a + first : a + first * lda;
      T* c_rows = c + first * n;
      if (beta == T(0)) std::fill(c_rows, c_rows + (last - first) * n, T(0));
      const int rows = static_cast<int>(last - first);
      if constexpr (std::is_same_v<T, float>) {
        cblas_sgemm(CblasRowMajor, ta, tb, rows, N, K, alpha, a_rows, lda, b, ldb, blas_beta,
                    c_rows, N);
      } else {
        cblas_dgemm(CblasRowMajor, ta, tb, rows, N, K, alpha, a_rows, lda, b, ldb, blas_beta,
                    c_rows, N);
      }
    });
    openblas_set_num_threads(threads);
    return;
  }
  if (beta == T(0)) std::fill(c, c + m * n, T(0));
  with_gemm_threads(m, n, k, [&] {
    if constexpr (std::is_same_v<T, float>) {
      cblas_sgemm(CblasRowMajor, ta, tb, M, N, K, alpha, a, lda, b, ldb, blas_beta, c, N);
    } else {
      cblas_dgemm(CblasRowMajor, ta, tb, M, N, K, alpha, a, lda, b, ldb, blas_beta, c, N);
    }
  });
}

template void gemm(bool, bool, int64_t, int64_t, int64_t, float, const float*, const float*, float,
                   float*);
template void gemm(bool, bool, int64_t, int64_t, int64_t, double, const double*, const double*,
                   double, double*);

namespace {

// The rounded copies of a bf16 GEMM's inputs, kept per thread between calls (a training step
// makes three GEMMs per layer of similar sizes: no allocation after the first steps).
template <typename T>
T* scratch(std::vector<T>& buffer, int64_t n) {
  if (buffer.size() < static_cast<size_t>(n)) buffer.resize(static_cast<size_t>(n));
  return buffer.data();
}

// Elements per chunk of a parallel bf16 rounding pass (a 2048 x 2048 weight: 64 chunks).
inline constexpr int64_t kParallelRoundGrain = 65536;

// c = alpha * product + beta * c, where product is what oneDNN wrote; with beta == 0, c's
// previous contents are not read (as gemm<T>).
void scale_into(const float* product, float alpha, float beta, float* c, int64_t count) {
  for (int64_t i = 0; i < count; ++i) {
    c[i] = beta == 0.0f ? alpha * product[i] : alpha * product[i] + beta * c[i];
  }
}

}  // namespace

void gemm_bf16(bool transpose_a, bool transpose_b, int64_t m, int64_t n, int64_t k, float alpha,
               const float* a, const float* b, float beta, float* c, Bf16Engine engine,
               const uint16_t* b_bits, const uint16_t* a_bits) {
  if (engine == Bf16Engine::kBest) {
    engine = onednn_bf16_available() ? Bf16Engine::kOneDnn : Bf16Engine::kEmulated;
  }
  MLPX_CHECK(engine != Bf16Engine::kOneDnn || onednn_bf16_available(), ValueError,
             "gemm: bf16 through oneDNN needs a build with oneDNN and a CPU with bf16 "
             "instructions; found ",
             onednn_cpu_isa());
  if (m == 0 || n == 0) return;
  if (k == 0 || engine == Bf16Engine::kEmulated) {
    thread_local std::vector<float> a_rounded, b_rounded;
    float* ar = scratch(a_rounded, m * k);
    float* br = scratch(b_rounded, k * n);
    if (a_bits != nullptr) {
      bf16_to_float(a_bits, ar, m * k);
    } else {
      round_to_bf16(a, ar, m * k);
    }
    if (b_bits != nullptr) {
      bf16_to_float(b_bits, br, k * n);  // exact: the given rounding, widened
    } else {
      round_to_bf16(b, br, k * n);
    }
    gemm<float>(transpose_a, transpose_b, m, n, k, alpha, ar, br, beta, c);
    return;
  }
  thread_local std::vector<uint16_t> a_rounded_bits, b_rounded_bits;
  thread_local std::vector<float> product;
  const uint16_t* ab = a_bits;
  const uint16_t* bb = b_bits;
  // Elementwise: split over mlpx's threads (cpu/parallel.h) between oneDNN's matmuls.
  const auto round_split = [](const float* x, uint16_t* bits, int64_t count) {
    parallel_for(count, kParallelRoundGrain, [&](int64_t first, int64_t last) {
      round_to_bf16_bits(x + first, bits + first, last - first);
    });
  };
  if (ab == nullptr) {
    uint16_t* rounded = scratch(a_rounded_bits, m * k);
    round_split(a, rounded, m * k);
    ab = rounded;
  }
  if (bb == nullptr) {
    uint16_t* rounded = scratch(b_rounded_bits, k * n);
    round_split(b, rounded, k * n);
    bb = rounded;
  }
  const bool in_place = alpha == 1.0f && beta == 0.0f;
  float* out = in_place ? c : scratch(product, m * n);
  onednn_bf16_matmul(transpose_a, transpose_b, m, n, k, ab, bb, out);
  if (!in_place) scale_into(out, alpha, beta, c, m * n);
}

void set_gemm_threads(int threads) {
  requested_threads.store(threads, std::memory_order_relaxed);
  openblas_set_num_threads(threads);
}
int gemm_threads() { return configured_threads(); }

}  // namespace mlpx::cpu
