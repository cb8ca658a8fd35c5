// Perplexity windows of both protocols on crafted token streams, the scored positions against a
// direct computation from model_forward, batched == unbatched, and KL of a model to itself.
#include <gtest/gtest.h>

#include <cmath>

#include "core/error.h"
#include "core/random.h"
#include "eval/perplexity.h"
#include "model/forward.h"
#include "model/init.h"
#include "testing/testing.h"

namespace sec {
namespace {

std::vector<int32_t> iota_stream(int n) {
  std::vector<int32_t> s(static_cast<size_t>(n));
  for (int i = 0; i < n; i++) s[size_t(i)] = 100 + i;
  return s;
}

TEST(PplWindows, PapersNonOverlappingRemainderDropped) {
  auto stream = iota_stream(10);
  PplWindows w = make_ppl_windows(PplProtocol::Papers, 10, 4, -1, 1);
  EXPECT_EQ(w.windows_available, 2);
  EXPECT_EQ(w.windows, 2);
  EXPECT_EQ(w.first_target, 1);  // the first token of a window is context only
  EXPECT_EQ(w.scored_per_window(), 3);
  EXPECT_EQ(w.scored_tokens(), 6);
  EXPECT_EQ(w.window_bos, -1);
  std::vector<int32_t> t(4);
  w.window_tokens(stream, 0, t.data());
  EXPECT_EQ(t, (std::vector<int32_t>{100, 101, 102, 103}));
  w.window_tokens(stream, 1, t.data());
  EXPECT_EQ(t, (std::vector<int32_t>{104, 105, 106, 107}));  // tokens 108, 109 dropped

  PplWindows one = make_ppl_windows(PplProtocol::Papers, 10, 4, 1, 1);
  EXPECT_EQ(one.windows, 1);
  EXPECT_EQ(one.windows_available, 2);
}

TEST(PplWindows, LlamaCppBosPerWindowSecondHalfScored) {
  auto stream = iota_stream(20);
  PplWindows w = make_ppl_windows(PplProtocol::LlamaCpp, 20, 8, -1, 1);
  EXPECT_EQ(w.windows, 2);
  EXPECT_EQ(w.first_target, 5);         // logits 4..6 predict tokens 5..7
  EXPECT_EQ(w.scored_per_window(), 3);  // seqlen/2 - 1
  std::vector<int32_t> t(8);
  w.window_tokens(stream, 1, t.data());
  EXPECT_EQ(t, (std::vector<int32_t>{1, 109, 110, 111, 112, 113, 114, 115}));
  // Odd seqlen: first = 7/2 = 3, scored targets 4..6.
  PplWindows odd = make_ppl_windows(PplProtocol::LlamaCpp, 20, 7, -1, 1);
  EXPECT_EQ(odd.first_target, 4);
  EXPECT_EQ(odd.scored_per_window(), 3);
  // No BOS (tokenizer adds none): the window is left as is.
  PplWindows nobos = make_ppl_windows(PplProtocol::LlamaCpp, 20, 8, -1, -1);
  nobos.window_tokens(stream, 1, t.data());
  EXPECT_EQ(t[0], 108);
  // 2048: 1023 scored per window, as llama-perplexity.
  EXPECT_EQ(make_ppl_windows(PplProtocol::LlamaCpp, 5000, 2048, -1, 1).scored_per_window(), 1023);
  EXPECT_EQ(make_ppl_windows(PplProtocol::Papers, 5000, 2048, -1, 1).scored_per_window(), 2047);
}

TEST(PplWindows, RejectsBadInputs) {
  EXPECT_THROW(make_ppl_windows(PplProtocol::Papers, 3, 4, -1, 1), Error);     // shorter than a window
  EXPECT_THROW(make_ppl_windows(PplProtocol::Papers, 10, 1, -1, 1), Error);    // nothing to score
  EXPECT_THROW(make_ppl_windows(PplProtocol::LlamaCpp, 10, 2, -1, 1), Error);  // nothing to score
  EXPECT_THROW(make_ppl_windows(PplProtocol::Papers, 10, 4, 0, 1), Error);
  EXPECT_THROW(parse_ppl_protocol("wikitext"), Error);
  EXPECT_EQ(parse_ppl_protocol("llama.cpp"), PplProtocol::LlamaCpp);
}

Config tiny_config() {
  Config c;
  c.dim = 32;
  c.vocab_size = 61;
  c.head_dim = 8;
  c.blocks = {{4, 2, 48}, {4, 2, 48}};
  c.max_seq_len = 64;
  return c;
}

// The mean NLL over exactly the positions each protocol documents, computed directly.
double direct_mean_nll(const Model& m, const std::vector<int32_t>& s, PplProtocol p, int64_t T, int64_t windows) {
  const int64_t V = m.config.vocab_size;
  double sum = 0;
  int64_t n = 0;
  for (int64_t w = 0; w < windows; w++) {
    std::vector<int32_t> in(s.begin() + w * T, s.begin() + (w + 1) * T);
    int64_t first = 0;  // first scored logit position
    if (p == PplProtocol::LlamaCpp) {
      in[0] = m.config.bos_token_id;
      first = T / 2;
    }
    Tensor logits = model_forward(m, in, 1, T);
    for (int64_t j = first; j < T - 1; j++) {
      const float* row = logits.f32() + j * V;
      double mx = row[0], z = 0;
      for (int64_t v = 1; v < V; v++) mx = std::max(mx, double(row[v]));
      for (int64_t v = 0; v < V; v++) z += std::exp(double(row[v]) - mx);
      sum += mx + std::log(z) - row[s[size_t(w * T + j + 1)]];
      n++;
    }
  }
  return sum / double(n);
}

// Two float32 computations of one token's NLL (logsumexp - target logit) that order their sums
// differently (other batch shapes, another BLAS kernel) differ by at most twice the logits'
// reordering error; the mean NLL, and to first order log(ppl), inherit that bound.
double nll_tolerance(const Model& m, const std::vector<int32_t>& stream, int64_t T, int64_t windows) {
  std::vector<int32_t> in(stream.begin(), stream.begin() + windows * T);
  Tensor logits = model_forward(m, in, windows, T);
  return 2 * testing::f32_reordering_tolerance(m.config, T) * testing::max_abs(logits.f32(), size_t(logits.numel()));
}

TEST(Perplexity, MatchesDirectComputationBothProtocols) {
  Model m = init_random_model(tiny_config(), 3, 0.3f, 0.1f);
  auto stream = testing::random_tokens(200, 61, 4);
  for (PplProtocol p : {PplProtocol::Papers, PplProtocol::LlamaCpp}) {
    PplOptions o;
    o.protocol = p;
    o.seqlen = 32;
    o.progress = false;
    PplResult r = evaluate_perplexity(m, stream, o);
    EXPECT_EQ(r.windows.windows, 6);
    EXPECT_EQ(r.scored_tokens, p == PplProtocol::Papers ? 6 * 31 : 6 * 15);
    double want = direct_mean_nll(m, stream, p, 32, 6);
    const double tol = nll_tolerance(m, stream, 32, 6);
    EXPECT_NEAR(r.mean_nll, want, tol) << ppl_protocol_name(p);
    EXPECT_NEAR(r.ppl, std::exp(want), tol * std::exp(want));
    EXPECT_GT(r.ppl_stderr, 0);
    EXPECT_NEAR(r.ppl_stderr, r.ppl * r.nll_stderr, 1e-12);
    EXPECT_FALSE(r.has_reference);
  }
}

TEST(Perplexity, BatchedEqualsUnbatched) {
  Model m = init_random_model(tiny_config(), 5, 0.3f, 0.1f);
  auto stream = testing::random_tokens(7 * 24 + 5, 61, 6);
  for (PplProtocol p : {PplProtocol::Papers, PplProtocol::LlamaCpp}) {
    PplOptions o;
    o.protocol = p;
    o.seqlen = 24;
    o.progress = false;
    PplResult one = evaluate_perplexity(m, stream, o, &m);
    o.batch = 3;  // 7 windows: batches of 3, 3, 1
    PplResult three = evaluate_perplexity(m, stream, o, &m);
    EXPECT_EQ(one.scored_tokens, three.scored_tokens);
    // Batches of 3 windows multiply other matrix shapes than one window at a time.
    const double tol = nll_tolerance(m, stream, 24, 7);
    EXPECT_NEAR(one.ppl, three.ppl, tol * one.ppl) << ppl_protocol_name(p);
    EXPECT_NEAR(one.nll_stderr, three.nll_stderr, tol);  // each NLL moves by <= tol
    o.max_windows = 4;
    PplResult four = evaluate_perplexity(m, stream, o);
    EXPECT_EQ(four.windows.windows, 4);
    EXPECT_EQ(four.scored_tokens, 4 * four.windows.scored_per_window());
  }
}

TEST(Perplexity, KlOfModelToItselfIsZero) {
  Model m = init_random_model(tiny_config(), 7, 0.3f, 0.1f);
  auto stream = testing::random_tokens(100, 61, 8);
  PplOptions o;
  o.seqlen = 32;
  o.progress = false;
  PplResult r = evaluate_perplexity(m, stream, o, &m);
  ASSERT_TRUE(r.has_reference);
  EXPECT_EQ(r.kl_mean, 0.0);
  EXPECT_EQ(r.top1, 1.0);
  EXPECT_EQ(r.abs_dp_mean, 0.0);
  EXPECT_EQ(r.ref_ppl, r.ppl);

  // A perturbed copy is at a positive distance.
  Model other = init_random_model(tiny_config(), 9, 0.3f, 0.1f);
  PplResult d = evaluate_perplexity(m, stream, o, &other);
  EXPECT_GT(d.kl_mean, 0.0);
  EXPECT_LT(d.top1, 1.0);
  EXPECT_GT(d.abs_dp_mean, 0.0);

  Config small = tiny_config();
  small.vocab_size = 60;
  Model wrong_vocab = init_random_model(small, 1);
  EXPECT_THROW(evaluate_perplexity(m, stream, o, &wrong_vocab), Error);
}

TEST(Perplexity, MeanStatStderr) {
  MeanStat s;
  for (double x : {1.0, 2.0, 3.0, 4.0}) s.add(x);
  EXPECT_DOUBLE_EQ(s.mean(), 2.5);
  // var (population) = 1.25; stderr = sqrt(1.25 / 3)
  EXPECT_NEAR(s.stderr_of_mean(), std::sqrt(1.25 / 3), 1e-12);
}

}  // namespace
}  // namespace sec
