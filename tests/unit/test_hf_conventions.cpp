// HF directories as Transformers reads them (docs/formats.md, "HF directories and Transformers"):
//  - q/k/v biases are Qwen2's layout: such a model is written as model_type qwen2 (with a warning
//    when it was a Llama), never as a Llama with attention_bias (which means o_proj biases too);
//  - reading a Llama with attention_bias: o_proj.bias tensors are refused by name; without them the
//    q/k/v biases are read, with a warning;
//  - no lm_head.weight with an untied config is an error (Transformers would initialise the head
//    randomly), tied configs need no head;
//  - writing a model whose blocks differ, or a sliced one, warns that Transformers cannot build it.
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/file.h"
#include "io/safetensors.h"
#include "model/init.h"
#include "model/model_io.h"
#include "testing/testing.h"

namespace sec {
namespace {

using json = nlohmann::json;
using testing::run_cli;

json read_json(const std::string& path) { return json::parse(read_text_file(path)); }

// Runs fn, expecting a sec::Error whose message contains every needle.
template <class F>
void expect_error(F fn, const std::vector<std::string>& needles) {
  try {
    fn();
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    for (const auto& n : needles) EXPECT_NE(std::string(e.what()).find(n), std::string::npos) << e.what();
  }
}

// Rewrites an HF directory's safetensors with `add` tensors added (and `drop` names removed).
void rewrite_tensors(const std::string& dir, const std::vector<std::pair<std::string, Tensor>>& add,
                     const std::string& drop = "") {
  std::vector<std::pair<std::string, Tensor>> ts;
  {
    SafetensorsFile f(dir + "/model.safetensors");
    for (const auto& t : f.tensors())
      if (t.name != drop) ts.emplace_back(t.name, f.read_f32(t));
  }
  ts.insert(ts.end(), add.begin(), add.end());
  write_safetensors(dir + "/model.safetensors", ts, {});
}

void edit_config(const std::string& dir, const std::function<void(json&)>& fn) {
  json j = read_json(dir + "/config.json");
  fn(j);
  write_file_atomic(dir + "/config.json", j.dump(2));
}

TEST(HfConventions, LlamaWithQkvBiasesIsWrittenAsQwen2) {
  testing::TempDir d;
  Config c = testing::tiny_config(4, 2, false, true);
  ASSERT_EQ(c.architecture, "llama");
  Model m = init_random_model(c, 3);
  ::testing::internal::CaptureStderr();
  save_model(m, d.file("hf"), SaveOptions{});
  std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_NE(err.find("written as model_type qwen2"), std::string::npos) << err;
  json cfg = read_json(d.file("hf/config.json"));
  EXPECT_EQ(cfg["model_type"], "qwen2");
  EXPECT_EQ(cfg["architectures"][0], "Qwen2ForCausalLM");
  SafetensorsFile f(d.file("hf/model.safetensors"));
  EXPECT_NE(f.find("model.layers.0.self_attn.q_proj.bias"), nullptr);
  EXPECT_EQ(f.find("model.layers.0.self_attn.o_proj.bias"), nullptr);
  Model back = load_model(d.file("hf"));
  EXPECT_EQ(back.config.architecture, "qwen2");
  EXPECT_TRUE(back.config.attn_bias);
  EXPECT_EQ(back.weights.blocks[1].bk.to_vector(), m.weights.blocks[1].bk.to_vector());
  // A Qwen2 with biases is written as it is, without a warning; one without biases is a Llama.
  ::testing::internal::CaptureStderr();
  save_model(back, d.file("hf2"), SaveOptions{});
  err = ::testing::internal::GetCapturedStderr();
  EXPECT_EQ(err.find("warning"), std::string::npos) << err;
  Config q = testing::tiny_config(4, 2, false, false);
  q.architecture = "qwen2";
  ::testing::internal::CaptureStderr();
  save_model(init_random_model(q, 4), d.file("hf3"), SaveOptions{});
  err = ::testing::internal::GetCapturedStderr();
  EXPECT_NE(err.find("written as model_type llama"), std::string::npos) << err;
  EXPECT_EQ(read_json(d.file("hf3/config.json"))["model_type"], "llama");
}

TEST(HfConventions, LlamaAttentionBiasWithOProjBiasIsRefused) {
  testing::TempDir d;
  Config c = testing::tiny_config(4, 2, false, true);
  c.architecture = "qwen2";
  save_model(init_random_model(c, 3), d.file("hf"), SaveOptions{});
  // What Transformers writes for a Llama with attention_bias: q/k/v and o_proj biases.
  edit_config(d.file("hf"), [](json& j) {
    j["model_type"] = "llama";
    j["architectures"] = {"LlamaForCausalLM"};
    j["attention_bias"] = true;
  });
  // Without o_proj biases it reads (what Transformers computes too: it zero-initialises them), warning.
  ::testing::internal::CaptureStderr();
  Model m = load_model(d.file("hf"));
  std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_TRUE(m.config.attn_bias);
  EXPECT_NE(err.find("no o_proj biases"), std::string::npos) << err;
  // With them: an error naming the tensor and what is unsupported.
  std::vector<std::pair<std::string, Tensor>> ob;
  for (int l = 0; l < 3; l++) ob.emplace_back(cat("model.layers.", l, ".self_attn.o_proj.bias"), Tensor::zeros({48}));
  rewrite_tensors(d.file("hf"), ob);
  expect_error([&] { load_model(d.file("hf")); },
               {"o_proj.bias", "not supported", "q/k/v biases", "attention_bias", d.file("hf")});
  auto r = run_cli({"info", d.file("hf")});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("o_proj.bias is not supported"), std::string::npos) << r.err;
}

TEST(HfConventions, MissingHeadWithUntiedConfigIsAnError) {
  testing::TempDir d;
  Config c = testing::tiny_config(4, 4, false, false);
  save_model(init_random_model(c, 2), d.file("hf"), SaveOptions{});
  rewrite_tensors(d.file("hf"), {}, "lm_head.weight");
  expect_error([&] { load_model(d.file("hf")); }, {"lm_head.weight", "tie_word_embeddings false", "randomly"});
  // The same when the key is absent (Llama's default is untied).
  edit_config(d.file("hf"), [](json& j) { j.erase("tie_word_embeddings"); });
  expect_error([&] { load_model(d.file("hf")); }, {"lm_head.weight", "tie_word_embeddings"});
  // Tied: no head needed, and one that is there is ignored (as Transformers does).
  edit_config(d.file("hf"), [](json& j) { j["tie_word_embeddings"] = true; });
  EXPECT_TRUE(load_model(d.file("hf")).config.tied_embeddings);
}

const char* kPerBlockConfig = R"({"model_type":"llama","hidden_size":32,"intermediate_size":48,"num_hidden_layers":2,
  "num_attention_heads":4,"num_key_value_heads":2,"vocab_size":64,"max_position_embeddings":128,
  "secateur_layers":[{"num_attention_heads":4,"num_key_value_heads":2,"intermediate_size":48},
                     {"num_attention_heads":2,"num_key_value_heads":1,"intermediate_size":20}]})";

