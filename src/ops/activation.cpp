// SwiGLU: silu(gate) * up.
#include <cmath>

#include "core/threads.h"
#include "ops/ops.h"

namespace sec {

void swiglu_forward(float* out, const float* gate, const float* up, int64_t N) {
  parallel_ranges(N, 1.0, double(kParallelMinWork), [&](int64_t i0, int64_t i1) {
#pragma omp simd
    for (int64_t i = i0; i < i1; i++) {
      float g = gate[i];
      out[i] = g / (1.f + std::exp(-g)) * up[i];
    }
  });
}

void swiglu_forward_ref(float* out, const float* gate, const float* up, int64_t N) {
  for (int64_t i = 0; i < N; i++) {
    double g = gate[i];
    out[i] = float(g / (1.0 + std::exp(-g)) * up[i]);
  }
}

// silu(g) = g s(g), s = sigmoid; silu'(g) = s(g) (1 + g (1 - s(g)))
void swiglu_backward(float* dgate, float* dup, const float* dout, const float* gate, const float* up, int64_t N) {
  parallel_ranges(N, 1.0, double(kParallelMinWork), [&](int64_t i0, int64_t i1) {
#pragma omp simd
    for (int64_t i = i0; i < i1; i++) {
      float g = gate[i], sig = 1.f / (1.f + std::exp(-g));
      dgate[i] += dout[i] * up[i] * sig * (1.f + g * (1.f - sig));
      dup[i] += dout[i] * g * sig;
    }
  });
}

void swiglu_backward_ref(float* dgate, float* dup, const float* dout, const float* gate, const float* up, int64_t N) {
  for (int64_t i = 0; i < N; i++) {
    double g = gate[i], sig = 1.0 / (1.0 + std::exp(-g));
    dgate[i] += float(double(dout[i]) * up[i] * sig * (1.0 + g * (1.0 - sig)));
    dup[i] += float(double(dout[i]) * g * sig);
  }
}

}  // namespace sec
