// stories260K in every format: the llama2.c .bin and llama.cpp's GGUF load to identical weights; our
// GGUF writer reproduces llama.cpp's file tensor by tensor; round trips through GGUF and HF are exact.
#include <cstring>

#include "core/error.h"
#include "core/file.h"
#include "io/gguf.h"
#include "model/model_io.h"
#include "testing/testing.h"

namespace sec {
namespace {

const char* kBin = "models/stories260K/stories260K.bin";
const char* kGguf = "models/stories260K/stories260K.gguf";
const char* kTok = "models/stories260K/tok512.bin";

void expect_same_config(const Config& a, const Config& b) {
  EXPECT_EQ(a.architecture, b.architecture);
  EXPECT_EQ(a.dim, b.dim);
  EXPECT_EQ(a.vocab_size, b.vocab_size);
  EXPECT_EQ(a.head_dim, b.head_dim);
  EXPECT_EQ(a.blocks, b.blocks);
  EXPECT_EQ(a.norm_eps, b.norm_eps);
  EXPECT_EQ(a.rope_theta, b.rope_theta);
  EXPECT_EQ(a.tied_embeddings, b.tied_embeddings);
  EXPECT_EQ(a.attn_bias, b.attn_bias);
  EXPECT_EQ(a.rope_scaling.type, b.rope_scaling.type);
}

// Every tensor bit-identical (after conversion to f32 in memory).
void expect_same_weights(const Model& a, const Model& b) {
  ASSERT_EQ(a.config.n_layers(), b.config.n_layers());
  std::vector<const Tensor*> ta, tb;
  std::vector<std::string> names;
  for_each_tensor(a.config, a.weights, [&](const TensorRef& r) {
    ta.push_back(&r.tensor);
    names.push_back(r.name);
  });
  for_each_tensor(b.config, b.weights, [&](const TensorRef& r) { tb.push_back(&r.tensor); });
  ASSERT_EQ(ta.size(), tb.size());
  for (size_t i = 0; i < ta.size(); i++) {
    ASSERT_EQ(ta[i]->shape(), tb[i]->shape()) << names[i];
    EXPECT_EQ(0, std::memcmp(ta[i]->raw(), tb[i]->raw(), ta[i]->nbytes())) << names[i] << " differs";
  }
}

Model round(const Model& m, const std::string& path, ModelFormat f, DType d) {
  SaveOptions so;
  so.format = f;
  so.dtype = d;
  save_model(m, path, so);
  return load_model(path);
}

TEST(FormatsStories, BinAndGgufLoadIdentically) {
  SEC_REQUIRE_SHARED(kBin);
  Model bin = load_model(testing::shared_path(kBin));
  Model gg = load_model(testing::shared_path(kGguf));
  EXPECT_EQ(bin.source.format, "llama2c");
  EXPECT_EQ(gg.source.format, "gguf");
  const Config& c = bin.config;
  EXPECT_EQ(c.n_layers(), 5);
  EXPECT_EQ(c.dim, 64);
  EXPECT_EQ(c.blocks[0].ffn_dim, 172);
  EXPECT_EQ(c.blocks[0].n_heads, 8);
  EXPECT_EQ(c.blocks[0].n_kv_heads, 4);
  EXPECT_EQ(c.vocab_size, 512);
  EXPECT_TRUE(c.tied_embeddings);
  EXPECT_TRUE(gg.config.tied_embeddings);  // output.weight equals token_embd.weight
  EXPECT_EQ(c.max_seq_len, 512);
  EXPECT_EQ(gg.config.max_seq_len, 2048);  // llama.cpp's converter wrote its default context
  expect_same_config(c, gg.config);
  expect_same_weights(bin, gg);
  EXPECT_EQ(bin.source.sha256, "b0a507e7ad0f626624f17112325e66691f9076d622e1d3274d103d00299f2696");
  EXPECT_EQ(gg.source.sha256, "270cba1bd5109f42d03350f60406024560464db173c0e387d91f0426d3bd256d");
  ASSERT_TRUE(bin.tokenizer);  // found tok512.bin next to the .bin
  ASSERT_TRUE(gg.tokenizer);
  EXPECT_EQ(bin.tokenizer->vocab_size(), 512);
  EXPECT_EQ(gg.tokenizer->vocab_size(), 512);
  EXPECT_EQ(bin.tokenizer->data().tokens, gg.tokenizer->data().tokens);
  EXPECT_EQ(gg.tokenizer->bos_id(), 1);
  EXPECT_EQ(gg.tokenizer->eos_id(), 2);
}

TEST(FormatsStories, BinToGgufMatchesLlamaCpp) {
  SEC_REQUIRE_SHARED(kBin);
  testing::TempDir d;
  Model bin = load_model(testing::shared_path(kBin));
  SaveOptions so;
  so.format = ModelFormat::GGUF;
  save_model(bin, d.file("s.gguf"), so);
  GgufFile ours(d.file("s.gguf")), ref(testing::shared_path(kGguf));
  EXPECT_EQ(ours.version(), 3u);
  ASSERT_EQ(ours.tensors().size(), ref.tensors().size());
  for (const auto& r : ref.tensors()) {
    const GgufTensorInfo* o = ours.find_tensor(r.name);
    ASSERT_TRUE(o) << r.name;
    EXPECT_EQ(o->shape, r.shape) << r.name;
    EXPECT_EQ(o->ggml_type, r.ggml_type) << r.name;
    ASSERT_EQ(o->nbytes, r.nbytes) << r.name;
    EXPECT_EQ(0, std::memcmp(ours.data(*o), ref.data(r), r.nbytes)) << r.name << " bytes differ";
  }
  // The llama.* keys that matter (context_length differs: the .bin says 512, llama.cpp used 2048).
  for (const char* k :
       {"general.architecture", "llama.embedding_length", "llama.feed_forward_length", "llama.attention.head_count",
        "llama.attention.head_count_kv", "llama.block_count", "llama.rope.dimension_count",
        "llama.attention.layer_norm_rms_epsilon", "tokenizer.ggml.model", "tokenizer.ggml.bos_token_id",
        "tokenizer.ggml.eos_token_id", "tokenizer.ggml.unknown_token_id"}) {
    const GgufValue *a = ours.find(k), *b = ref.find(k);
    ASSERT_TRUE(a && b) << k;
    EXPECT_EQ(a->to_string(), b->to_string()) << k;
  }
  EXPECT_EQ(ours.find("tokenizer.ggml.tokens")->strs, ref.find("tokenizer.ggml.tokens")->strs);
  EXPECT_EQ(ours.find("tokenizer.ggml.scores")->floats, ref.find("tokenizer.ggml.scores")->floats);
  EXPECT_EQ(ours.find("tokenizer.ggml.token_type")->ints, ref.find("tokenizer.ggml.token_type")->ints);
  EXPECT_EQ(ours.get_int("llama.context_length"), 512);
}

class RoundTrip : public ::testing::TestWithParam<DType> {};

TEST_P(RoundTrip, BinToGgufToHfToGguf) {
  SEC_REQUIRE_SHARED(kBin);
  const DType dt = GetParam();
  testing::TempDir d;
  Model bin = load_model(testing::shared_path(kBin));
  // f16/bf16: the first conversion rounds; from then on every step must be exact.
  Model g1 = round(bin, d.file("a.gguf"), ModelFormat::GGUF, dt);
  EXPECT_EQ(g1.source.file_dtype, dt);
  Model hf = round(g1, d.file("hf"), ModelFormat::HF, dt);
  EXPECT_EQ(hf.source.file_dtype, dt);
  Model g2 = round(hf, d.file("b.gguf"), ModelFormat::GGUF, dt);
  expect_same_config(bin.config, g1.config);
  expect_same_config(bin.config, hf.config);
  expect_same_config(bin.config, g2.config);
  EXPECT_EQ(hf.config.max_seq_len, 512);
  expect_same_weights(g1, hf);
  expect_same_weights(hf, g2);
  if (dt == DType::F32) expect_same_weights(bin, g2);
  ASSERT_TRUE(hf.tokenizer);
  EXPECT_EQ(hf.tokenizer->data().tokens, bin.tokenizer->data().tokens);
  ASSERT_TRUE(g2.tokenizer);
  EXPECT_EQ(g2.tokenizer->data().tokens, bin.tokenizer->data().tokens);
  // The two GGUF files hold the same tensor bytes.
  GgufFile a(d.file("a.gguf")), b(d.file("b.gguf"));
  ASSERT_EQ(a.tensors().size(), b.tensors().size());
  for (const auto& t : a.tensors()) {
    const GgufTensorInfo* u = b.find_tensor(t.name);
    ASSERT_TRUE(u) << t.name;
    ASSERT_EQ(u->nbytes, t.nbytes);
    EXPECT_EQ(0, std::memcmp(a.data(t), b.data(*u), t.nbytes)) << t.name;
    EXPECT_EQ(t.dtype, t.shape.size() == 1 ? DType::F32 : dt) << t.name;
  }
}

INSTANTIATE_TEST_SUITE_P(Dtypes, RoundTrip, ::testing::Values(DType::F32, DType::F16, DType::BF16),
                         [](const auto& info) { return std::string(dtype_name(info.param)); });

TEST(FormatsStories, ExplicitTokenizerPath) {
  SEC_REQUIRE_SHARED(kBin);
  testing::TempDir d;
  // A .bin alone in a directory has no tokenizer unless one is given.
  std::string bin = d.file("m.bin");
  write_file_atomic(bin, read_text_file(testing::shared_path(kBin)));
  EXPECT_FALSE(load_model(bin).tokenizer);
  LoadOptions lo;
  lo.require_tokenizer = true;
  EXPECT_THROW(load_model(bin, lo), Error);
  lo.tokenizer_path = testing::shared_path(kTok);
  EXPECT_EQ(load_model(bin, lo).tokenizer->vocab_size(), 512);
  EXPECT_EQ(load_tokenizer(testing::shared_path(kGguf)).vocab_size(), 512);
  EXPECT_EQ(load_tokenizer(testing::shared_path(kTok)).vocab_size(), 512);
}

}  // namespace
}  // namespace sec
