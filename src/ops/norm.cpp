// RMSNorm.
#include <cmath>

#include "ops/ops.h"

namespace sec {

void rmsnorm_forward(float* out, float* rstd, const float* inp, const float* weight, int64_t N, int64_t C, float eps) {
#pragma omp parallel for
  for (int64_t n = 0; n < N; n++) {
    const float* x = inp + n * C;
    float* y = out + n * C;
    double ss = 0;  // accumulate in double: hidden states can be large
#pragma omp simd reduction(+ : ss)
    for (int64_t i = 0; i < C; i++) ss += double(x[i]) * x[i];
    float r = float(1.0 / std::sqrt(ss / double(C) + eps));
#pragma omp simd
    for (int64_t i = 0; i < C; i++) y[i] = x[i] * r * weight[i];
    if (rstd) rstd[n] = r;
  }
}

void rmsnorm_forward_ref(float* out, float* rstd, const float* inp, const float* weight, int64_t N, int64_t C,
                         float eps) {
  for (int64_t n = 0; n < N; n++) {
    double ss = 0;
    for (int64_t i = 0; i < C; i++) ss += double(inp[n * C + i]) * inp[n * C + i];
    double r = 1.0 / std::sqrt(ss / double(C) + eps);
    for (int64_t i = 0; i < C; i++) out[n * C + i] = float(inp[n * C + i] * r * weight[i]);
    if (rstd) rstd[n] = float(r);
  }
}

}  // namespace sec
