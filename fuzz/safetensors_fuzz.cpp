// libFuzzer target: the safetensors reader, and on what it accepts, the checkpoint loader that
// builds a model from it (which must not allocate more than the file's tensors justify).
#include <cstddef>
#include <cstdint>

#include "fuzz_util.h"
#include "mlpx/checkpoint.h"
#include "mlpx/error.h"
#include "mlpx/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static mlpx::fuzz::ScratchFile file("safetensors", ".safetensors");
  const std::string& path = file.write(data, size);
  try {
    const mlpx::SafetensorsFile st = mlpx::load_safetensors(path);
    size_t total = 0;
    for (const auto& [name, tensor] : st.tensors) {
      mlpx::fuzz::require(!name.empty() && name != "__metadata__", "tensor names are valid");
      mlpx::fuzz::require(tensor.dim() >= 1 && tensor.dim() <= 2, "tensors have rank 1 or 2");
      mlpx::fuzz::require(st.contains(name), "contains() finds every tensor");
      total += tensor.nbytes();
    }
    mlpx::fuzz::require(total + 8 <= size, "tensor data fits the file");
    const mlpx::Checkpoint ck = mlpx::load_checkpoint(path);
    mlpx::fuzz::require(
        ck.model.num_params() > 0 && static_cast<size_t>(ck.model.num_params()) * 4 <= total,
        "a loaded model's parameters come from the file");
  } catch (const mlpx::Error&) {
  }
  return 0;
}
