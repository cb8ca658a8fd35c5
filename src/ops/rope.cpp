// Rotary position embedding, rotate-half layout (see model/weights.h for the layout convention).
#include <cmath>
#include <vector>

#include "core/threads.h"
#include "ops/ops.h"

namespace sec {

// Angles are computed in double so that long positions lose no precision (the PyTorch reference
// does the same).
void rope_forward(float* x, const float* inv_freq, int64_t B, int64_t T, int64_t H, int64_t hd, int64_t pos0) {
  const int64_t half = hd / 2;
  parallel_ranges(T, double(B * H * hd), double(kParallelMinWork), [&](int64_t t0, int64_t t1) {
    std::vector<float> cos_t(half), sin_t(half);
    for (int64_t t = t0; t < t1; t++) {
      for (int64_t i = 0; i < half; i++) {
        double a = double(pos0 + t) * double(inv_freq[i]);
        cos_t[i] = float(std::cos(a));
        sin_t[i] = float(std::sin(a));
      }
      for (int64_t b = 0; b < B; b++)
        for (int64_t h = 0; h < H; h++) {
          float* v = x + ((b * T + t) * H + h) * hd;
#pragma omp simd
          for (int64_t i = 0; i < half; i++) {
            float x0 = v[i], x1 = v[i + half];
            v[i] = x0 * cos_t[i] - x1 * sin_t[i];
            v[i + half] = x0 * sin_t[i] + x1 * cos_t[i];
          }
        }
    }
  });
}

void rope_forward_ref(float* x, const float* inv_freq, int64_t B, int64_t T, int64_t H, int64_t hd, int64_t pos0) {
  const int64_t half = hd / 2;
  for (int64_t b = 0; b < B; b++)
    for (int64_t t = 0; t < T; t++)
      for (int64_t h = 0; h < H; h++)
        for (int64_t i = 0; i < half; i++) {
          float* v = x + ((b * T + t) * H + h) * hd;
          double a = double(pos0 + t) * double(inv_freq[i]);
          double x0 = v[i], x1 = v[i + half];
          v[i] = float(x0 * std::cos(a) - x1 * std::sin(a));
          v[i + half] = float(x0 * std::sin(a) + x1 * std::cos(a));
        }
}

// Forward: (y0, y1) = R(a) (x0, x1). Backward: (dx0, dx1) = R(a)^T (dy0, dy1) = R(-a) (dy0, dy1).
void rope_backward(float* dx, const float* inv_freq, int64_t B, int64_t T, int64_t H, int64_t hd, int64_t pos0) {
  const int64_t half = hd / 2;
  parallel_ranges(T, double(B * H * hd), double(kParallelMinWork), [&](int64_t t0, int64_t t1) {
    std::vector<float> cos_t(half), sin_t(half);
    for (int64_t t = t0; t < t1; t++) {
      for (int64_t i = 0; i < half; i++) {
        double a = double(pos0 + t) * double(inv_freq[i]);
        cos_t[i] = float(std::cos(a));
        sin_t[i] = float(std::sin(a));
      }
      for (int64_t b = 0; b < B; b++)
        for (int64_t h = 0; h < H; h++) {
          float* v = dx + ((b * T + t) * H + h) * hd;
#pragma omp simd
          for (int64_t i = 0; i < half; i++) {
            float d0 = v[i], d1 = v[i + half];
            v[i] = d0 * cos_t[i] + d1 * sin_t[i];
            v[i + half] = -d0 * sin_t[i] + d1 * cos_t[i];
          }
        }
    }
  });
}

void rope_backward_ref(float* dx, const float* inv_freq, int64_t B, int64_t T, int64_t H, int64_t hd, int64_t pos0) {
  const int64_t half = hd / 2;
  for (int64_t b = 0; b < B; b++)
    for (int64_t t = 0; t < T; t++)
      for (int64_t h = 0; h < H; h++)
        for (int64_t i = 0; i < half; i++) {
          float* v = dx + ((b * T + t) * H + h) * hd;
          double a = double(pos0 + t) * double(inv_freq[i]);
          double d0 = v[i], d1 = v[i + half];
          v[i] = float(d0 * std::cos(a) + d1 * std::sin(a));
          v[i + half] = float(-d0 * std::sin(a) + d1 * std::cos(a));
        }
}

}  // namespace sec
