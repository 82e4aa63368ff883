// libFuzzer target: the .npy reader, then the conversions training applies to what it read.
#include <cstddef>
#include <cstdint>

#include "fuzz_util.h"
#include "mlpx/array_io.h"
#include "mlpx/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static mlpx::fuzz::ScratchFile file("npy", ".npy");
  const std::string& path = file.write(data, size);
  try {
    const mlpx::Array array = mlpx::load_npy(path);
    mlpx::fuzz::require(array.numel() > 0, "a loaded array is not empty");
    mlpx::fuzz::require(
        array.bytes.size() == static_cast<size_t>(array.numel()) * mlpx::element_size(array.type),
        "bytes match shape and element type");
    mlpx::fuzz::require(array.bytes.size() <= size, "data bytes fit in the file");
    const mlpx::Tensor x = mlpx::to_float_tensor(array);
    mlpx::fuzz::require(x.numel() == array.numel(), "features keep every element");
    const mlpx::Tensor y = mlpx::to_labels(array, "labels");
    mlpx::check_labels(y, 10, "labels");
  } catch (const mlpx::Error&) {
  }
  return 0;
}
