#include "testing/reference_io.h"

#include <fstream>
#include <nlohmann/json.hpp>

namespace sec::testing {

void write_reference_model(const Model& m, const std::string& dir) {
  const Config& c = m.config;
  nlohmann::json cfg = {{"dim", c.dim},
                        {"vocab_size", c.vocab_size},
                        {"head_dim", c.head_dim},
                        {"norm_eps", c.norm_eps},
                        {"rope_theta", c.rope_theta},
                        {"tied_embeddings", c.tied_embeddings},
                        {"attn_bias", c.attn_bias},
                        {"norm_mean_dim", c.norm_mean_dim}};
  for (const auto& b : c.blocks)
    cfg["blocks"].push_back({{"n_heads", b.n_heads}, {"n_kv_heads", b.n_kv_heads}, {"ffn_dim", b.ffn_dim}});
  if (!c.rope_scaling.type.empty())
    cfg["rope_scaling"] = {{"type", c.rope_scaling.type},
                           {"factor", c.rope_scaling.factor},
                           {"low_freq_factor", c.rope_scaling.low_freq_factor},
                           {"high_freq_factor", c.rope_scaling.high_freq_factor},
                           {"original_max_position", c.rope_scaling.original_max_position}};
  nlohmann::json tensors = nlohmann::json::array();
  std::ofstream data(dir + "/weights.f32", std::ios::binary);
  int64_t offset = 0;
  for_each_tensor(c, m.weights, [&](const TensorRef& r) {
    tensors.push_back({{"name", r.name}, {"shape", r.tensor.shape()}, {"offset", offset}});
    data.write(reinterpret_cast<const char*>(r.tensor.f32()), std::streamsize(r.tensor.nbytes()));
    offset += r.tensor.numel();
  });
  std::ofstream(dir + "/manifest.json") << nlohmann::json{{"config", cfg}, {"tensors", tensors}}.dump(1);
}

}  // namespace sec::testing
