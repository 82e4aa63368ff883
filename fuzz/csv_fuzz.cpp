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
    mlpx::fuzz::require(array.shape.size() == 2 && array.numel() > 0, "csv is a non-empty matrix");
    mlpx::fuzz::require(array.bytes.size() == static_cast<size_t>(array.numel()) * 8,
                        "bytes match the shape");
    // Every value needs at least one character of its own plus a separator.
    mlpx::fuzz::require(static_cast<size_t>(array.numel()) <= size, "values fit the text");
    for (int64_t i = 0; i < array.numel(); ++i) {
      double v;
      std::memcpy(&v, array.bytes.data() + i * 8, 8);
      mlpx::fuzz::require(std::isfinite(v), "csv values are finite");
    }
    const mlpx::Tensor x = mlpx::to_float_tensor(array);
    mlpx::fuzz::require(x.numel() == array.numel(), "features keep every element");
    const mlpx::Tensor y = mlpx::to_labels(array, "labels");
    mlpx::check_labels(y, 10, "labels");
  } catch (const mlpx::Error&) {
  }
  return 0;
}
