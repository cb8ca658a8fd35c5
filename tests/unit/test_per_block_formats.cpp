// Models whose blocks differ (structured pruning) through both output formats and back, exactly:
// GGUF "deci" (llama.cpp's per-layer architecture; see docs/formats.md and model_io.cpp), the
// placeholders it needs, secateur's older "llama"+arrays files, and HF config.json with
// "secateur_layers". That llama.cpp itself runs these files is tests/model/test_llamacpp.cpp.
#include <cstring>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/file.h"
#include "io/gguf.h"
#include "model/forward.h"
#include "model/init.h"
#include "model/model_io.h"
#include "testing/testing.h"

namespace sec {
namespace {

using nlohmann::json;

Config per_block(bool bias) {
  Config c = testing::tiny_config(4, 2, false, bias);
  c.architecture = bias ? "qwen2" : "llama";
  c.head_dim = 8;  // heads * head_dim != dim: key_length must be explicit
  c.blocks = {{4, 2, 72}, {2, 1, 30}, {6, 3, 50}};
  return c;
}

Model save_load(const Model& m, const std::string& path, DType dtype = DType::F32) {
  SaveOptions so;
  so.format = path.size() > 5 && path.substr(path.size() - 5) == ".gguf" ? ModelFormat::GGUF : ModelFormat::HF;
  so.dtype = dtype;
  save_model(m, path, so);
  return load_model(path);
}

// The norm of a removed attention / FFN is not stored (llama.cpp's deci has no such tensor); the
// reader gives 1. (Such tensors stop being part of the model with the zero-size for_each_tensor.)
bool removed_norm(const Config& c, const TensorRef& r) {
  if (r.layer < 0) return false;
  const BlockDims& b = c.blocks[size_t(r.layer)];
  return (r.kind == TensorKind::AttnNorm && b.n_heads == 0) || (r.kind == TensorKind::FfnNorm && b.ffn_dim == 0);
}

// Same config fields and every tensor bit-identical.
void expect_identical(const Model& a, const Model& b) {
  EXPECT_EQ(a.config.architecture, b.config.architecture);
  EXPECT_EQ(a.config.attn_bias, b.config.attn_bias);
  EXPECT_EQ(a.config.blocks, b.config.blocks);
  EXPECT_EQ(a.config.head_dim, b.config.head_dim);
  EXPECT_EQ(a.config.dim, b.config.dim);
  EXPECT_EQ(a.config.vocab_size, b.config.vocab_size);
  EXPECT_EQ(a.config.tied_embeddings, b.config.tied_embeddings);
  EXPECT_EQ(a.config.max_seq_len, b.config.max_seq_len);
  std::vector<std::pair<std::string, const Tensor*>> ta, tb;
  for_each_tensor(a.config, a.weights, [&](const TensorRef& r) {
    if (!removed_norm(a.config, r)) ta.emplace_back(r.name, &r.tensor);
  });
  for_each_tensor(b.config, b.weights, [&](const TensorRef& r) {
    if (!removed_norm(b.config, r)) tb.emplace_back(r.name, &r.tensor);
  });
  ASSERT_EQ(ta.size(), tb.size());
  for (size_t i = 0; i < ta.size(); i++) {
    ASSERT_EQ(ta[i].first, tb[i].first);
    ASSERT_EQ(ta[i].second->shape(), tb[i].second->shape()) << ta[i].first;
    EXPECT_EQ(0, std::memcmp(ta[i].second->raw(), tb[i].second->raw(), ta[i].second->nbytes())) << ta[i].first;
  }
}

TEST(PerBlockFormats, GgufDeciRoundTripIsExact) {
  testing::TempDir d;
  for (bool bias : {false, true}) {
    SCOPED_TRACE(bias ? "qwen2-style" : "llama");
    Model m = init_random_model(per_block(bias), 3, 0.1f, 0.1f);
    Model back = save_load(m, d.file("m.gguf"));
    expect_identical(m, back);
    GgufFile f(d.file("m.gguf"));
    EXPECT_EQ(f.get_string("general.architecture"), "deci");
    EXPECT_EQ(f.find("deci.attention.head_count")->ints, (std::vector<int64_t>{4, 2, 6}));
    EXPECT_EQ(f.find("deci.attention.head_count_kv")->ints, (std::vector<int64_t>{2, 1, 3}));
    EXPECT_EQ(f.find("deci.feed_forward_length")->ints, (std::vector<int64_t>{72, 30, 50}));
    EXPECT_EQ(f.get_int("deci.attention.key_length"), 8);
    EXPECT_EQ(f.get_int("deci.attention.value_length"), 8);
    EXPECT_EQ(f.get_int("deci.rope.dimension_count"), 8);
    EXPECT_EQ(f.find("secateur.placeholder_ffn_blocks"), nullptr);
    EXPECT_EQ(f.find_tensor("blk.1.attn_q.bias") != nullptr, bias);
    // deci uses llama's interleaved RoPE: q rows (and their biases) are permuted like "llama".
    const Tensor& wq = m.weights.blocks[1].wq;
    EXPECT_EQ(f.read_f32(*f.find_tensor("blk.1.attn_q.weight")).to_vector(),
              rope_rows_to_interleaved(wq, 2).to_vector());
    if (bias) {
      EXPECT_EQ(f.read_f32(*f.find_tensor("blk.2.attn_k.bias")).to_vector(),
                rope_rows_to_interleaved(m.weights.blocks[2].bk, 3).to_vector());
    }
  }
}

TEST(PerBlockFormats, GgufDeciHalfPrecisionRoundTrip) {
  testing::TempDir d;
  Model m = init_random_model(per_block(false), 4, 0.1f, 0.1f);
  Model f16 = save_load(m, d.file("h.gguf"), DType::F16);
  EXPECT_EQ(f16.config.blocks, m.config.blocks);
  EXPECT_EQ(f16.source.file_dtype, DType::F16);
  // Saving the f16-rounded weights again is lossless.
  Model again = save_load(f16, d.file("h2.gguf"), DType::F16);
  expect_identical(f16, again);
}

// secateur wrote per-block models as "llama" with per-layer arrays before it wrote "deci"
// (llama.cpp rejects those: its llama loader sizes every block from layer 0). It still reads them.
TEST(PerBlockFormats, ReadsOlderLlamaArchWithArrays) {
  testing::TempDir d;
  Model m = init_random_model(per_block(false), 5, 0.1f, 0.1f);
  SaveOptions so;
  so.format = ModelFormat::GGUF;
  save_model(m, d.file("deci.gguf"), so);
  GgufFile g(d.file("deci.gguf"));
  GgufWriter w;
  for (const auto& [k, v] : g.metadata()) {
    if (k == "general.architecture")
      w.set(k, GgufValue::string("llama"));
    else
      w.set(k.rfind("deci.", 0) == 0 ? "llama." + k.substr(5) : k, v);
  }
  for (const auto& t : g.tensors()) w.add_tensor(t.name, g.read_f32(t));
  w.write(d.file("llama.gguf"));
  Model old = load_model(d.file("llama.gguf"));
  expect_identical(m, old);
}

// A block with attention but FFN 0 is stored with a zero FFN of width 1 (llama.cpp's deci graph
// drops the attention of FFN-free blocks); the reader turns it back into FFN 0.
TEST(PerBlockFormats, FfnPlaceholderRoundTrip) {
  testing::TempDir d;
  Config c = per_block(false);
  c.blocks[1].ffn_dim = 0;
  Model m = init_random_model(c, 6, 0.1f, 0.1f);
  Model back = save_load(m, d.file("p.gguf"));
  expect_identical(m, back);
  GgufFile f(d.file("p.gguf"));
  EXPECT_EQ(f.find("deci.feed_forward_length")->ints, (std::vector<int64_t>{72, 1, 50}));
  EXPECT_EQ(f.find("secateur.placeholder_ffn_blocks")->ints, (std::vector<int64_t>{1}));
  EXPECT_EQ(f.find_tensor("blk.1.ffn_down.weight")->shape, (Shape{16 * 3, 1}));
  EXPECT_EQ(f.read_f32(*f.find_tensor("blk.1.ffn_norm.weight")).to_vector(), std::vector<float>(48, 1.f));
  // The same logits as the model itself (the placeholder is exactly zero).
  std::vector<int32_t> toks = testing::random_tokens(9, c.vocab_size, 1);
  Tensor a = model_forward(m, toks, 1, 9), b = model_forward(back, toks, 1, 9);
  EXPECT_EQ(a.to_vector(), b.to_vector());
}

// A placeholder must be zero: a file whose placeholder FFN computes something is rejected.
TEST(PerBlockFormats, NonZeroPlaceholderIsAnError) {
  testing::TempDir d;
  Config c = per_block(false);
  c.blocks[2].ffn_dim = 0;
  SaveOptions so;
  so.format = ModelFormat::GGUF;
  save_model(init_random_model(c, 7, 0.1f, 0.1f), d.file("p.gguf"), so);
  GgufFile g(d.file("p.gguf"));
  GgufWriter w;
  for (const auto& [k, v] : g.metadata()) w.set(k, v);
  for (const auto& t : g.tensors()) {
    Tensor x = g.read_f32(t);
    if (t.name == "blk.2.ffn_down.weight") x.f32()[3] = 0.5f;
    w.add_tensor(t.name, x);
  }
  w.write(d.file("bad.gguf"));
  try {
    load_model(d.file("bad.gguf"));
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("blk.2.ffn_down.weight of placeholder block 2 is not zero"), std::string::npos)
        << e.what();
  }
}

// Blocks without attention / FFN, including block 0 (stored with a one-head zero attention, since
// llama.cpp takes the head size from block 0) and the identity block. DISABLED until the lead's
// for_each_tensor change (zero-size tensors are not part of the model) is merged; it passes on this
// branch against the current for_each_tensor too (--gtest_also_run_disabled_tests).
TEST(PerBlockFormats, BlocksWithoutAttentionOrFfnRoundTrip) {
  testing::TempDir d;
  for (bool bias : {false, true}) {
    SCOPED_TRACE(bias ? "qwen2-style" : "llama");
    Config c = per_block(bias);
    c.blocks = {{0, 0, 72}, {4, 2, 0}, {0, 0, 0}, {2, 1, 30}};
    Model m = init_random_model(c, 8, 0.1f, 0.1f);
    Model back = save_load(m, d.file("z.gguf"));
    expect_identical(m, back);
    GgufFile f(d.file("z.gguf"));
    EXPECT_EQ(f.find("deci.attention.head_count")->ints, (std::vector<int64_t>{1, 4, 0, 2}));
    EXPECT_EQ(f.find("deci.feed_forward_length")->ints, (std::vector<int64_t>{72, 1, 1, 30}));
    EXPECT_EQ(f.find("secateur.placeholder_attention_blocks")->ints, (std::vector<int64_t>{0}));
    EXPECT_EQ(f.find("secateur.placeholder_ffn_blocks")->ints, (std::vector<int64_t>{1, 2}));
    EXPECT_EQ(f.find_tensor("blk.2.attn_norm.weight"), nullptr);
    EXPECT_EQ(f.find_tensor("blk.0.attn_q.bias") != nullptr, bias);
    for (const auto& t : f.tensors()) EXPECT_GT(t.nbytes, 0u) << t.name << " is empty";
    std::vector<int32_t> toks = testing::random_tokens(9, c.vocab_size, 1);
    EXPECT_EQ(model_forward(m, toks, 1, 9).to_vector(), model_forward(back, toks, 1, 9).to_vector());
  }
}

// HF: a uniform model's config.json is a plain Llama / Qwen2 config; a per-block one keeps the
// maxima in the plain fields and lists every block in "secateur_layers" (Transformers cannot build
// such a model; secateur reloads it exactly).
TEST(PerBlockFormats, HfConfigUniformPlainPerBlockExact) {
  testing::TempDir d;
  for (bool bias : {false, true}) {
    SCOPED_TRACE(bias ? "qwen2" : "llama");
    Config u = testing::tiny_config(4, 2, false, bias);
    u.architecture = bias ? "qwen2" : "llama";
    Model um = init_random_model(u, 9, 0.1f);
    Model uback = save_load(um, d.file(bias ? "uq" : "ul"));
    expect_identical(um, uback);
    json uj = json::parse(read_text_file(d.file(bias ? "uq/config.json" : "ul/config.json")));
    EXPECT_EQ(uj["model_type"], bias ? "qwen2" : "llama");
    EXPECT_FALSE(uj.contains("secateur_layers"));
    EXPECT_EQ(uj["num_attention_heads"], 4);
    EXPECT_EQ(uj["num_key_value_heads"], 2);
    EXPECT_EQ(uj["intermediate_size"], 72);

    Model pm = init_random_model(per_block(bias), 10, 0.1f);
    Model pback = save_load(pm, d.file(bias ? "pq" : "pl"));
    expect_identical(pm, pback);
    json pj = json::parse(read_text_file(d.file(bias ? "pq/config.json" : "pl/config.json")));
    ASSERT_TRUE(pj.contains("secateur_layers"));
    EXPECT_EQ(pj["secateur_layers"].size(), 3u);
    EXPECT_EQ(pj["secateur_layers"][1]["num_attention_heads"], 2);
    EXPECT_EQ(pj["secateur_layers"][1]["num_key_value_heads"], 1);
    EXPECT_EQ(pj["secateur_layers"][1]["intermediate_size"], 30);
    EXPECT_EQ(pj["num_attention_heads"], 6);  // maxima
    EXPECT_EQ(pj["intermediate_size"], 72);
    // HF -> GGUF -> HF keeps the per-block model exactly.
    Model viag = save_load(pback, d.file(bias ? "pq.gguf" : "pl.gguf"));
    expect_identical(pm, viag);
  }
}

}  // namespace
}  // namespace sec
