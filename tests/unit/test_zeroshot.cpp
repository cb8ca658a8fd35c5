// Zero-shot scoring: acc / acc_norm on crafted items with known answers (byte-length normalisation
// changes the winner), standard errors, WinoGrande partial scoring, task-file parsing, the lm-eval
// context/continuation token split, and batched log-likelihoods equal to one at a time and to a
// direct computation.
#include <gtest/gtest.h>

#include <cmath>

#include "core/error.h"
#include "core/random.h"
#include "eval/zeroshot.h"
#include "io/tokenizer_files.h"
#include "model/forward.h"
#include "model/init.h"
#include "testing/testing.h"

namespace sec {
namespace {

McItem item2(const std::string& c0, const std::string& c1, int label) {
  McItem it;
  it.choices = {{"ctx", c0}, {"ctx", c1}};
  it.label = label;
  return it;
}

TEST(ZeroShot, AccAndByteNormalisedAccPickDifferentWinners) {
  // " a" is 2 bytes, " abcdefgh" 9 bytes. Log-likelihoods -2 and -3: acc picks choice 0,
  // acc_norm (-1.0 vs -0.333) picks choice 1.
  std::vector<McItem> items = {item2(" a", " abcdefgh", 0), item2(" a", " abcdefgh", 1)};
  std::vector<double> lls = {-2.0, -3.0, -2.0, -3.0};
  TaskScore s = score_items("piqa", items, lls);
  EXPECT_EQ(s.items, 2);
  EXPECT_DOUBLE_EQ(s.acc, 0.5);
  EXPECT_DOUBLE_EQ(s.acc_norm, 0.5);
  // Only the first item right under acc, only the second under acc_norm:
  TaskScore first = score_items("piqa", {items[0]}, {-2.0, -3.0});
  EXPECT_DOUBLE_EQ(first.acc, 1.0);
  EXPECT_DOUBLE_EQ(first.acc_norm, 0.0);
  // Bytes, not characters: " é" is 3 bytes (1 space + 2), " ab" 3 bytes -> equal lengths, so the
  // normalised winner is the raw winner.
  TaskScore utf8 = score_items("piqa", {item2(" \xC3\xA9", " ab", 1)}, {-3.0, -2.9});
  EXPECT_DOUBLE_EQ(utf8.acc, 1.0);
  EXPECT_DOUBLE_EQ(utf8.acc_norm, 1.0);
  // " é" (3 bytes, 2 characters) vs " a" (2 bytes): -3.0/3 = -1.0 beats -2.2/2 = -1.1 (by characters it would lose:
  // -1.5).
  TaskScore bytes = score_items("piqa", {item2(" \xC3\xA9", " a", 0)}, {-3.0, -2.2});
  EXPECT_DOUBLE_EQ(bytes.acc, 0.0);
  EXPECT_DOUBLE_EQ(bytes.acc_norm, 1.0);
}

TEST(ZeroShot, TiesGoToTheFirstChoiceAndStderr) {
  std::vector<McItem> items = {item2(" x", " y", 0), item2(" x", " y", 1), item2(" x", " y", 0), item2(" x", " y", 0)};
  std::vector<double> lls = {-1, -1, -1, -1, -1, -2, -5, -4};
  TaskScore s = score_items("arc_easy", items, lls);
  // ties -> 0 (right, wrong), then 0 (right), then 1 (wrong): 2 of 4
  EXPECT_DOUBLE_EQ(s.acc, 0.5);
  EXPECT_NEAR(s.acc_stderr, std::sqrt(0.5 * 0.5 / 3), 1e-12);
}

TEST(ZeroShot, ParsesQueryChoicesAndWinograndePartialScoring) {
  McItem q = parse_task_item(
      "arc_easy", R"({"query": "Question: Why?\nAnswer:", "choices": ["Because.", "No."], "label": 1})", "x:1");
  ASSERT_EQ(q.choices.size(), 2u);
  EXPECT_EQ(q.choices[0].context, "Question: Why?\nAnswer:");
  EXPECT_EQ(q.choices[0].continuation, " Because.");
  EXPECT_EQ(q.choices[1].continuation, " No.");
  EXPECT_EQ(q.label, 1);

  McItem w = parse_task_item("winogrande",
                             R"({"sentence": "Sarah was a better surgeon than Maria so _ got the easier cases.",
                                 "option1": "Sarah", "option2": "Maria", "label": 1})",
                             "w:1");
  ASSERT_EQ(w.choices.size(), 2u);
  EXPECT_EQ(w.choices[0].context, "Sarah was a better surgeon than Maria so Sarah");
  EXPECT_EQ(w.choices[1].context, "Sarah was a better surgeon than Maria so Maria");
  EXPECT_EQ(w.choices[0].continuation, " got the easier cases.");
  EXPECT_EQ(w.choices[1].continuation, w.choices[0].continuation);  // partial scoring: same continuation
  EXPECT_EQ(w.label, 1);
  // With the same continuation, acc_norm equals acc.
  TaskScore s = score_items("winogrande", {w}, {-9.0, -8.0});
  EXPECT_DOUBLE_EQ(s.acc, 1.0);
  EXPECT_DOUBLE_EQ(s.acc_norm, 1.0);

  EXPECT_THROW(parse_task_item("piqa", "{not json", "f:3"), Error);
  EXPECT_THROW(parse_task_item("piqa", R"({"query": "q", "choices": ["a", "b"], "label": 2})", "f:3"), Error);
  EXPECT_THROW(parse_task_item("piqa", R"({"query": "q", "choices": ["a"], "label": 0})", "f:3"), Error);
  EXPECT_THROW(
      parse_task_item("winogrande", R"({"sentence": "no blank", "option1": "a", "option2": "b", "label": 0})", "f:3"),
      Error);
  EXPECT_THROW(load_task("boolq", "/nonexistent", -1), Error);
  EXPECT_THROW(load_task("piqa", "/nonexistent", -1), Error);
}

