// Architecture hyper-parameters of a Llama-family decoder. Head count, KV-head count and FFN size
// are stored per block because structured pruning makes them differ between blocks.
//
// The residual stream: block l reads the stream at point 2l (its input), its attention writes
// point 2l+1 (the middle) and its MLP point 2l+2 (its output = block l+1's input); the embedding
// writes point 0 and the final norm reads point 2L. A plain model has width `dim` at every point
// and adds each sub-layer's output to the stream in place. After a rotation (SliceGPT) a sub-layer
// may carry a shortcut matrix instead: point 2l+1 = x_2l . S_attn^T + attn(x_2l), and widths may
// differ between points (resid_dims).
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace sec {

struct RopeScaling {
  std::string type;  // "" (none), "linear", or "llama3"
  float factor = 1.f;
  float low_freq_factor = 1.f;       // llama3
  float high_freq_factor = 4.f;      // llama3
  int original_max_position = 8192;  // llama3
};

struct BlockDims {
  int n_heads = 0;             // 0: the block has no attention (and no attention tensors)
  int n_kv_heads = 0;          // 0 exactly when n_heads is 0
  int ffn_dim = 0;             // 0: the block has no MLP (and no MLP tensors)
  bool attn_shortcut = false;  // the attention's residual goes through a (mid, in) matrix
  bool mlp_shortcut = false;   // the MLP's residual goes through an (out, mid) matrix
  bool operator==(const BlockDims&) const = default;
};

struct Config {
  std::string architecture = "llama";  // "llama" (also TinyLlama, Mistral, SmolLM) or "qwen2"
  int dim = 0;                         // hidden size C (the residual width when resid_dims is empty)
  int vocab_size = 0;                  // V
  int head_dim = 0;                    // per-head size (same for q, k, v)
  int max_seq_len = 2048;
  std::vector<BlockDims> blocks;  // one per transformer block
  std::vector<int> resid_dims;    // widths at the residual points 0..2L; empty: `dim` everywhere
  // RMSNorm divides the sum of squares by this width instead of its own (0: its own). A sliced
  // model keeps the original width here, so slicing does not rescale the normalised values.
  int norm_mean_dim = 0;
  float norm_eps = 1e-5f;
  float rope_theta = 10000.f;
  RopeScaling rope_scaling;
  bool tied_embeddings = false;  // LM head shares the embedding matrix
  bool attn_bias = false;        // q/k/v projections have biases (Qwen2)
  int bos_token_id = 1;
  int eos_token_id = 2;
  // Provenance and other free-form facts carried to outputs (method, options, hashes...).
  std::map<std::string, std::string> provenance;

  int n_layers() const { return int(blocks.size()); }
  int q_dim(int layer) const { return blocks[layer].n_heads * head_dim; }
  int kv_dim(int layer) const { return blocks[layer].n_kv_heads * head_dim; }
  int n_resid_points() const { return 2 * n_layers() + 1; }
  int resid_width(int point) const { return resid_dims.empty() ? dim : resid_dims[size_t(point)]; }
  int block_in(int layer) const { return resid_width(2 * layer); }
  int block_mid(int layer) const { return resid_width(2 * layer + 1); }
  int block_out(int layer) const { return resid_width(2 * layer + 2); }
  int embed_dim() const { return resid_width(0); }                     // the embedding's width
  int final_dim() const { return resid_width(n_resid_points() - 1); }  // the final norm's and head's
  bool has_shortcuts() const;                                          // some block carries a shortcut matrix
  bool uniform_blocks() const;                                         // every block has the same dims
  // A plain Llama/Qwen2 in every runtime's sense: one width everywhere, no shortcut matrices, no
  // norm divisor (per-block head/FFN counts may still differ).
  bool plain_residual() const { return resid_dims.empty() && !has_shortcuts() && norm_mean_dim == 0; }
  void validate() const;  // throws Error describing the first inconsistency
};

// The RoPE inverse frequencies (head_dim/2 of them), with rope_scaling applied.
std::vector<float> rope_inv_freq(const Config& c);

}  // namespace sec
