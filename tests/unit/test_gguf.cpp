// GGUF: every metadata type through the writer and reader, tensor dims reversed on disk, custom
// alignment, version 2 files, the tokenizer metadata, and model-level GGUF saves (per-layer dims,
// qwen2 biases, llama3 rope_freqs, no-tokenizer placeholder).
#include <algorithm>
#include <cstring>

#include "core/error.h"
#include "core/file.h"
#include "io/gguf.h"
#include "model/init.h"
#include "model/model_io.h"
#include "testing/testing.h"

namespace sec {
namespace {

Tensor ramp(const Shape& s) {
  Tensor t = Tensor::empty(s);
  for (int64_t i = 0; i < t.numel(); i++) t.f32()[i] = float(i) * 0.5f - 1.f;
  return t;
}

TEST(Gguf, MetadataAndTensorsRoundTrip) {
  testing::TempDir d;
  GgufWriter w;
  auto scalar = [](GgufType t, int64_t v) {
    GgufValue x;
    x.type = t;
    x.i = v;
    return x;
  };
  w.set("u8", scalar(GgufType::U8, 200));
  w.set("i8", scalar(GgufType::I8, -100));
  w.set("u16", scalar(GgufType::U16, 60000));
  w.set("i16", scalar(GgufType::I16, -30000));
  w.set("u32", GgufValue::u32(4000000000u));
  w.set("i32", GgufValue::i32(-2000000000));
  w.set("u64", GgufValue::u64(uint64_t(1) << 40));
  w.set("i64", scalar(GgufType::I64, -(int64_t(1) << 40)));
  w.set("f32", GgufValue::f32(1.5f));
  GgufValue f64;
  f64.type = GgufType::F64;
  f64.f = 0.1;
  w.set("f64", f64);
  w.set("bool", GgufValue::boolean(true));
  w.set("str", GgufValue::string("héllo"));
  w.set("arr.str", GgufValue::array_str({"a", "", "ccc"}));
  w.set("arr.i32", GgufValue::array_i32({1, -2, 3}));
  w.set("arr.f32", GgufValue::array_f32({0.5, -1.25}));
  GgufValue nested;
  nested.type = GgufType::Array;
  nested.elem_type = GgufType::Array;
  nested.items = {GgufValue::array_u32({1, 2}), GgufValue::array_str({"x"})};
  w.set("arr.nested", nested);
  w.set("u32", GgufValue::u32(7));  // replaces the earlier value
  w.add_tensor("w", ramp({3, 5}));
  w.add_tensor("h", ramp({4}).to(DType::F16));
  w.add_tensor("b", ramp({2, 3, 4}).to(DType::BF16));
  w.write(d.file("t.gguf"), 64);

  GgufFile f(d.file("t.gguf"));
  EXPECT_EQ(f.version(), 3u);
  EXPECT_EQ(f.alignment(), 64u);
  EXPECT_EQ(f.get_int("u8"), 200);
  EXPECT_EQ(f.get_int("i8"), -100);
  EXPECT_EQ(f.get_int("u16"), 60000);
  EXPECT_EQ(f.get_int("i16"), -30000);
  EXPECT_EQ(f.get_int("u32"), 7);
  EXPECT_EQ(f.get_int("i32"), -2000000000);
  EXPECT_EQ(f.get_int("u64"), int64_t(1) << 40);
  EXPECT_EQ(f.get_int("i64"), -(int64_t(1) << 40));
  EXPECT_EQ(f.get_float("f32", 0), 1.5);
  EXPECT_EQ(f.get_float("f64", 0), 0.1);
  EXPECT_TRUE(f.get_bool("bool", false));
  EXPECT_EQ(f.get_string("str"), "héllo");
  EXPECT_EQ(f.find("arr.str")->strs, (std::vector<std::string>{"a", "", "ccc"}));
  EXPECT_EQ(f.find("arr.i32")->ints, (std::vector<int64_t>{1, -2, 3}));
  EXPECT_EQ(f.find("arr.f32")->floats, (std::vector<double>{0.5, -1.25}));
  ASSERT_EQ(f.find("arr.nested")->items.size(), 2u);
  EXPECT_EQ(f.find("arr.nested")->items[1].strs, std::vector<std::string>{"x"});
  EXPECT_EQ(f.get_int("missing", 42), 42);
  EXPECT_THROW(f.get_int("missing"), Error);
  EXPECT_THROW(f.get_int("str"), Error);
  ASSERT_EQ(f.tensors().size(), 3u);
  const GgufTensorInfo* t = f.find_tensor("w");
  EXPECT_EQ(t->shape, (Shape{3, 5}));
  EXPECT_EQ((t->offset) % 64, 0u);
  EXPECT_EQ(f.read_f32(*t).to_vector(), ramp({3, 5}).to_vector());
  EXPECT_EQ(f.find_tensor("h")->ggml_type, 1u);
  EXPECT_EQ(f.find_tensor("b")->ggml_type, 30u);
  EXPECT_EQ(f.find_tensor("b")->shape, (Shape{2, 3, 4}));
  EXPECT_EQ(f.read_f32(*f.find_tensor("b")).to_vector(), ramp({2, 3, 4}).to(DType::BF16).to_vector());

  // ggml order on disk: ne[0] is the innermost (row length) dimension.
  std::string bytes = read_text_file(d.file("t.gguf"));
  size_t p = bytes.find(std::string("\1\0\0\0\0\0\0\0w", 9));
  ASSERT_NE(p, std::string::npos);
  uint32_t nd;
  uint64_t ne[2];
  std::memcpy(&nd, bytes.data() + p + 9, 4);
  std::memcpy(ne, bytes.data() + p + 13, 16);
  EXPECT_EQ(nd, 2u);
  EXPECT_EQ(ne[0], 5u);
  EXPECT_EQ(ne[1], 3u);
}

TEST(Gguf, ReadsVersion2) {
  testing::TempDir d;
  GgufWriter w;
  w.set("general.architecture", GgufValue::string("llama"));
  w.add_tensor("x", ramp({2, 2}));
  w.write(d.file("v3.gguf"));
  std::string b = read_text_file(d.file("v3.gguf"));
  b[4] = 2;  // version 2 has the same layout as 3 (u64 counts)
  write_file_atomic(d.file("v2.gguf"), b);
  GgufFile f(d.file("v2.gguf"));
  EXPECT_EQ(f.version(), 2u);
  EXPECT_EQ(f.read_f32(*f.find_tensor("x")).to_vector(), ramp({2, 2}).to_vector());
}

TEST(Gguf, TokenizerMetadataRoundTrip) {
  for (auto kind : {TokenizerKind::SentencePiece, TokenizerKind::ByteLevelBpe}) {
    testing::TempDir d;
    TokenizerData t;
    t.kind = kind;
    t.tokens = {"<unk>", "<s>", "</s>", "a", "b", "ab"};
    t.types = {TokenType::Unknown, TokenType::Control, TokenType::Control,
               TokenType::Normal,  TokenType::Normal,  TokenType::Normal};
    if (kind == TokenizerKind::SentencePiece)
      t.scores = {0, 0, 0, -1, -2, -0.5f};
    else
      t.merges = {"a b"}, t.pre_tokenizer = "llama3";
    t.bos_id = 1, t.eos_id = 2, t.unk_id = 0, t.pad_id = -1;
    t.add_bos = kind == TokenizerKind::SentencePiece;
    t.add_eos = true;
    t.add_space_prefix = false;
    GgufWriter w;
    gguf_write_tokenizer(w, t);
    w.write(d.file("t.gguf"));
    GgufFile f(d.file("t.gguf"));
    EXPECT_EQ(f.get_string("tokenizer.ggml.model"), kind == TokenizerKind::SentencePiece ? "llama" : "gpt2");
    auto r = gguf_read_tokenizer(f);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->kind, t.kind);
    EXPECT_EQ(r->tokens, t.tokens);
    EXPECT_EQ(r->types, t.types);
    EXPECT_EQ(r->merges, t.merges);
    if (kind == TokenizerKind::SentencePiece) {
      EXPECT_EQ(r->scores, t.scores);
    } else {
      EXPECT_EQ(r->pre_tokenizer, "llama3");
    }
    EXPECT_EQ(r->bos_id, 1);
    EXPECT_EQ(r->eos_id, 2);
    EXPECT_EQ(r->unk_id, 0);
    EXPECT_EQ(r->pad_id, -1);
    EXPECT_EQ(r->add_bos, t.add_bos);
    EXPECT_TRUE(r->add_eos);
    if (kind == TokenizerKind::SentencePiece) {
      EXPECT_FALSE(r->add_space_prefix);
    }
  }
}

Config small(const std::string& arch) {
  Config c;
  c.architecture = arch;
  c.attn_bias = arch == "qwen2";
  c.dim = 16;
  c.vocab_size = 32;
  c.head_dim = 4;
  c.blocks = {{4, 2, 24}, {4, 2, 24}};
  c.max_seq_len = 128;
  c.rope_theta = 500000.f;
  c.norm_eps = 1e-6f;
  return c;
}

void expect_same(const Model& a, const Model& b) {
  std::vector<std::pair<std::string, std::vector<float>>> va, vb;
  for_each_tensor(a.config, a.weights, [&](const TensorRef& r) { va.emplace_back(r.name, r.tensor.to_vector()); });
  for_each_tensor(b.config, b.weights, [&](const TensorRef& r) { vb.emplace_back(r.name, r.tensor.to_vector()); });
  ASSERT_EQ(va.size(), vb.size());
  for (size_t i = 0; i < va.size(); i++) EXPECT_EQ(va[i], vb[i]) << va[i].first;
}

Model save_load(const Model& m, const std::string& path) {
  SaveOptions so;
  so.format = ModelFormat::GGUF;
  save_model(m, path, so);
  return load_model(path);
}

// Blocks that differ: llama.cpp's "deci" architecture with per-layer arrays (docs/formats.md).
TEST(Gguf, PerLayerDimsAreDeciArrays) {
  testing::TempDir d;
  Config c = small("llama");
  c.blocks = {{4, 2, 24}, {2, 1, 8}, {4, 4, 0}};  // pruned heads and MLP; head_dim * heads != dim
  Model m = init_random_model(c, 5, 0.1f, 0.1f);
  EXPECT_FALSE(m.weights.blocks[2].ffn_norm.defined());  // block 2 has no MLP, so no MLP norm either
  Model back = save_load(m, d.file("p.gguf"));
  EXPECT_EQ(back.config.blocks, c.blocks);
  EXPECT_EQ(back.config.head_dim, 4);
  EXPECT_EQ(back.config.max_seq_len, 128);
  EXPECT_EQ(back.config.rope_theta, 500000.f);
  EXPECT_EQ(back.config.norm_eps, 1e-6f);
  expect_same(m, back);
  GgufFile f(d.file("p.gguf"));
  EXPECT_EQ(f.get_string("general.architecture"), "deci");
  EXPECT_EQ(f.find("deci.attention.head_count")->ints, (std::vector<int64_t>{4, 2, 4}));
  EXPECT_EQ(f.find("deci.attention.head_count")->elem_type, GgufType::I32);
  EXPECT_EQ(f.find("deci.attention.head_count_kv")->ints, (std::vector<int64_t>{2, 1, 4}));
  // FFN 0 next to attention: a zero FFN of width 1 stands in (llama.cpp would drop the attention).
  EXPECT_EQ(f.find("deci.feed_forward_length")->ints, (std::vector<int64_t>{24, 8, 1}));
  EXPECT_EQ(f.find("secateur.placeholder_ffn_blocks")->ints, (std::vector<int64_t>{2}));
  EXPECT_EQ(f.get_int("deci.attention.key_length"), 4);
  EXPECT_EQ(f.get_string("tokenizer.ggml.model"), "no_vocab");  // no tokenizer: llama.cpp's placeholder
  EXPECT_FALSE(back.tokenizer);
  EXPECT_EQ(f.get_string("secateur.version"), SECATEUR_VERSION);
}

TEST(Gguf, UniformDimsAreScalars) {
  testing::TempDir d;
  Model m = init_random_model(small("llama"), 5);
  m.config.provenance["method"] = "magnitude";
  Model back = save_load(m, d.file("u.gguf"));
  GgufFile f(d.file("u.gguf"));
  EXPECT_EQ(f.find("llama.attention.head_count")->type, GgufType::U32);
  EXPECT_EQ(f.find("llama.attention.key_length"), nullptr);
  EXPECT_EQ(f.get_int("general.file_type"), 0);
  EXPECT_EQ(f.get_int("general.alignment"), 32);
  EXPECT_EQ(f.get_string("secateur.method"), "magnitude");
  EXPECT_EQ(back.config.provenance.at("method"), "magnitude");
  expect_same(m, back);
}

TEST(Gguf, Qwen2BiasesNoPermutation) {
  testing::TempDir d;
  Model m = init_random_model(small("qwen2"), 9);
  Model back = save_load(m, d.file("q.gguf"));
  EXPECT_EQ(back.config.architecture, "qwen2");
  EXPECT_TRUE(back.config.attn_bias);
  expect_same(m, back);
  // qwen2 in llama.cpp uses rotate-half RoPE: q rows are stored exactly as in HF.
  GgufFile f(d.file("q.gguf"));
  EXPECT_EQ(f.read_f32(*f.find_tensor("blk.0.attn_q.weight")).to_vector(), m.weights.blocks[0].wq.to_vector());
  EXPECT_EQ(f.read_f32(*f.find_tensor("blk.0.attn_k.bias")).to_vector(), m.weights.blocks[0].bk.to_vector());
}

TEST(Gguf, LlamaPermutesQK) {
  testing::TempDir d;
  Model m = init_random_model(small("llama"), 9);
  save_load(m, d.file("l.gguf"));
  GgufFile f(d.file("l.gguf"));
  EXPECT_EQ(f.read_f32(*f.find_tensor("blk.1.attn_k.weight")).to_vector(),
            rope_rows_to_interleaved(m.weights.blocks[1].wk, 2).to_vector());
  EXPECT_EQ(f.read_f32(*f.find_tensor("blk.1.attn_v.weight")).to_vector(), m.weights.blocks[1].wv.to_vector());
}

TEST(Gguf, Llama3RopeFreqs) {
  testing::TempDir d;
  Config c = small("llama");
  c.head_dim = 64;
  c.dim = 256;
  c.blocks = {{4, 2, 16}};
  c.rope_scaling = {"llama3", 8.f, 1.f, 4.f, 8192};
  Model m = init_random_model(c, 2);
  Model back = save_load(m, d.file("r.gguf"));
  EXPECT_EQ(back.config.rope_scaling.type, "llama3");
  EXPECT_EQ(back.config.rope_scaling.factor, 8.f);
  EXPECT_EQ(back.config.rope_scaling.original_max_position, 8192);
  EXPECT_EQ(rope_inv_freq(back.config), rope_inv_freq(c));
  GgufFile f(d.file("r.gguf"));
  ASSERT_TRUE(f.find_tensor("rope_freqs.weight"));
  EXPECT_EQ(f.find_tensor("rope_freqs.weight")->shape, Shape{32});
}

TEST(Gguf, TiedWritesOutputAndReadsBackTied) {
  testing::TempDir d;
  Config c = small("llama");
  c.tied_embeddings = true;
  Model m = init_random_model(c, 4);
  Model back = save_load(m, d.file("t.gguf"));
  EXPECT_TRUE(back.config.tied_embeddings);
  GgufFile f(d.file("t.gguf"));
  EXPECT_TRUE(f.find_tensor("output.weight"));
  // An untied model whose head differs stays untied.
  c.tied_embeddings = false;
  Model u = init_random_model(c, 4);
  EXPECT_FALSE(save_load(u, d.file("u.gguf")).config.tied_embeddings);
}

}  // namespace
}  // namespace sec
