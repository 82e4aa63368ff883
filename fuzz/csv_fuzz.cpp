// libFuzzer target: the CSV reader, then the conversions training applies to what it read.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "fuzz_util.h"
#include "mlpx/array_io.h"
#include "mlpx/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static mlpx::fuzz::ScratchFile file("csv", ".csv");
  const std::string& path = file.write(data, size);
  try {
    const mlpx::Array array = mlpx::load_csv(path);
    mlpx::fuzz::require(array.type == mlpx::ElementType::kFloat64, "csv reads as float64");
    mlpx::fuzz::require(array.shape.size() == 2, "csv is a matrix");
    // Every value needs at least one character of its own plus a separator.
    mlpx::fuzz::require(static_cast<size_t>(array.numel()) <= size, "values fit the text");
    for (int64_t i = 0; i < array.numel(); ++i) {
      double v;
      std::memcpy(&v, array.bytes.data() + i * 8, 8);
      mlpx::fuzz::require(std::isfinite(v), "csv values are finite");
    }
    // 8 bytes per value, and every value needs a character of its own.
    mlpx::fuzz::check_accepted_array(array, 8 * size);
  } catch (const mlpx::Error&) {
  }
  return 0;
}
