#include "model/forward.h"

#include <algorithm>
#include <cstring>

#include "core/error.h"
#include "ops/ops.h"

namespace sec {

const char* tap_point_name(TapPoint p) {
  switch (p) {
    case TapPoint::BlockInput:
      return "block_input";
    case TapPoint::AttnInput:
      return "attn_input";
    case TapPoint::AttnHeads:
      return "attn_heads";
    case TapPoint::AttnResidual:
      return "attn_residual";
    case TapPoint::MlpInput:
      return "mlp_input";
    case TapPoint::MlpHidden:
      return "mlp_hidden";
    case TapPoint::BlockOutput:
      return "block_output";
  }
  return "?";
}

KVCache KVCache::create(const Config& c, int64_t batch, int64_t capacity) {
  KVCache kv;
  kv.batch = batch;
  kv.capacity = capacity;
  for (int l = 0; l < c.n_layers(); l++) {
    Shape s{batch, capacity, c.blocks[l].n_kv_heads, c.head_dim};
    kv.k.push_back(Tensor::zeros(s));
    kv.v.push_back(Tensor::zeros(s));
  }
  return kv;
}

void embed_tokens(const Model& m, const int32_t* tokens, int64_t N, float* x) {
  const int V = m.config.vocab_size;
  for (int64_t n = 0; n < N; n++)
    SEC_CHECK(tokens[n] >= 0 && tokens[n] < V, "token id ", tokens[n], " is outside the vocabulary (size ", V, ")");
  embedding_forward(x, tokens, m.weights.embed.f32(), N, m.config.embed_dim());
}

namespace {

float* need(std::vector<float>& v, int64_t n) {
  if (int64_t(v.size()) < n) v.resize(size_t(n));
  return v.data();
}
float* zeroed(std::vector<float>& v, int64_t n) {
  float* p = need(v, n);
  std::memset(p, 0, size_t(n) * sizeof(float));
  return p;
}
const float* opt(const Tensor& t) { return t.defined() ? t.f32() : nullptr; }
float* grad_of(BlockWeights* g, Tensor BlockWeights::*member) {
  if (!g) return nullptr;
  Tensor& t = g->*member;
  return t.defined() ? t.f32() : nullptr;
}

// The block's dimensions, from the config.
struct Dims {
  int64_t B, T, N, Cin, Cmid, Cout, hd, Hq, Hkv, F, qd, kvd, norm_dim;
  bool attn_sc, mlp_sc;
  Dims(const Config& c, int l, int64_t b, int64_t t)
      : B(b),
        T(t),
        N(b * t),
        Cin(c.block_in(l)),
        Cmid(c.block_mid(l)),
        Cout(c.block_out(l)),
        hd(c.head_dim),
        Hq(c.blocks[l].n_heads),
        Hkv(c.blocks[l].n_kv_heads),
        F(c.blocks[l].ffn_dim),
        qd(Hq * hd),
        kvd(Hkv * hd),
        norm_dim(c.norm_mean_dim),
        attn_sc(c.blocks[l].attn_shortcut),
        mlp_sc(c.blocks[l].mlp_shortcut) {}
};

struct Linears {
  int layer;
  int64_t N;
  LinearDelta* delta;
  // out (N, O) = inp . W^T + bias (+ delta)
  void fwd(TensorKind kind, float* out, const float* inp, const Tensor& w, const Tensor& bias) const {
    linear_forward(out, inp, w, opt(bias), N);
    if (delta && delta->applies(kind, layer)) delta->forward(kind, layer, out, inp, N, w.dim(1), w.dim(0));
  }
  // dinp += dout . W (+ delta's), dw += dout^T . inp, db += sum dout
  void bwd(TensorKind kind, float* dinp, float* dw, float* db, const float* dout, const float* inp,
           const Tensor& w) const {
    linear_backward(dinp, dw, db, dout, inp, w, N);
    if (delta && delta->applies(kind, layer)) delta->backward(kind, layer, dinp, dout, inp, N, w.dim(1), w.dim(0));
  }
};

void emit(Tap* tap, TapPoint p, int layer, const float* data, const Dims& d, int64_t cols) {
  if (tap && tap->wants(p, layer)) tap->observe(p, layer, TapData{data, d.B, d.T, cols});
}

}  // namespace

void block_forward(const Model& m, int layer, const float* x_in, float* x_out, int64_t B, int64_t T, BlockActs& a,
                   const BlockPass& pass) {
  const Config& c = m.config;
  const BlockWeights& w = m.weights.blocks[size_t(layer)];
  const Dims d(c, layer, B, T);
  const int64_t N = d.N;
  const Linears lin{layer, N, pass.delta};
  Tap* tap = pass.tap;
  KVCache* cache = pass.cache;
  SEC_ASSERT(!(pass.save && cache));
  emit(tap, TapPoint::BlockInput, layer, x_in, d, d.Cin);
  if (pass.save) std::memcpy(need(a.x_in, N * d.Cin), x_in, size_t(N * d.Cin) * 4);

  // --- attention: proj = o_proj(attn(...)) (a block without heads has no attention) ---
  float* proj = need(a.proj, N * std::max(d.Cmid, d.Cout));
  if (d.Hq > 0) {
    float* n1 = need(a.n1, N * d.Cin);
    rmsnorm_forward(n1, pass.save ? need(a.rstd1, N) : nullptr, x_in, w.attn_norm.f32(), N, d.Cin, c.norm_eps,
                    d.norm_dim);
    emit(tap, TapPoint::AttnInput, layer, n1, d, d.Cin);
    float* q = need(a.q, N * d.qd);
    float* k = need(a.k, N * d.kvd);
    float* v = need(a.v, N * d.kvd);
    lin.fwd(TensorKind::Q, q, n1, w.wq, w.bq);
    lin.fwd(TensorKind::K, k, n1, w.wk, w.bk);
    lin.fwd(TensorKind::V, v, n1, w.wv, w.bv);
    const int64_t pos0 = cache ? cache->pos : 0;
    const std::vector<float> inv_freq = rope_inv_freq(c);
    rope_forward(q, inv_freq.data(), B, T, d.Hq, d.hd, pos0);
    rope_forward(k, inv_freq.data(), B, T, d.Hkv, d.hd, pos0);
    int64_t S_cap = T;
    const float *keys = k, *values = v;
    if (cache) {
      // Append this call's keys/values at rows [pos0, pos0 + T) of every sequence's cache and
      // attend over the whole cache.
      SEC_ASSERT(cache->batch == B);
      S_cap = cache->capacity;
      SEC_CHECK(pos0 + T <= S_cap, "sequence of ", pos0 + T, " tokens exceeds the KV cache capacity ", S_cap);
      float* kc = cache->k[size_t(layer)].f32();
      float* vc = cache->v[size_t(layer)].f32();
      for (int64_t b = 0; b < B; b++) {
        std::memcpy(kc + (b * S_cap + pos0) * d.kvd, k + b * T * d.kvd, size_t(T * d.kvd) * 4);
        std::memcpy(vc + (b * S_cap + pos0) * d.kvd, v + b * T * d.kvd, size_t(T * d.kvd) * 4);
      }
      keys = kc;
      values = vc;
    }
    float* att_out = need(a.att_out, N * d.qd);
    attention_forward(att_out, pass.save ? need(a.att, B * d.Hq * T * T) : nullptr, q, keys, values, B, T, S_cap, pos0,
                      d.Hq, d.Hkv, d.hd);
    emit(tap, TapPoint::AttnHeads, layer, att_out, d, d.qd);
    lin.fwd(TensorKind::O, proj, att_out, w.wo, Tensor());
  }
  // mid = x_in [. S_attn^T] + proj
  float* mid = need(a.mid, N * d.Cmid);
  if (d.attn_sc)
    linear_forward(mid, x_in, w.attn_shortcut, nullptr, N);
  else
    std::memcpy(mid, x_in, size_t(N * d.Cmid) * 4);
  if (d.Hq > 0) add_inplace(mid, proj, N * d.Cmid);
  emit(tap, TapPoint::AttnResidual, layer, mid, d, d.Cmid);
  if (tap && !tap->needs_mlp()) return;  // x_out is left as it was: the caller drops it

  // --- MLP: proj = down_proj(silu(gate_proj(n2)) * up_proj(n2)) ---
  if (d.F > 0) {
    float* n2 = need(a.n2, N * d.Cmid);
    rmsnorm_forward(n2, pass.save ? need(a.rstd2, N) : nullptr, mid, w.ffn_norm.f32(), N, d.Cmid, c.norm_eps,
                    d.norm_dim);
    emit(tap, TapPoint::MlpInput, layer, n2, d, d.Cmid);
    float* gate = need(a.gate, N * d.F);
    float* up = need(a.up, N * d.F);
    lin.fwd(TensorKind::Gate, gate, n2, w.w_gate, Tensor());
    lin.fwd(TensorKind::Up, up, n2, w.w_up, Tensor());
    float* hidden = need(a.hidden, N * d.F);
    swiglu_forward(hidden, gate, up, N * d.F);
    emit(tap, TapPoint::MlpHidden, layer, hidden, d, d.F);
  }
  if (tap && !tap->needs_block_output()) return;  // x_out is left as it was: the caller drops it
  if (d.F > 0) lin.fwd(TensorKind::Down, proj, a.hidden.data(), w.w_down, Tensor());
  // x_out = mid [. S_mlp^T] + proj  (x_in is not read any more, so x_out may be x_in)
  if (d.mlp_sc)
    linear_forward(x_out, mid, w.mlp_shortcut, nullptr, N);
  else
    std::memcpy(x_out, mid, size_t(N * d.Cout) * 4);
  if (d.F > 0) add_inplace(x_out, proj, N * d.Cout);
  emit(tap, TapPoint::BlockOutput, layer, x_out, d, d.Cout);
}

void block_backward(const Model& m, int layer, const float* dx_out, float* dx_in, int64_t B, int64_t T,
                    const BlockActs& a, Weights* grads, LinearDelta* delta) {
  const Config& c = m.config;
  const BlockWeights& w = m.weights.blocks[size_t(layer)];
  const Dims d(c, layer, B, T);
  const int64_t N = d.N;
  const Linears lin{layer, N, delta};
  BlockWeights* g = grads ? &grads->blocks[size_t(layer)] : nullptr;
  std::vector<float> dmid_buf, b1, b2, b3, b4, dn;
  float* dmid = zeroed(dmid_buf, N * d.Cmid);
  if (d.F > 0) {
    float* dhidden = zeroed(b1, N * d.F);
    lin.bwd(TensorKind::Down, dhidden, grad_of(g, &BlockWeights::w_down), nullptr, dx_out, a.hidden.data(), w.w_down);
    float* dgate = zeroed(b2, N * d.F);
    float* dup = zeroed(b3, N * d.F);
    swiglu_backward(dgate, dup, dhidden, a.gate.data(), a.up.data(), N * d.F);
    float* dn2 = zeroed(dn, N * d.Cmid);
    lin.bwd(TensorKind::Gate, dn2, grad_of(g, &BlockWeights::w_gate), nullptr, dgate, a.n2.data(), w.w_gate);
    lin.bwd(TensorKind::Up, dn2, grad_of(g, &BlockWeights::w_up), nullptr, dup, a.n2.data(), w.w_up);
    rmsnorm_backward(dmid, grad_of(g, &BlockWeights::ffn_norm), dn2, a.mid.data(), w.ffn_norm.f32(), a.rstd2.data(), N,
                     d.Cmid, d.norm_dim);
  }
  if (d.mlp_sc)
    linear_backward(dmid, grad_of(g, &BlockWeights::mlp_shortcut), nullptr, dx_out, a.mid.data(), w.mlp_shortcut, N);
  else
    add_inplace(dmid, dx_out, N * d.Cmid);
  if (d.Hq > 0) {
    float* datt = zeroed(b1, N * d.qd);
    lin.bwd(TensorKind::O, datt, grad_of(g, &BlockWeights::wo), nullptr, dmid, a.att_out.data(), w.wo);
    float* dq = zeroed(b2, N * d.qd);
    float* dk = zeroed(b3, N * d.kvd);
    float* dv = zeroed(b4, N * d.kvd);
    attention_backward(dq, dk, dv, datt, a.att.data(), a.q.data(), a.k.data(), a.v.data(), B, T, d.Hq, d.Hkv, d.hd);
    const std::vector<float> inv_freq = rope_inv_freq(c);
    rope_backward(dq, inv_freq.data(), B, T, d.Hq, d.hd, 0);
    rope_backward(dk, inv_freq.data(), B, T, d.Hkv, d.hd, 0);
    float* dn1 = zeroed(dn, N * d.Cin);
    lin.bwd(TensorKind::Q, dn1, grad_of(g, &BlockWeights::wq), grad_of(g, &BlockWeights::bq), dq, a.n1.data(), w.wq);
    lin.bwd(TensorKind::K, dn1, grad_of(g, &BlockWeights::wk), grad_of(g, &BlockWeights::bk), dk, a.n1.data(), w.wk);
    lin.bwd(TensorKind::V, dn1, grad_of(g, &BlockWeights::wv), grad_of(g, &BlockWeights::bv), dv, a.n1.data(), w.wv);
    rmsnorm_backward(dx_in, grad_of(g, &BlockWeights::attn_norm), dn1, a.x_in.data(), w.attn_norm.f32(), a.rstd1.data(),
                     N, d.Cin, d.norm_dim);
  }
  if (d.attn_sc)
    linear_backward(dx_in, grad_of(g, &BlockWeights::attn_shortcut), nullptr, dmid, a.x_in.data(), w.attn_shortcut, N);
  else
    add_inplace(dx_in, dmid, N * d.Cin);
}

void head_forward(const Model& m, const float* x, int64_t N, float* logits) {
  const int64_t C = m.config.final_dim();
  std::vector<float> norm(size_t(N * C));
  rmsnorm_forward(norm.data(), nullptr, x, m.weights.final_norm.f32(), N, C, m.config.norm_eps, m.config.norm_mean_dim);
  linear_forward(logits, norm.data(), m.weights.head(), nullptr, N);
}

namespace {
// Embedding + every block (+ cache), the stream in x on return (width C2L).
void run_blocks(const Model& m, const int32_t* tokens, int64_t B, int64_t T, std::vector<float>& x,
                const BlockPass& pass) {
  const Config& c = m.config;
  const int64_t N = B * T;
  int64_t widest = 0;
  for (int p = 0; p < c.n_resid_points(); p++) widest = std::max<int64_t>(widest, c.resid_width(p));
  x.resize(size_t(N * widest));
  embed_tokens(m, tokens, N, x.data());
  BlockActs acts;
  for (int l = 0; l < c.n_layers(); l++) block_forward(m, l, x.data(), x.data(), B, T, acts, pass);
  x.resize(size_t(N * c.final_dim()));
}
}  // namespace

std::vector<float> final_hidden(const Model& m, const int32_t* tokens, int64_t B, int64_t T, Tap* tap,
                                LinearDelta* delta) {
  std::vector<float> x;
  BlockPass pass;
  pass.tap = tap;
  pass.delta = delta;
  run_blocks(m, tokens, B, T, x, pass);
  return x;
}

void model_forward(const Model& m, const int32_t* tokens, int64_t B, int64_t T, float* logits, KVCache* cache, Tap* tap,
                   LinearDelta* delta) {
  std::vector<float> x;
  BlockPass pass;
  pass.tap = tap;
  pass.cache = cache;
  pass.delta = delta;
  run_blocks(m, tokens, B, T, x, pass);
  if (cache) cache->pos += T;
  head_forward(m, x.data(), B * T, logits);
}

Tensor model_forward(const Model& m, const std::vector<int32_t>& tokens, int64_t B, int64_t T, LinearDelta* delta) {
  SEC_ASSERT(int64_t(tokens.size()) == B * T);
  Tensor logits = Tensor::empty({B, T, m.config.vocab_size});
  model_forward(m, tokens.data(), B, T, logits.f32(), nullptr, nullptr, delta);
  return logits;
}

}  // namespace sec
