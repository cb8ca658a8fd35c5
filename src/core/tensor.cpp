#include "core/tensor.h"

#include <cstdlib>
#include <cstring>

#include "core/error.h"

namespace sec {

std::string shape_str(const Shape& s) {
  std::string r = "[";
  for (size_t i = 0; i < s.size(); i++) r += (i ? ", " : "") + std::to_string(s[i]);
  return r + "]";
}

int64_t shape_numel(const Shape& s) {
  int64_t n = 1;
  for (int64_t d : s) n *= d;
  return n;
}

Tensor Tensor::empty(const Shape& shape, DType dtype) {
  for (int64_t d : shape) SEC_CHECK(d >= 0, "negative tensor dimension in ", shape_str(shape));
  Tensor t;
  t.dtype_ = dtype;
  t.shape_ = shape;
  size_t bytes = std::max<size_t>(t.nbytes(), 64);
  // 64-byte aligned for SIMD; freed with std::free.
  void* p = std::aligned_alloc(64, (bytes + 63) / 64 * 64);
  SEC_CHECK(p != nullptr, "out of memory allocating a tensor of shape ", shape_str(shape));
  t.storage_ = std::shared_ptr<void>(p, [](void* q) { std::free(q); });
  t.data_ = p;
  return t;
}

Tensor Tensor::zeros(const Shape& shape, DType dtype) {
  Tensor t = empty(shape, dtype);
  std::memset(t.data_, 0, t.nbytes());
  return t;
}

Tensor Tensor::view(void* data, const Shape& shape, DType dtype, std::shared_ptr<void> keepalive) {
  Tensor t;
  t.dtype_ = dtype;
  t.shape_ = shape;
  t.data_ = data;
  t.storage_ = std::move(keepalive);
  return t;
}

Tensor Tensor::from_vector(const std::vector<float>& v, const Shape& shape) {
  SEC_ASSERT(int64_t(v.size()) == shape_numel(shape));
  Tensor t = empty(shape);
  std::memcpy(t.data_, v.data(), v.size() * 4);
  return t;
}

int64_t Tensor::dim(int i) const {
  if (i < 0) i += ndim();
  SEC_ASSERT(i >= 0 && i < ndim());
  return shape_[i];
}

float* Tensor::f32() {
  SEC_ASSERT(dtype_ == DType::F32);
  return static_cast<float*>(data_);
}

const float* Tensor::f32() const {
  SEC_ASSERT(dtype_ == DType::F32);
  return static_cast<const float*>(data_);
}

Tensor Tensor::clone() const { return to(dtype_); }

Tensor Tensor::to(DType dtype) const {
  Tensor t = empty(shape_, dtype);
  if (numel() > 0) convert_elements(t.data_, dtype, data_, dtype_, size_t(numel()));
  return t;
}

Tensor Tensor::reshape(const Shape& shape) const {
  SEC_ASSERT(shape_numel(shape) == numel());
  Tensor t = *this;
  t.shape_ = shape;
  return t;
}

std::vector<float> Tensor::to_vector() const {
  std::vector<float> v(static_cast<size_t>(numel()));
  if (!v.empty()) convert_elements(v.data(), DType::F32, data_, dtype_, v.size());
  return v;
}

}  // namespace sec
