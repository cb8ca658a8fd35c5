// SwiGLU: silu(gate) * up.
#include <cmath>

#include "ops/ops.h"

namespace sec {

void swiglu_forward(float* out, const float* gate, const float* up, int64_t N) {
#pragma omp parallel for simd
  for (int64_t i = 0; i < N; i++) {
    float g = gate[i];
    out[i] = g / (1.f + std::exp(-g)) * up[i];
  }
}

void swiglu_forward_ref(float* out, const float* gate, const float* up, int64_t N) {
  for (int64_t i = 0; i < N; i++) {
    double g = gate[i];
    out[i] = float(g / (1.0 + std::exp(-g)) * up[i]);
  }
}

}  // namespace sec
