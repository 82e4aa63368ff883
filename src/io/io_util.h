// Helpers shared by the file readers (npy, idx, csv, safetensors). Internal.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "mlpx/array_io.h"
#include "mlpx/error.h"

namespace mlpx::detail {

// The readers copy little-endian file bytes straight into memory.
static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "mlpx's file readers need a little-endian host");

// A regular file opened for reading, closed on destruction. Every error is an IoError that
// starts with the path.
class InputFile {
 public:
  // Opens `path`; IoError when it is missing, unreadable or not a regular file.
  explicit InputFile(std::string path);
  ~InputFile();
  InputFile(const InputFile&) = delete;
  InputFile& operator=(const InputFile&) = delete;

  const std::string& path() const { return path_; }
  uint64_t size() const { return size_; }  // the file's length in bytes, from fstat
  uint64_t position() const { return position_; }
  uint64_t remaining() const { return size_ - position_; }
  // Reads exactly n bytes at the current position; IoError "truncated" naming `what`, the bytes
  // expected and the bytes found when the file ends first.
  void read_exact(void* dst, size_t n, const char* what);

 private:
  std::string path_;
  int fd_ = -1;
  uint64_t size_ = 0;
  uint64_t position_ = 0;
};

// product(shape) * item_size; false when a size is negative or the product overflows uint64.
bool checked_nbytes(const Shape& shape, size_t item_size, uint64_t* nbytes);

// IoError "<path>: <message parts>".
template <typename... Parts>
[[noreturn]] void fail_io(const std::string& path, const Parts&... parts) {
  throw IoError(concat(path, ": ", parts...));
}

// A float16 element as stored: its IEEE binary16 bits.
struct Float16 {
  uint16_t bits;
};

// The float32 value of an IEEE binary16 (float16) element: exact for every one, subnormals,
// infinities and NaN included.
float half_to_float(uint16_t bits);

// IoError naming the first NaN or infinity in a float array (no-op for integer types).
void check_finite(const Array& array);
// IoError when the array has no elements (a size of 0 somewhere in its shape).
void check_not_empty(const Array& array);

bool ends_with(const std::string& text, const std::string& suffix);

// `text` cut to `max` characters ("..." after), control and non-ASCII bytes as \xNN: safe to put
// in a one-line message.
std::string printable(std::string_view text, size_t max = 40);

}  // namespace mlpx::detail
