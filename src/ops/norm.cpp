// RMSNorm.
#include <cmath>

#include "core/threads.h"
#include "ops/ops.h"

namespace sec {

void rmsnorm_forward(float* out, float* rstd, const float* inp, const float* weight, int64_t N, int64_t C, float eps,
                     int64_t mean_dim) {
  const double D = double(mean_dim > 0 ? mean_dim : C);
  parallel_ranges(N, double(C), double(kParallelMinWork), [&](int64_t n0, int64_t n1) {
    for (int64_t n = n0; n < n1; n++) {
      const float* x = inp + n * C;
      float* y = out + n * C;
      double ss = 0;  // accumulate in double: hidden states can be large
#pragma omp simd reduction(+ : ss)
      for (int64_t i = 0; i < C; i++) ss += double(x[i]) * x[i];
      float r = float(1.0 / std::sqrt(ss / D + eps));
#pragma omp simd
      for (int64_t i = 0; i < C; i++) y[i] = x[i] * r * weight[i];
      if (rstd) rstd[n] = r;
    }
  });
}

void rmsnorm_forward_ref(float* out, float* rstd, const float* inp, const float* weight, int64_t N, int64_t C,
                         float eps, int64_t mean_dim) {
  const double D = double(mean_dim > 0 ? mean_dim : C);
  for (int64_t n = 0; n < N; n++) {
    double ss = 0;
    for (int64_t i = 0; i < C; i++) ss += double(inp[n * C + i]) * inp[n * C + i];
    double r = 1.0 / std::sqrt(ss / D + eps);
    for (int64_t i = 0; i < C; i++) out[n * C + i] = float(inp[n * C + i] * r * weight[i]);
    if (rstd) rstd[n] = float(r);
  }
}

// y_i = x_i r w_i, r = (sum(x^2) / D + eps)^-1/2 (D = mean_dim, or C):
//   dw_i += dy_i x_i r;   dx_i += r w_i dy_i - x_i r^3 / D * sum_j dy_j w_j x_j
void rmsnorm_backward(float* dinp, float* dweight, const float* dout, const float* inp, const float* weight,
                      const float* rstd, int64_t N, int64_t C, int64_t mean_dim) {
  const double D = double(mean_dim > 0 ? mean_dim : C);
  parallel_ranges(N, double(C), double(kParallelMinWork), [&](int64_t n0, int64_t n1) {
    for (int64_t n = n0; n < n1; n++) {
      const float* x = inp + n * C;
      const float* dy = dout + n * C;
      float* dx = dinp + n * C;
      const float r = rstd[n];
      double dot = 0;
#pragma omp simd reduction(+ : dot)
      for (int64_t i = 0; i < C; i++) dot += double(dy[i]) * weight[i] * x[i];
      const float k = float(dot * double(r) * r * r / D);
#pragma omp simd
      for (int64_t i = 0; i < C; i++) dx[i] += r * weight[i] * dy[i] - x[i] * k;
    }
  });
  if (dweight) {
    // Reduction over rows: parallel over columns.
    parallel_ranges(C, double(N), double(kParallelMinWork), [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; i++) {
        float acc = 0;
        for (int64_t n = 0; n < N; n++) acc += dout[n * C + i] * inp[n * C + i] * rstd[n];
        dweight[i] += acc;
      }
    });
  }
}

void rmsnorm_backward_ref(float* dinp, float* dweight, const float* dout, const float* inp, const float* weight,
                          const float* rstd, int64_t N, int64_t C, int64_t mean_dim) {
  const double D = double(mean_dim > 0 ? mean_dim : C);
  for (int64_t n = 0; n < N; n++) {
    double r = rstd[n], dot = 0;
    for (int64_t i = 0; i < C; i++) dot += double(dout[n * C + i]) * weight[i] * inp[n * C + i];
    for (int64_t i = 0; i < C; i++) {
      dinp[n * C + i] += float(r * weight[i] * dout[n * C + i] - inp[n * C + i] * r * r * r * dot / D);
      if (dweight) dweight[i] += float(double(dout[n * C + i]) * inp[n * C + i] * r);
    }
  }
}

}  // namespace sec
