// libFuzzer target: the IDX reader, plain and gzip-compressed (an input that starts with the
// gzip magic 1f 8b goes through the .gz path), then the conversions training applies.
#include <cstddef>
#include <cstdint>

#include "fuzz_util.h"
#include "mlpx/array_io.h"
#include "mlpx/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static mlpx::fuzz::ScratchFile plain("idx", "-ubyte");
  static mlpx::fuzz::ScratchFile gzip("idx", "-ubyte.gz");
  const bool gz = size >= 2 && data[0] == 0x1f && data[1] == 0x8b;
  const std::string& path = (gz ? gzip : plain).write(data, size);
  try {
    const mlpx::Array array = mlpx::load_idx(path);
    // Deflate expands at most 1032:1; a plain file holds its data as is.
    mlpx::fuzz::check_accepted_array(array, gz ? size * 1032 : size);
  } catch (const mlpx::Error&) {
  }
  return 0;
}