TEST(ZeroShot, LmEvalTokenSplitWithLlama2Tokenizer) {
  SEC_REQUIRE_SHARED("tokenizers/llama2/tokenizer.model");
  Tokenizer tok(read_sentencepiece_model(testing::shared_path("tokenizers/llama2/tokenizer.model")));
  McChoice c{"Question: Is the sky blue?\nAnswer:", " Yes, mostly."};
  EncodedChoice e = encode_choice(tok, c, false);
  std::vector<int> ctx = tok.encode(c.context, false), whole = tok.encode(c.context + c.continuation, false);
  EXPECT_EQ(std::vector<int32_t>(ctx.begin(), ctx.end()), e.context);
  std::vector<int32_t> joined = e.context;
  joined.insert(joined.end(), e.continuation.begin(), e.continuation.end());
  EXPECT_EQ(std::vector<int32_t>(whole.begin(), whole.end()), joined);
  // A trailing space of the context moves to the continuation (lm-eval).
  EncodedChoice moved = encode_choice(tok, {"Answer: ", "Yes"}, false);
  EncodedChoice plain = encode_choice(tok, {"Answer:", " Yes"}, false);
  EXPECT_EQ(moved.context, plain.context);
  EXPECT_EQ(moved.continuation, plain.continuation);
  // BOS goes in front of the context.
  EncodedChoice with_bos = encode_choice(tok, c, true);
  EXPECT_EQ(with_bos.context.front(), 1);
  EXPECT_EQ(with_bos.continuation, e.continuation);
}

Config tiny_config() {
  Config c;
  c.dim = 32;
  c.vocab_size = 53;
  c.head_dim = 8;
  c.blocks = {{4, 1, 40}, {4, 1, 40}};
  c.max_seq_len = 64;
  return c;
}

// The continuation's log-likelihood from one model_forward; *max_logit gets the largest |logit|.
double direct_loglik(const Model& m, std::vector<int32_t> ctx, const std::vector<int32_t>& cont, int64_t max_len,
                     float* max_logit = nullptr) {
  std::vector<int32_t> full = ctx;
  full.insert(full.end(), cont.begin(), cont.end());
  if (int64_t(full.size()) > max_len + 1) full.erase(full.begin(), full.end() - (max_len + 1));
  std::vector<int32_t> in(full.begin(), full.end() - 1);
  const int64_t T = int64_t(in.size()), V = m.config.vocab_size;
  Tensor logits = model_forward(m, in, 1, T);
  if (max_logit) *max_logit = testing::max_abs(logits.f32(), size_t(logits.numel()));
  double sum = 0;
  for (size_t k = 0; k < cont.size(); k++) {
    const float* row = logits.f32() + (T - int64_t(cont.size()) + int64_t(k)) * V;
    double mx = row[0], z = 0;
    for (int64_t v = 1; v < V; v++) mx = std::max(mx, double(row[v]));
    for (int64_t v = 0; v < V; v++) z += std::exp(double(row[v]) - mx);
    sum += row[cont[k]] - mx - std::log(z);
  }
  return sum;
}

TEST(ZeroShot, BatchedLogLikelihoodsEqualOneAtATime) {
  Model m = init_random_model(tiny_config(), 11, 0.3f, 0.1f);
  Rng rng(12);
  std::vector<EncodedChoice> reqs;
  for (int i = 0; i < 11; i++) {
    EncodedChoice e;
    int nc = 1 + int(rng.below(20)), nk = 1 + int(rng.below(6));
    for (int k = 0; k < nc; k++) e.context.push_back(int32_t(rng.below(53)));
    for (int k = 0; k < nk; k++) e.continuation.push_back(int32_t(rng.below(53)));
    reqs.push_back(e);
  }
  std::vector<double> one = continuation_loglikelihoods(m, reqs, 1, 64);
  std::vector<double> four = continuation_loglikelihoods(m, reqs, 4, 64);
  std::vector<double> all = continuation_loglikelihoods(m, reqs, 100, 64);
  ASSERT_EQ(one.size(), reqs.size());
  // Equal up to float32 rounding: BLAS sums in another order for another number of rows. Each
  // token's log-probability (logit - logsumexp) moves by at most twice the logits' reordering
  // error, and a continuation sums n of them.
  auto tol = [&](size_t i, int64_t max_len, float max_logit) {
    return double(reqs[i].continuation.size()) * 2 * testing::f32_reordering_tolerance(m.config, max_len) * max_logit;
  };
  for (size_t i = 0; i < reqs.size(); i++) {
    float max_logit = 0;
    double want = direct_loglik(m, reqs[i].context, reqs[i].continuation, 64, &max_logit);
    EXPECT_NEAR(one[i], four[i], tol(i, 64, max_logit)) << i;
    EXPECT_NEAR(one[i], all[i], tol(i, 64, max_logit)) << i;
    EXPECT_NEAR(one[i], want, tol(i, 64, max_logit)) << i;
  }
  // Inputs longer than max_len + 1 are cut from the left.
  std::vector<double> cut = continuation_loglikelihoods(m, reqs, 3, 8);
  for (size_t i = 0; i < reqs.size(); i++) {
    float max_logit = 0;
    double want = direct_loglik(m, reqs[i].context, reqs[i].continuation, 8, &max_logit);
    EXPECT_NEAR(cut[i], want, tol(i, 8, max_logit)) << i;
  }
}

}  // namespace
}  // namespace sec
