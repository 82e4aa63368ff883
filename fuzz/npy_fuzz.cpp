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
    mlpx::fuzz::check_accepted_array(array, size);  // .npy data is stored as is
  } catch (const mlpx::Error&) {
  }
  return 0;
}
