#include "model/train_forward.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/error.h"
#include "core/threads.h"
#include "model/forward.h"
#include "ops/ops.h"

namespace sec {

int64_t Batch::n_targets() const {
  int64_t n = 0;
  for (int32_t t : targets) n += t >= 0;
  return n;
}

Batch Batch::from_windows(const std::vector<int32_t>& windows, int64_t B, int64_t T) {
  SEC_ASSERT(int64_t(windows.size()) == B * (T + 1));
  Batch b;
  b.B = B;
  b.T = T;
  b.tokens.resize(size_t(B * T));
  b.targets.resize(size_t(B * T));
  for (int64_t i = 0; i < B; i++)
    for (int64_t t = 0; t < T; t++) {
      b.tokens[i * T + t] = windows[i * (T + 1) + t];
      b.targets[i * T + t] = windows[i * (T + 1) + t + 1];
    }
  return b;
}

HiddenLoss parse_hidden_loss(const std::string& s) {
  if (s == "none" || s.empty()) return HiddenLoss::None;
  if (s == "cosine") return HiddenLoss::Cosine;
  if (s == "mse") return HiddenLoss::Mse;
  fail("unknown hidden-state loss '", s, "' (expected none, cosine or mse)");
}

namespace {

using Buf = std::vector<float>;
float* zeroed(Buf& v, int64_t n) {
  if (int64_t(v.size()) < n) v.resize(size_t(n));
  std::memset(v.data(), 0, size_t(n) * sizeof(float));
  return v.data();
}

// Hidden-state loss of one block output s against teacher t over the rows with a target; adds its
// gradient (times `scale`) into ds when not null. Returns the loss (already divided by `denom`).
double hidden_loss(HiddenLoss kind, const float* s, const float* t, const int32_t* targets, int64_t N, int64_t C,
                   double denom, float scale, float* ds) {
  return parallel_sum<double>(N, double(C), double(kParallelMinWork), [&](int64_t n0, int64_t n1) {
    double part = 0;
    for (int64_t n = n0; n < n1; n++) {
      if (targets[n] < 0) continue;
      const float* sv = s + n * C;
      const float* tv = t + n * C;
      if (kind == HiddenLoss::Mse) {
        double acc = 0;
        for (int64_t i = 0; i < C; i++) acc += double(sv[i] - tv[i]) * (sv[i] - tv[i]);
        part += acc / (double(C) * denom);
        if (ds) {
          const float k = float(2.0 / (double(C) * denom)) * scale;
          for (int64_t i = 0; i < C; i++) ds[n * C + i] += k * (sv[i] - tv[i]);
        }
      } else {
        double st = 0, ss = 0, tt = 0;
        for (int64_t i = 0; i < C; i++) {
          st += double(sv[i]) * tv[i];
          ss += double(sv[i]) * sv[i];
          tt += double(tv[i]) * tv[i];
        }
        const double ns = std::sqrt(ss) + 1e-12, nt = std::sqrt(tt) + 1e-12, cosv = st / (ns * nt);
        part += (1.0 - cosv) / denom;
        if (ds) {
          // d(1 - cos)/ds = -(t / (|s||t|) - cos * s / |s|^2)
          const double k = double(scale) / denom;
          for (int64_t i = 0; i < C; i++) ds[n * C + i] += float(-k * (tv[i] / (ns * nt) - cosv * sv[i] / (ns * ns)));
        }
      }
    }
    return part;
  });
}

LossValue run(const Model& m, const Batch& batch, const LossSpec& loss, Weights* grads, LinearDelta* delta,
              const TrainOptions& opts, bool backward) {
  const Config& c = m.config;
  const int64_t B = batch.B, T = batch.T, N = B * T, V = c.vocab_size, L = c.n_layers();
  SEC_CHECK(B > 0 && T > 0, "empty training batch");
  SEC_ASSERT(int64_t(batch.tokens.size()) == N && int64_t(batch.targets.size()) == N);
  for (int64_t n = 0; n < N; n++)
    SEC_CHECK(batch.targets[n] < V, "target token id ", batch.targets[n], " is outside the vocabulary (size ", V, ")");
  const bool use_hidden = loss.hidden != HiddenLoss::None && loss.hidden_weight != 0.f && !loss.teacher_hidden.empty();
  if (use_hidden) SEC_ASSERT(int64_t(loss.teacher_hidden.size()) == L);
  auto projection = [&](int l) -> const Tensor* {
    return use_hidden && size_t(l) < loss.hidden_proj.size() ? loss.hidden_proj[size_t(l)] : nullptr;
  };
  LossValue out;
  out.count = batch.n_targets();
  const double denom = loss.denominator > 0 ? loss.denominator : double(std::max<int64_t>(out.count, 1));

  // Forward, block by block: x holds the stream entering the current block. Training keeps every
  // block's activations, or with recompute only its input (the block runs again before its backward).
  const bool keep_all = backward && !opts.recompute;
  std::vector<BlockActs> acts(keep_all ? size_t(L) : 1);
  std::vector<Buf> block_inputs(backward && opts.recompute ? size_t(L) : 0);
  // Per block with a hidden-state loss: d(unweighted hidden loss)/d(compared state), and with a
  // projection the block output it projected (for the projection's gradient).
  std::vector<Buf> dhidden(use_hidden && backward ? size_t(L) : 0), projected_from(dhidden.size());
  BlockPass pass;  // the backward's (re)computation keeps activations
  pass.delta = delta;
  pass.save = true;
  BlockPass first = pass;  // the first forward keeps them only when there is no recomputation
  first.save = keep_all;
  Buf x(size_t(N * c.embed_dim())), next;
  embed_tokens(m, batch.tokens.data(), N, x.data());
  for (int l = 0; l < L; l++) {
    if (!block_inputs.empty()) block_inputs[size_t(l)] = x;
    next.resize(size_t(N * c.block_out(l)));
    block_forward(m, l, x.data(), next.data(), B, T, acts[keep_all ? size_t(l) : 0], first);
    x.swap(next);
    if (use_hidden && loss.teacher_hidden[size_t(l)]) {
      const Tensor* P = projection(l);
      const int64_t Ct = P ? P->dim(0) : c.block_out(l);
      Buf p;
      if (P) {
        p.resize(size_t(N * Ct));
        linear_forward(p.data(), x.data(), *P, nullptr, N);
        if (backward) projected_from[size_t(l)] = x;
      }
      float* ds = backward ? zeroed(dhidden[size_t(l)], N * Ct) : nullptr;
      out.hidden += hidden_loss(loss.hidden, P ? p.data() : x.data(), loss.teacher_hidden[size_t(l)],
                                batch.targets.data(), N, Ct, denom, 1.f, ds);
    }
  }
  // Head: final norm + LM head.
  const int64_t C = c.final_dim();
  Buf nf(static_cast<size_t>(N * C)), rstdf(static_cast<size_t>(N)), logits(static_cast<size_t>(N * V));
  rmsnorm_forward(nf.data(), rstdf.data(), x.data(), m.weights.final_norm.f32(), N, C, c.norm_eps, c.norm_mean_dim);
  linear_forward(logits.data(), nf.data(), m.weights.head(), nullptr, N);

  // Loss and d(loss)/d(logits).
  Buf per_row(static_cast<size_t>(N)), dper_row(size_t(N), 0.f);
  const int32_t* tg = batch.targets.data();
  if (loss.teacher_logits) {
    const float t2 = loss.kd_temp * loss.kd_temp;
    kl_div_forward(per_row.data(), loss.teacher_logits, logits.data(), N, V, loss.kd_temp);
    for (int64_t n = 0; n < N; n++)
      if (tg[n] >= 0) {
        out.main += double(t2) * per_row[n] / denom;
        dper_row[n] = float(double(t2) / denom);
      }
  } else {
    cross_entropy_forward(per_row.data(), logits.data(), tg, N, V);
    for (int64_t n = 0; n < N; n++)
      if (tg[n] >= 0) {
        out.main += per_row[n] / denom;
        dper_row[n] = float(1.0 / denom);
      }
  }
  double hidden_weight = loss.hidden_weight;
  if (use_hidden && loss.hidden_balance && out.hidden > 0) hidden_weight *= out.main / out.hidden;
  out.total = out.main + hidden_weight * out.hidden;
  if (!backward) return out;

  Buf dlogits(size_t(N * V), 0.f);
  if (loss.teacher_logits)
    kl_div_backward(dlogits.data(), dper_row.data(), loss.teacher_logits, logits.data(), N, V, loss.kd_temp);
  else
    cross_entropy_backward(dlogits.data(), dper_row.data(), logits.data(), tg, N, V);
  logits = Buf();
  Buf dnf(size_t(N * C), 0.f), dx(size_t(N * C), 0.f), dprev;
  auto grad = [&](Tensor& t) { return grads && t.defined() ? t.f32() : nullptr; };  // undefined: frozen
  float* dhead = grads ? grad(c.tied_embeddings ? grads->embed : grads->lm_head) : nullptr;
  linear_backward(dnf.data(), dhead, nullptr, dlogits.data(), nf.data(), m.weights.head(), N);
  dlogits = Buf();
  rmsnorm_backward(dx.data(), grads ? grad(grads->final_norm) : nullptr, dnf.data(), x.data(),
                   m.weights.final_norm.f32(), rstdf.data(), N, C, c.norm_mean_dim);
  for (int l = int(L) - 1; l >= 0; l--) {
    if (!dhidden.empty() && !dhidden[size_t(l)].empty()) {
      Buf& dh = dhidden[size_t(l)];
      for (float& v : dh) v *= float(hidden_weight);
      if (const Tensor* P = projection(l)) {  // ds = dp . P, dP += dp^T . s
        Tensor* dP = size_t(l) < loss.hidden_proj_grad.size() ? loss.hidden_proj_grad[size_t(l)] : nullptr;
        linear_backward(dx.data(), dP ? dP->f32() : nullptr, nullptr, dh.data(), projected_from[size_t(l)].data(), *P,
                        N);
      } else {
        add_inplace(dx.data(), dh.data(), N * c.block_out(l));
      }
    }
    if (opts.recompute) {
      next.resize(size_t(N * c.block_out(l)));
      block_forward(m, l, block_inputs[size_t(l)].data(), next.data(), B, T, acts[0], pass);
      block_inputs[size_t(l)] = Buf();
    }
    zeroed(dprev, N * c.block_in(l));
    block_backward(m, l, dx.data(), dprev.data(), B, T, acts[keep_all ? size_t(l) : 0], grads, delta);
    dx.swap(dprev);
    if (keep_all) acts[size_t(l)] = BlockActs();  // free as we go
  }
  if (grads && grads->embed.defined())
    embedding_backward(grads->embed.f32(), dx.data(), batch.tokens.data(), N, c.embed_dim());
  return out;
}

}  // namespace

LossValue forward_backward(const Model& m, const Batch& batch, const LossSpec& loss, Weights* grads, LinearDelta* delta,
                           const TrainOptions& opts) {
  if (grads) SEC_ASSERT(int(grads->blocks.size()) == m.config.n_layers());
  return run(m, batch, loss, grads, delta, opts, true);
}

LossValue forward_loss(const Model& m, const Batch& batch, const LossSpec& loss, LinearDelta* delta) {
  return run(m, batch, loss, nullptr, delta, {}, false);
}

Weights compute_gradients(const Model& m, const Batch& batch, const TrainOptions& opts) {
  Weights g = allocate_weights(m.config);
  forward_backward(m, batch, LossSpec{}, &g, nullptr, opts);
  return g;
}

void accumulate_squared_gradients(const Model& m, const Batch& batch, Weights& sq_sum, Weights* sum,
                                  const TrainOptions& opts) {
  for (int64_t b = 0; b < batch.B; b++) {
    Batch one;
    one.B = 1;
    one.T = batch.T;
    one.tokens.assign(batch.tokens.begin() + b * batch.T, batch.tokens.begin() + (b + 1) * batch.T);
    one.targets.assign(batch.targets.begin() + b * batch.T, batch.targets.begin() + (b + 1) * batch.T);
    if (one.n_targets() == 0) continue;
    Weights g = zeros_like(m.config, sq_sum);  // only the tensors sq_sum asks for
    forward_backward(m, one, LossSpec{}, &g, nullptr, opts);
    std::vector<Tensor*> gs, sqs, sums;
    for_each_tensor(m.config, g, [&](TensorRef& r) { gs.push_back(&r.tensor); });
    for_each_tensor(m.config, sq_sum, [&](TensorRef& r) { sqs.push_back(&r.tensor); });
    if (sum) for_each_tensor(m.config, *sum, [&](TensorRef& r) { sums.push_back(&r.tensor); });
    for (size_t i = 0; i < gs.size(); i++) {
      if (!gs[i]->defined()) continue;
      const float* gp = gs[i]->f32();
      float* sp = sqs[i]->f32();
      float* up = sum ? sums[i]->f32() : nullptr;
      const int64_t n = gs[i]->numel();
      parallel_ranges(n, 1.0, double(kParallelMinWork), [&](int64_t j0, int64_t j1) {
#pragma omp simd
        for (int64_t j = j0; j < j1; j++) {
          sp[j] += gp[j] * gp[j];
          if (up) up[j] += gp[j];
        }
      });
    }
  }
}

namespace {
struct BlockOutputTap : Tap {
  std::vector<Tensor>* out;
  bool wants(TapPoint p, int) const override { return p == TapPoint::BlockOutput; }
  void observe(TapPoint, int layer, const TapData& d) override {
    Tensor t = Tensor::empty({d.rows(), d.cols});
    std::memcpy(t.f32(), d.data, size_t(d.rows() * d.cols) * 4);
    (*out)[size_t(layer)] = t;
  }
};
}  // namespace

std::vector<Tensor> hidden_states(const Model& m, const int32_t* tokens, int64_t B, int64_t T, float* logits) {
  std::vector<Tensor> out(size_t(m.config.n_layers()));
  BlockOutputTap tap;
  tap.out = &out;
  std::vector<float> scratch;
  if (!logits) scratch.resize(size_t(B * T * m.config.vocab_size));
  model_forward(m, tokens, B, T, logits ? logits : scratch.data(), nullptr, &tap);
  return out;
}

}  // namespace sec
