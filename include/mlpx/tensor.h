// Tensor: an owning handle to a 1-D or 2-D block of memory (rows = samples) on one device.
// Copying a Tensor copies the handle, never the data (like a shared_ptr); data moves only
// through to(), clone() and copy_from(). Views (rows(), view(), flat_view()) share storage.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <memory>
#include <string>
#include <vector>

#include "mlpx/device.h"

namespace mlpx {

enum class DType { kFloat32, kFloat64, kInt32 };

size_t dtype_size(DType dtype);
const char* dtype_name(DType dtype);  // "float32", "float64", "int32"

template <typename T>
constexpr DType dtype_of();
template <>
constexpr DType dtype_of<float>() {
  return DType::kFloat32;
}
template <>
constexpr DType dtype_of<double>() {
  return DType::kFloat64;
}
template <>
constexpr DType dtype_of<int32_t>() {
  return DType::kInt32;
}

using Shape = std::vector<int64_t>;
std::string shape_str(const Shape& shape);  // "[128, 784]"

namespace detail {
struct Storage;
}

class Tensor {
 public:
  Tensor() = default;  // undefined: defined() is false
  // Uninitialised memory of the given shape (rank 1 or 2, sizes >= 0).
  Tensor(Shape shape, DType dtype = DType::kFloat32, Device device = Device::cpu());

  static Tensor zeros(Shape shape, DType dtype = DType::kFloat32, Device device = Device::cpu());
  // Copies values (values.size() must equal the product of shape) into a new tensor.
  template <typename T>
  static Tensor from_vector(const std::vector<T>& values, Shape shape,
                            Device device = Device::cpu());
  // A tensor over memory that another owner holds (a numpy array's buffer, a DLPack tensor):
  // `data` holds the elements of `shape` contiguously, row-major, on `device`. Nothing is
  // copied or freed; `owner` is kept alive as long as this tensor or any view of it.
  static Tensor wrap(void* data, Shape shape, DType dtype, Device device,
                     std::shared_ptr<void> owner);
  // Copies the elements to a host vector (waits for the device). T must match dtype().
  template <typename T>
  std::vector<T> to_vector() const;
  // The value of a one-element tensor (any shape of numel 1, any dtype, any device) converted
  // to T (float, double, int32_t or int64_t); waits for the device. ShapeError otherwise.
  template <typename T>
  T item() const;

  // A copy on `device`; the same handle when already there.
  Tensor to(Device device) const;
  // A deep copy on the same device.
  Tensor clone() const;
  // Copies src's elements into this tensor: same numel and dtype; any two devices.
  void copy_from(const Tensor& src);
  void fill_zero();

  // View of rows [begin, end) of a 2-D tensor (elements of a 1-D one); shares storage.
  Tensor rows(int64_t begin, int64_t end) const;
  // View with another shape over the same contiguous elements (same numel).
  Tensor view(Shape shape) const;
  // View of `shape` starting `offset` elements into this tensor (a layer inside a flat buffer).
  Tensor flat_view(int64_t offset, Shape shape) const;

  bool defined() const { return storage_ != nullptr; }
  int dim() const { return static_cast<int>(shape_.size()); }
  const Shape& shape() const { return shape_; }
  int64_t size(int d) const;
  int64_t rows() const { return shape_.empty() ? 0 : shape_[0]; }
  int64_t cols() const { return shape_.size() == 2 ? shape_[1] : 1; }
  int64_t numel() const;
  size_t nbytes() const { return static_cast<size_t>(numel()) * dtype_size(dtype_); }
  DType dtype() const { return dtype_; }
  Device device() const { return device_; }

  // Typed pointer to the first element; throws ShapeError when T does not match dtype().
  template <typename T>
  T* data() const;
  void* raw_data() const;

  // "[128, 784] float32 cuda:0"
  std::string describe() const;

 private:
  std::shared_ptr<detail::Storage> storage_;
  int64_t offset_ = 0;  // in elements
  Shape shape_;
  DType dtype_ = DType::kFloat32;
  Device device_;
};

// Prints describe() and, for small CPU tensors, the values.
std::ostream& operator<<(std::ostream& out, const Tensor& tensor);

}  // namespace mlpx
