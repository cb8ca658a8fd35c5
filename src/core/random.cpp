#include "core/random.h"

#include <cmath>

#include "core/error.h"

namespace sec {

static uint64_t splitmix64(uint64_t& x) {
  uint64_t z = (x += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

Rng::Rng(uint64_t seed) {
  for (auto& s : s_) s = splitmix64(seed);
}

uint64_t Rng::next_u64() {
  uint64_t result = rotl(s_[1] * 5, 7) * 9;
  uint64_t t = s_[1] << 17;
  s_[2] ^= s_[0];
  s_[3] ^= s_[1];
  s_[1] ^= s_[2];
  s_[0] ^= s_[3];
  s_[2] ^= t;
  s_[3] = rotl(s_[3], 45);
  return result;
}

double Rng::uniform() { return double(next_u64() >> 11) * 0x1.0p-53; }

uint64_t Rng::below(uint64_t n) {
  SEC_ASSERT(n > 0);
  uint64_t limit = UINT64_MAX - UINT64_MAX % n;  // reject the tail to stay unbiased
  uint64_t x;
  do x = next_u64();
  while (x >= limit);
  return x % n;
}

float Rng::normal(float mean, float std) {
  if (has_spare_) {
    has_spare_ = false;
    return float(mean + std * spare_);
  }
  double u1, u2;
  do u1 = uniform();
  while (u1 <= 0.0);
  u2 = uniform();
  double r = std::sqrt(-2.0 * std::log(u1));
  spare_ = r * std::sin(2 * M_PI * u2);
  has_spare_ = true;
  return float(mean + std * r * std::cos(2 * M_PI * u2));
}

}  // namespace sec
