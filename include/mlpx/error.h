// Errors: every failure in mlpx is an mlpx::Error (or a subclass) whose message says what
// was expected and what was found. Device code never throws; it sets a status flag that the
// host reads at the next synchronisation and turns into one of these.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>

namespace mlpx {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(what) {}
};

// A tensor had the wrong rank, shape, dtype or device for the operation.
class ShapeError : public Error {
 public:
  using Error::Error;
};

// A value was out of its domain: a label outside [0, classes), a negative learning rate,
// NaN in a data set, an unknown name in a config.
class ValueError : public Error {
 public:
  using Error::Error;
};

// Reading or writing a file failed, or a file's contents were malformed.
class IoError : public Error {
 public:
  using Error::Error;
};

// A CUDA runtime, cuBLAS or cuBLASLt call failed, or no usable device was there.
class CudaError : public Error {
 public:
  using Error::Error;
};

namespace detail {
template <typename... Parts>
std::string concat(const Parts&... parts) {
  std::ostringstream out;
  (out << ... << parts);
  return out.str();
}
}  // namespace detail

}  // namespace mlpx

// Throws ErrorType(message parts...) unless cond holds. One line per precondition:
//   MLPX_CHECK(x.rows() == y.rows(), ShapeError, "expected ", x.rows(), " rows, found ", y.rows());
#define MLPX_CHECK(cond, ErrorType, ...)                                       \
  do {                                                                         \
    if (!(cond)) throw ::mlpx::ErrorType(::mlpx::detail::concat(__VA_ARGS__)); \
  } while (0)
