#include "model/train_forward.h"

#include <cmath>
#include <cstring>

#include "core/error.h"
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
float* need(Buf& v, int64_t n) {
  if (int64_t(v.size()) < n) v.resize(size_t(n));
  return v.data();
}
float* zeroed(Buf& v, int64_t n) {
  float* p = need(v, n);
  std::memset(p, 0, size_t(n) * sizeof(float));
  return p;
}
const float* opt(const Tensor& t) { return t.defined() ? t.f32() : nullptr; }
float* opt_grad(Weights* g, Tensor BlockWeights::*member, int layer) {
  if (!g) return nullptr;
  Tensor& t = g->blocks[layer].*member;
  return t.defined() ? t.f32() : nullptr;
}

// Everything one block's backward needs from its forward.
struct BlockActs {
  Buf x_in;       // (N, C) block input
  Buf n1, rstd1;  // (N, C), (N)
  Buf q, k, v;    // (N, q_dim) after RoPE, (N, kv_dim) after RoPE, (N, kv_dim)
  Buf att;        // (B, Hq, T, T) probabilities
  Buf att_out;    // (N, q_dim)
  Buf x_mid;      // (N, C) after the attention residual
  Buf n2, rstd2;  // (N, C), (N)
  Buf gate, up;   // (N, F)
  Buf hidden;     // (N, F)
};

struct Engine {
  const Model& m;
  LinearDelta* delta;
  int64_t B, T, N;
  std::vector<float> inv_freq;
  Buf proj;  // scratch

  Engine(const Model& model, LinearDelta* d, int64_t b, int64_t t)
      : m(model), delta(d), B(b), T(t), N(b * t), inv_freq(rope_inv_freq(model.config)) {}

  void linear_fwd(TensorKind kind, int l, float* out, const float* inp, const Tensor& w, const Tensor& bias, int64_t I,
                  int64_t O) {
    matmul_forward(out, inp, w.f32(), opt(bias), N, I, O);
    if (delta && delta->applies(kind, l)) delta->forward(kind, l, out, inp, N, I, O);
  }
  void linear_bwd(TensorKind kind, int l, float* dinp, float* dw, float* db, const float* dout, const float* inp,
                  const Tensor& w, int64_t I, int64_t O) {
    matmul_backward(dinp, dw, db, dout, inp, w.f32(), N, I, O);
    if (delta && delta->applies(kind, l)) delta->backward(kind, l, dinp, dout, inp, N, I, O);
  }

  // x (N, C): block input -> block output, in place; activations into a.
  void block_fwd(int l, float* x, BlockActs& a) {
    const Config& c = m.config;
    const BlockWeights& w = m.weights.blocks[l];
    const int64_t C = c.dim, hd = c.head_dim, Hq = c.blocks[l].n_heads, Hkv = c.blocks[l].n_kv_heads;
    const int64_t F = c.blocks[l].ffn_dim, qd = Hq * hd, kvd = Hkv * hd;
    std::memcpy(need(a.x_in, N * C), x, size_t(N * C) * 4);
    if (Hq > 0) {
      rmsnorm_forward(need(a.n1, N * C), need(a.rstd1, N), x, w.attn_norm.f32(), N, C, c.norm_eps);
      linear_fwd(TensorKind::Q, l, need(a.q, N * qd), a.n1.data(), w.wq, w.bq, C, qd);
      linear_fwd(TensorKind::K, l, need(a.k, N * kvd), a.n1.data(), w.wk, w.bk, C, kvd);
      linear_fwd(TensorKind::V, l, need(a.v, N * kvd), a.n1.data(), w.wv, w.bv, C, kvd);
      rope_forward(a.q.data(), inv_freq.data(), B, T, Hq, hd, 0);
      rope_forward(a.k.data(), inv_freq.data(), B, T, Hkv, hd, 0);
      attention_forward(need(a.att_out, N * qd), need(a.att, B * Hq * T * T), a.q.data(), a.k.data(), a.v.data(), B, T,
                        T, 0, Hq, Hkv, hd);
      linear_fwd(TensorKind::O, l, need(proj, N * C), a.att_out.data(), w.wo, Tensor(), qd, C);
      add_inplace(x, proj.data(), N * C);
    }
    std::memcpy(need(a.x_mid, N * C), x, size_t(N * C) * 4);
    if (F > 0) {
      rmsnorm_forward(need(a.n2, N * C), need(a.rstd2, N), x, w.ffn_norm.f32(), N, C, c.norm_eps);
      linear_fwd(TensorKind::Gate, l, need(a.gate, N * F), a.n2.data(), w.w_gate, Tensor(), C, F);
      linear_fwd(TensorKind::Up, l, need(a.up, N * F), a.n2.data(), w.w_up, Tensor(), C, F);
      swiglu_forward(need(a.hidden, N * F), a.gate.data(), a.up.data(), N * F);
      linear_fwd(TensorKind::Down, l, need(proj, N * C), a.hidden.data(), w.w_down, Tensor(), F, C);
      add_inplace(x, proj.data(), N * C);
    }
  }

