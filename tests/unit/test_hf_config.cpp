// HF config.json <-> Config: real configs, defaults, rope scaling, qwen2 biases, per-layer dims,
// provenance, and clear errors.
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/file.h"
#include "model/hf_config.h"
#include "model/weights.h"
#include "testing/testing.h"

namespace sec {
namespace {

using json = nlohmann::json;

Config parse(const std::string& s) { return config_from_hf_json(json::parse(s), "config.json"); }

TEST(HfConfig, TinyLlamaFile) {
  Config c = read_hf_config(std::string(SECATEUR_SOURCE_DIR) + "/configs/tinyllama-1.1b.json");
  EXPECT_EQ(c.architecture, "llama");
  EXPECT_EQ(c.dim, 2048);
  EXPECT_EQ(c.n_layers(), 22);
  EXPECT_EQ(c.blocks[0], (BlockDims{32, 4, 5632}));
  EXPECT_EQ(c.head_dim, 64);
  EXPECT_EQ(c.vocab_size, 32000);
  EXPECT_EQ(c.norm_eps, 1e-5f);
  EXPECT_EQ(c.rope_theta, 10000.f);
  EXPECT_FALSE(c.tied_embeddings);
  EXPECT_FALSE(c.attn_bias);
  EXPECT_EQ(c.max_seq_len, 2048);
  EXPECT_NEAR(double(param_count(c)), 1.1e9, 0.02e9);
  Config l7 = read_hf_config(std::string(SECATEUR_SOURCE_DIR) + "/configs/llama-7b.json");
  EXPECT_EQ(l7.blocks[0], (BlockDims{32, 32, 11008}));
  EXPECT_EQ(l7.dim, 4096);
  EXPECT_NEAR(double(param_count(l7)), 6.74e9, 0.01e9);
}

TEST(HfConfig, DefaultsAndVariants) {
  Config q = parse(R"({"model_type":"qwen2","hidden_size":64,"intermediate_size":128,"num_hidden_layers":2,
                       "num_attention_heads":4,"num_key_value_heads":2,"vocab_size":100,"tie_word_embeddings":true,
                       "eos_token_id":[7,8]})");
  EXPECT_EQ(q.architecture, "qwen2");
  EXPECT_TRUE(q.attn_bias);  // qwen2 has q/k/v biases by default
  EXPECT_TRUE(q.tied_embeddings);
  EXPECT_EQ(q.eos_token_id, 7);
  EXPECT_EQ(q.head_dim, 16);
  Config m = parse(R"({"model_type":"mistral","hidden_size":64,"intermediate_size":128,"num_hidden_layers":1,
                       "num_attention_heads":4,"vocab_size":100,"head_dim":32,
                       "rope_scaling":{"type":"linear","factor":2.0}})");
  EXPECT_EQ(m.architecture, "llama");
  EXPECT_EQ(m.blocks[0].n_kv_heads, 4);  // defaults to num_attention_heads
  EXPECT_EQ(m.head_dim, 32);
  EXPECT_EQ(m.rope_scaling.type, "linear");
  EXPECT_EQ(m.rope_scaling.factor, 2.f);
  Config l3 = parse(R"({"model_type":"llama","hidden_size":64,"intermediate_size":128,"num_hidden_layers":1,
                        "num_attention_heads":4,"vocab_size":100,"rope_theta":500000.0,
                        "rope_scaling":{"rope_type":"llama3","factor":32.0,"low_freq_factor":1.0,
                        "high_freq_factor":4.0,"original_max_position_embeddings":8192}})");
  EXPECT_EQ(l3.rope_scaling.type, "llama3");
  EXPECT_EQ(l3.rope_scaling.factor, 32.f);
  EXPECT_EQ(l3.rope_theta, 500000.f);
}

TEST(HfConfig, RoundTripPerLayerAndProvenance) {
  Config c = parse(R"({"model_type":"llama","hidden_size":64,"intermediate_size":128,"num_hidden_layers":3,
                       "num_attention_heads":4,"num_key_value_heads":2,"vocab_size":100,"rms_norm_eps":1e-5})");
  auto uniform = config_to_hf_json(c);
  EXPECT_FALSE(uniform.contains("secateur_layers"));       // plain HF when blocks agree
  EXPECT_EQ(uniform["rms_norm_eps"].get<double>(), 1e-5);  // written as 1e-05, not 9.99999974e-06
  c.blocks[1] = {2, 1, 40};
  c.blocks[2] = {4, 2, 0};
  c.provenance["method"] = "llm_pruner";
  c.provenance["seed"] = "3";
  c.rope_scaling = {"llama3", 8.f, 1.f, 4.f, 8192};
  testing::TempDir d;
  write_hf_config(c, d.file("config.json"));
  json j = json::parse(read_text_file(d.file("config.json")));
  EXPECT_EQ(j["secateur_layers"].size(), 3u);
  EXPECT_EQ(j["intermediate_size"], 128);  // the max over blocks
  EXPECT_EQ(j["secateur_provenance"]["method"], "llm_pruner");
  Config back = read_hf_config(d.file(""));  // the directory works too
  EXPECT_EQ(back.blocks, c.blocks);
  EXPECT_EQ(back.provenance, c.provenance);
  EXPECT_EQ(back.rope_scaling.type, "llama3");
  EXPECT_EQ(back.rope_scaling.factor, 8.f);
  EXPECT_EQ(back.norm_eps, c.norm_eps);
  EXPECT_EQ(back.head_dim, c.head_dim);
}

void expect_error(const std::string& s, const std::string& needle) {
  try {
    parse(s);
    FAIL() << "expected an error for " << s;
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("config.json"), std::string::npos) << e.what();
  }
}

TEST(HfConfig, Errors) {
  expect_error(R"({"model_type":"gpt2","hidden_size":64})", "uses LayerNorm");
  expect_error(R"({"model_type":"bert-like","hidden_size":64})", "unsupported model_type");
  expect_error(R"({"model_type":"llama","vocab_size":10})", "hidden_size");
  expect_error(R"({"model_type":"llama","hidden_size":"64","vocab_size":10})", "hidden_size");
  expect_error(R"({"model_type":"llama","hidden_size":64,"intermediate_size":128,"num_hidden_layers":1,
                  "num_attention_heads":3,"num_key_value_heads":2,"vocab_size":100,"head_dim":8})",
               "multiple");
  expect_error(R"({"model_type":"llama","hidden_size":64,"intermediate_size":128,"num_hidden_layers":2,
                  "num_attention_heads":4,"vocab_size":100,"secateur_layers":[]})",
               "secateur_layers");
  expect_error(R"({"model_type":"llama","hidden_size":64,"intermediate_size":128,"num_hidden_layers":1,
                  "num_attention_heads":4,"vocab_size":100,"rope_scaling":{"type":"yarn","factor":4}})",
               "yarn");
  testing::TempDir d;
  write_file_atomic(d.file("config.json"), "{not json");
  EXPECT_THROW(read_hf_config(d.file("config.json")), Error);
  EXPECT_THROW(read_hf_config(d.file("absent.json")), Error);
}

}  // namespace
}  // namespace sec
