// AdamW (decoupled weight decay, bias correction), warmup + cosine learning-rate schedule and
// global-norm gradient clipping over a list of trainable parameters.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace sec {

// One trainable tensor, its gradient buffer and an optional sparsity mask: where keep[i] == 0 the
// value is forced to stay 0 (pruned weights of a full fine-tune) and its gradient is ignored.
struct Param {
  std::string name;
  Tensor value;               // f32, updated in place (shares the model's / adapter's buffer)
  Tensor grad;                // f32, same shape
  std::vector<uint8_t> keep;  // empty: no mask
  bool decay = true;          // apply weight decay (false for norms)
};

// keep[i] = value[i] != 0 when the tensor has at least one exact zero; else empty (no mask).
std::vector<uint8_t> zero_mask(const Tensor& value);

struct AdamWOptions {
  float beta1 = 0.9f, beta2 = 0.999f, eps = 1e-8f, weight_decay = 0.f;
};

// PyTorch's AdamW: p -= lr * wd * p; m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2;
// p -= lr * (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps), t = 1, 2, ...
class AdamW {
 public:
  AdamW(const std::vector<Param>& params, const AdamWOptions& opts);
  void step(std::vector<Param>& params, float lr);
  int64_t t() const { return t_; }
  void set_t(int64_t t) { t_ = t; }
  std::vector<Tensor>& m() { return m_; }
  std::vector<Tensor>& v() { return v_; }

 private:
  AdamWOptions o_;
  int64_t t_ = 0;
  std::vector<Tensor> m_, v_;
};

void zero_grads(std::vector<Param>& params);

// Scales all gradients by max_norm / norm when their global L2 norm exceeds max_norm (> 0).
// Returns the norm before clipping.
double clip_grad_norm(std::vector<Param>& params, double max_norm);

// Linear warmup from lr/warmup to lr over `warmup` steps, then cosine decay to min_lr at `total`.
// step is 0-based.
float lr_at(int64_t step, int64_t total, int64_t warmup, float lr, float min_lr);

}  // namespace sec