  // dx (N, C): gradient of the block output -> gradient of the block input, in place.
  void block_bwd(int l, float* dx, const BlockActs& a, Weights* g) {
    const Config& c = m.config;
    const BlockWeights& w = m.weights.blocks[l];
    const int64_t C = c.dim, hd = c.head_dim, Hq = c.blocks[l].n_heads, Hkv = c.blocks[l].n_kv_heads;
    const int64_t F = c.blocks[l].ffn_dim, qd = Hq * hd, kvd = Hkv * hd;
    BlockWeights* gw = g ? &g->blocks[l] : nullptr;
    Buf b1, b2, b3, dn;
    if (F > 0) {
      float* dhidden = zeroed(b1, N * F);
      linear_bwd(TensorKind::Down, l, dhidden, opt_grad(g, &BlockWeights::w_down, l), nullptr, dx, a.hidden.data(),
                 w.w_down, F, C);
      float* dgate = zeroed(b2, N * F);
      float* dup = zeroed(b3, N * F);
      swiglu_backward(dgate, dup, dhidden, a.gate.data(), a.up.data(), N * F);
      float* dn2 = zeroed(dn, N * C);
      linear_bwd(TensorKind::Gate, l, dn2, opt_grad(g, &BlockWeights::w_gate, l), nullptr, dgate, a.n2.data(), w.w_gate,
                 C, F);
      linear_bwd(TensorKind::Up, l, dn2, opt_grad(g, &BlockWeights::w_up, l), nullptr, dup, a.n2.data(), w.w_up, C, F);
      rmsnorm_backward(dx, gw ? gw->ffn_norm.f32() : nullptr, dn2, a.x_mid.data(), w.ffn_norm.f32(), a.rstd2.data(), N,
                       C);
    }
    if (Hq > 0) {
      float* datt = zeroed(b1, N * qd);
      linear_bwd(TensorKind::O, l, datt, opt_grad(g, &BlockWeights::wo, l), nullptr, dx, a.att_out.data(), w.wo, qd, C);
      float* dq = zeroed(b2, N * qd);
      Buf b4;
      float* dk = zeroed(b3, N * kvd);
      float* dv = zeroed(b4, N * kvd);
      attention_backward(dq, dk, dv, datt, a.att.data(), a.q.data(), a.k.data(), a.v.data(), B, T, Hq, Hkv, hd);
      rope_backward(dq, inv_freq.data(), B, T, Hq, hd, 0);
      rope_backward(dk, inv_freq.data(), B, T, Hkv, hd, 0);
      float* dn1 = zeroed(dn, N * C);
      linear_bwd(TensorKind::Q, l, dn1, opt_grad(g, &BlockWeights::wq, l), opt_grad(g, &BlockWeights::bq, l), dq,
                 a.n1.data(), w.wq, C, qd);
      linear_bwd(TensorKind::K, l, dn1, opt_grad(g, &BlockWeights::wk, l), opt_grad(g, &BlockWeights::bk, l), dk,
                 a.n1.data(), w.wk, C, kvd);
      linear_bwd(TensorKind::V, l, dn1, opt_grad(g, &BlockWeights::wv, l), opt_grad(g, &BlockWeights::bv, l), dv,
                 a.n1.data(), w.wv, C, kvd);
      rmsnorm_backward(dx, gw ? gw->attn_norm.f32() : nullptr, dn1, a.x_in.data(), w.attn_norm.f32(), a.rstd1.data(), N,
                       C);
    }
  }
};

