#include "model/weights.h"

#include <cstring>

#include "core/error.h"

namespace sec {

const std::vector<TensorNameRule>& tensor_name_rules() {
  static const std::vector<TensorNameRule> rules = {
      {TensorKind::Embed, "model.embed_tokens.weight", "token_embd.weight", RopeRows::None, false, ""},
      {TensorKind::AttnNorm, "model.layers.{L}.input_layernorm.weight", "blk.{L}.attn_norm.weight", RopeRows::None,
       false, ""},
      {TensorKind::Q, "model.layers.{L}.self_attn.q_proj.weight", "blk.{L}.attn_q.weight", RopeRows::QueryHeads, true,
       "q"},
      {TensorKind::K, "model.layers.{L}.self_attn.k_proj.weight", "blk.{L}.attn_k.weight", RopeRows::KVHeads, true,
       "k"},
      {TensorKind::V, "model.layers.{L}.self_attn.v_proj.weight", "blk.{L}.attn_v.weight", RopeRows::None, true, "v"},
      {TensorKind::QBias, "model.layers.{L}.self_attn.q_proj.bias", "blk.{L}.attn_q.bias", RopeRows::QueryHeads, false,
       ""},
      {TensorKind::KBias, "model.layers.{L}.self_attn.k_proj.bias", "blk.{L}.attn_k.bias", RopeRows::KVHeads, false,
       ""},
      {TensorKind::VBias, "model.layers.{L}.self_attn.v_proj.bias", "blk.{L}.attn_v.bias", RopeRows::None, false, ""},
      {TensorKind::O, "model.layers.{L}.self_attn.o_proj.weight", "blk.{L}.attn_output.weight", RopeRows::None, true,
       "o"},
      {TensorKind::FfnNorm, "model.layers.{L}.post_attention_layernorm.weight", "blk.{L}.ffn_norm.weight",
       RopeRows::None, false, ""},
      {TensorKind::Gate, "model.layers.{L}.mlp.gate_proj.weight", "blk.{L}.ffn_gate.weight", RopeRows::None, true,
       "gate"},
      {TensorKind::Up, "model.layers.{L}.mlp.up_proj.weight", "blk.{L}.ffn_up.weight", RopeRows::None, true, "up"},
      {TensorKind::Down, "model.layers.{L}.mlp.down_proj.weight", "blk.{L}.ffn_down.weight", RopeRows::None, true,
       "down"},
      {TensorKind::FinalNorm, "model.norm.weight", "output_norm.weight", RopeRows::None, false, ""},
      {TensorKind::LmHead, "lm_head.weight", "output.weight", RopeRows::None, false, ""},
  };
  return rules;
}

const TensorNameRule& tensor_rule(TensorKind kind) {
  for (const auto& r : tensor_name_rules())
    if (r.kind == kind) return r;
  SEC_ASSERT(false);
  return tensor_name_rules()[0];
}

static std::string fill_layer(const char* pattern, int layer) {
  std::string s = pattern;
  auto p = s.find("{L}");
  if (p != std::string::npos) {
    SEC_ASSERT(layer >= 0);
    s.replace(p, 3, std::to_string(layer));
  }
  return s;
}

std::string tensor_name_hf(TensorKind kind, int layer) { return fill_layer(tensor_rule(kind).hf, layer); }
std::string tensor_name_gguf(TensorKind kind, int layer) { return fill_layer(tensor_rule(kind).gguf, layer); }

namespace {
template <class W, class Ref, class Fn>
void visit(const Config& c, W& w, Fn&& fn) {
  auto emit = [&](TensorKind kind, int layer, auto& t, Shape shape) {
    Ref r{tensor_name_hf(kind, layer), kind, layer, t, std::move(shape)};
    fn(r);
  };
  const int64_t C = c.dim, V = c.vocab_size;
  emit(TensorKind::Embed, -1, w.embed, Shape{V, C});
  SEC_ASSERT(int(w.blocks.size()) == c.n_layers());
  for (int l = 0; l < c.n_layers(); l++) {
    auto& b = w.blocks[l];
    const int64_t q = c.q_dim(l), kv = c.kv_dim(l), f = c.blocks[l].ffn_dim;
    emit(TensorKind::AttnNorm, l, b.attn_norm, Shape{C});
    emit(TensorKind::Q, l, b.wq, Shape{q, C});
    emit(TensorKind::K, l, b.wk, Shape{kv, C});
    emit(TensorKind::V, l, b.wv, Shape{kv, C});
    if (c.attn_bias) {
      emit(TensorKind::QBias, l, b.bq, Shape{q});
      emit(TensorKind::KBias, l, b.bk, Shape{kv});
      emit(TensorKind::VBias, l, b.bv, Shape{kv});
    }
    emit(TensorKind::O, l, b.wo, Shape{C, q});
    emit(TensorKind::FfnNorm, l, b.ffn_norm, Shape{C});
    emit(TensorKind::Gate, l, b.w_gate, Shape{f, C});
    emit(TensorKind::Up, l, b.w_up, Shape{f, C});
    emit(TensorKind::Down, l, b.w_down, Shape{C, f});
  }
  emit(TensorKind::FinalNorm, -1, w.final_norm, Shape{C});
  if (!c.tied_embeddings) emit(TensorKind::LmHead, -1, w.lm_head, Shape{V, C});
}
}  // namespace

void for_each_tensor(const Config& c, Weights& w, const std::function<void(TensorRef&)>& fn) {
  visit<Weights, TensorRef>(c, w, fn);
}

void for_each_tensor(const Config& c, const Weights& w, const std::function<void(const TensorRef&)>& fn) {
  // TensorRef holds a non-const reference; the callback only receives it as const.
  visit<Weights, TensorRef>(c, const_cast<Weights&>(w), fn);
}

Weights allocate_weights(const Config& c) {
  Weights w;
  w.blocks.resize(c.n_layers());
  for_each_tensor(c, w, [](TensorRef& r) { r.tensor = Tensor::zeros(r.shape); });
  return w;
}

void check_weights(const Config& c, const Weights& w) {
  SEC_CHECK(int(w.blocks.size()) == c.n_layers(), "weights have ", w.blocks.size(), " blocks, config says ",
            c.n_layers());
  for_each_tensor(c, w, [](const TensorRef& r) {
    SEC_CHECK(r.tensor.defined(), "missing tensor ", r.name);
    SEC_CHECK(r.tensor.shape() == r.shape, "tensor ", r.name, " has shape ", shape_str(r.tensor.shape()),
              " but the config requires ", shape_str(r.shape));
    SEC_CHECK(r.tensor.dtype() == DType::F32, "tensor ", r.name, " is ", dtype_name(r.tensor.dtype()),
              ", expected f32 in memory");
  });
}

// Rows of one head: interleaved pair p occupies rows (2p, 2p+1); rotate-half puts it at (p, p+hd/2).
static Tensor permute_rope_rows(const Tensor& t, int n_heads, bool to_interleaved) {
  const int64_t rows = t.dim(0);
  const int64_t cols = t.ndim() > 1 ? t.numel() / rows : 1;
  SEC_CHECK(n_heads > 0 && rows % (2 * n_heads) == 0, "cannot apply the RoPE row permutation: ", rows,
            " rows are not a multiple of 2 x ", n_heads, " heads");
  const int64_t hd = rows / n_heads, half = hd / 2;
  const size_t row_bytes = size_t(cols) * dtype_size(t.dtype());
  Tensor out = Tensor::empty(t.shape(), t.dtype());
  auto* dst = static_cast<uint8_t*>(out.raw());
  auto* src = static_cast<const uint8_t*>(t.raw());
  for (int64_t h = 0; h < n_heads; h++)
    for (int64_t p = 0; p < half; p++)
      for (int64_t j = 0; j < 2; j++) {
        int64_t inter = h * hd + 2 * p + j, rot = h * hd + j * half + p;
        int64_t from = to_interleaved ? rot : inter, to = to_interleaved ? inter : rot;
        std::memcpy(dst + to * row_bytes, src + from * row_bytes, row_bytes);
      }
  return out;
}

Tensor rope_rows_from_interleaved(const Tensor& t, int n_heads) { return permute_rope_rows(t, n_heads, false); }
Tensor rope_rows_to_interleaved(const Tensor& t, int n_heads) { return permute_rope_rows(t, n_heads, true); }

}  // namespace sec
