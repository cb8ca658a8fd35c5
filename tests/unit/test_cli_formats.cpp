// The info / convert / init commands: outputs, exit codes, and error messages on stderr (never a crash).
#include <cmath>
#include <cstring>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/file.h"
#include "io/gguf.h"
#include "io/safetensors.h"
#include "model/model_io.h"
#include "testing/testing.h"

namespace sec {
namespace {

using testing::run_cli;

const char* kTinyConfig = R"({"model_type":"llama","hidden_size":32,"intermediate_size":48,"num_hidden_layers":4,
  "num_attention_heads":4,"num_key_value_heads":2,"vocab_size":64,"rms_norm_eps":1e-5,"max_position_embeddings":128})";

TEST(CliFormats, InitConvertInfo) {
  testing::TempDir d;
  write_file_atomic(d.file("config.json"), kTinyConfig);
  auto r = run_cli({"init", "--config", d.file("config.json"), "-o", d.file("m.gguf"), "--seed", "3", "--layers", "2"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  Model m = load_model(d.file("m.gguf"));
  EXPECT_EQ(m.config.n_layers(), 2);
  EXPECT_EQ(m.config.provenance.at("seed"), "3");
  // Same seed, same weights; a different format by --to.
  r = run_cli({"init", "--config", d.file("config.json"), "-o", d.file("hf"), "--seed", "3", "--layers", "2"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_FALSE(file_exists(d.file("hf/tokenizer.json")));  // init makes no tokenizer
  Model h = load_model(d.file("hf"));
  EXPECT_EQ(h.weights.blocks[1].w_down.to_vector(), m.weights.blocks[1].w_down.to_vector());

  r = run_cli({"convert", d.file("hf"), "-o", d.file("c.gguf"), "--dtype", "bf16"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  GgufFile g(d.file("c.gguf"));
  EXPECT_EQ(g.find_tensor("blk.0.ffn_up.weight")->dtype, DType::BF16);
  EXPECT_EQ(g.find_tensor("blk.0.ffn_norm.weight")->dtype, DType::F32);
  EXPECT_EQ(g.get_int("general.file_type"), 32);
  r = run_cli({"convert", d.file("c.gguf"), "-o", d.file("c2"), "--dtype", "f16"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  SafetensorsFile c2(d.file("c2/model.safetensors"));
  EXPECT_EQ(c2.find("model.embed_tokens.weight")->dtype, DType::F16);
  EXPECT_EQ(c2.find("model.norm.weight")->dtype, DType::F32);
  r = run_cli({"convert", d.file("c2"), "-o", d.file("c3"), "--to", "gguf"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(detect_model_format(d.file("c3")), ModelFormat::GGUF);

  r = run_cli({"info", d.file("c.gguf")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("llama"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("gguf (bf16 weights)"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("(all alike)"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find(sha256_file(d.file("c.gguf"))), std::string::npos) << r.out;
  r = run_cli({"info", d.file("hf"), "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["n_layers"], 2);
  EXPECT_EQ(j["format"], "hf");
  EXPECT_EQ(j["n_params"], param_count(m.config));
  EXPECT_EQ(j["tokenizer"]["kind"], "none");
  EXPECT_EQ(j["blocks"].size(), 2u);
}

TEST(CliFormats, InfoWarnsAboutNonFinite) {
  testing::TempDir d;
  write_file_atomic(d.file("config.json"), kTinyConfig);
  ASSERT_EQ(run_cli({"init", "--config", d.file("config.json"), "-o", d.file("hf"), "--layers", "1"}).exit_code, 0);
  SafetensorsFile f(d.file("hf/model.safetensors"));
  std::vector<std::pair<std::string, Tensor>> ts;
  for (const auto& t : f.tensors()) {
    Tensor x = f.read_f32(t);
    if (t.name == "model.layers.0.mlp.up_proj.weight") x.f32()[5] = NAN, x.f32()[6] = INFINITY;
    ts.emplace_back(t.name, x);
  }
  write_safetensors(d.file("hf/model.safetensors"), ts, {});
  auto r = run_cli({"info", d.file("hf")});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("model.layers.0.mlp.up_proj.weight has 2 NaN/Inf"), std::string::npos) << r.err;
}

TEST(CliFormats, PerBlockTable) {
  testing::TempDir d;
  auto j = nlohmann::json::parse(kTinyConfig);
  j["secateur_layers"] = {{{"num_attention_heads", 4}, {"num_key_value_heads", 2}, {"intermediate_size", 48}},
                          {{"num_attention_heads", 2}, {"num_key_value_heads", 1}, {"intermediate_size", 20}},
                          {{"num_attention_heads", 2}, {"num_key_value_heads", 1}, {"intermediate_size", 20}},
                          {{"num_attention_heads", 4}, {"num_key_value_heads", 2}, {"intermediate_size", 48}}};
  write_file_atomic(d.file("config.json"), j.dump());
  ASSERT_EQ(run_cli({"init", "--config", d.file("config.json"), "-o", d.file("p.gguf")}).exit_code, 0);
  auto r = run_cli({"info", d.file("p.gguf")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("1-2"), std::string::npos) << r.out;  // blocks 1 and 2 collapsed into one row
  EXPECT_EQ(r.out.find("(all alike)"), std::string::npos) << r.out;
}

TEST(CliFormats, ErrorsExitNonZeroWithMessage) {
  testing::TempDir d;
  auto expect_fail = [](const testing::CommandResult& r, const std::string& needle) {
    EXPECT_NE(r.exit_code, 0);
    EXPECT_LT(r.exit_code, 128) << "crashed: " << r.err;  // a signal would be 128 + n
    EXPECT_NE(r.err.find(needle), std::string::npos) << r.err;
  };
  expect_fail(run_cli({"info", d.file("absent.gguf")}), "absent.gguf");
  write_file_atomic(d.file("bad.gguf"), "GGUF\x03\0\0\0garbage");
  expect_fail(run_cli({"info", d.file("bad.gguf")}), "bad.gguf");
  write_file_atomic(d.file("bad.bin"), std::string(40, '\x01'));
  expect_fail(run_cli({"info", d.file("bad.bin")}), "bad.bin");
  write_file_atomic(d.file("config.json"), kTinyConfig);
  expect_fail(run_cli({"init", "--config", d.file("config.json"), "-o", d.file("x"), "--layers", "9"}), "--layers");
  expect_fail(run_cli({"init", "--config", d.file("config.json"), "-o", d.file("x"), "--dtype", "q4"}), "q4");
  expect_fail(run_cli({"init", "--config", d.file("nope.json"), "-o", d.file("x")}), "nope.json");
  ASSERT_EQ(run_cli({"init", "--config", d.file("config.json"), "-o", d.file("ok.gguf"), "--layers", "1"}).exit_code,
            0);
  expect_fail(run_cli({"convert", d.file("ok.gguf"), "-o", d.file("o"), "--to", "onnx"}), "onnx");
  // A failed conversion leaves no output file behind.
  expect_fail(run_cli({"convert", d.file("bad.gguf"), "-o", d.file("o.gguf")}), "bad.gguf");
  EXPECT_FALSE(file_exists(d.file("o.gguf")));
}

TEST(CliFormats, StoriesInfo) {
  SEC_REQUIRE_SHARED("models/stories260K/stories260K.bin");
  auto r = run_cli({"info", testing::shared_path("models/stories260K/stories260K.bin"), "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["n_params"], 260032);
  EXPECT_EQ(j["tied_embeddings"], true);
  EXPECT_EQ(j["tokenizer"]["vocab_size"], 512);
  EXPECT_EQ(j["tokenizer"]["kind"], "sentencepiece");
  EXPECT_EQ(j["sha256"], "b0a507e7ad0f626624f17112325e66691f9076d622e1d3274d103d00299f2696");
}

}  // namespace
}  // namespace sec
