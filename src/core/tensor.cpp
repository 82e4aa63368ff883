#include "mlpx/tensor.h"

#include <algorithm>
#include <ostream>
#include <sstream>

#include "core/element_types.h"
#include "core/memory.h"
#include "mlpx/error.h"

namespace mlpx {

namespace detail {
struct Storage {
  void* ptr = nullptr;
  Device device;
  std::shared_ptr<void> owner;  // set: the memory is someone else's (Tensor::wrap)
  Storage(size_t bytes, Device d) : ptr(allocate(bytes, d)), device(d) {}
  Storage(void* p, Device d, std::shared_ptr<void> o) : ptr(p), device(d), owner(std::move(o)) {}
  ~Storage() {
    if (!owner) deallocate(ptr, device);
  }
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;
};
}  // namespace detail

size_t dtype_size(DType dtype) { return detail::element_type_info(dtype).size; }

const char* dtype_name(DType dtype) { return detail::element_type_info(dtype).name; }

std::string shape_str(const Shape& shape) {
  std::ostringstream out;
  out << '[';
  for (size_t i = 0; i < shape.size(); ++i) out << (i ? ", " : "") << shape[i];
  out << ']';
  return out.str();
}

static int64_t checked_numel(const Shape& shape) {
  MLPX_CHECK(shape.size() == 1 || shape.size() == 2, ShapeError,
             "expected a tensor of rank 1 or 2, found rank ", shape.size(), " ", shape_str(shape));
  int64_t n = 1;
  for (int64_t s : shape) {
    MLPX_CHECK(s >= 0, ShapeError, "expected sizes >= 0, found ", shape_str(shape));
    MLPX_CHECK(s == 0 || n <= INT64_MAX / s, ShapeError, "tensor too large: ", shape_str(shape));
    n *= s;
  }
  return n;
}

Tensor::Tensor(Shape shape, DType dtype, Device device)
    : shape_(std::move(shape)), dtype_(dtype), device_(device) {
  const int64_t n = checked_numel(shape_);
  storage_ = std::make_shared<detail::Storage>(static_cast<size_t>(n) * dtype_size(dtype), device);
}

Tensor Tensor::wrap(void* data, Shape shape, DType dtype, Device device,
                    std::shared_ptr<void> owner) {
  const int64_t n = checked_numel(shape);
  MLPX_CHECK(data != nullptr || n == 0, ShapeError, "wrap: expected memory for ", shape_str(shape),
             ", found a null pointer");
  MLPX_CHECK(owner != nullptr, ValueError, "wrap: expected an owner of the memory, found none");
  Tensor t;
  t.shape_ = std::move(shape);
  t.dtype_ = dtype;
  t.device_ = device;
  t.storage_ = std::make_shared<detail::Storage>(data, device, std::move(owner));
  return t;
}

Tensor Tensor::zeros(Shape shape, DType dtype, Device device) {
  Tensor t(std::move(shape), dtype, device);
  t.fill_zero();
  return t;
}

template <typename T>
Tensor Tensor::from_vector(const std::vector<T>& values, Shape shape, Device device) {
  const int64_t n = checked_numel(shape);
  MLPX_CHECK(static_cast<int64_t>(values.size()) == n, ShapeError, "expected ", n,
             " values for shape ", shape_str(shape), ", found ", values.size());
  Tensor t(std::move(shape), dtype_of<T>(), device);
  detail::copy_bytes(t.raw_data(), device, values.data(), Device::cpu(), t.nbytes());
  return t;
}

template <typename T>
std::vector<T> Tensor::to_vector() const {
  MLPX_CHECK(dtype_ == dtype_of<T>(), ShapeError, "to_vector: expected dtype ",
             dtype_name(dtype_of<T>()), ", found ", dtype_name(dtype_));
  std::vector<T> out(static_cast<size_t>(numel()));
  detail::copy_bytes(out.data(), Device::cpu(), raw_data(), device_, nbytes());
  if (device_.is_cuda()) synchronize(device_);  // surfaces errors flagged by device code
  return out;
}

template <typename T>
T Tensor::item() const {
  MLPX_CHECK(defined() && numel() == 1, ShapeError,
             "item: expected a tensor of one element, found ",
             defined() ? describe() : "an undefined tensor");
  switch (dtype_) {
    case DType::kFloat32:
      return static_cast<T>(to_vector<float>()[0]);
    case DType::kFloat64:
      return static_cast<T>(to_vector<double>()[0]);
    case DType::kInt32:
      return static_cast<T>(to_vector<int32_t>()[0]);
  }
  return T{};
}

template Tensor Tensor::from_vector(const std::vector<float>&, Shape, Device);
template Tensor Tensor::from_vector(const std::vector<double>&, Shape, Device);
template Tensor Tensor::from_vector(const std::vector<int32_t>&, Shape, Device);
template std::vector<float> Tensor::to_vector() const;
template std::vector<double> Tensor::to_vector() const;
template std::vector<int32_t> Tensor::to_vector() const;
template float Tensor::item() const;
template double Tensor::item() const;
template int32_t Tensor::item() const;
template int64_t Tensor::item() const;

Tensor Tensor::to(Device device) const {
  MLPX_CHECK(defined(), ShapeError, "to(", device.str(), "): expected a defined tensor");
  if (device == device_) return *this;
  Tensor out(shape_, dtype_, device);
  out.copy_from(*this);
  return out;
}

Tensor Tensor::clone() const {
  Tensor out(shape_, dtype_, device_);
  out.copy_from(*this);
  return out;
}

void Tensor::copy_from(const Tensor& src) {
  MLPX_CHECK(src.numel() == numel() && src.dtype() == dtype_, ShapeError, "copy_from: expected ",
             describe(), ", found ", src.describe());
  detail::copy_bytes(raw_data(), device_, src.raw_data(), src.device(), nbytes());
}

void Tensor::fill_zero() { detail::zero_bytes(raw_data(), device_, nbytes()); }

Tensor Tensor::rows(int64_t begin, int64_t end) const {
  MLPX_CHECK(0 <= begin && begin <= end && end <= rows(), ShapeError, "rows(", begin, ", ", end,
             "): expected 0 <= begin <= end <= ", rows(), " for ", describe());
  Tensor out = *this;
  out.offset_ = offset_ + begin * cols();
  out.shape_[0] = end - begin;
  return out;
}

Tensor Tensor::view(Shape shape) const {
  const int64_t n = checked_numel(shape);
  MLPX_CHECK(n == numel(), ShapeError, "view: expected ", numel(), " elements for ", describe(),
             ", found ", n, " in ", shape_str(shape));
  Tensor out = *this;
  out.shape_ = std::move(shape);
  return out;
}

Tensor Tensor::flat_view(int64_t offset, Shape shape) const {
  const int64_t n = checked_numel(shape);
  MLPX_CHECK(offset >= 0 && offset + n <= numel(), ShapeError, "flat_view: expected ",
             shape_str(shape), " at offset ", offset, " to fit in ", describe());
  Tensor out = *this;
  out.offset_ = offset_ + offset;
  out.shape_ = std::move(shape);
  return out;
}

int64_t Tensor::size(int d) const {
  MLPX_CHECK(d >= 0 && d < dim(), ShapeError, "size(", d, "): expected a dimension below ", dim(),
             " for ", describe());
  return shape_[d];
}

int64_t Tensor::numel() const {
  int64_t n = shape_.empty() ? 0 : 1;
  for (int64_t s : shape_) n *= s;
  return n;
}

template <typename T>
T* Tensor::data() const {
  MLPX_CHECK(dtype_ == dtype_of<T>(), ShapeError, "data<", dtype_name(dtype_of<T>()),
             ">: expected that dtype, found ", describe());
  return static_cast<T*>(raw_data());
}
template float* Tensor::data<float>() const;
template double* Tensor::data<double>() const;
template int32_t* Tensor::data<int32_t>() const;

void* Tensor::raw_data() const {
  if (!storage_ || storage_->ptr == nullptr) return nullptr;
  return static_cast<char*>(storage_->ptr) + offset_ * static_cast<int64_t>(dtype_size(dtype_));
}

std::string Tensor::describe() const {
  if (!defined()) return "undefined tensor";
  return shape_str(shape_) + " " + dtype_name(dtype_) + " " + device_.str();
}

std::ostream& operator<<(std::ostream& out, const Tensor& t) {
  out << t.describe();
  constexpr int64_t kMaxPrinted = 16;
  if (t.defined() && t.device().is_cpu() && t.numel() <= kMaxPrinted && t.numel() > 0) {
    out << " {";
    for (int64_t i = 0; i < t.numel(); ++i) {
      out << (i ? ", " : "");
      switch (t.dtype()) {
        case DType::kFloat32:
          out << t.data<float>()[i];
          break;
        case DType::kFloat64:
          out << t.data<double>()[i];
          break;
        case DType::kInt32:
          out << t.data<int32_t>()[i];
          break;
      }
    }
    out << '}';
  }
  return out;
}

}  // namespace mlpx
