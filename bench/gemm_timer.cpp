// A preloadable library that times every single-precision BLAS GEMM of a process: mlpx's
// (cblas_sgemm) and PyTorch's (the Fortran sgemm_ of libblas.so.3), so that a training step's
// time splits into the GEMMs both frameworks share and the work each does around them
// (bench/gemm_share.py). Not linked into anything; loaded with
//
//   LD_PRELOAD=build/bench/libmlpx_gemm_timer.so MLPX_GEMM_TIMER_OUT=FILE  <command>
//
// At exit it writes {"seconds": ..., "calls": ..., "sgemm_calls": ...} to FILE (GEMM wall time,
// GEMMs, sgemm calls; see GemmKey); a Python process reads and resets
// the counters through ctypes (mlpx_gemm_timer_seconds, _calls, _reset).
#include <dlfcn.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <initializer_list>
#include <mutex>

namespace {

// mlpx cuts a GEMM of 512 rows and more into row blocks, one sgemm call each, that its threads
// run side by side (src/cpu/gemm.cpp). So the time counted is wall time with at least one sgemm
// call running (not the sum of the calls' times, which would count two concurrent blocks
// twice), and a GEMM is a run of calls on the same operand b with the same n, k and transposes
// (a step's consecutive GEMMs never share all of them: each reads another weight or input).
struct GemmKey {
  const void* b = nullptr;
  int n = 0, k = 0, trans_a = 0, trans_b = 0;
  bool operator==(const GemmKey& o) const {
    return b == o.b && n == o.n && k == o.k && trans_a == o.trans_a && trans_b == o.trans_b;
  }
};

std::mutex state_mutex;
int active_calls = 0;  // sgemm calls running now
std::chrono::steady_clock::time_point busy_since;
int64_t total_ns = 0;     // wall time with active_calls > 0
int64_t total_gemms = 0;  // runs of calls of one GEMM
int64_t total_calls = 0;  // sgemm calls
GemmKey last_key;

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
void timed(const GemmKey& key, Fn fn, Args... args) {
  {
    const std::lock_guard<std::mutex> lock(state_mutex);
    if (active_calls++ == 0) busy_since = std::chrono::steady_clock::now();
    ++total_calls;
    if (!(key == last_key)) {
      ++total_gemms;
      last_key = key;
    }
  }
  fn(args...);
  const std::lock_guard<std::mutex> lock(state_mutex);
  if (--active_calls == 0) {
    total_ns += std::chrono::duration_cast<std::chrono::nanoseconds>(
                    std::chrono::steady_clock::now() - busy_since)
                    .count();
  }
}

struct WriteAtExit {
  WriteAtExit(const WriteAtExit&) = delete;
  WriteAtExit& operator=(const WriteAtExit&) = delete;
  WriteAtExit() = default;
  ~WriteAtExit() {
    const char* path = std::getenv("MLPX_GEMM_TIMER_OUT");
    if (path == nullptr) return;
    if (FILE* f = std::fopen(path, "w")) {
      const std::lock_guard<std::mutex> lock(state_mutex);
      std::fprintf(f, "{\"seconds\": %.9f, \"calls\": %lld, \"sgemm_calls\": %lld}\n",
                   static_cast<double>(total_ns) * 1e-9, static_cast<long long>(total_gemms),
                   static_cast<long long>(total_calls));
      std::fclose(f);
    }
  }
};
const WriteAtExit write_at_exit;

}  // namespace

extern "C" {

double mlpx_gemm_timer_seconds() {
  const std::lock_guard<std::mutex> lock(state_mutex);
  return static_cast<double>(total_ns) * 1e-9;
}
// GEMMs (runs of row-block calls counted once), as gemm_share.py divides by a step's GEMMs.
int64_t mlpx_gemm_timer_calls() {
  const std::lock_guard<std::mutex> lock(state_mutex);
  return total_gemms;
}
void mlpx_gemm_timer_reset() {
  const std::lock_guard<std::mutex> lock(state_mutex);
  total_ns = 0;
  total_gemms = 0;
  total_calls = 0;
  last_key = GemmKey{};
}

// CBLAS's enums are ints in the ABI; the timer passes every argument through unchanged.
void cblas_sgemm(int order, int trans_a, int trans_b, int m, int n, int k, float alpha,
                 const float* a, int lda, const float* b, int ldb, float beta, float* c, int ldc) {
  using Fn = void (*)(int, int, int, int, int, int, float, const float*, int, const float*, int,
                      float, float*, int);
  static const auto real = reinterpret_cast<Fn>(real_symbol("cblas_sgemm"));
  timed(GemmKey{b, n, k, trans_a, trans_b}, real, order, trans_a, trans_b, m, n, k, alpha, a, lda,
        b, ldb, beta, c, ldc);
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
  timed(GemmKey{b, *n, *k, *trans_a, *trans_b}, real, trans_a, trans_b, m, n, k, alpha, a, lda, b,
        ldb, beta, c, ldc);
}

}  // extern "C"
