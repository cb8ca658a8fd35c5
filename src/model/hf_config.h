// Hugging Face config.json <-> Config.
//
// Read: model_type llama / mistral / qwen2 (qwen2 implies q/k/v biases unless attention_bias says
// otherwise); hidden_size, intermediate_size, num_hidden_layers, num_attention_heads,
// num_key_value_heads (default: num_attention_heads), head_dim (default hidden/heads), rms_norm_eps,
// rope_theta, rope_scaling {rope_type|type: linear | llama3 | default}, tie_word_embeddings,
// attention_bias, vocab_size, max_position_embeddings, bos_token_id, eos_token_id (first of a list).
// Per-block dims: when blocks differ, the file ALSO carries "secateur_layers": [{"num_attention_heads",
// "num_key_value_heads", "intermediate_size"}, ...] (one per layer), and the plain HF fields hold the
// maximum over blocks (Transformers itself cannot build such a model; secateur and GGUF can).
// A rotated / sliced model (SliceGPT, shortcut matrices) is model_type "secateur_slicegpt" (which
// Transformers refuses rather than misreads) with "base_model_type" llama | qwen2,
// "secateur_residual": {"widths": [2L+1], "attn_shortcut": [L bools], "mlp_shortcut": [L bools],
// "norm_mean_dim": n} and always "secateur_layers".
// Provenance travels as the "secateur_provenance" object of strings.
#pragma once
#include <nlohmann/json.hpp>
#include <string>

#include "model/config.h"

namespace sec {

inline constexpr const char* kSlicedModelType = "secateur_slicegpt";

// `where` names the file in error messages.
Config config_from_hf_json(const nlohmann::json& j, const std::string& where);
// What every model reader checks on the Config it built from a file, beyond Config::validate():
// at most kMaxLayers blocks, max_seq_len >= 1, heads x head_dim within an int, positive RoPE
// scaling parameters. Throws Error prefixed with `where`.
constexpr int kMaxLayers = 100000;
void check_config_from_file(const Config& c, const std::string& where);
Config read_hf_config(const std::string& path);  // path of config.json (or the directory)
nlohmann::ordered_json config_to_hf_json(const Config& c);
void write_hf_config(const Config& c, const std::string& path);  // atomic

}  // namespace sec
