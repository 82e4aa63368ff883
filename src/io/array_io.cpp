// Shared pieces of the array readers (InputFile, size checks), format dispatch, and the
// conversions from Array to the tensors that training takes.
#include "mlpx/array_io.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <type_traits>
#include <vector>

#include "core/element_types.h"
#include "io/io_util.h"

namespace mlpx {

size_t element_size(ElementType type) { return detail::element_type_info(type).size; }

const char* element_type_name(ElementType type) { return detail::element_type_info(type).name; }

int64_t Array::numel() const {
  int64_t n = shape.empty() ? 0 : 1;
  for (int64_t s : shape) n *= s;
  return n;
}

int64_t Array::row_size() const {
  int64_t n = 1;
  for (size_t d = 1; d < shape.size(); ++d) n *= shape[d];
  return n;
}

namespace {
// An element's arithmetic value: itself, or the float32 a float16 stands for.
float value_of(detail::Float16 element) { return detail::half_to_float(element.bits); }
// int8 widened through its byte, the way that bugprone-signed-char-misuse accepts.
int value_of(int8_t element) {
  const auto byte = static_cast<uint8_t>(element);
  return byte < 128 ? byte : byte - 256;
}
template <typename T>
T value_of(T element) {
  return element;
}
}  // namespace

namespace detail {

InputFile::InputFile(std::string path) : path_(std::move(path)) {
  do {
    fd_ = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
  } while (fd_ < 0 && errno == EINTR);
  if (fd_ < 0) fail_io(path_, "cannot open: ", std::strerror(errno));
  struct stat info {};
  if (::fstat(fd_, &info) != 0) {
    const int err = errno;
    ::close(fd_);
    fail_io(path_, "cannot stat: ", std::strerror(err));
  }
  if (!S_ISREG(info.st_mode)) {
    ::close(fd_);
    fail_io(path_, "expected a regular file, found ",
            S_ISDIR(info.st_mode) ? "a folder" : "a special file");
  }
  size_ = static_cast<uint64_t>(info.st_size);
}

InputFile::~InputFile() {
  if (fd_ >= 0) ::close(fd_);
}

void InputFile::read_exact(void* dst, size_t n, const char* what) {
  char* out = static_cast<char*>(dst);
  size_t done = 0;
  while (done < n) {
    const ssize_t got = ::read(fd_, out + done, n - done);
    if (got < 0 && errno == EINTR) continue;
    if (got < 0)
      fail_io(path_, "read failed at offset ", position_ + done, ": ", std::strerror(errno));
    if (got == 0) {
      fail_io(path_, "truncated: expected ", n, " bytes of ", what, " at offset ", position_,
              ", found ", done);
    }
    done += static_cast<size_t>(got);
  }
  position_ += n;
}

bool checked_nbytes(const Shape& shape, size_t item_size, uint64_t* nbytes) {
  uint64_t n = item_size;
  for (int64_t s : shape) {
    if (s < 0 || __builtin_mul_overflow(n, static_cast<uint64_t>(s), &n)) return false;
  }
  *nbytes = n;
  return true;
}

float half_to_float(uint16_t bits) {
  const uint32_t sign = uint32_t{bits & 0x8000u} << 16;
  const uint32_t exponent = (bits >> 10) & 0x1fu;
  const uint32_t mantissa = bits & 0x3ffu;
  if (exponent == 0) {
    // Zero or subnormal: mantissa * 2^-24, which float32 holds exactly as a normal number.
    const float magnitude = static_cast<float>(mantissa) * 0x1p-24f;
    return sign != 0 ? -magnitude : magnitude;
  }
  uint32_t out = 0;
  if (exponent == 0x1f) {
    out = sign | 0x7f800000u | (mantissa << 13);  // infinity, or NaN with its payload
  } else {
    out = sign | ((exponent - 15 + 127) << 23) | (mantissa << 13);  // rebias the exponent
  }
  float value;
  std::memcpy(&value, &out, sizeof(value));
  return value;
}

namespace {
template <typename T>
void check_finite_values(const Array& array) {
  const auto* values = reinterpret_cast<const T*>(array.bytes.data());
  const int64_t n = static_cast<int64_t>(array.bytes.size() / sizeof(T));
  const int64_t row_size = std::max<int64_t>(array.row_size(), 1);
  for (int64_t i = 0; i < n; ++i) {
    const auto value = value_of(values[i]);
    if (!std::isfinite(value)) {
      if (array.shape.size() <= 1) {
        fail_io(array.source, "expected finite values, found ", value, " at row ", i);
      }
      fail_io(array.source, "expected finite values, found ", value, " at row ", i / row_size,
              ", column ", i % row_size);
    }
  }
}
}  // namespace

void check_finite(const Array& array) {
  if (array.type == ElementType::kFloat16) check_finite_values<Float16>(array);
  if (array.type == ElementType::kFloat32) check_finite_values<float>(array);
  if (array.type == ElementType::kFloat64) check_finite_values<double>(array);
}

void check_not_empty(const Array& array) {
  for (int64_t s : array.shape) {
    if (s == 0)
      fail_io(array.source, "expected a non-empty array, found shape ", shape_str(array.shape));
  }
}

bool ends_with(const std::string& text, const std::string& suffix) {
  return text.size() >= suffix.size() &&
         text.compare(text.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::string printable(std::string_view text, size_t max) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (size_t i = 0; i < text.size() && i < max; ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c >= 0x20 && c < 0x7f) {
      out += static_cast<char>(c);
    } else {
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  if (text.size() > max) out += "...";
  return out;
}

}  // namespace detail

Array load_array(const std::string& path) {
  const size_t slash = path.find_last_of('/');
  std::string name = slash == std::string::npos ? path : path.substr(slash + 1);
  std::transform(name.begin(), name.end(), name.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (detail::ends_with(name, ".npy")) return load_npy(path);
  if (detail::ends_with(name, ".csv")) return load_csv(path);
  if (name.find("-ubyte") != std::string::npos) return load_idx(path);
  detail::fail_io(path,
                  "unknown array file format: expected a name ending in .npy or .csv, or an IDX "
                  "file named *-ubyte or *-ubyte.gz");
}

namespace {

// The C++ type of each element type, passed to `fn` as a value-initialised argument.
template <typename Fn>
void visit_element_type(ElementType type, Fn&& fn) {
  switch (type) {
    case ElementType::kUint8:
      return fn(uint8_t{});
    case ElementType::kInt8:
      return fn(int8_t{});
    case ElementType::kInt16:
      return fn(int16_t{});
    case ElementType::kUint16:
      return fn(uint16_t{});
    case ElementType::kInt32:
      return fn(int32_t{});
    case ElementType::kUint32:
      return fn(uint32_t{});
    case ElementType::kInt64:
      return fn(int64_t{});
    case ElementType::kUint64:
      return fn(uint64_t{});
    case ElementType::kFloat16:
      return fn(detail::Float16{});
    case ElementType::kFloat32:
      return fn(float{});
    case ElementType::kFloat64:
      return fn(double{});
  }
}

// The numpy-style index of the element at C-order position `flat` of `shape`: "[3, 1]".
std::string index_str(const Shape& shape, int64_t flat) {
  std::vector<int64_t> index(shape.size());
  for (size_t d = shape.size(); d-- > 0;) {
    index[d] = flat % shape[d];
    flat /= shape[d];
  }
  std::string out = "[";
  for (size_t d = 0; d < index.size(); ++d) out += detail::concat(d ? ", " : "", index[d]);
  return out + "]";
}

// Every integer of magnitude up to 2^24 is a float32; past it float32 skips some.
constexpr int64_t kLargestExactFloat32Integer = int64_t{1} << 24;

template <typename From>
void convert_to_float(const Array& array, float* out) {
  const auto* in = reinterpret_cast<const From*>(array.bytes.data());
  const size_t n = array.bytes.size() / sizeof(From);
  if constexpr (std::is_same_v<From, double>) {
    // A finite double past float's range would silently become an infinity. The test is on
    // the rounded value: 3.4028235e38 (float's max as written in text) is a little above
    // FLT_MAX as a double yet rounds to FLT_MAX, so it is in range.
    const size_t row_size = static_cast<size_t>(std::max<int64_t>(array.row_size(), 1));
    for (size_t i = 0; i < n; ++i) {
      if (std::isinf(static_cast<float>(in[i]))) {
        detail::fail_io(array.source, "expected values within float32's range (+-",
                        std::numeric_limits<float>::max(), "), found ", in[i], " at row ",
                        i / row_size, ", column ", i % row_size + 1);
      }
    }
  } else if constexpr (std::is_integral_v<From> && sizeof(From) >= 4) {
    // Wider integers (ids, counts, timestamps) would be rounded without a word; narrower ones
    // always fit.
    for (size_t i = 0; i < n; ++i) {
      const bool exact =
          std::is_signed_v<From>
              ? (static_cast<int64_t>(in[i]) >= -kLargestExactFloat32Integer &&
                 static_cast<int64_t>(in[i]) <= kLargestExactFloat32Integer)
              : static_cast<uint64_t>(in[i]) <= static_cast<uint64_t>(kLargestExactFloat32Integer);
      if (!exact) {
        detail::fail_io(array.source, "expected ", element_type_name(array.type),
                        " features within +-16777216 (2^24, float32's exact integers), found ",
                        in[i], " at ", index_str(array.shape, static_cast<int64_t>(i)),
                        "; convert with .astype('float32') first if rounding is acceptable");
      }
    }
  }
  for (size_t i = 0; i < n; ++i) out[i] = static_cast<float>(value_of(in[i]));
}

void check_array_bytes(const Array& array) {
  uint64_t nbytes = 0;
  MLPX_CHECK(!array.shape.empty() &&
                 detail::checked_nbytes(array.shape, element_size(array.type), &nbytes) &&
                 nbytes == array.bytes.size(),
             IoError, array.source, ": inconsistent array: shape ", shape_str(array.shape), " ",
             element_type_name(array.type), " with ", array.bytes.size(), " bytes");
}

// Returns the value as an int32 label, or false when it is not an integer in int32's range.
template <typename T>
bool as_label(T value, int32_t* label) {
  if constexpr (std::is_floating_point_v<T>) {
    // [-2^31, 2^31): both bounds are exact in float and double (float(INT32_MAX) rounds up to
    // 2^31, and converting 2^31 to int32 is undefined).
    if (!(value >= static_cast<T>(-2147483648.0) && value < static_cast<T>(2147483648.0) &&
          std::floor(value) == value)) {
      return false;
    }
  } else if constexpr (std::is_unsigned_v<T>) {
    // Compared unsigned: a uint64 past INT64_MAX would wrap to a negative int64.
    if (static_cast<uint64_t>(value) > static_cast<uint64_t>(std::numeric_limits<int32_t>::max()))
      return false;
  } else {
    const auto wide = static_cast<int64_t>(value);
    if (wide < std::numeric_limits<int32_t>::min() || wide > std::numeric_limits<int32_t>::max()) {
      return false;
    }
  }
  *label = static_cast<int32_t>(value);
  return true;
}

template <typename T>
void convert_labels(const Array& array, int32_t* out, const std::string& name) {
  const auto* in = reinterpret_cast<const T*>(array.bytes.data());
  const size_t n = array.bytes.size() / sizeof(T);
  for (size_t i = 0; i < n; ++i) {
    const auto value = value_of(in[i]);
    if (!as_label(value, &out[i])) {
      detail::fail_io(name, "expected integer class labels in int32's range, found ", +value,
                      " at row ", i);
    }
  }
}

}  // namespace

Tensor to_float_tensor(const Array& array) {
  check_array_bytes(array);
  // Rank 3 with a last axis of 1 is a column per row, not an image; rank 4 and up ends in
  // channels, where 1 (grayscale, as Keras stores MNIST) is usual.
  MLPX_CHECK(!(array.shape.size() == 3 && array.shape[2] == 1), IoError, array.source,
             ": expected an array [N] or [N, F] (images: [N, H, W] or [N, H, W, C]), found ",
             shape_str(array.shape), "; squeeze the last axis (np.squeeze(a, axis=-1))");
  Tensor out({array.rows(), array.row_size()}, DType::kFloat32);
  float* dst = out.data<float>();
  visit_element_type(array.type, [&](auto zero) { convert_to_float<decltype(zero)>(array, dst); });
  return out;
}

Tensor to_labels(const Array& array, const std::string& name_for_errors) {
  check_array_bytes(array);
  const bool column = array.shape.size() == 2 && array.shape[1] == 1;
  MLPX_CHECK(array.shape.size() == 1 || column, IoError, name_for_errors,
             ": expected class labels of shape [N] or [N, 1], found ", shape_str(array.shape));
  Tensor out({array.rows()}, DType::kInt32);
  int32_t* dst = out.data<int32_t>();
  visit_element_type(
      array.type, [&](auto zero) { convert_labels<decltype(zero)>(array, dst, name_for_errors); });
  return out;
}

void check_labels(const Tensor& labels, int64_t classes, const std::string& what) {
  MLPX_CHECK(classes > 0, ValueError, what, ": expected a positive number of classes, found ",
             classes);
  MLPX_CHECK(labels.defined() && labels.dtype() == DType::kInt32 && labels.dim() == 1, ShapeError,
             what, ": expected int32 labels [N], found ", labels.describe());
  const Tensor host = labels.to(Device::cpu());
  const int32_t* values = host.data<int32_t>();
  for (int64_t i = 0; i < host.numel(); ++i) {
    MLPX_CHECK(values[i] >= 0 && values[i] < classes, ValueError, what, ": expected labels in [0, ",
               classes, "), found ", values[i], " at row ", i);
  }
}

}  // namespace mlpx
