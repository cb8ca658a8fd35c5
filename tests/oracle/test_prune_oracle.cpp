// Wanda masks, SparseGPT pruned weights and OWL allocations against the PyTorch references of the
// rules in tools/reference/prune_ref.py (written from methods.md, independent of this code).
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>

#include "calib/layerwise.h"
#include "core/random.h"
#include "prune/unstructured.h"
#include "testing/testing.h"

namespace sec {
namespace {

struct Layer {
  int64_t rows, cols, tokens;
  std::vector<float> W, X;  // (rows, cols), (tokens, cols)
};

// Random layer whose inputs have a few large-magnitude features (x30) and, optionally, dead
// (always zero) features -- the situations Wanda and SparseGPT's dead-input rule exist for.
Layer random_layer(int64_t rows, int64_t cols, int64_t tokens, uint64_t seed, int n_dead) {
  Rng rng(seed);
  Layer l{rows, cols, tokens, std::vector<float>(size_t(rows * cols)), std::vector<float>(size_t(tokens * cols))};
  for (auto& w : l.W) w = rng.normal();
  std::vector<float> scale(size_t(cols), 1.f);
  for (int i = 0; i < 4; i++) scale[rng.below(uint64_t(cols))] = 30.f;
  for (int i = 0; i < n_dead; i++) scale[(7 + 13 * i) % cols] = 0.f;
  for (int64_t t = 0; t < tokens; t++)
    for (int64_t j = 0; j < cols; j++) l.X[t * cols + j] = scale[j] * rng.normal();
  return l;
}

// X^T X and the column norms through the same tap the layer-wise driver uses.
LinearStatsTap stats_of(const Layer& l) {
  Config c;
  c.dim = int(l.cols);
  c.vocab_size = 8;
  c.head_dim = 2;
  c.blocks = {{1, 1, 4}};
  LinearStatsTap tap(c, 0, StatsRequest{true, true});
  // Feed the tokens in two chunks to exercise accumulation.
  int64_t half = l.tokens / 2;
  tap.observe(TapPoint::AttnInput, 0, TapData{l.X.data(), 1, half, l.cols});
  tap.observe(TapPoint::AttnInput, 0, TapData{l.X.data() + half * l.cols, 1, l.tokens - half, l.cols});
  tap.finish();
  return tap;
}

void write_layer(const testing::TempDir& d, const Layer& l, nlohmann::json meta) {
  testing::write_f32(d.file("W.f32"), l.W);
  testing::write_f32(d.file("X.f32"), l.X);
  meta["rows"] = l.rows;
  meta["cols"] = l.cols;
  meta["tokens"] = l.tokens;
  std::ofstream(d.file("meta.json")) << meta.dump();
}

TEST(PruneOracle, WandaMasksMatchReferenceAndDifferFromMagnitude) {
  SEC_REQUIRE_PYTHON_ORACLE();
  struct Case {
    SparsityTarget t;
    uint64_t seed;
  };
  std::vector<Case> cases = {{{0.5, 0, 0}, 1}, {{0.7, 0, 0}, 2}, {{0.5, 2, 4}, 3}, {{0.5, 4, 8}, 4}};
  for (const auto& c : cases) {
    Layer l = random_layer(40, 96, 300, c.seed, 0);
    LinearStatsTap tap = stats_of(l);
    std::vector<float> norms = tap.stats(TensorKind::Q).col_norms();
    Mask mw = wanda_mask(l.W.data(), norms.data(), l.rows, l.cols, c.t);
    Mask mm = magnitude_mask(l.W.data(), l.rows, l.cols, c.t, false);
    testing::TempDir d;
    write_layer(d, l, {{"sparsity", c.t.ratio}, {"n", c.t.n}, {"m", c.t.m}});
    auto r = testing::run_python("prune_ref.py", {"wanda", d.path()});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    auto ref_w = testing::read_f32(d.file("mask_wanda.f32"));
    auto ref_m = testing::read_f32(d.file("mask_magnitude.f32"));
    ASSERT_EQ(ref_w.size(), mw.size());
    int64_t diff_w = 0, diff_m = 0, wanda_vs_mag = 0;
    for (size_t i = 0; i < mw.size(); i++) {
      diff_w += (mw[i] != (ref_w[i] != 0.f));
      diff_m += (mm[i] != (ref_m[i] != 0.f));
      wanda_vs_mag += (mw[i] != mm[i]);
    }
    EXPECT_EQ(diff_w, 0) << c.t.str();
    EXPECT_EQ(diff_m, 0) << c.t.str();
    EXPECT_GT(wanda_vs_mag, int64_t(mw.size() / 50)) << "Wanda should differ from magnitude with outlier features";
  }
}

TEST(PruneOracle, SparseGptWeightsMatchReference) {
  SEC_REQUIRE_PYTHON_ORACLE();
  struct Case {
    SparsityTarget t;
    int64_t rows, cols;
    int blocksize;
    uint64_t seed;
  };
  std::vector<Case> cases = {
      {{0.5, 0, 0}, 48, 256, 128, 11},  // two full blocks
      {{0.6, 0, 0}, 40, 200, 64, 12},   // partial last block
      {{0.5, 2, 4}, 48, 256, 128, 13},
      {{0.5, 4, 8}, 32, 192, 64, 14},
  };
  for (const auto& c : cases) {
    Layer l = random_layer(c.rows, c.cols, 2 * c.cols + 64, c.seed, 3);
    LinearStatsTap tap = stats_of(l);
    std::vector<float> w = l.W;
    SparseGptOptions o;
    o.blocksize = c.blocksize;
    sparsegpt_prune(w.data(), l.rows, l.cols, tap.stats(TensorKind::Q).xtx.f32(), c.t, o);
    testing::TempDir d;
    write_layer(d, l,
                {{"sparsity", c.t.ratio}, {"n", c.t.n}, {"m", c.t.m}, {"blocksize", c.blocksize}, {"percdamp", 0.01}});
    auto r = testing::run_python("prune_ref.py", {"sparsegpt", d.path()});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    auto ref = testing::read_f32(d.file("W_sparsegpt.f32"));
    ASSERT_EQ(ref.size(), w.size());
    float max_ref = 0, max_diff = 0;
    int64_t zero_mismatch = 0, zeros = 0;
    for (size_t i = 0; i < w.size(); i++) {
      max_ref = std::max(max_ref, std::fabs(ref[i]));
      max_diff = std::max(max_diff, std::fabs(ref[i] - w[i]));
      zero_mismatch += ((ref[i] == 0.f) != (w[i] == 0.f));
      zeros += (w[i] == 0.f);
    }
    EXPECT_EQ(zero_mismatch, 0) << c.t.str();
    EXPECT_LE(max_diff / max_ref, 1e-4f) << c.t.str() << " max diff " << max_diff << " max |w| " << max_ref;
    // Dead inputs are zero in every row.
    for (int i = 0; i < 3; i++) {
      int64_t j = (7 + 13 * i) % l.cols;
      for (int64_t row = 0; row < l.rows; row++) EXPECT_EQ(w[row * l.cols + j], 0.f);
    }
    if (c.t.is_nm())
      EXPECT_TRUE(satisfies_nm(w.data(), l.rows, l.cols, c.t.n, c.t.m));
    else
      EXPECT_GE(zeros, prune_count(c.t.ratio, l.rows * l.cols) - l.rows);  // floor per block
  }
}

TEST(PruneOracle, OwlAllocationMatchesReference) {
  SEC_REQUIRE_PYTHON_ORACLE();
  // 6 blocks of 3 layers; block b has an outlier feature of growing strength so D differs.
  Rng rng(5);
  std::vector<float> Wall, Nall;
  nlohmann::json blocks = nlohmann::json::array();
  std::vector<double> D;
  std::vector<int64_t> params;
  for (int b = 0; b < 6; b++) {
    nlohmann::json layers = nlohmann::json::array();
    std::vector<ScoredLinear> scored;
    std::vector<std::vector<float>> keep_w, keep_n;
    int64_t p = 0;
    for (int k = 0; k < 3; k++) {
      int64_t rows = 16 + 8 * k, cols = 32;
      std::vector<float> w(static_cast<size_t>(rows * cols)), n(static_cast<size_t>(cols));
      for (auto& x : w) x = rng.normal();
      for (auto& x : n) x = 0.5f + float(rng.uniform());
      n[size_t(b + k) % cols] *= float(1 + 6 * b);
      layers.push_back({{"rows", rows}, {"cols", cols}, {"w", Wall.size()}, {"x", Nall.size()}});
      Wall.insert(Wall.end(), w.begin(), w.end());
      Nall.insert(Nall.end(), n.begin(), n.end());
      keep_w.push_back(std::move(w));
      keep_n.push_back(std::move(n));
      p += rows * cols;
    }
    for (size_t k = 0; k < keep_w.size(); k++)
      scored.push_back({keep_w[k].data(), int64_t(keep_w[k].size() / 32), 32, keep_n[k].data()});
    D.push_back(owl_outlier_ratio(scored, 5.0));
    params.push_back(p);
    blocks.push_back(layers);
  }
  std::vector<double> sp = owl_block_sparsity(D, params, 0.7, 0.08);
  testing::TempDir d;
  testing::write_f32(d.file("W.f32"), Wall);
  testing::write_f32(d.file("norms.f32"), Nall);
  std::ofstream(d.file("meta.json"))
      << nlohmann::json{{"blocks", blocks}, {"M", 5.0}, {"lambda", 0.08}, {"sparsity", 0.7}}.dump();
  auto r = testing::run_python("prune_ref.py", {"owl", d.path()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  nlohmann::json ref;
  std::ifstream(d.file("owl.json")) >> ref;
  double wmean = 0, wsum = 0;
  for (size_t b = 0; b < D.size(); b++) {
    EXPECT_NEAR(D[b], ref["ratio"][b].get<double>(), 1e-12) << "block " << b;
    EXPECT_NEAR(sp[b], ref["sparsity"][b].get<double>(), 1e-9) << "block " << b;
    wmean += sp[b] * double(params[b]);
    wsum += double(params[b]);
  }
  EXPECT_NEAR(wmean / wsum, 0.7, 1e-9);
  EXPECT_GT(D.back(), D.front());
  EXPECT_LT(sp.back(), sp.front());  // more outliers -> lower sparsity
}

}  // namespace
}  // namespace sec
