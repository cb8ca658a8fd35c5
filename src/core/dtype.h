// Element types of stored tensors. Activations are always f32; weights may be stored as f16/bf16
// (the linear kernels read them natively) or compressed sparse (F32_SPARSE: a bitmask of the
// nonzeros plus the packed nonzero values, core/sparse.h). A "packed" dtype has no element size:
// its buffer is one blob whose size the Tensor records.
#pragma once
#include <cstdint>
#include <cstring>
#include <string>

namespace sec {

enum class DType : uint8_t { F32, F16, BF16, F32_SPARSE };

size_t dtype_size(DType t);               // bytes per element; asserts the dtype is not packed
bool dtype_is_packed(DType t);            // F32_SPARSE
const char* dtype_name(DType t);          // "f32", "f16", "bf16", "f32-sparse"
DType parse_dtype(const std::string& s);  // accepts f32/f16/bf16 (case-insensitive); throws Error

inline float bf16_to_f32(uint16_t h) {
  uint32_t u = uint32_t(h) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

// Round to nearest even, NaN stays NaN (as PyTorch does).
inline uint16_t f32_to_bf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return uint16_t((u >> 16) | 0x40);
  u += 0x7fffu + ((u >> 16) & 1u);
  return uint16_t(u >> 16);
}

float f16_to_f32(uint16_t h);
uint16_t f32_to_f16(float f);  // IEEE round to nearest even, overflow -> inf

// Converts n elements between any two element dtypes (not packed ones; src and dst may not overlap).
void convert_elements(void* dst, DType dst_type, const void* src, DType src_type, size_t n);

}  // namespace sec
