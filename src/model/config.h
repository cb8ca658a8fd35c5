// Architecture hyper-parameters of a Llama-family decoder. Head count, KV-head count and FFN size
// are stored per block because structured pruning makes them differ between blocks.
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
  int n_heads = 0;
  int n_kv_heads = 0;
  int ffn_dim = 0;
  bool operator==(const BlockDims&) const = default;
};

struct Config {
  std::string architecture = "llama";  // "llama" (also TinyLlama, Mistral, SmolLM) or "qwen2"
  int dim = 0;                         // hidden size C
  int vocab_size = 0;                  // V
  int head_dim = 0;                    // per-head size (same for q, k, v)
  int max_seq_len = 2048;
  std::vector<BlockDims> blocks;  // one per transformer block
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
  bool uniform_blocks() const;  // every block has the same dims
  int64_t n_params() const;     // distinct parameters (tied head counted once)
  void validate() const;        // throws Error describing the first inconsistency
};

// The RoPE inverse frequencies (head_dim/2 of them), with rope_scaling applied.
std::vector<float> rope_inv_freq(const Config& c);

}  // namespace sec
