#include "core/dtype.h"

#include <algorithm>
#include <cctype>

#include "core/error.h"

namespace sec {

size_t dtype_size(DType t) {
  switch (t) {
    case DType::F32:
      return 4;
    case DType::F16:
      return 2;
    case DType::BF16:
      return 2;
    case DType::F32_SPARSE:
      break;
  }
  SEC_ASSERT(false);
  return 0;
}

bool dtype_is_packed(DType t) { return t == DType::F32_SPARSE; }

const char* dtype_name(DType t) {
  switch (t) {
    case DType::F32:
      return "f32";
    case DType::F16:
      return "f16";
    case DType::BF16:
      return "bf16";
    case DType::F32_SPARSE:
      return "f32-sparse";
  }
  return "?";
}

DType parse_dtype(const std::string& s) {
  std::string l = s;
  std::transform(l.begin(), l.end(), l.begin(), [](unsigned char c) { return std::tolower(c); });
  if (l == "f32" || l == "float32") return DType::F32;
  if (l == "f16" || l == "float16") return DType::F16;
  if (l == "bf16" || l == "bfloat16") return DType::BF16;
  fail("unknown dtype '", s, "' (expected f32, f16 or bf16)");
}

float f16_to_f32(uint16_t h) {
  uint32_t sign = uint32_t(h & 0x8000) << 16;
  uint32_t exp = (h >> 10) & 0x1f;
  uint32_t mant = h & 0x3ff;
  uint32_t u;
  if (exp == 0) {
    if (mant == 0) {
      u = sign;
    } else {  // subnormal: normalise
      int e = -1;
      do {
        e++;
        mant <<= 1;
      } while ((mant & 0x400) == 0);
      u = sign | uint32_t(127 - 15 - e) << 23 | (mant & 0x3ff) << 13;
    }
  } else if (exp == 31) {
    u = sign | 0x7f800000u | mant << 13;
  } else {
    u = sign | (exp + 127 - 15) << 23 | mant << 13;
  }
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

uint16_t f32_to_f16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  uint32_t sign = (u >> 16) & 0x8000;
  uint32_t absu = u & 0x7fffffff;
  if (absu > 0x7f800000u) return uint16_t(sign | 0x7e00);   // NaN
  if (absu >= 0x477ff000u) return uint16_t(sign | 0x7c00);  // rounds to >= 65520 -> inf
  if (absu < 0x38800000u) {                                 // result is subnormal (or zero) in f16
    if (absu < 0x33000000u) return uint16_t(sign);          // < 2^-25 rounds to zero
    uint32_t exp = absu >> 23;
    uint32_t mant = (absu & 0x7fffff) | 0x800000;
    uint32_t shift = 126 - exp;  // value = mant * 2^(exp-150); f16 subnormal unit is 2^-24
    uint32_t half = mant >> shift;
    uint32_t rem = mant & ((1u << shift) - 1);
    uint32_t halfway = 1u << (shift - 1);
    if (rem > halfway || (rem == halfway && (half & 1))) half++;
    return uint16_t(sign | half);
  }
  uint32_t h = ((absu >> 13) - (112u << 10));  // rebias exponent 127 -> 15
  uint32_t rem = absu & 0x1fff;
  if (rem > 0x1000 || (rem == 0x1000 && (h & 1))) h++;  // may carry into exponent: still correct
  return uint16_t(sign | h);
}

void convert_elements(void* dst, DType dt, const void* src, DType st, size_t n) {
  SEC_ASSERT(!dtype_is_packed(dt) && !dtype_is_packed(st));
  if (dt == st) {
    std::memcpy(dst, src, n * dtype_size(dt));
    return;
  }
  auto load = [&](size_t i) -> float {
    switch (st) {
      case DType::F32:
        return static_cast<const float*>(src)[i];
      case DType::F16:
        return f16_to_f32(static_cast<const uint16_t*>(src)[i]);
      case DType::BF16:
        return bf16_to_f32(static_cast<const uint16_t*>(src)[i]);
      case DType::F32_SPARSE:
        break;
    }
    return 0.f;
  };
  for (size_t i = 0; i < n; i++) {
    float v = load(i);
    switch (dt) {
      case DType::F32:
        static_cast<float*>(dst)[i] = v;
        break;
      case DType::F16:
        static_cast<uint16_t*>(dst)[i] = f32_to_f16(v);
        break;
      case DType::BF16:
        static_cast<uint16_t*>(dst)[i] = f32_to_bf16(v);
        break;
      case DType::F32_SPARSE:
        break;
    }
  }
}

}  // namespace sec
