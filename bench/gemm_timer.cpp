// A preloadable library that times every single-precision BLAS GEMM of a process: mlpx's
// (cblas_sgemm) and PyTorch's (the Fortran sgemm_ of libblas.so.3), so that a training step's
// time splits into the GEMMs both frameworks share and the work each does around them
// (bench/gemm_share.py). Not linked into anything; loaded with
//
//   LD_PRELOAD=build/bench/libmlpx_gemm_timer.so MLPX_GEMM_TIMER_OUT=FILE  <command>
//
// At exit it writes {"seconds": ..., "calls": ...} to FILE; a Python process reads and resets
// the counters through ctypes (mlpx_gemm_timer_seconds, _calls, _reset).
#include <dlfcn.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <initializer_list>

namespace {

std::atomic<int64_t> total_ns{0};
std::atomic<int64_t> total_calls{0};

// The real `name` behind this library: the next definition in the global scope, else in the
// BLAS libraries already loaded (a Python extension loads libblas.so.3 locally, out of
// RTLD_NEXT's reach).
void* real_symbol(const char* name) {
  if (void* f = dlsym(RTLD_NEXT, name)) return f;
  for (const char* lib : {"libblas.so.3", "libopenblas.so.0"}) {
    if (void* handle = dlopen(lib, RTLD_NOW | RTLD_NOLOAD)) {
      if (void* f = dlsym(handle, name)) return f;
    }
  }
  std::fprintf(stderr, "mlpx_gemm_timer: error: no %s in this process's BLAS\n", name);
  std::abort();
}

template <typename Fn, typename... Args>
void timed(Fn fn, Args... args) {
  const auto start = std::chrono::steady_clock::now();
  fn(args...);
  const auto ns =
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - start)
          .count();
  total_ns.fetch_add(ns, std::memory_order_relaxed);
  total_calls.fetch_add(1, std::memory_order_relaxed);
}

struct WriteAtExit {
  WriteAtExit(const WriteAtExit&) = delete;
  WriteAtExit& operator=(const WriteAtExit&) = delete;
  WriteAtExit() = default;
  ~WriteAtExit() {
    const char* path = std::getenv("MLPX_GEMM_TIMER_OUT");
    if (path == nullptr) return;
    if (FILE* f = std::fopen(path, "w")) {
      std::fprintf(f, "{\"seconds\": %.9f, \"calls\": %lld}\n",
                   static_cast<double>(total_ns.load()) * 1e-9,
                   static_cast<long long>(total_calls.load()));
      std::fclose(f);
    }
  }
};
const WriteAtExit write_at_exit;

}  // namespace

extern "C" {

double mlpx_gemm_timer_seconds() { return static_cast<double>(total_ns.load()) * 1e-9; }
int64_t mlpx_gemm_timer_calls() { return total_calls.load(); }
void mlpx_gemm_timer_reset() {
  total_ns.store(0);
  total_calls.store(0);
}

// CBLAS's enums are ints in the ABI; the timer passes every argument through unchanged.
void cblas_sgemm(int order, int trans_a, int trans_b, int m, int n, int k, float alpha,
                 const float* a, int lda, const float* b, int ldb, float beta, float* c, int ldc) {
  using Fn = void (*)(int, int, int, int, int, int, float, const float*, int, const float*, int,
                      float, float*, int);
  static const auto real = reinterpret_cast<Fn>(real_symbol("cblas_sgemm"));
  timed(real, order, trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

// The Fortran interface. Callers compiled with gfortran's conventions also pass the two
// character arguments' lengths after the last argument; OpenBLAS's sgemm_ reads none, so none
// are passed on.
void sgemm_(const char* trans_a, const char* trans_b, const int* m, const int* n, const int* k,
            const float* alpha, const float* a, const int* lda, const float* b, const int* ldb,
            const float* beta, float* c, const int* ldc) {
  using Fn = void (*)(const char*, const char*, const int*, const int*, const int*, const float*,
                      const float*, const int*, const float*, const int*, const float*, float*,
                      const int*);
  static const auto real = reinterpret_cast<Fn>(real_symbol("sgemm_"));
  timed(real, trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

}  // extern "C"
