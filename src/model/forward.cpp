#include "model/forward.h"

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
  embedding_forward(x, tokens, m.weights.embed.f32(), N, m.config.dim);
}

static void emit(Tap* tap, TapPoint p, int layer, const float* data, int64_t rows, int64_t cols) {
  if (tap && tap->wants(p, layer)) tap->observe(p, layer, data, rows, cols);
}

static const float* opt(const Tensor& t) { return t.defined() ? t.f32() : nullptr; }

void block_forward(const Model& m, int layer, float* x, int64_t B, int64_t T, Tap* tap, KVCache* cache,
                   ForwardScratch* scratch) {
  const Config& c = m.config;
  const BlockWeights& w = m.weights.blocks[layer];
  const int64_t N = B * T, C = c.dim, hd = c.head_dim;
  const int64_t Hq = c.blocks[layer].n_heads, Hkv = c.blocks[layer].n_kv_heads, F = c.blocks[layer].ffn_dim;
  const int64_t q_dim = Hq * hd, kv_dim = Hkv * hd;
  ForwardScratch local;
  ForwardScratch& s = scratch ? *scratch : local;
  auto need = [](std::vector<float>& v, int64_t n) {
    if (int64_t(v.size()) < n) v.resize(size_t(n));
    return v.data();
  };
  emit(tap, TapPoint::BlockInput, layer, x, N, C);

  // --- attention (a pruned-away attention, Hq == 0, contributes nothing) ---
  if (Hq > 0) {
    float* norm = need(s.norm, N * C);
    rmsnorm_forward(norm, nullptr, x, w.attn_norm.f32(), N, C, c.norm_eps);
    emit(tap, TapPoint::AttnInput, layer, norm, N, C);
    float* q = need(s.q, N * q_dim);
    matmul_forward(q, norm, w.wq.f32(), opt(w.bq), N, C, q_dim);
    float* k = need(s.k, N * kv_dim);
    float* v = need(s.v, N * kv_dim);
    matmul_forward(k, norm, w.wk.f32(), opt(w.bk), N, C, kv_dim);
    matmul_forward(v, norm, w.wv.f32(), opt(w.bv), N, C, kv_dim);
    const int64_t pos0 = cache ? cache->pos : 0;
    std::vector<float> inv_freq = rope_inv_freq(c);
    rope_forward(q, inv_freq.data(), B, T, Hq, hd, pos0);
    rope_forward(k, inv_freq.data(), B, T, Hkv, hd, pos0);
    int64_t S_cap = T;
    if (cache) {
      // Append this call's keys/values at rows [pos0, pos0 + T) of every sequence's cache and
      // attend over the whole cache.
      SEC_ASSERT(cache->batch == B);
      S_cap = cache->capacity;
      SEC_CHECK(pos0 + T <= S_cap, "sequence of ", pos0 + T, " tokens exceeds the KV cache capacity ", S_cap);
      float* kc = cache->k[layer].f32();
      float* vc = cache->v[layer].f32();
      for (int64_t b = 0; b < B; b++) {
        std::memcpy(kc + (b * S_cap + pos0) * kv_dim, k + b * T * kv_dim, size_t(T * kv_dim) * 4);
        std::memcpy(vc + (b * S_cap + pos0) * kv_dim, v + b * T * kv_dim, size_t(T * kv_dim) * 4);
      }
      k = kc;
      v = vc;
    }
    float* att_out = need(s.att_out, N * q_dim);
    attention_forward(att_out, nullptr, q, k, v, B, T, S_cap, pos0, Hq, Hkv, hd);
    emit(tap, TapPoint::AttnHeads, layer, att_out, N, q_dim);
    float* proj = need(s.proj, N * C);
    matmul_forward(proj, att_out, w.wo.f32(), nullptr, N, q_dim, C);
    add_inplace(x, proj, N * C);
  }
  emit(tap, TapPoint::AttnResidual, layer, x, N, C);

  // --- MLP ---
  if (F > 0) {
    float* norm = need(s.norm, N * C);
    rmsnorm_forward(norm, nullptr, x, w.ffn_norm.f32(), N, C, c.norm_eps);
    emit(tap, TapPoint::MlpInput, layer, norm, N, C);
    float* gate = need(s.gate, N * F);
    float* up = need(s.up, N * F);
    matmul_forward(gate, norm, w.w_gate.f32(), nullptr, N, C, F);
    matmul_forward(up, norm, w.w_up.f32(), nullptr, N, C, F);
    float* hidden = need(s.hidden, N * F);
    swiglu_forward(hidden, gate, up, N * F);
    emit(tap, TapPoint::MlpHidden, layer, hidden, N, F);
    if (tap && !tap->needs_block_output()) return;  // x is left partially updated: the caller drops it
    float* proj = need(s.proj, N * C);
    matmul_forward(proj, hidden, w.w_down.f32(), nullptr, N, F, C);
    add_inplace(x, proj, N * C);
  }
  emit(tap, TapPoint::BlockOutput, layer, x, N, C);
}

void head_forward(const Model& m, const float* x, int64_t N, float* logits) {
  const int64_t C = m.config.dim, V = m.config.vocab_size;
  std::vector<float> norm(size_t(N * C));
  rmsnorm_forward(norm.data(), nullptr, x, m.weights.final_norm.f32(), N, C, m.config.norm_eps);
  matmul_forward(logits, norm.data(), m.weights.head().f32(), nullptr, N, C, V);
}

void model_forward(const Model& m, const int32_t* tokens, int64_t B, int64_t T, float* logits, KVCache* cache,
                   Tap* tap) {
  const int64_t N = B * T;
  std::vector<float> x(size_t(N * m.config.dim));
  embed_tokens(m, tokens, N, x.data());
  ForwardScratch scratch;
  for (int l = 0; l < m.config.n_layers(); l++) block_forward(m, l, x.data(), B, T, tap, cache, &scratch);
  if (cache) cache->pos += T;
  head_forward(m, x.data(), N, logits);
}

Tensor model_forward(const Model& m, const std::vector<int32_t>& tokens, int64_t B, int64_t T) {
  SEC_ASSERT(int64_t(tokens.size()) == B * T);
  Tensor logits = Tensor::empty({B, T, m.config.vocab_size});
  model_forward(m, tokens.data(), B, T, logits.f32());
  return logits;
}

}  // namespace sec
