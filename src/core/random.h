// Deterministic random numbers (same sequence on every machine and compiler, unlike <random>'s
// distributions): SplitMix64 for seeding, xoshiro256** for the stream.
#pragma once
#include <cstdint>

namespace sec {

class Rng {
 public:
  explicit Rng(uint64_t seed = 0);
  uint64_t next_u64();
  double uniform();                                 // [0, 1)
  uint64_t below(uint64_t n);                       // uniform integer in [0, n), n > 0
  float normal(float mean = 0.f, float std = 1.f);  // Box-Muller
 private:
  uint64_t s_[4];
  bool has_spare_ = false;
  double spare_ = 0;
};

}  // namespace sec
