#include "train/optimizer.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/error.h"
#include "core/threads.h"

namespace sec {

std::vector<uint8_t> zero_mask(const Tensor& value) {
  const float* p = value.f32();
  const int64_t n = value.numel();
  bool any = false;
  for (int64_t i = 0; i < n && !any; i++) any = p[i] == 0.f;
  if (!any) return {};
  std::vector<uint8_t> keep(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; i++) keep[i] = p[i] != 0.f;
  return keep;
}

AdamW::AdamW(const std::vector<Param>& params, const AdamWOptions& opts) : o_(opts) {
  for (const auto& p : params) {
    m_.push_back(Tensor::zeros(p.value.shape()));
    v_.push_back(Tensor::zeros(p.value.shape()));
  }
}

void AdamW::step(std::vector<Param>& params, float lr) {
  SEC_ASSERT(params.size() == m_.size());
  t_++;
  const double bc1 = 1.0 - std::pow(double(o_.beta1), double(t_)), bc2 = 1.0 - std::pow(double(o_.beta2), double(t_));
  const float b1 = o_.beta1, b2 = o_.beta2, eps = o_.eps;
  for (size_t k = 0; k < params.size(); k++) {
    Param& p = params[k];
    float* w = p.value.f32();
    const float* g = p.grad.f32();
    float* m = m_[k].f32();
    float* v = v_[k].f32();
    const uint8_t* keep = p.keep.empty() ? nullptr : p.keep.data();
    const float decay = p.decay ? 1.f - lr * o_.weight_decay : 1.f;
    const float step = float(lr / bc1), inv_bc2 = float(1.0 / bc2);
    const int64_t n = p.value.numel();
    parallel_ranges(n, 1.0, 16384.0, [&](int64_t i0, int64_t i1) {
#pragma omp simd
      for (int64_t i = i0; i < i1; i++) {
        if (keep && !keep[i]) {
          w[i] = 0.f;
          continue;
        }
        m[i] = b1 * m[i] + (1.f - b1) * g[i];
        v[i] = b2 * v[i] + (1.f - b2) * g[i] * g[i];
        w[i] = w[i] * decay - step * m[i] / (std::sqrt(v[i] * inv_bc2) + eps);
      }
    });
  }
}

void zero_grads(std::vector<Param>& params) {
  for (auto& p : params) std::memset(p.grad.raw(), 0, p.grad.nbytes());
}

double clip_grad_norm(std::vector<Param>& params, double max_norm) {
  double ss = 0;
  for (auto& p : params) {
    const float* g = p.grad.f32();
    const uint8_t* keep = p.keep.empty() ? nullptr : p.keep.data();
    const int64_t n = p.grad.numel();
    ss += parallel_sum<double>(n, 1.0, 32768.0, [&](int64_t i0, int64_t i1) {
      double s = 0;
      for (int64_t i = i0; i < i1; i++)
        if (!keep || keep[i]) s += double(g[i]) * g[i];
      return s;
    });
  }
  const double norm = std::sqrt(ss);
  if (max_norm > 0 && norm > max_norm) {
    const float k = float(max_norm / (norm + 1e-6));
    for (auto& p : params) {
      float* g = p.grad.f32();
      const int64_t n = p.grad.numel();
      parallel_ranges(n, 1.0, 32768.0, [&](int64_t i0, int64_t i1) {
#pragma omp simd
        for (int64_t i = i0; i < i1; i++) g[i] *= k;
      });
    }
  }
  return norm;
}

float lr_at(int64_t step, int64_t total, int64_t warmup, float lr, float min_lr) {
  if (warmup > 0 && step < warmup) return lr * float(step + 1) / float(warmup);
  const int64_t span = std::max<int64_t>(1, total - warmup);
  const double progress = std::min(1.0, double(step - warmup) / double(span));
  return float(min_lr + 0.5 * (lr - min_lr) * (1.0 + std::cos(M_PI * progress)));
}

}  // namespace sec
