// stories260K end to end: greedy generation reproduces llama2.c's documented text from both the
// llama2.c checkpoint and the GGUF file, and every format round trip gives identical logits.
#include <gtest/gtest.h>

#include <cstring>

#include "model/forward.h"
#include "model/generate.h"
#include "model/model_io.h"
#include "testing/testing.h"

namespace sec {
namespace {

const char* kBin = "models/stories260K/stories260K.bin";
const char* kGguf = "models/stories260K/stories260K.gguf";

// From ../shared/models/stories260K/README.md (llama2.c's documentation of this model).
const std::string kExpected =
    "Once upon a time, there was a little girl named Lily. She loved to play outside in the park. One day, she saw a "
    "big, red ball. She wanted to play with it, but it was too high.\n"
    "Lily's mom said, \"Lily, let's go to the park.\" Lily was sad and didn't know what to do. She said, \"I want to "
    "play with your ball, but I can't find it.\"";

std::string greedy_text(const Model& m, int n) {
  GenerateOptions opts;
  opts.max_new_tokens = n;
  opts.temperature = 0.f;
  auto out = generate(m, {m.config.bos_token_id}, opts);
  std::vector<int> ids(out.begin(), out.end());
  return m.tokenizer->decode(ids);
}

TEST(Stories260K, GreedyGenerationFromBinMatchesLlama2cDocumentation) {
  SEC_REQUIRE_SHARED(kBin);
  Model m = load_model(testing::shared_path(kBin));
  std::string text = greedy_text(m, 160);
  EXPECT_EQ(text.substr(0, kExpected.size()), kExpected) << "generated:\n" << text;
}

TEST(Stories260K, GreedyGenerationFromGgufMatchesLlama2cDocumentation) {
  SEC_REQUIRE_SHARED(kGguf);
  Model m = load_model(testing::shared_path(kGguf));
  std::string text = greedy_text(m, 160);
  EXPECT_EQ(text.substr(0, kExpected.size()), kExpected) << "generated:\n" << text;
}

TEST(Stories260K, GreedyTokensIdenticalAcrossFormats) {
  SEC_REQUIRE_SHARED(kBin);
  SEC_REQUIRE_SHARED(kGguf);
  Model a = load_model(testing::shared_path(kBin));
  Model b = load_model(testing::shared_path(kGguf));
  GenerateOptions opts;
  opts.max_new_tokens = 200;
  EXPECT_EQ(generate(a, {1}, opts), generate(b, {1}, opts));
}

Tensor logits_of(const Model& m, const std::vector<int32_t>& tokens, int64_t B, int64_t T) {
  return model_forward(m, tokens, B, T);
}

TEST(Stories260K, RoundTripBinGgufHfGgufGivesIdenticalLogits) {
  SEC_REQUIRE_SHARED(kBin);
  testing::TempDir dir;
  Model bin = load_model(testing::shared_path(kBin));
  save_model(bin, dir.file("a.gguf"), {ModelFormat::GGUF, DType::F32});
  Model g1 = load_model(dir.file("a.gguf"));
  save_model(g1, dir.file("hf"), {ModelFormat::HF, DType::F32});
  Model hf = load_model(dir.file("hf"));
  save_model(hf, dir.file("b.gguf"), {ModelFormat::GGUF, DType::F32});
  Model g2 = load_model(dir.file("b.gguf"));

  const int64_t B = 3, T = 64;
  std::vector<int32_t> tokens(B * T);
  for (size_t i = 0; i < tokens.size(); i++) tokens[i] = int32_t((i * 131 + 7) % 512);
  Tensor ref = logits_of(bin, tokens, B, T);
  for (const Model* m : {&g1, &hf, &g2}) {
    Tensor l = logits_of(*m, tokens, B, T);
    ASSERT_EQ(l.numel(), ref.numel());
    EXPECT_EQ(std::memcmp(l.raw(), ref.raw(), ref.nbytes()), 0) << m->source.path;
  }
  // The tokenizer survives the trip too.
  std::string text = "Once upon a time, Lily saw a big red ball.";
  EXPECT_EQ(g2.tokenizer->encode(text, true), bin.tokenizer->encode(text, true));
}

}  // namespace
}  // namespace sec
