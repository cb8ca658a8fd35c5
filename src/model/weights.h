// Model parameters and the ONE table that describes them.
//
// Each row of the table names a tensor (canonical names are Hugging Face's,
// model.layers.N.self_attn.q_proj.weight ...; the GGUF name is llama.cpp's) and says what each of its
// axes IS: the vocabulary, a point of the residual stream, query heads x head_dim, KV heads x
// head_dim, or MLP channels. Everything structural is derived from these descriptions and the
// Config: shapes, parameter counts, which tensors a model has, the dependency groups of structured
// pruning (model/structure.h) and the surgery that removes them (model/surgery.h).
//
// RoPE layout: internally q/k rows are in HF "rotate-half" layout: within each head, dims i and
// i + head_dim/2 form a rotation pair. Meta / llama2.c / GGUF(llama) store "interleaved" pairs
// (2i, 2i+1); the permutation between the two is rope_rows_{to,from}_interleaved below and is
// applied only at load/save time of those formats.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "model/config.h"

namespace sec {

struct BlockWeights {
  Tensor attn_norm;             // (Cin)
  Tensor wq, wk, wv, wo;        // (Hq*hd, Cin), (Hkv*hd, Cin), (Hkv*hd, Cin), (Cmid, Hq*hd)
  Tensor bq, bk, bv;            // (Hq*hd), (Hkv*hd), (Hkv*hd) when config.attn_bias
  Tensor attn_shortcut;         // (Cmid, Cin) when the block has one
  Tensor ffn_norm;              // (Cmid)
  Tensor w_gate, w_up, w_down;  // (F, Cmid), (F, Cmid), (Cout, F)
  Tensor mlp_shortcut;          // (Cout, Cmid) when the block has one
};

struct Weights {
  Tensor embed;  // (V, C0)
  std::vector<BlockWeights> blocks;
  Tensor final_norm;  // (C2L)
  Tensor lm_head;     // (V, C2L); undefined when config.tied_embeddings
  const Tensor& head() const { return lm_head.defined() ? lm_head : embed; }
};

enum class TensorKind {
  Embed,
  AttnNorm,
  Q,
  K,
  V,
  O,
  QBias,
  KBias,
  VBias,
  FfnNorm,
  Gate,
  Up,
  Down,
  FinalNorm,
  LmHead,
  AttnShortcut,  // appended: the values seed LoRA dropout, so existing ones keep their numbers
  MlpShortcut,
};

// What an axis of a tensor is. For block tensors ResidIn / ResidMid / ResidOut are the block's
// residual points 2l / 2l+1 / 2l+2; for the embedding ResidIn is point 0, for the final norm and
// the head ResidOut is point 2L.
enum class Axis { Vocab, ResidIn, ResidMid, ResidOut, QHeads, KVHeads, Ffn };
const char* axis_name(Axis a);

// The part of a block a tensor belongs to: a block without attention heads has no attention
// tensors, a block without MLP channels no MLP tensors.
enum class SubLayer { None, Attention, Mlp };

// Which RoPE head count a tensor's rows are grouped by (for the layout permutation).
enum class RopeRows { None, QueryHeads, KVHeads };

// A tensor that exists only when the config asks for it.
enum class Requires { Nothing, AttnBias, UntiedHead, AttnShortcut, MlpShortcut };

struct TensorNameRule {
  TensorKind kind;
  const char* hf;    // with "{L}" for the block index
  const char* gguf;  // with "{L}"
  bool per_block;
  SubLayer sub;
  Requires requires_;
  std::vector<Axis> axes;  // one per dimension, PyTorch order ([out, in] for a linear)
  RopeRows rope;
  bool is_linear;          // a block linear layer (what pruning methods act on by default)
  const char* short_name;  // q, k, v, o, gate, up, down (for --lora-targets etc.), else ""
};

const std::vector<TensorNameRule>& tensor_name_rules();
const TensorNameRule& tensor_rule(TensorKind kind);
std::string tensor_name_hf(TensorKind kind, int layer = -1);
std::string tensor_name_gguf(TensorKind kind, int layer = -1);

// The residual point an axis of a tensor refers to (-1 if it is not a residual axis).
int resid_point(const Config& c, Axis a, int layer);
// Size of an axis of a tensor of block `layer` (-1 for global tensors).
int64_t axis_size(const Config& c, Axis a, int layer);
// Whether the config has this tensor (block `layer`, or -1 for global tensors).
bool tensor_present(const Config& c, TensorKind kind, int layer);
Shape tensor_shape(const Config& c, TensorKind kind, int layer);

// Distinct parameters of the config's tensors (a tied head counted once).
int64_t param_count(const Config& c);
// Weights multiplied once per token: every block linear, every shortcut and the LM head.
int64_t linear_param_count(const Config& c);

struct TensorRef {
  std::string name;  // canonical (HF) name
  TensorKind kind;
  int layer;  // -1 for non-block tensors
  Tensor& tensor;
  Shape shape;  // the shape the config requires
};

// Visits every tensor the config has (tensor_present), in forward order: embed, blocks 0..L-1
// (norm, q, k, v, [biases], o, [shortcut], norm, gate, up, down, [shortcut]), final norm,
// [lm_head]. This one list drives load, save, init, gradients, optimizer state, masks and LoRA.
void for_each_tensor(const Config& c, Weights& w, const std::function<void(TensorRef&)>& fn);
void for_each_tensor(const Config& c, const Weights& w, const std::function<void(const TensorRef&)>& fn);
// The tensor of a kind in block `layer` (-1 for global tensors), present or not.
Tensor& weight_tensor(Weights& w, TensorKind kind, int layer);
const Tensor& weight_tensor(const Weights& w, TensorKind kind, int layer);

// Allocates zero tensors of the right shapes for every entry (for which `which` is true; the others
// stay undefined: a gradient set then leaves those tensors frozen).
Weights allocate_weights(const Config& c);
Weights allocate_weights(const Config& c, const std::function<bool(const TensorRef&)>& which);
// Zero tensors for exactly the tensors `w` has defined.
Weights zeros_like(const Config& c, const Weights& w);

// Checks that every tensor is defined, f32, and has the shape the config requires.
void check_weights(const Config& c, const Weights& w);

// RoPE row layout conversion of a (rows = n_heads * head_dim, cols) matrix or a bias (cols = 1).
// interleaved (Meta/GGUF/llama2.c) <-> rotate-half (HF, internal). Works on any element size.
Tensor rope_rows_from_interleaved(const Tensor& t, int n_heads);
Tensor rope_rows_to_interleaved(const Tensor& t, int n_heads);

}  // namespace sec
