// Element types of stored tensors. Computation is always f32; f16/bf16 exist for files.
#pragma once
#include <cstdint>
#include <cstring>
#include <string>

namespace sec {

enum class DType : uint8_t { F32, F16, BF16 };

size_t dtype_size(DType t);
const char* dtype_name(DType t);          // "f32", "f16", "bf16"
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

// Converts n elements between any two dtypes (src and dst may not overlap).
void convert_elements(void* dst, DType dst_type, const void* src, DType src_type, size_t n);

}  // namespace sec
