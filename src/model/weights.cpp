#include "model/weights.h"

#include <cstring>

#include "core/error.h"

namespace sec {

const char* axis_name(Axis a) {
  switch (a) {
    case Axis::Vocab:
      return "vocab";
    case Axis::ResidIn:
      return "resid_in";
    case Axis::ResidMid:
      return "resid_mid";
    case Axis::ResidOut:
      return "resid_out";
    case Axis::QHeads:
      return "q_heads";
    case Axis::KVHeads:
      return "kv_heads";
    case Axis::Ffn:
      return "ffn";
  }
  return "?";
}

const std::vector<TensorNameRule>& tensor_name_rules() {
  using A = Axis;
  using S = SubLayer;
  using R = Requires;
  // clang-format off
  static const std::vector<TensorNameRule> rules = {
    // kind                    hf name                                          gguf name                     block  sub         requires         axes                    rope rows             linear short
    {TensorKind::Embed,        "model.embed_tokens.weight",                     "token_embd.weight",          false, S::None,      R::Nothing,      {A::Vocab, A::ResidIn},  RopeRows::None,       false, ""},
    {TensorKind::AttnNorm,     "model.layers.{L}.input_layernorm.weight",       "blk.{L}.attn_norm.weight",   true,  S::Attention, R::Nothing,      {A::ResidIn},            RopeRows::None,       false, ""},
    {TensorKind::Q,            "model.layers.{L}.self_attn.q_proj.weight",      "blk.{L}.attn_q.weight",      true,  S::Attention, R::Nothing,      {A::QHeads, A::ResidIn}, RopeRows::QueryHeads, true,  "q"},
    {TensorKind::K,            "model.layers.{L}.self_attn.k_proj.weight",      "blk.{L}.attn_k.weight",      true,  S::Attention, R::Nothing,      {A::KVHeads, A::ResidIn},RopeRows::KVHeads,    true,  "k"},
    {TensorKind::V,            "model.layers.{L}.self_attn.v_proj.weight",      "blk.{L}.attn_v.weight",      true,  S::Attention, R::Nothing,      {A::KVHeads, A::ResidIn},RopeRows::None,       true,  "v"},
    {TensorKind::QBias,        "model.layers.{L}.self_attn.q_proj.bias",        "blk.{L}.attn_q.bias",        true,  S::Attention, R::AttnBias,     {A::QHeads},             RopeRows::QueryHeads, false, ""},
    {TensorKind::KBias,        "model.layers.{L}.self_attn.k_proj.bias",        "blk.{L}.attn_k.bias",        true,  S::Attention, R::AttnBias,     {A::KVHeads},            RopeRows::KVHeads,    false, ""},
    {TensorKind::VBias,        "model.layers.{L}.self_attn.v_proj.bias",        "blk.{L}.attn_v.bias",        true,  S::Attention, R::AttnBias,     {A::KVHeads},            RopeRows::None,       false, ""},
    {TensorKind::O,            "model.layers.{L}.self_attn.o_proj.weight",      "blk.{L}.attn_output.weight", true,  S::Attention, R::Nothing,      {A::ResidMid, A::QHeads},RopeRows::None,       true,  "o"},
    {TensorKind::AttnShortcut, "model.layers.{L}.attn_shortcut.weight",         "blk.{L}.attn_shortcut.weight", true, S::None,     R::AttnShortcut, {A::ResidMid, A::ResidIn}, RopeRows::None,     false, ""},
    {TensorKind::FfnNorm,      "model.layers.{L}.post_attention_layernorm.weight", "blk.{L}.ffn_norm.weight", true,  S::Mlp,       R::Nothing,      {A::ResidMid},           RopeRows::None,       false, ""},
    {TensorKind::Gate,         "model.layers.{L}.mlp.gate_proj.weight",         "blk.{L}.ffn_gate.weight",    true,  S::Mlp,       R::Nothing,      {A::Ffn, A::ResidMid},   RopeRows::None,       true,  "gate"},
    {TensorKind::Up,           "model.layers.{L}.mlp.up_proj.weight",           "blk.{L}.ffn_up.weight",      true,  S::Mlp,       R::Nothing,      {A::Ffn, A::ResidMid},   RopeRows::None,       true,  "up"},
    {TensorKind::Down,         "model.layers.{L}.mlp.down_proj.weight",         "blk.{L}.ffn_down.weight",    true,  S::Mlp,       R::Nothing,      {A::ResidOut, A::Ffn},   RopeRows::None,       true,  "down"},
    {TensorKind::MlpShortcut,  "model.layers.{L}.mlp_shortcut.weight",          "blk.{L}.ffn_shortcut.weight", true, S::None,      R::MlpShortcut,  {A::ResidOut, A::ResidMid}, RopeRows::None,    false, ""},
    {TensorKind::FinalNorm,    "model.norm.weight",                             "output_norm.weight",         false, S::None,      R::Nothing,      {A::ResidOut},           RopeRows::None,       false, ""},
    {TensorKind::LmHead,       "lm_head.weight",                                "output.weight",              false, S::None,      R::UntiedHead,   {A::Vocab, A::ResidOut}, RopeRows::None,       false, ""},
  };
  // clang-format on
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

int resid_point(const Config& c, Axis a, int layer) {
  const int last = c.n_resid_points() - 1;
  switch (a) {
    case Axis::ResidIn:
      return layer < 0 ? 0 : 2 * layer;
    case Axis::ResidMid:
      SEC_ASSERT(layer >= 0);
      return 2 * layer + 1;
    case Axis::ResidOut:
      return layer < 0 ? last : 2 * layer + 2;
    default:
      return -1;
  }
}

int64_t axis_size(const Config& c, Axis a, int layer) {
  switch (a) {
    case Axis::Vocab:
      return c.vocab_size;
    case Axis::QHeads:
      return int64_t(c.blocks[size_t(layer)].n_heads) * c.head_dim;
    case Axis::KVHeads:
      return int64_t(c.blocks[size_t(layer)].n_kv_heads) * c.head_dim;
    case Axis::Ffn:
      return c.blocks[size_t(layer)].ffn_dim;
    default:
      return c.resid_width(resid_point(c, a, layer));
  }
}

bool tensor_present(const Config& c, TensorKind kind, int layer) {
  const TensorNameRule& r = tensor_rule(kind);
  SEC_ASSERT(r.per_block == (layer >= 0));
  if (r.per_block) {
    const BlockDims& b = c.blocks[size_t(layer)];
    if (r.sub == SubLayer::Attention && b.n_heads == 0) return false;
    if (r.sub == SubLayer::Mlp && b.ffn_dim == 0) return false;
  }
  switch (r.requires_) {
    case Requires::Nothing:
      return true;
    case Requires::AttnBias:
      return c.attn_bias;
    case Requires::UntiedHead:
      return !c.tied_embeddings;
    case Requires::AttnShortcut:
      return c.blocks[size_t(layer)].attn_shortcut;
    case Requires::MlpShortcut:
      return c.blocks[size_t(layer)].mlp_shortcut;
  }
  return true;
}

Shape tensor_shape(const Config& c, TensorKind kind, int layer) {
  Shape s;
  for (Axis a : tensor_rule(kind).axes) s.push_back(axis_size(c, a, layer));
  return s;
}

Tensor& weight_tensor(Weights& w, TensorKind kind, int layer) {
  if (!tensor_rule(kind).per_block) {
    switch (kind) {
      case TensorKind::Embed:
        return w.embed;
      case TensorKind::FinalNorm:
        return w.final_norm;
      case TensorKind::LmHead:
        return w.lm_head;
      default:
        SEC_ASSERT(false);
    }
  }
  SEC_ASSERT(layer >= 0 && layer < int(w.blocks.size()));
  BlockWeights& b = w.blocks[size_t(layer)];
  switch (kind) {
    case TensorKind::AttnNorm:
      return b.attn_norm;
    case TensorKind::Q:
      return b.wq;
    case TensorKind::K:
      return b.wk;
    case TensorKind::V:
      return b.wv;
    case TensorKind::O:
      return b.wo;
    case TensorKind::QBias:
      return b.bq;
    case TensorKind::KBias:
      return b.bk;
    case TensorKind::VBias:
      return b.bv;
    case TensorKind::AttnShortcut:
      return b.attn_shortcut;
    case TensorKind::FfnNorm:
      return b.ffn_norm;
    case TensorKind::Gate:
      return b.w_gate;
    case TensorKind::Up:
      return b.w_up;
    case TensorKind::Down:
      return b.w_down;
    case TensorKind::MlpShortcut:
      return b.mlp_shortcut;
    default:
      SEC_ASSERT(false);
  }
  return b.wq;
}

const Tensor& weight_tensor(const Weights& w, TensorKind kind, int layer) {
  return weight_tensor(const_cast<Weights&>(w), kind, layer);
}

void for_each_tensor(const Config& c, Weights& w, const std::function<void(TensorRef&)>& fn) {
  SEC_ASSERT(int(w.blocks.size()) == c.n_layers());
  auto visit = [&](const TensorNameRule& r, int layer) {
    if (!tensor_present(c, r.kind, layer)) return;
    TensorRef ref{tensor_name_hf(r.kind, layer), r.kind, layer, weight_tensor(w, r.kind, layer),
                  tensor_shape(c, r.kind, layer)};
    fn(ref);
  };
  const auto& rules = tensor_name_rules();
  for (const auto& r : rules)
    if (!r.per_block && r.kind == TensorKind::Embed) visit(r, -1);
  for (int l = 0; l < c.n_layers(); l++)
    for (const auto& r : rules)
      if (r.per_block) visit(r, l);
  for (const auto& r : rules)
    if (!r.per_block && r.kind != TensorKind::Embed) visit(r, -1);
}

void for_each_tensor(const Config& c, const Weights& w, const std::function<void(const TensorRef&)>& fn) {
  // TensorRef holds a non-const reference; the callback only receives it as const.
  for_each_tensor(c, const_cast<Weights&>(w), [&](TensorRef& r) { fn(r); });
}

int64_t param_count(const Config& c) {
  int64_t n = 0;
  Weights none;
  none.blocks.resize(size_t(c.n_layers()));
  for_each_tensor(c, none, [&](TensorRef& r) { n += shape_numel(r.shape); });
  return n;
}

int64_t linear_param_count(const Config& c) {
  int64_t n = int64_t(c.vocab_size) * c.final_dim();  // the LM head, tied or not
  Weights none;
  none.blocks.resize(size_t(c.n_layers()));
  for_each_tensor(c, none, [&](TensorRef& r) {
    if (tensor_rule(r.kind).is_linear || r.kind == TensorKind::AttnShortcut || r.kind == TensorKind::MlpShortcut)
      n += shape_numel(r.shape);
  });
  return n;
}

Weights allocate_weights(const Config& c) {
  return allocate_weights(c, [](const TensorRef&) { return true; });
}

Weights allocate_weights(const Config& c, const std::function<bool(const TensorRef&)>& which) {
  Weights w;
  w.blocks.resize(c.n_layers());
  for_each_tensor(c, w, [&](TensorRef& r) {
    if (which(r)) r.tensor = Tensor::zeros(r.shape);
  });
  return w;
}

Weights zeros_like(const Config& c, const Weights& like) {
  return allocate_weights(c, [&](const TensorRef& r) { return weight_tensor(like, r.kind, r.layer).defined(); });
}

void check_weights(const Config& c, const Weights& w) {
  SEC_CHECK(int(w.blocks.size()) == c.n_layers(), "weights have ", w.blocks.size(), " blocks, config says ",
            c.n_layers());
  for_each_tensor(c, w, [](const TensorRef& r) {
    SEC_CHECK(r.tensor.defined(), "missing tensor ", r.name);
    SEC_CHECK(r.tensor.shape() == r.shape, "tensor ", r.name, " has shape ", shape_str(r.tensor.shape()),
              " but the config requires ", shape_str(r.shape));
    const bool linear = tensor_rule(r.kind).is_linear;  // a block linear may be held compressed
    SEC_CHECK(r.tensor.dtype() == DType::F32 || (linear && r.tensor.dtype() == DType::F32_SPARSE), "tensor ", r.name,
              " is ", dtype_name(r.tensor.dtype()), ", expected f32 in memory (f32-sparse for block linears)");
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
