// The simulator's counters of device work (sim/README.md, "Counters"): what each piece of
// stream work that ran moved and computed, for tools that count a training step's launches,
// bytes and FLOPs without a GPU. Off unless MLPX_SIM_COUNT=1 in the environment or
// set_counting(true): counting costs a device-memory look-up per access of kernel code.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "cuda_runtime_api.h"

namespace mlpx_sim {

enum class WorkKind { kKernel, kGemm, kCopy, kMemset };

// One piece of device work that ran while counting was on: a kernel launch (its global-memory
// bytes counted at each access of kernel code, through the racecheck's instrumentation), a
// cuBLAS GEMM (each operand counted once: A and B read, C written, and read when beta != 0),
// a stream-ordered copy or memset (its device side), an NCCL collective or a Thrust sort (as
// kernels: the device bytes they touch, counted once).
struct WorkRecord {
  std::string label;  // "kernel name (file:line)", "cublasGemmEx (NT, m=.. n=.. k=.., bf16)", ...
  WorkKind kind = WorkKind::kKernel;
  uint64_t bytes_read = 0, bytes_written = 0;
  uint64_t flops = 0;     // GEMMs: 2 m n k
  std::string precision;  // GEMMs: "fp32", "tf32" or "bf16" (the inputs' rounding)
};

// Counting on or off (initially MLPX_SIM_COUNT=1 in the environment, else off).
void set_counting(bool on);
bool counting();
// How many records there are so far: a mark to pass to work_records_between.
uint64_t work_records();
// The records [from, to) (marks from work_records or enqueue_mark), in the order they ran.
std::vector<WorkRecord> work_records_between(uint64_t from, uint64_t to);
void clear_work_records();

// Stream work that writes work_records() to *mark when it runs (after the work queued before it
// on `stream`): a mark between pieces of asynchronous work, without a host wait. Not allowed
// while the stream captures (cudaErrorStreamCaptureUnsupported).
cudaError_t enqueue_mark(cudaStream_t stream, uint64_t* mark);

// For stand-ins running as stream work (cuBLAS, NCCL, Thrust, copies): adds to the running
// work's record; nothing when counting is off.
void count_device_bytes(uint64_t read, uint64_t written);
void count_gemm(uint64_t flops, const char* precision);

// Whether the cuBLAS stand-in computes its GEMMs (initially yes; MLPX_SIM_GEMM_ARITHMETIC=0 in
// the environment: no). Without the arithmetic a GEMM writes alpha * 0 + beta * C: its shapes,
// checks, counters and stream order stay, its values are meaningless. For counting passes at
// shapes whose GEMMs the CPU could not finish (a step of 8192 x 8192 layers); nothing that is
// tested for values may turn it off.
void set_gemm_arithmetic(bool on);
bool gemm_arithmetic();

// cuBLASLt heuristic queries since the process started (counted always, not only while
// counting): each cublasLtMatmulAlgoGetHeuristic, and each cublasLtMatmul given no algorithm
// (cuBLASLt then runs its heuristic inside the call). A caller that caches its algorithms makes
// none in steady state.
uint64_t cublaslt_heuristic_queries();

}  // namespace mlpx_sim
