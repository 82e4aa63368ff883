// The simulator's stand-in for <thrust/device_ptr.h>: a typed pointer to device memory, as the
// Thrust calls of mlpx use it (device_pointer_cast, raw_pointer_cast, iterator arithmetic).
// No host dereference: in real Thrust that is a hidden device copy; here it does not compile.
#pragma once

#include <cstddef>
#include <iterator>
#include <type_traits>

namespace thrust {

template <typename T>
class device_ptr {
 public:
  using element_type = T;
  using value_type = std::remove_cv_t<T>;
  using difference_type = std::ptrdiff_t;
  using pointer = device_ptr;
  using iterator_category = std::random_access_iterator_tag;

  device_ptr() = default;
  explicit device_ptr(T* p) : p_(p) {}
  template <typename U, typename = std::enable_if_t<std::is_convertible<U*, T*>::value>>
  device_ptr(const device_ptr<U>& other) : p_(other.get()) {}  // NOLINT: implicit, as in Thrust

  T* get() const { return p_; }

  device_ptr& operator++() {
    ++p_;
    return *this;
  }
  device_ptr operator++(int) {
    device_ptr old = *this;
    ++p_;
    return old;
  }
  device_ptr& operator--() {
    --p_;
    return *this;
  }
  device_ptr operator--(int) {
    device_ptr old = *this;
    --p_;
    return old;
  }
  device_ptr& operator+=(difference_type n) {
    p_ += n;
    return *this;
  }
  device_ptr& operator-=(difference_type n) {
    p_ -= n;
    return *this;
  }
  friend device_ptr operator+(device_ptr p, difference_type n) { return p += n; }
  friend device_ptr operator+(difference_type n, device_ptr p) { return p += n; }
  friend device_ptr operator-(device_ptr p, difference_type n) { return p -= n; }
  friend difference_type operator-(const device_ptr& a, const device_ptr& b) { return a.p_ - b.p_; }
  friend bool operator==(const device_ptr& a, const device_ptr& b) { return a.p_ == b.p_; }
  friend bool operator!=(const device_ptr& a, const device_ptr& b) { return a.p_ != b.p_; }
  friend bool operator<(const device_ptr& a, const device_ptr& b) { return a.p_ < b.p_; }
  friend bool operator>(const device_ptr& a, const device_ptr& b) { return a.p_ > b.p_; }
  friend bool operator<=(const device_ptr& a, const device_ptr& b) { return a.p_ <= b.p_; }
  friend bool operator>=(const device_ptr& a, const device_ptr& b) { return a.p_ >= b.p_; }

 private:
  T* p_ = nullptr;
};

template <typename T>
device_ptr<T> device_pointer_cast(T* p) {
  return device_ptr<T>(p);
}
template <typename T>
device_ptr<T> device_pointer_cast(const device_ptr<T>& p) {
  return p;
}

template <typename T>
T* raw_pointer_cast(const device_ptr<T>& p) {
  return p.get();
}
template <typename T>
T* raw_pointer_cast(T* p) {
  return p;
}

}  // namespace thrust
