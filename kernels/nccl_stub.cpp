// NCCL's stand-in (as kernels/stub.cpp is CUDA's) for a build without it: a CPU-only build, or
// a CUDA build that found no NCCL (cmake/MlpxCuda.cmake). nccl_built() is false, and anything
// that asks for an NCCL communicator gets a CudaError that says how to build with one.
#include "kernels/nccl.h"
#include "mlpx/error.h"

namespace mlpx::cuda {

namespace {
[[noreturn]] void unavailable(const char* what) {
  throw CudaError(::mlpx::detail::concat(
      what,
      ": expected a build with NCCL, found one without it (NCCL comes with the CUDA toolkit: "
      "configure with -DMLPX_CUDA=ON where nccl.h and libnccl are installed, or use "
      "train.collectives \"host\")"));
}
}  // namespace

struct NcclCommunicator::Impl {};

bool nccl_built() { return false; }
std::string nccl_version() { unavailable("nccl_version"); }
NcclId nccl_unique_id() { unavailable("nccl_unique_id"); }

NcclCommunicator::NcclCommunicator(const NcclId&, int, int, Device) {
  unavailable("NCCL communicator");
}
NcclCommunicator::~NcclCommunicator() = default;
int NcclCommunicator::rank() const { return 0; }
int NcclCommunicator::size() const { return 1; }
Device NcclCommunicator::device() const { return Device::cpu(); }
void NcclCommunicator::set_timeout(double) {}
void NcclCommunicator::all_reduce_sum(Tensor&) { unavailable("all_reduce_sum"); }
void NcclCommunicator::start_all_reduce_sum(Tensor&) { unavailable("start_all_reduce_sum"); }
void NcclCommunicator::wait_started() { unavailable("wait_started"); }
void NcclCommunicator::reduce_scatter_sum(const Tensor&, Tensor&, const std::vector<int64_t>&) {
  unavailable("reduce_scatter_sum");
}
void NcclCommunicator::all_gather_shards(Tensor&, const std::vector<int64_t>&) {
  unavailable("all_gather_shards");
}

}  // namespace mlpx::cuda
