// Model parameters and the ONE table of tensor names.
//
// Canonical names are Hugging Face's (model.layers.N.self_attn.q_proj.weight ...). The table below
// gives each tensor's GGUF name (llama.cpp's llama-arch names) and whether its rows carry the RoPE
// pair layout. Internally q/k rows are in HF "rotate-half" layout: within each head, dims i and
// i + head_dim/2 form a rotation pair. Meta / llama2.c / GGUF(llama) store "interleaved" pairs
// (2i, 2i+1); the permutation between the two is rope_rows_{to,from}_interleaved below and is
// applied only at load/save time of those formats.
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "model/config.h"

namespace sec {

struct BlockWeights {
  Tensor attn_norm;             // (C)
  Tensor wq, wk, wv, wo;        // (Hq*hd, C), (Hkv*hd, C), (Hkv*hd, C), (C, Hq*hd)
  Tensor bq, bk, bv;            // (Hq*hd), (Hkv*hd), (Hkv*hd) when config.attn_bias
  Tensor ffn_norm;              // (C)
  Tensor w_gate, w_up, w_down;  // (F, C), (F, C), (C, F)
};

struct Weights {
  Tensor embed;  // (V, C)
  std::vector<BlockWeights> blocks;
  Tensor final_norm;  // (C)
  Tensor lm_head;     // (V, C); undefined when config.tied_embeddings
  const Tensor& head() const { return lm_head.defined() ? lm_head : embed; }
};

enum class TensorKind { Embed, AttnNorm, Q, K, V, O, QBias, KBias, VBias, FfnNorm, Gate, Up, Down, FinalNorm, LmHead };

// Which RoPE head count a tensor's rows are grouped by (for the layout permutation).
enum class RopeRows { None, QueryHeads, KVHeads };

struct TensorNameRule {
  TensorKind kind;
  const char* hf;    // with "{L}" for the block index
  const char* gguf;  // with "{L}"
  RopeRows rope;
  bool is_linear;          // a block linear layer (what pruning methods act on by default)
  const char* short_name;  // q, k, v, o, gate, up, down (for --lora-targets etc.), else ""
};

const std::vector<TensorNameRule>& tensor_name_rules();
const TensorNameRule& tensor_rule(TensorKind kind);
std::string tensor_name_hf(TensorKind kind, int layer = -1);
std::string tensor_name_gguf(TensorKind kind, int layer = -1);

struct TensorRef {
  std::string name;  // canonical (HF) name
  TensorKind kind;
  int layer;  // -1 for non-block tensors
  Tensor& tensor;
  Shape shape;  // the shape the config requires
};

// Visits every tensor the config defines (optional ones only when present in the config), in a
// fixed order: embed, blocks 0..L-1 (norm, q, k, v, [biases], o, norm, gate, up, down), final norm,
// [lm_head]. This one list drives load, save, init, gradients, optimizer state, masks and LoRA.
void for_each_tensor(const Config& c, Weights& w, const std::function<void(TensorRef&)>& fn);
void for_each_tensor(const Config& c, const Weights& w, const std::function<void(const TensorRef&)>& fn);

// Allocates zero tensors of the right shapes for every entry.
Weights allocate_weights(const Config& c);

// Checks that every tensor is defined, f32, and has the shape the config requires.
void check_weights(const Config& c, const Weights& w);

// RoPE row layout conversion of a (rows = n_heads * head_dim, cols) matrix or a bias (cols = 1).
// interleaved (Meta/GGUF/llama2.c) <-> rotate-half (HF, internal). Works on any element size.
Tensor rope_rows_from_interleaved(const Tensor& t, int n_heads);
Tensor rope_rows_to_interleaved(const Tensor& t, int n_heads);

}  // namespace sec
