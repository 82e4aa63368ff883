// The CUDA backend of a CPU-only build (flashlight's stub backend): every entry point that
// kernels/ and core/backend.h declare, so that the ops above call cuda:: unconditionally and
// carry no #if. No CUDA device exists here (device_count() is 0, so no tensor can live on
// one); anything that still asks for the GPU gets a CudaError that says how to build with it.
// Compiled instead of the .cu files, runtime.cpp, gemm.cpp and graph.cpp.
#include <cstdint>

#include "core/backend.h"
#include "kernels/activation.h"
#include "kernels/batching.h"
#include "kernels/bf16.h"
#include "kernels/device_counters.h"
#include "kernels/dropout.h"
#include "kernels/fused_mlp.h"
#include "kernels/gemm.h"
#include "kernels/gradients.h"
#include "kernels/graph.h"
#include "kernels/init.h"
#include "kernels/linear.h"
#include "kernels/loss.h"
#include "kernels/nonfinite.h"
#include "kernels/norm.h"
#include "kernels/optimizer_step.h"
#include "kernels/residual.h"
#include "mlpx/error.h"

namespace mlpx::cuda {

namespace {
[[noreturn]] void unavailable(const char* what) {
  throw CudaError(::mlpx::detail::concat(
      what,
      ": expected a build with the CUDA backend, found a CPU-only build (configure with "
      "-DMLPX_CUDA=ON on a machine with nvcc)"));
}
}  // namespace

// core/backend.h
bool built() { return false; }
int device_count() { return 0; }
void* allocate(size_t, int) { unavailable("allocate"); }
void deallocate(void*, int) noexcept {}
void copy_bytes(void*, Device, const void*, Device, size_t) { unavailable("copy"); }
void zero_bytes(void*, int, size_t) { unavailable("zero"); }
void synchronize_and_check(int) { unavailable("synchronize"); }
void copy_to_host_and_check(void* const*, const void* const*, const size_t*, size_t, int) {
  unavailable("copy");
}

// The kernel launchers.
void activation_forward(Activation, const float*, float*, int64_t, int64_t, float, Device) {
  unavailable("activation_forward");
}
void activation_backward(Activation, const float*, const float*, const float*, float*, int64_t,
                         int64_t, float, Device) {
  unavailable("activation_backward");
}
void dropout_forward(Activation, const float*, float*, int64_t, float, float,
                     const math::DropoutDraws&, Device) {
  unavailable("dropout_forward");
}
void dropout_backward(Activation, const float*, const float*, float*, int64_t, float, float,
                      const math::DropoutDraws&, Device) {
  unavailable("dropout_backward");
}
void optimizer_step(OptimizerType, const OptimizerConfig&, double, int64_t, float*, const float*,
                    float* const*, int32_t*, const int32_t*, const double*, const OneCyclePlan&,
                    const float*, Device, uint16_t*) {
  unavailable("optimizer_step");
}
void random_permutation(int32_t*, int64_t, uint64_t, uint64_t, Device) {
  unavailable("random_permutation");
}
size_t permutation_workspace_bytes(int64_t) { return 0; }
void random_permutation(int32_t*, int64_t, uint64_t, uint64_t, void*, size_t, Device) {
  unavailable("random_permutation");
}
void identity_indices(int32_t*, int64_t, Device) { unavailable("identity_indices"); }
template <typename T>
void gather_rows(const T*, const int32_t*, T*, int64_t, int64_t, Device) {
  unavailable("gather_rows");
}
template void gather_rows(const float*, const int32_t*, float*, int64_t, int64_t, Device);
template void gather_rows(const int32_t*, const int32_t*, int32_t*, int64_t, int64_t, Device);
template <typename T>
void gather_batch(const T*, const int32_t*, const int32_t*, int64_t, T*, int64_t, int64_t, Device) {
  unavailable("gather_batch");
}
template void gather_batch(const float*, const int32_t*, const int32_t*, int64_t, float*, int64_t,
                           int64_t, Device);
template void gather_batch(const int32_t*, const int32_t*, const int32_t*, int64_t, int32_t*,
                           int64_t, int64_t, Device);
void commit_batch_loss(float*, float*, int32_t*, int32_t*, Device) {
  unavailable("commit_batch_loss");
}
void sum_and_commit_batch_loss(const float*, int64_t, double, float*, float*, int32_t*, int32_t*,
                               Device) {
  unavailable("sum_and_commit_batch_loss");
}
void init_values(float*, int64_t, Init, double, uint64_t, uint64_t, Device) {
  unavailable("init_values");
}
void layer_norm_forward(const float*, const float*, const float*, float, float*, float*, float*,
                        int64_t, int64_t, Device) {
  unavailable("layer_norm_forward");
}
void layer_norm_input_grad(const float*, const float*, const float*, const float*, const float*,
                           float*, int64_t, int64_t, Device) {
  unavailable("layer_norm_input_grad");
}
void norm_column_sum(math::NormColumnTerm, const math::NormColumnOperands<float>&, float, float*,
                     int64_t, int64_t, Device) {
  unavailable("norm_column_sum");
}
void batch_norm_apply(const float*, const float*, const float*, const float*, const float*, float,
                      float*, int64_t, int64_t, Device) {
  unavailable("batch_norm_apply");
}
void batch_norm_input_grad(const float*, const float*, const float*, const float*, const float*,
                           const float*, const float*, float, float, float*, int64_t, int64_t,
                           Device) {
  unavailable("batch_norm_input_grad");
}
void batch_norm_update_running(const float*, const float*, float, float, float*, float*, float*,
                               int64_t, Device) {
  unavailable("batch_norm_update_running");
}
void residual_add(const float*, const float*, float*, int64_t, Device) {
  unavailable("residual_add");
}
void add_bias(float*, const float*, int64_t, int64_t, Device) { unavailable("add_bias"); }
void sum_rows(const float*, float*, int64_t, int64_t, Device) { unavailable("sum_rows"); }
void elementwise_loss(Loss, const float*, const float*, float*, float*, int64_t, int64_t, int64_t,
                      const float*, Device) {
  unavailable("elementwise_loss");
}
void cross_entropy(const float*, const int32_t*, float*, float*, int64_t, int64_t, int64_t,
                   const float*, double, Device) {
  unavailable("cross_entropy");
}
void kl_div(const float*, const float*, float*, float*, int64_t, int64_t, int64_t, const float*,
            Device) {
  unavailable("kl_div");
}
void normalize_row_weights(const float*, int64_t, float*, Device) {
  unavailable("normalize_row_weights");
}
void accumulate_sum(const float*, int64_t, float*, double, Device) {
  unavailable("accumulate_sum");
}
void accumulate_correct(const float*, const int32_t*, int64_t, int64_t, int32_t*, Device) {
  unavailable("accumulate_correct");
}
void accumulate_correct_per_output(const float*, const float*, int64_t, int32_t*, Device) {
  unavailable("accumulate_correct_per_output");
}
void flag_nonfinite(const float*, const float*, int64_t, int32_t*, Device) {
  unavailable("flag_nonfinite");
}
void round_to_bf16(const float*, float*, int64_t, Device) { unavailable("round_to_bf16"); }

// kernels/fused_mlp.h
int fused_mlp_device_shared_limit(Device) { unavailable("fused_mlp"); }
int fused_mlp_device_major(Device) { unavailable("fused_mlp"); }
void fused_mlp_forward(const FusedMlpPlan&, int64_t, FusedMath, Device) {
  unavailable("fused_mlp_forward");
}
void fused_mlp_backward(const FusedMlpPlan&, const float*, int64_t, FusedMath, Device) {
  unavailable("fused_mlp_backward");
}
void clip_scale(const float*, int64_t, double, double*, double*, double*, Device) {
  unavailable("clip_scale");
}
void add_norm(const float*, int64_t, double*, double*, Device) { unavailable("add_norm"); }
void add_gradients(const float*, float*, int64_t, Device) { unavailable("add_gradients"); }
void round_to_bf16_bits(const float*, uint16_t*, int64_t, Device) {
  unavailable("round_to_bf16_bits");
}
void gemm(int, bool, bool, int64_t, int64_t, int64_t, float, const float*, const float*, float,
          float*, Precision) {
  unavailable("gemm");
}
void gemm_bf16(int, bool, bool, int64_t, int64_t, int64_t, float, const float*, const uint16_t*,
               const float*, const uint16_t*, float, float*) {
  unavailable("gemm_bf16");
}
void gemm_bias_epilogue(int, int64_t, int64_t, int64_t, const float*, const float*, const float*,
                        float*, bool, Precision, void*, int64_t) {
  unavailable("gemm_bias_epilogue");
}
void gemm_weight_grad_bgrad(int, int64_t, int64_t, int64_t, const float*, const float*, float*,
                            float*, Precision) {
  unavailable("gemm_weight_grad_bgrad");
}
void gemm_input_grad_drelu(int, int64_t, int64_t, int64_t, const float*, const float*, const void*,
                           int64_t, float*, Precision) {
  unavailable("gemm_input_grad_drelu");
}
void gemm_bias_epilogue_bf16(int, int64_t, int64_t, int64_t, const uint16_t*, const uint16_t*,
                             const float*, float*, uint16_t*, bool, void*, int64_t) {
  unavailable("gemm_bias_epilogue_bf16");
}
void gemm_weight_grad_bf16(int, int64_t, int64_t, int64_t, const uint16_t*, const uint16_t*, float*,
                           float*) {
  unavailable("gemm_weight_grad_bf16");
}
void gemm_input_grad_bf16(int, int64_t, int64_t, int64_t, const uint16_t*, const uint16_t*,
                          const void*, int64_t, uint16_t*) {
  unavailable("gemm_input_grad_bf16");
}
void gemm_bias_gelu_tanh_epilogue(int, int64_t, int64_t, int64_t, const float*, const float*,
                                  const float*, float*, float*, int64_t, Precision) {
  unavailable("gemm_bias_gelu_tanh_epilogue");
}
void gemm_input_grad_dgelu(int, int64_t, int64_t, int64_t, const float*, const float*, const float*,
                           int64_t, float*, float*, Precision) {
  unavailable("gemm_input_grad_dgelu");
}

// kernels/graph.h
struct StepGraph::Impl {};
StepGraph::StepGraph(Device) { unavailable("StepGraph"); }
StepGraph::~StepGraph() = default;
bool StepGraph::capture(const std::function<void()>&, std::string&) {
  unavailable("StepGraph::capture");
}
void StepGraph::launch() { unavailable("StepGraph::launch"); }
bool StepGraph::ready() const { return false; }
int64_t StepGraph::kernel_nodes() const { return 0; }
int64_t StepGraph::nodes() const { return 0; }

// kernels/device_counters.h: nothing runs on a device here, so nothing waits for one.
uint64_t host_waits() { return 0; }
void note_host_wait() {}
bool counts_device_work() { return false; }
void set_device_work_counting(bool) {}
std::shared_ptr<uint64_t> mark_device_work(Device) { return std::make_shared<uint64_t>(0); }
std::vector<DeviceWork> device_work_between(uint64_t, uint64_t) { return {}; }

}  // namespace mlpx::cuda
