// Minitron's width statistics and choices on random tiny models: the GQA layout decides which query
// heads go with which KV group, the reductions over batch and sequence, depth by Block Importance.
#include <gtest/gtest.h>

#include <cmath>

#include "calib/dataset.h"
#include "core/error.h"
#include "model/forward.h"
#include "model/init.h"
#include "model/surgery.h"
#include "prune/minitron.h"
#include "testing/testing.h"

namespace sec {
namespace {

float max_abs(const Tensor& t) {
  float m = 0;
  for (int64_t i = 0; i < t.numel(); i++) m = std::max(m, std::fabs(t.f32()[i]));
  return m;
}

TEST(Minitron, GqaHeadsAreScoredAndKeptWithTheKvHeadTheyRead) {
  // 4 query heads on 2 KV heads: the attention gives KV head 0 to query heads 0 and 1. Its values
  // are made tiny, so heads 0 and 1 have tiny outputs and KV group 0 must go. A layout that paired
  // heads {0, 2} and {1, 3} (stride Hkv, as ModelOpt up to 0.40 does) would see two equal groups.
  Model m = init_random_model(testing::tiny_config(4, 2, false, false), 51, 0.3f, 0.2f);
  const int64_t hd = m.config.head_dim, C = m.config.dim;
  for (auto& b : m.weights.blocks)
    for (int64_t i = 0; i < hd * C; i++) b.wv.f32()[i] *= 0.01f;  // rows of KV head 0
  CalibSamples s = testing::random_calibration(6, 16, m.config.vocab_size, 52);
  WidthScores w = activation_scores(m, s, Reduce::L2, Reduce::Mean, 1, 4);
  for (int l = 0; l < 3; l++) {
    const auto& h = w.heads[size_t(l)];
    EXPECT_LT(std::max(h[0], h[1]), 0.05 * std::min(h[2], h[3])) << "block " << l;
    EXPECT_LT(w.kv_groups[size_t(l)][0], 0.05 * w.kv_groups[size_t(l)][1]);
    EXPECT_DOUBLE_EQ(w.kv_groups[size_t(l)][1], h[2] + h[3]);
  }
  MinitronOptions o;
  o.kv_heads = 1;  // the group size stays 2: 2 query heads
  MinitronPlan plan = minitron(m, o, s, Corpus{});
  for (const auto& b : plan.selection.blocks) {
    EXPECT_EQ(b.kv_heads, (std::vector<int64_t>{1}));
    EXPECT_EQ(b.q_heads, (std::vector<int64_t>{2, 3}));
  }
  // The pruned model computes the dense model with heads 0, 1 silenced.
  Model pruned = apply_selection(m, plan.selection);
  EXPECT_EQ(pruned.config.blocks[0].n_heads, 2);
  Model silenced = m;
  for (auto& b : silenced.weights.blocks) {
    b.wo = b.wo.clone();
    for (int64_t r = 0; r < C; r++)
      for (int64_t j = 0; j < 2 * hd; j++) b.wo.f32()[r * b.wo.dim(1) + j] = 0.f;
  }
  auto tokens = testing::random_tokens(32, m.config.vocab_size, 53);
  Tensor a = model_forward(pruned, tokens, 2, 16), b = model_forward(silenced, tokens, 2, 16);
  EXPECT_LE(testing::max_abs_diff(a.f32(), b.f32(), size_t(a.numel())), 1e-5f * max_abs(b));
}

TEST(Minitron, ReductionsOverBatchAndSequence) {
  // The batch reductions' algebra, on a calibration set and the same set repeated twice: l2 grows
  // by sqrt(2), mean and variance stay.
  Model m = init_random_model(testing::tiny_config(4, 2, false, false), 54, 0.3f, 0.2f);
  CalibSamples one = testing::random_calibration(3, 12, m.config.vocab_size, 55), two = one;
  two.nsamples = 6;
  two.tokens.insert(two.tokens.end(), one.tokens.begin(), one.tokens.end());  // the same 3 samples twice
  for (Reduce seq : {Reduce::Mean, Reduce::L2, Reduce::Var}) {
    // One sample per forward pass: every sample's activations are then the same floats in both runs,
    // and the relations hold to double rounding of the reductions.
    WidthScores a_l2 = activation_scores(m, one, Reduce::L2, seq, 1, 1),
                b_l2 = activation_scores(m, two, Reduce::L2, seq, 1, 1);
    WidthScores a_m = activation_scores(m, one, Reduce::Mean, seq, 1, 1),
                b_m = activation_scores(m, two, Reduce::Mean, seq, 1, 1);
    WidthScores a_v = activation_scores(m, one, Reduce::Var, seq, 1, 1),
                b_v = activation_scores(m, two, Reduce::Var, seq, 1, 1);
    for (size_t i = 0; i < a_l2.neurons[1].size(); i++) {
      EXPECT_NEAR(b_l2.neurons[1][i], std::sqrt(2.0) * a_l2.neurons[1][i], 1e-12 * b_l2.neurons[1][i]);
      EXPECT_NEAR(b_m.neurons[1][i], a_m.neurons[1][i], 1e-12 * a_m.neurons[1][i]);
      // Repeating every sample keeps the population variance (E[a^2] - E[a]^2: its rounding is
      // relative to E[a^2] = mean^2 + var).
      const double scale = a_m.neurons[1][i] * a_m.neurons[1][i] + a_v.neurons[1][i];
      EXPECT_NEAR(b_v.neurons[1][i], a_v.neurons[1][i], 1e-12 * scale);
    }
    for (size_t i = 0; i < a_m.channels.size(); i++) EXPECT_GT(a_m.channels[i], 0.0);
  }
  // With one position per sample, the sequence mean and l2 of |x| are both |x|, and its variance 0.
  CalibSamples single = testing::random_calibration(2, 1, m.config.vocab_size, 56);
  WidthScores mean1 = activation_scores(m, single, Reduce::Mean, Reduce::Mean, 1, 1);
  WidthScores l21 = activation_scores(m, single, Reduce::Mean, Reduce::L2, 1, 1);
  WidthScores var1 = activation_scores(m, single, Reduce::Mean, Reduce::Var, 1, 1);
  for (size_t i = 0; i < mean1.neurons[0].size(); i++) {
    EXPECT_NEAR(mean1.neurons[0][i], l21.neurons[0][i], 1e-12 + 1e-9 * mean1.neurons[0][i]);
    EXPECT_NEAR(var1.neurons[0][i], 0.0, 1e-12);
  }
}

TEST(Minitron, BlockImportanceOfAnIdentityBlockIsZero) {
  Model m = init_random_model(testing::tiny_config(4, 2, false, false), 57, 0.3f, 0.2f);
  Tensor& wo = m.weights.blocks[1].wo;
  Tensor& down = m.weights.blocks[1].w_down;
  std::fill(wo.f32(), wo.f32() + wo.numel(), 0.f);
  std::fill(down.f32(), down.f32() + down.numel(), 0.f);  // block 1 adds nothing: output = input
  CalibSamples s = testing::random_calibration(4, 10, m.config.vocab_size, 58);
  WidthScores w = activation_scores(m, s, Reduce::L2, Reduce::Mean, 2, 2);
  EXPECT_NEAR(w.block_bi[1], 0.0, 1e-6);
  EXPECT_GT(w.block_bi[0], 1e-3);
  EXPECT_GT(w.block_bi[2], 1e-3);
  ASSERT_EQ(w.window_bi.size(), 2u);  // windows of 2 blocks: (0, 1) and (1, 2)
  // Window (1, 2) maps block 1's input to block 2's output, which block 1 leaves unchanged.
  EXPECT_NEAR(w.window_bi[1], w.block_bi[2], 1e-6);
  MinitronOptions o;
  o.layers = 2;
  MinitronPlan plan = minitron(m, o, s, Corpus{});
  EXPECT_FALSE(plan.selection.blocks[1].keep);
  EXPECT_TRUE(plan.selection.blocks[0].keep && plan.selection.blocks[2].keep);
}

TEST(Minitron, ImpossibleArchitecturesAreErrors) {
  Model m = init_random_model(testing::tiny_config(4, 2, false, false), 59, 0.3f, 0.2f);
  CalibSamples s = testing::random_calibration(2, 8, m.config.vocab_size, 60);
  auto fails = [&](MinitronOptions o, const std::string& needle) {
    try {
      minitron(m, o, s, Corpus{});
      ADD_FAILURE() << "no error for " << needle;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  MinitronOptions o;
  o.hidden = 64;
  fails(o, "--hidden 64 is larger than the model's 48");
  o = {};
  o.ffn = 73;
  fails(o, "--ffn 73 is outside 1..72");
  o = {};
  o.kv_heads = 2;
  o.heads = 3;
  fails(o, "--heads 3 is not a multiple of --kv-heads 2");
  o = {};
  o.kv_heads = 1;
  o.heads = 4;
  fails(o, "needs 4 query heads per KV group; the model has 2");
  o = {};
  o.layers = 4;
  fails(o, "--layers 4 is outside 1..3");
  o = {};
  o.target_params = 0.05;
  fails(o, "no architecture");
  o = {};
  o.target_params = 0.6;
  o.hidden = 40;
  fails(o, "either --target-params or the architecture");
}

}  // namespace
}  // namespace sec
