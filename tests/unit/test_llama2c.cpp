// llama2.c .bin: tensor order, tied vs untied (negative vocab_size, classifier after freq_cis),
// the RoPE permutation at load, and the exact file-size check.
#include <cstring>

#include "core/error.h"
#include "core/file.h"
#include "io/llama2c.h"
#include "model/model_io.h"
#include "testing/testing.h"

namespace sec {
namespace {

// Writes a checkpoint whose every float is its index in the float array (so positions are checkable).
std::string make_bin(const std::string& path, int dim, int hidden, int L, int H, int Hkv, int vocab, int seq,
                     int64_t extra_floats = 0) {
  int32_t h[7] = {dim, hidden, L, H, Hkv, vocab, seq};
  const int64_t V = vocab < 0 ? -vocab : vocab, hd = dim / H, kv = Hkv * hd;
  int64_t n = V * dim + L * dim + 2 * L * dim * dim + 2 * L * kv * dim + L * dim + 3 * L * hidden * dim + dim +
              seq * hd + (vocab < 0 ? V * dim : 0) + extra_floats;
  std::string b(reinterpret_cast<const char*>(h), sizeof(h));
  for (int64_t i = 0; i < n; i++) {
    float f = float(i);
    b.append(reinterpret_cast<const char*>(&f), 4);
  }
  write_file_atomic(path, b);
  return path;
}

TEST(Llama2c, TiedLayout) {
  testing::TempDir d;
  auto ck = read_llama2c(make_bin(d.file("m.bin"), 8, 12, 2, 2, 1, 10, 6));
  const Config& c = ck.config;
  EXPECT_EQ(c.dim, 8);
  EXPECT_EQ(c.head_dim, 4);
  EXPECT_EQ(c.vocab_size, 10);
  EXPECT_EQ(c.max_seq_len, 6);
  EXPECT_TRUE(c.tied_embeddings);
  EXPECT_EQ(c.blocks, (std::vector<BlockDims>{{2, 1, 12}, {2, 1, 12}}));
  const Weights& w = ck.weights;
  EXPECT_EQ(w.embed.f32()[0], 0.f);
  EXPECT_EQ(w.blocks[0].attn_norm.f32()[0], 80.f);  // after the 10 x 8 embedding
  EXPECT_EQ(w.blocks[1].attn_norm.f32()[0], 88.f);
  EXPECT_EQ(w.blocks[0].wq.f32()[0], 96.f);
  EXPECT_EQ(w.blocks[1].wq.f32()[0], 96.f + 64);
  EXPECT_EQ(w.blocks[0].wk.f32()[0], 96.f + 128);
  EXPECT_FALSE(w.lm_head.defined());
}

TEST(Llama2c, UntiedClassifierAfterFreqCis) {
  testing::TempDir d;
  auto ck = read_llama2c(make_bin(d.file("m.bin"), 8, 12, 1, 2, 2, -10, 6));
  EXPECT_FALSE(ck.config.tied_embeddings);
  EXPECT_EQ(ck.config.vocab_size, 10);
  // Floats before the classifier: 80 + 8 + 64*2 + 32*2 + 8 + 3*96 + 8 + 6*4 = 608.
  ASSERT_TRUE(ck.weights.lm_head.defined());
  EXPECT_EQ(ck.weights.lm_head.f32()[0], 80.f + 8 + 128 + 128 + 8 + 288 + 8 + 24);
}

TEST(Llama2c, LoadModelPermutesQK) {
  testing::TempDir d;
  std::string p = make_bin(d.file("m.bin"), 8, 12, 1, 2, 1, 10, 6);
  auto ck = read_llama2c(p);
  Model m = load_model(p);
  EXPECT_EQ(m.source.format, "llama2c");
  EXPECT_FALSE(m.tokenizer);
  EXPECT_EQ(m.weights.blocks[0].wq.to_vector(), rope_rows_from_interleaved(ck.weights.blocks[0].wq, 2).to_vector());
  EXPECT_EQ(m.weights.blocks[0].wk.to_vector(), rope_rows_from_interleaved(ck.weights.blocks[0].wk, 1).to_vector());
  EXPECT_EQ(m.weights.blocks[0].wv.to_vector(), ck.weights.blocks[0].wv.to_vector());
}

TEST(Llama2c, SizeMustMatchExactly) {
  testing::TempDir d;
  for (int64_t extra : {int64_t(-1), int64_t(1)}) {
    std::string p = make_bin(d.file("m.bin"), 8, 12, 1, 2, 1, 10, 6, extra);
    try {
      read_llama2c(p);
      FAIL() << "expected an error";
    } catch (const Error& e) {
      std::string msg = e.what();
      EXPECT_NE(msg.find(p), std::string::npos) << msg;
      EXPECT_NE(msg.find("implies exactly"), std::string::npos) << msg;
      if (extra < 0) {
        EXPECT_NE(msg.find("truncated"), std::string::npos) << msg;
      }
    }
  }
}

TEST(Llama2c, BadHeader) {
  testing::TempDir d;
  std::string p = make_bin(d.file("m.bin"), 8, 12, 1, 3, 1, 10, 6);  // 8 % 3 != 0
  EXPECT_THROW(read_llama2c(p), Error);
  write_file_atomic(d.file("short.bin"), "abc");
  EXPECT_THROW(read_llama2c(d.file("short.bin")), Error);
  int32_t h[7] = {8, 12, 1, 2, 1, 0, 6};
  write_file_atomic(d.file("zero.bin"), std::string(reinterpret_cast<const char*>(h), sizeof(h)));
  EXPECT_THROW(read_llama2c(d.file("zero.bin")), Error);
}

}  // namespace
}  // namespace sec
