// Tensor: a dtype, a shape (PyTorch order, row-major) and a buffer that is either owned
// (allocated here) or a view into memory kept alive by someone else (e.g. an mmap'd file).
// Copies of a Tensor share the buffer (like torch.Tensor); clone() makes a deep copy.
// A tensor of a packed dtype (F32_SPARSE, core/sparse.h) keeps its logical shape ([O, I] of the
// dense matrix it stands for) and a buffer holding one blob of nbytes() bytes; to(DType::F32)
// expands it, dense.to(DType::F32_SPARSE) compresses.
#pragma once
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

#include "core/dtype.h"

namespace sec {

using Shape = std::vector<int64_t>;
std::string shape_str(const Shape& s);  // "[512, 64]"
int64_t shape_numel(const Shape& s);

class Tensor {
 public:
  Tensor() = default;
  static Tensor empty(const Shape& shape, DType dtype = DType::F32);  // uninitialised
  static Tensor zeros(const Shape& shape, DType dtype = DType::F32);
  // Non-owning view; `keepalive` (may be null) is held as long as the tensor lives.
  static Tensor view(void* data, const Shape& shape, DType dtype, std::shared_ptr<void> keepalive);
  static Tensor from_vector(const std::vector<float>& v, const Shape& shape);
  // A packed tensor (dtype_is_packed(dtype)) of logical shape `shape` whose blob is `bytes` long:
  // allocated (uninitialised), or a view like view().
  static Tensor empty_packed(const Shape& shape, DType dtype, size_t bytes);
  static Tensor view_packed(void* data, const Shape& shape, DType dtype, size_t bytes, std::shared_ptr<void> keepalive);

  bool defined() const { return data_ != nullptr; }
  DType dtype() const { return dtype_; }
  const Shape& shape() const { return shape_; }
  int ndim() const { return int(shape_.size()); }
  int64_t dim(int i) const;  // negative i counts from the end
  int64_t numel() const { return shape_numel(shape_); }
  size_t nbytes() const { return dtype_is_packed(dtype_) ? packed_bytes_ : size_t(numel()) * dtype_size(dtype_); }

  void* raw() { return data_; }
  const void* raw() const { return data_; }
  float* f32();  // asserts dtype F32
  const float* f32() const;

  Tensor clone() const;
  Tensor to(DType dtype) const;              // converting deep copy (a plain clone when dtype is the same)
  Tensor reshape(const Shape& shape) const;  // same buffer, numel must match (packed: same shape only)
  std::vector<float> to_vector() const;      // converted to f32 (packed: expanded)

 private:
  DType dtype_ = DType::F32;
  Shape shape_;
  void* data_ = nullptr;
  size_t packed_bytes_ = 0;  // packed dtypes only
  std::shared_ptr<void> storage_;
};

}  // namespace sec