TEST(HfConventions, WarnsWhenTransformersCannotBuildTheModel) {
  testing::TempDir d;
  write_file_atomic(d.file("pb.json"), kPerBlockConfig);
  auto r = run_cli({"init", "--config", d.file("pb.json"), "-o", d.file("pb")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("warning"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("Transformers cannot build this model; secateur and llama.cpp (GGUF) can"), std::string::npos)
      << r.err;
  EXPECT_TRUE(read_json(d.file("pb/config.json")).contains("secateur_layers"));
  // GGUF (deci) is what llama.cpp runs: no warning.
  r = run_cli({"init", "--config", d.file("pb.json"), "-o", d.file("pb.gguf")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.err.find("warning"), std::string::npos) << r.err;
  // Uniform blocks: a plain config, no warning.
  json uniform = json::parse(kPerBlockConfig);
  uniform.erase("secateur_layers");
  write_file_atomic(d.file("u.json"), uniform.dump());
  r = run_cli({"init", "--config", d.file("u.json"), "-o", d.file("u")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.err.find("warning"), std::string::npos) << r.err;
  EXPECT_FALSE(read_json(d.file("u/config.json")).contains("secateur_layers"));
  // A rotated / sliced model (SliceGPT with shortcut matrices).
  json sliced = json::parse(kPerBlockConfig);
  sliced["model_type"] = "secateur_slicegpt";
  sliced["base_model_type"] = "llama";
  sliced["secateur_residual"] = {{"widths", {24, 24, 24, 24, 24}},
                                 {"attn_shortcut", {true, true}},
                                 {"mlp_shortcut", {true, true}},
                                 {"norm_mean_dim", 32}};
  sliced["hidden_size"] = 24;
  write_file_atomic(d.file("s.json"), sliced.dump());
  r = run_cli({"init", "--config", d.file("s.json"), "-o", d.file("s")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("secateur_slicegpt"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("Transformers and llama.cpp cannot build this model"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace sec