// Hidden-state loss of one block output s against teacher t over the rows with a target; adds its
// gradient (times `scale`) into ds when not null. Returns the loss (already divided by `denom`).
double hidden_loss(HiddenLoss kind, const float* s, const float* t, const int32_t* targets, int64_t N, int64_t C,
                   double denom, float scale, float* ds) {
  double total = 0;
#pragma omp parallel for reduction(+ : total)
  for (int64_t n = 0; n < N; n++) {
    if (targets[n] < 0) continue;
    const float* sv = s + n * C;
    const float* tv = t + n * C;
    if (kind == HiddenLoss::Mse) {
      double acc = 0;
      for (int64_t i = 0; i < C; i++) acc += double(sv[i] - tv[i]) * (sv[i] - tv[i]);
      total += acc / (double(C) * denom);
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
      total += (1.0 - cosv) / denom;
      if (ds) {
        // d(1 - cos)/ds = -(t / (|s||t|) - cos * s / |s|^2)
        const double k = double(scale) / denom;
        for (int64_t i = 0; i < C; i++) ds[n * C + i] += float(-k * (tv[i] / (ns * nt) - cosv * sv[i] / (ns * ns)));
      }
    }
  }
  return total;
}

LossValue run(const Model& m, const Batch& batch, const LossSpec& loss, Weights* grads, LinearDelta* delta,
              const TrainOptions& opts, bool backward) {
  const Config& c = m.config;
  const int64_t B = batch.B, T = batch.T, N = B * T, C = c.dim, V = c.vocab_size, L = c.n_layers();
  SEC_CHECK(B > 0 && T > 0, "empty training batch");
  SEC_ASSERT(int64_t(batch.tokens.size()) == N && int64_t(batch.targets.size()) == N);
  for (int64_t n = 0; n < N; n++)
    SEC_CHECK(batch.targets[n] < V, "target token id ", batch.targets[n], " is outside the vocabulary (size ", V, ")");
  const bool use_hidden = loss.hidden != HiddenLoss::None && loss.hidden_weight != 0.f && !loss.teacher_hidden.empty();
  if (use_hidden) SEC_ASSERT(int64_t(loss.teacher_hidden.size()) == L);
  LossValue out;
  out.count = batch.n_targets();
  const double denom = loss.denominator > 0 ? loss.denominator : double(std::max<int64_t>(out.count, 1));

  Engine e(m, delta, B, T);
  const bool keep_all = backward && !opts.recompute;
  std::vector<BlockActs> acts(keep_all ? size_t(L) : 1);
  std::vector<Buf> block_inputs(backward && opts.recompute ? size_t(L) : 0);
  std::vector<Buf> dhidden(use_hidden && backward ? size_t(L) : 0);

  Buf x(static_cast<size_t>(N * C));
  embed_tokens(m, batch.tokens.data(), N, x.data());
  for (int l = 0; l < L; l++) {
    if (!block_inputs.empty()) block_inputs[l].assign(x.begin(), x.end());
    e.block_fwd(l, x.data(), acts[keep_all ? l : 0]);
    if (use_hidden && loss.teacher_hidden[l]) {
      float* ds = backward ? zeroed(dhidden[l], N * C) : nullptr;
      out.hidden += hidden_loss(loss.hidden, x.data(), loss.teacher_hidden[l], batch.targets.data(), N, C, denom,
                                loss.hidden_weight, ds);
    }
  }
  // Head: final norm + LM head.
  Buf nf(static_cast<size_t>(N * C)), rstdf(static_cast<size_t>(N)), logits(static_cast<size_t>(N * V));
  rmsnorm_forward(nf.data(), rstdf.data(), x.data(), m.weights.final_norm.f32(), N, C, c.norm_eps);
  matmul_forward(logits.data(), nf.data(), m.weights.head().f32(), nullptr, N, C, V);

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
  out.total = out.main + double(loss.hidden_weight) * out.hidden;
  if (!backward) return out;

  Buf dlogits(size_t(N * V), 0.f);
  if (loss.teacher_logits)
    kl_div_backward(dlogits.data(), dper_row.data(), loss.teacher_logits, logits.data(), N, V, loss.kd_temp);
  else
    cross_entropy_backward(dlogits.data(), dper_row.data(), logits.data(), tg, N, V);
  logits = Buf();
  Buf dnf(size_t(N * C), 0.f), dx(size_t(N * C), 0.f);
  float* dhead = nullptr;
  if (grads) dhead = c.tied_embeddings ? grads->embed.f32() : grads->lm_head.f32();
  matmul_backward(dnf.data(), dhead, nullptr, dlogits.data(), nf.data(), m.weights.head().f32(), N, C, V);
  dlogits = Buf();
  rmsnorm_backward(dx.data(), grads ? grads->final_norm.f32() : nullptr, dnf.data(), x.data(),
                   m.weights.final_norm.f32(), rstdf.data(), N, C);
  for (int l = int(L) - 1; l >= 0; l--) {
    if (!dhidden.empty() && !dhidden[l].empty()) add_inplace(dx.data(), dhidden[l].data(), N * C);
    if (opts.recompute) {
      std::memcpy(x.data(), block_inputs[l].data(), size_t(N * C) * 4);
      e.block_fwd(l, x.data(), acts[0]);
      block_inputs[l] = Buf();
    }
    e.block_bwd(l, dx.data(), acts[keep_all ? l : 0], grads);
    if (keep_all) acts[l] = BlockActs();  // free as we go
  }
  if (grads) embedding_backward(grads->embed.f32(), dx.data(), batch.tokens.data(), N, C);
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

Tensor forward_logits(const Model& m, const std::vector<int32_t>& tokens, int64_t B, int64_t T, LinearDelta* delta) {
  if (!delta) return model_forward(m, tokens, B, T);
  const Config& c = m.config;
  const int64_t N = B * T, C = c.dim, V = c.vocab_size;
  SEC_ASSERT(int64_t(tokens.size()) == N);
  Engine e(m, delta, B, T);
  BlockActs a;
  Buf x(static_cast<size_t>(N * C));
  embed_tokens(m, tokens.data(), N, x.data());
  for (int l = 0; l < c.n_layers(); l++) e.block_fwd(l, x.data(), a);
  Tensor logits = Tensor::empty({B, T, V});
  head_forward(m, x.data(), N, logits.f32());
  return logits;
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
    Weights g = compute_gradients(m, one, opts);
    std::vector<Tensor*> gs, sqs, sums;
    for_each_tensor(m.config, g, [&](TensorRef& r) { gs.push_back(&r.tensor); });
    for_each_tensor(m.config, sq_sum, [&](TensorRef& r) { sqs.push_back(&r.tensor); });
    if (sum) for_each_tensor(m.config, *sum, [&](TensorRef& r) { sums.push_back(&r.tensor); });
    for (size_t i = 0; i < gs.size(); i++) {
      const float* gp = gs[i]->f32();
      float* sp = sqs[i]->f32();
      float* up = sum ? sums[i]->f32() : nullptr;
      const int64_t n = gs[i]->numel();
#pragma omp parallel for simd
      for (int64_t j = 0; j < n; j++) {
        sp[j] += gp[j] * gp[j];
        if (up) up[j] += gp[j];
      }
    }
  }
}

namespace {
struct BlockOutputTap : Tap {
  std::vector<Tensor>* out;
  bool wants(TapPoint p, int) const override { return p == TapPoint::BlockOutput; }
  void observe(TapPoint, int layer, const float* data, int64_t rows, int64_t cols) override {
    Tensor t = Tensor::empty({rows, cols});
    std::memcpy(t.f32(), data, size_t(rows * cols) * 4);
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
