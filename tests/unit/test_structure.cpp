// Dependency groups derived from the tensor table, against hand-written expectations, and the
// exactness of structural surgery: removing a group equals zeroing its contribution, removing a
// block equals skipping it.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "model/forward.h"
#include "model/init.h"
#include "model/structure.h"
#include "model/surgery.h"
#include "testing/testing.h"

namespace sec {
namespace {

using testing::random_tokens;
using testing::tiny_config;

// A small config whose groups are easy to write down: hidden 8, head_dim 2, FFN 6, 2 blocks.
Config small(int heads, int kv_heads, bool tied, bool bias) {
  Config c;
  c.dim = 8;
  c.vocab_size = 11;
  c.head_dim = 2;
  c.blocks = {{heads, kv_heads, 6}, {heads, kv_heads, 6}};
  c.tied_embeddings = tied;
  c.attn_bias = bias;
  c.validate();
  return c;
}

struct S {  // expected slice, by name
  std::string tensor;
  int dim;
  int64_t begin, count;
};

void expect_members(const Group& g, const std::vector<S>& want, const std::string& what) {
  ASSERT_EQ(g.members.size(), want.size()) << what;
  for (size_t i = 0; i < want.size(); i++) {
    const Slice& m = g.members[i];
    EXPECT_EQ(tensor_name_hf(m.kind, m.layer), want[i].tensor) << what << " member " << i;
    EXPECT_EQ(m.dim, want[i].dim) << what << " member " << i;
    EXPECT_EQ(m.begin, want[i].begin) << what << " member " << i;
    EXPECT_EQ(m.count, want[i].count) << what << " member " << i;
  }
}

const std::string L1 = "model.layers.1.";

TEST(Structure, KvGroupsOfMultiHeadAttention) {
  Config c = small(4, 4, true, false);
  auto g = kv_groups(c, 1);
  ASSERT_EQ(g.size(), 4u);
  expect_members(g[2],
                 {{L1 + "self_attn.q_proj.weight", 0, 4, 2},
                  {L1 + "self_attn.k_proj.weight", 0, 4, 2},
                  {L1 + "self_attn.v_proj.weight", 0, 4, 2},
                  {L1 + "self_attn.o_proj.weight", 1, 4, 2}},
                 "MHA KV group 2");
}

TEST(Structure, GqaGroupsFollowTheAttentionMappingNotTheOfficialOne) {
  // 4 query heads per KV head: the attention reads KV head 1 from query heads 4..7. LLM-Pruner's
  // official code credits heads {1, 3, 5, 7} (stride Hkv) to it instead.
  Config c = small(8, 2, false, false);
  c.dim = 16;
  auto g = kv_groups(c, 1);
  ASSERT_EQ(g.size(), 2u);
  expect_members(g[1],
                 {{L1 + "self_attn.q_proj.weight", 0, 8, 8},
                  {L1 + "self_attn.k_proj.weight", 0, 2, 2},
                  {L1 + "self_attn.v_proj.weight", 0, 2, 2},
                  {L1 + "self_attn.o_proj.weight", 1, 8, 8}},
                 "GQA KV group 1");
  // Query head 3 reads KV head 0, so it is in group 0 and not in group 1 (the official mapping
  // would put rows [6, 8) of q_proj into group 1).
  const Slice q0 = g[0].members[0];
  EXPECT_EQ(q0.begin, 0);
  EXPECT_EQ(q0.count, 8);
  auto heads = query_head_groups(c, 1);
  ASSERT_EQ(heads.size(), 8u);
  expect_members(heads[5], {{L1 + "self_attn.q_proj.weight", 0, 10, 2}, {L1 + "self_attn.o_proj.weight", 1, 10, 2}},
                 "query head 5");
}

TEST(Structure, MultiQueryAttentionHasOneGroupWithEveryHead) {
  Config c = small(4, 1, false, false);
  auto g = kv_groups(c, 0);
  ASSERT_EQ(g.size(), 1u);
  expect_members(g[0],
                 {{"model.layers.0.self_attn.q_proj.weight", 0, 0, 8},
                  {"model.layers.0.self_attn.k_proj.weight", 0, 0, 2},
                  {"model.layers.0.self_attn.v_proj.weight", 0, 0, 2},
                  {"model.layers.0.self_attn.o_proj.weight", 1, 0, 8}},
                 "MQA");
}

TEST(Structure, BiasesJoinTheirRows) {
  Config c = small(4, 2, false, true);
  auto g = kv_groups(c, 1);
  expect_members(g[1],
                 {{L1 + "self_attn.q_proj.weight", 0, 4, 4},
                  {L1 + "self_attn.k_proj.weight", 0, 2, 2},
                  {L1 + "self_attn.v_proj.weight", 0, 2, 2},
                  {L1 + "self_attn.q_proj.bias", 0, 4, 4},
                  {L1 + "self_attn.k_proj.bias", 0, 2, 2},
                  {L1 + "self_attn.v_proj.bias", 0, 2, 2},
                  {L1 + "self_attn.o_proj.weight", 1, 4, 4}},
                 "biased KV group 1");
}

TEST(Structure, FfnChannels) {
  Config c = small(4, 2, false, false);
  auto g = ffn_groups(c, 1);
  ASSERT_EQ(g.size(), 6u);
  expect_members(g[4],
                 {{L1 + "mlp.gate_proj.weight", 0, 4, 1},
                  {L1 + "mlp.up_proj.weight", 0, 4, 1},
                  {L1 + "mlp.down_proj.weight", 1, 4, 1}},
                 "FFN channel 4");
}

std::vector<S> hidden_members(int64_t ch, bool tied) {
  std::vector<S> want = {{"model.embed_tokens.weight", 1, ch, 1}};
  for (int l = 0; l < 2; l++) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    for (S s : std::vector<S>{{"input_layernorm.weight", 0, ch, 1},
                              {"self_attn.q_proj.weight", 1, ch, 1},
                              {"self_attn.k_proj.weight", 1, ch, 1},
                              {"self_attn.v_proj.weight", 1, ch, 1},
                              {"self_attn.o_proj.weight", 0, ch, 1},
                              {"post_attention_layernorm.weight", 0, ch, 1},
                              {"mlp.gate_proj.weight", 1, ch, 1},
                              {"mlp.up_proj.weight", 1, ch, 1},
                              {"mlp.down_proj.weight", 0, ch, 1}}) {
      s.tensor = p + s.tensor;
      want.push_back(s);
    }
  }
  want.push_back({"model.norm.weight", 0, ch, 1});
  if (!tied) want.push_back({"lm_head.weight", 1, ch, 1});
  return want;
}

TEST(Structure, HiddenChannelsSpanTheWholeNetworkTiedEmbeddingOnce) {
  for (bool tied : {true, false}) {
    Config c = small(4, 2, tied, false);
    auto segs = resid_segments(c);
    ASSERT_EQ(segs.size(), 1u);
    EXPECT_EQ(segs[0].first, 0);
    EXPECT_EQ(segs[0].last, 4);
    auto g = hidden_groups(c, segs[0]);
    ASSERT_EQ(g.size(), 8u);
    expect_members(g[3], hidden_members(3, tied), tied ? "tied hidden channel" : "untied hidden channel");
    // Every group's parameters: embedding column + 2 x (2 norms + q (8), k (4), v (4) columns +
    // o row (8) + gate, up columns (6 each) + down row (6)) + final norm (+ head column).
    const int64_t per_block = 2 + 8 + 4 + 4 + 8 + 6 + 6 + 6;
    EXPECT_EQ(g[3].n_params(c), 11 + 2 * per_block + 1 + (tied ? 0 : 11));
  }
}

TEST(Structure, BlocksWithoutAttentionOrMlpHaveNoSuchGroupsOrTensors) {
  Config c = small(4, 2, false, false);
  c.blocks[0] = {0, 0, 6};
  c.blocks[1] = {4, 2, 0};
  EXPECT_TRUE(kv_groups(c, 0).empty());
  EXPECT_TRUE(ffn_groups(c, 1).empty());
  auto h = hidden_groups(c, resid_segments(c)[0]);
  for (const auto& m : h[0].members) {
    EXPECT_FALSE(m.layer == 0 && tensor_rule(m.kind).sub == SubLayer::Attention) << tensor_name_hf(m.kind, m.layer);
    EXPECT_FALSE(m.layer == 1 && tensor_rule(m.kind).sub == SubLayer::Mlp) << tensor_name_hf(m.kind, m.layer);
  }
  // The parameter count is the sum over the tensors the table gives this config.
  EXPECT_EQ(param_count(c), 11 * 8 * 2 + 8 +                   // embedding, head, final norm
                                (8 + 2 * 6 * 8 + 6 * 8) +      // block 0: MLP only
                                (8 + 8 * 8 * 2 + 4 * 8 * 2));  // block 1: attention only
}

TEST(Structure, ShortcutsSplitTheResidualStream) {
  Config c = small(4, 2, false, false);
  c.blocks[1].attn_shortcut = true;
  c.resid_dims = {8, 8, 8, 6, 6};
  c.validate();
  auto segs = resid_segments(c);
  ASSERT_EQ(segs.size(), 2u);
  EXPECT_EQ(segs[0].last, 2);
  EXPECT_EQ(segs[1].first, 3);
  EXPECT_EQ(segs[1].width, 6);
  // The shortcut (6, 8) joins both: its rows belong to the second segment, its columns to the first.
  auto first = hidden_groups(c, segs[0]), second = hidden_groups(c, segs[1]);
  EXPECT_EQ(first.size(), 8u);
  EXPECT_EQ(second.size(), 6u);
  auto has = [](const Group& g, TensorKind k, int dim) {
    return std::any_of(g.members.begin(), g.members.end(),
                       [&](const Slice& s) { return s.kind == k && s.layer == 1 && s.dim == dim; });
  };
  EXPECT_TRUE(has(first[0], TensorKind::AttnShortcut, 1));
  EXPECT_TRUE(has(second[0], TensorKind::AttnShortcut, 0));
  EXPECT_TRUE(has(second[0], TensorKind::O, 0));
  EXPECT_FALSE(has(first[0], TensorKind::O, 0));
}

// ---- surgery exactness -------------------------------------------------------------------------

float max_abs(const Tensor& t) {
  float m = 0;
  for (int64_t i = 0; i < t.numel(); i++) m = std::max(m, std::fabs(t.f32()[i]));
  return m;
}

// Logits of `pruned` equal logits of `zeroed` (the dense model with the removed contributions
// zeroed): the same sums with the removed terms left out. float32 reassociation of the kept terms
// bounds the difference, relative to the logits' magnitude.
void expect_same_logits(const Model& pruned, const Model& zeroed, const std::string& what) {
  auto tokens = random_tokens(2 * 16, zeroed.config.vocab_size, 3);
  Tensor a = model_forward(pruned, tokens, 2, 16), b = model_forward(zeroed, tokens, 2, 16);
  ASSERT_EQ(a.numel(), b.numel());
  EXPECT_LE(testing::max_abs_diff(a.f32(), b.f32(), size_t(a.numel())), 1e-5f * max_abs(b)) << what;
}

Model copy_of(const Model& m) {
  Model c = m;
  for_each_tensor(c.config, c.weights, [](TensorRef& r) { r.tensor = r.tensor.clone(); });
  return c;
}

void zero_cols(Tensor& w, int64_t begin, int64_t count) {
  for (int64_t r = 0; r < w.dim(0); r++)
    for (int64_t j = begin; j < begin + count; j++) w.f32()[r * w.dim(1) + j] = 0.f;
}

struct Case {
  const char* name;
  Config config;
};

std::vector<Case> configs() {
  Config per_block = tiny_config(4, 2, false, false);
  per_block.blocks = {{4, 2, 72}, {2, 1, 30}, {6, 3, 50}};
  Config llama3 = tiny_config(4, 1, true, false);
  llama3.rope_scaling = {"llama3", 8.f, 1.f, 4.f, 32};
  return {{"MHA tied", tiny_config(4, 4, true, false)},
          {"GQA untied", tiny_config(4, 2, false, false)},
          {"MQA", tiny_config(6, 1, false, false)},
          {"GQA biased", tiny_config(4, 2, false, true)},
          {"per-block dims", per_block},
          {"llama3 rope", llama3}};
}

TEST(Surgery, RemovingFfnChannelsEqualsZeroingTheirDownColumns) {
  for (const auto& cs : configs()) {
    Model m = init_random_model(cs.config, 11, 0.3f, 0.2f);
    Selection s = Selection::keep_all(m.config);
    Model zeroed = copy_of(m);
    for (int l = 0; l < m.config.n_layers(); l++) {
      auto groups = ffn_groups(m.config, l);
      for (size_t i = l % 3; i < groups.size(); i += 3) {
        s.remove(m.config, groups[i]);
        zero_cols(zeroed.weights.blocks[size_t(l)].w_down, groups[i].index, 1);
      }
    }
    Model pruned = apply_selection(m, s);
    EXPECT_EQ(pruned.config.blocks[0].ffn_dim,
              m.config.blocks[0].ffn_dim - int(ffn_groups(m.config, 0).size() + 2) / 3);
    check_weights(pruned.config, pruned.weights);
    expect_same_logits(pruned, zeroed, cs.name);
  }
}

TEST(Surgery, RemovingKvGroupsEqualsZeroingTheirQueryHeadsOutputs) {
  for (const auto& cs : configs()) {
    Model m = init_random_model(cs.config, 12, 0.3f, 0.2f);
    if (m.config.blocks[0].n_kv_heads < 2) continue;  // MQA: its only group cannot go
    Selection s = Selection::keep_all(m.config);
    Model zeroed = copy_of(m);
    for (int l = 0; l < m.config.n_layers(); l++) {
      const auto groups = kv_groups(m.config, l);
      const Group& g = groups[size_t(l) % groups.size()];
      s.remove(m.config, g);
      for (const Slice& sl : g.members)
        if (sl.kind == TensorKind::O) zero_cols(zeroed.weights.blocks[size_t(l)].wo, sl.begin, sl.count);
    }
    Model pruned = apply_selection(m, s);
    for (int l = 0; l < m.config.n_layers(); l++) {
      EXPECT_EQ(pruned.config.blocks[size_t(l)].n_kv_heads, m.config.blocks[size_t(l)].n_kv_heads - 1) << cs.name;
      EXPECT_EQ(pruned.config.blocks[size_t(l)].n_heads * m.config.blocks[size_t(l)].n_kv_heads,
                (m.config.blocks[size_t(l)].n_kv_heads - 1) * m.config.blocks[size_t(l)].n_heads)
          << cs.name;
    }
    expect_same_logits(pruned, zeroed, cs.name);
  }
}

TEST(Surgery, RemovingOneQueryHeadPerKvGroupEqualsZeroingItsOutput) {
  for (const auto& cs : configs()) {
    Model m = init_random_model(cs.config, 13, 0.3f, 0.2f);
    const BlockDims& b0 = m.config.blocks[0];
    if (b0.n_heads == b0.n_kv_heads) continue;  // one query head per group: it goes with its group
    Selection s = Selection::keep_all(m.config);
    Model zeroed = copy_of(m);
    for (int l = 0; l < m.config.n_layers(); l++) {
      const int64_t Hq = m.config.blocks[size_t(l)].n_heads, Hkv = m.config.blocks[size_t(l)].n_kv_heads;
      const auto heads = query_head_groups(m.config, l);
      for (int64_t g = 0; g < Hkv; g++) {
        const int64_t h = g * (Hq / Hkv) + (l + g) % (Hq / Hkv);  // a different head in each group
        s.remove(m.config, heads[size_t(h)]);
        zero_cols(zeroed.weights.blocks[size_t(l)].wo, h * m.config.head_dim, m.config.head_dim);
      }
    }
    Model pruned = apply_selection(m, s);
    EXPECT_EQ(pruned.config.blocks[0].n_heads, b0.n_heads - b0.n_kv_heads) << cs.name;
    expect_same_logits(pruned, zeroed, cs.name);
  }
}

TEST(Surgery, RemovingEveryHeadOrChannelLeavesABlockWithoutThatSubLayer) {
  Model m = init_random_model(tiny_config(4, 2, false, true), 14, 0.3f, 0.2f);
  Selection s = Selection::keep_all(m.config);
  Model zeroed = copy_of(m);
  for (const auto& g : kv_groups(m.config, 1)) s.remove(m.config, g);
  for (const auto& g : ffn_groups(m.config, 2)) s.remove(m.config, g);
  zero_cols(zeroed.weights.blocks[1].wo, 0, m.config.q_dim(1));
  zero_cols(zeroed.weights.blocks[2].w_down, 0, m.config.blocks[2].ffn_dim);
  Model pruned = apply_selection(m, s);
  EXPECT_EQ(pruned.config.blocks[1].n_heads, 0);
  EXPECT_EQ(pruned.config.blocks[2].ffn_dim, 0);
  EXPECT_FALSE(pruned.weights.blocks[1].wq.defined());
  EXPECT_FALSE(pruned.weights.blocks[1].attn_norm.defined());
  EXPECT_FALSE(pruned.weights.blocks[2].ffn_norm.defined());
  expect_same_logits(pruned, zeroed, "empty sub-layers");
}

TEST(Surgery, RemovingABlockEqualsSkippingIt) {
  for (const auto& cs : configs()) {
    Model m = init_random_model(cs.config, 15, 0.3f, 0.2f);
    Selection s = Selection::keep_all(m.config);
    s.remove_block(1);
    Model pruned = apply_selection(m, s);
    ASSERT_EQ(pruned.config.n_layers(), m.config.n_layers() - 1);
    EXPECT_EQ(pruned.config.blocks[1], m.config.blocks[2]);
    // With its o_proj and down_proj zero a block adds nothing to the stream: it is skipped.
    Model skipped = copy_of(m);
    zero_cols(skipped.weights.blocks[1].wo, 0, m.config.q_dim(1));
    zero_cols(skipped.weights.blocks[1].w_down, 0, m.config.blocks[1].ffn_dim);
    expect_same_logits(pruned, skipped, cs.name);
  }
}

TEST(Surgery, HiddenChannelsShrinkEveryTensorOnTheStream) {
  for (bool tied : {true, false}) {
    Model m = init_random_model(tiny_config(4, 2, tied, true), 16, 0.3f, 0.2f);
    Selection s = Selection::keep_all(m.config);
    const auto hidden = hidden_groups(m.config, resid_segments(m.config)[0]);
    int64_t removed = 0;
    for (size_t i = 0; i < hidden.size(); i += 4, removed++) s.remove(m.config, hidden[i]);
    Model pruned = apply_selection(m, s);
    EXPECT_EQ(pruned.config.dim, m.config.dim - removed);
    EXPECT_TRUE(pruned.config.resid_dims.empty());
    check_weights(pruned.config, pruned.weights);
    EXPECT_EQ(param_count(pruned.config), param_count(m.config) - removed * hidden[0].n_params(m.config));
    // Column 1 of the embedding (kept) is the original column 1; column 0 was removed.
    EXPECT_EQ(pruned.weights.embed.f32()[0], m.weights.embed.f32()[1]);
    Tensor logits = model_forward(pruned, random_tokens(8, 97, 1), 1, 8);
    for (int64_t i = 0; i < logits.numel(); i++) ASSERT_TRUE(std::isfinite(logits.f32()[i]));
  }
}

TEST(Surgery, InconsistentSelectionsAreErrors) {
  Model m = init_random_model(tiny_config(4, 2, false, false), 17, 0.3f, 0.2f);
  Selection s = Selection::keep_all(m.config);
  s.blocks[0].kv_heads = {1};  // keeps query heads 0, 1 that read KV head 0
  EXPECT_THROW(selected_config(m.config, s), Error);
  s = Selection::keep_all(m.config);
  s.blocks[0].q_heads = {0, 1, 2};  // 2 heads in group 0, 1 in group 1
  EXPECT_THROW(selected_config(m.config, s), Error);
  s = Selection::keep_all(m.config);
  s.resid[2].pop_back();  // one point of the stream narrower than the others
  EXPECT_THROW(selected_config(m.config, s), Error);
  s = Selection::keep_all(m.config);
  for (int l = 0; l < 3; l++) s.remove_block(l);
  EXPECT_THROW(selected_config(m.config, s), Error);
}

}  // namespace
}  // namespace sec
