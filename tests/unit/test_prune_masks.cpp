// Masks and selection rules, N:M patterns, OWL allocation, calibration sampling, the layer-wise
// driver's sequential semantics, and the pruning report against measured sparsity.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "calib/layerwise.h"
#include "calib/sampling.h"
#include "core/error.h"
#include "core/random.h"
#include "model/init.h"
#include "prune/unstructured_driver.h"
#include "testing/testing.h"

namespace sec {
namespace {

std::vector<float> randn(int64_t n, uint64_t seed) {
  Rng rng(seed);
  std::vector<float> v(static_cast<size_t>(n));
  for (auto& x : v) x = rng.normal();
  return v;
}

TEST(PruneMasks, NMEveryGroupHasExactlyNPruned) {
  for (auto [n, m] : std::vector<std::pair<int, int>>{{2, 4}, {4, 8}, {1, 4}, {3, 8}}) {
    auto s = randn(24 * 64, 1);
    Mask mask = select_nm(s.data(), 24, 64, n, m);
    for (int64_t r = 0; r < 24; r++)
      for (int64_t g = 0; g < 64; g += m) {
        int cnt = 0;
        float max_pruned = -1e30f, min_kept = 1e30f;
        for (int j = 0; j < m; j++) {
          size_t i = size_t(r * 64 + g + j);
          cnt += mask[i];
          if (mask[i])
            max_pruned = std::max(max_pruned, s[i]);
          else
            min_kept = std::min(min_kept, s[i]);
        }
        EXPECT_EQ(cnt, n);
        EXPECT_LE(max_pruned, min_kept);  // the pruned ones are the lowest
      }
  }
  EXPECT_THROW(select_nm(nullptr, 1, 6, 2, 4), Error);
  EXPECT_THROW(parse_nm("4:4"), Error);
  EXPECT_THROW(parse_nm("2-4"), Error);
  EXPECT_EQ(parse_nm("2:4").str(), "2:4");
}

TEST(PruneMasks, PerRowAndPerMatrixCounts) {
  auto s = randn(10 * 37, 2);
  Mask m = select_lowest_per_row(s.data(), 10, 37, prune_count(0.5, 37));
  for (int r = 0; r < 10; r++) {
    int cnt = 0;
    for (int j = 0; j < 37; j++) cnt += m[size_t(r * 37 + j)];
    EXPECT_EQ(cnt, 18);
  }
  Mask g = select_lowest(s.data(), 370, prune_count(0.7, 370));
  EXPECT_EQ(count_set(g), 259);
  EXPECT_EQ(prune_count(0.7, 10), 7);  // not 6 from 0.7*10 = 6.999...
  // Ties: the lower index is pruned first (a stable sort).
  std::vector<float> tie = {1, 1, 1, 1, 0, 2};
  Mask t = select_lowest(tie.data(), 6, 3);
  EXPECT_EQ(t, (Mask{1, 1, 0, 0, 1, 0}));
}

// Against a stable sort of the indices by score (the rule: the k lowest, ties by lower index): on
// scores with many ties (8 values, negatives, -0 next to +0) and on continuous ones; every k for
// small n, edge k for large n, which take the radix select (n >= 2^18).
TEST(PruneMasks, LowestKEqualsAStableSort) {
  Rng rng(5);
  for (bool ties : {true, false})
    for (int64_t n : {1, 2, 7, 64, 1000, 4099, 300000}) {
      std::vector<float> s(static_cast<size_t>(n));
      for (size_t i = 0; i < s.size(); i++)
        s[i] = ties ? (i % 97 == 5 ? -0.0f : float(int(rng.below(8)) - 3) * 0.25f) : rng.normal();
      std::vector<int64_t> order(static_cast<size_t>(n));
      for (int64_t i = 0; i < n; i++) order[size_t(i)] = i;
      std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return s[size_t(a)] < s[size_t(b)]; });
      std::vector<int64_t> ks;
      if (n <= 64)
        for (int64_t k = 0; k <= n; k++) ks.push_back(k);
      else
        ks = {0, 1, n / 3, n / 2, n - 1, n};
      for (int64_t k : ks) {
        Mask expect(static_cast<size_t>(n), 0);
        for (int64_t i = 0; i < k; i++) expect[size_t(order[size_t(i)])] = 1;
        ASSERT_EQ(select_lowest(s.data(), n, k), expect) << (ties ? "ties" : "continuous") << " n " << n << " k " << k;
      }
    }
  // NaN scores (a non-finite weight) rank above every number: they are pruned last, on both paths.
  const float nan = std::nanf("");
  EXPECT_EQ(select_lowest(std::vector<float>{nan, 1, 0, nan, 2}.data(), 5, 3), (Mask{0, 1, 1, 0, 1}));
  std::vector<float> big(300000, 1.f);
  for (size_t i = 0; i < big.size(); i += 1000) big[i] = nan;
  const Mask m = select_lowest(big.data(), int64_t(big.size()), int64_t(big.size() - 300));
  for (size_t i = 0; i < big.size(); i++) ASSERT_EQ(m[i], i % 1000 != 0) << i;
}

TEST(PruneMasks, MethodsGiveExactNMPatterns) {
  const int64_t rows = 16, cols = 64, T = 200;
  auto w0 = randn(rows * cols, 3);
  auto x = randn(T * cols, 4);
  std::vector<float> norms(cols, 0.f), xtx(cols * cols, 0.f);
  for (int64_t t = 0; t < T; t++)
    for (int64_t i = 0; i < cols; i++) {
      norms[i] += x[t * cols + i] * x[t * cols + i];
      for (int64_t j = 0; j < cols; j++) xtx[i * cols + j] += x[t * cols + i] * x[t * cols + j];
    }
  for (auto& v : norms) v = std::sqrt(v);
  for (auto [n, m] : std::vector<std::pair<int, int>>{{2, 4}, {4, 8}}) {
    SparsityTarget t;
    t.n = n;
    t.m = m;
    auto w = w0;
    apply_mask(w.data(), wanda_mask(w.data(), norms.data(), rows, cols, t));
    EXPECT_TRUE(satisfies_nm(w.data(), rows, cols, n, m));
    EXPECT_EQ(count_zeros(w.data(), rows * cols), rows * cols * n / m);
    w = w0;
    sparsegpt_prune(w.data(), rows, cols, xtx.data(), t, {0.01, 32});
    EXPECT_TRUE(satisfies_nm(w.data(), rows, cols, n, m));
    EXPECT_EQ(count_zeros(w.data(), rows * cols), rows * cols * n / m);
    w = w0;
    apply_mask(w.data(), magnitude_mask(w.data(), rows, cols, t, false));
    EXPECT_EQ(count_zeros(w.data(), rows * cols), rows * cols * n / m);
  }
}

TEST(PruneMasks, OwlAllocationKeepsWeightedMean) {
  std::vector<double> D = {0.01, 0.03, 0.02, 0.05};
  std::vector<int64_t> p = {100, 300, 200, 400};
  auto s = owl_block_sparsity(D, p, 0.6, 0.08);
  double mean = 0;
  for (size_t i = 0; i < s.size(); i++) mean += s[i] * double(p[i]) / 1000.0;
  EXPECT_NEAR(mean, 0.6, 1e-12);
  EXPECT_NEAR(s[0] - s[3], 0.16, 1e-12);  // spread 2 * lambda between min and max outlier ratio
  EXPECT_GT(s[0], s[2]);
  EXPECT_GT(s[2], s[1]);
  auto same = owl_block_sparsity({0.02, 0.02}, {1, 1}, 0.5, 0.08);
  EXPECT_EQ(same, (std::vector<double>{0.5, 0.5}));
}

TEST(CalibSampling, DeterministicWindowsInRange) {
  std::vector<int32_t> stream(1000);
  for (int i = 0; i < 1000; i++) stream[size_t(i)] = i;
  SamplingOptions o;
  o.nsamples = 20;
  o.seqlen = 100;
  o.seed = 3;
  CalibSamples a = sample_windows(stream, o), b = sample_windows(stream, o);
  EXPECT_EQ(a.tokens, b.tokens);
  for (int64_t i = 0; i < 20; i++) {
    EXPECT_LE(a.starts[size_t(i)], 900);
    for (int64_t t = 0; t < 100; t++) EXPECT_EQ(a.sample(i)[t], a.starts[size_t(i)] + t);
  }
  o.seed = 4;
  EXPECT_NE(sample_windows(stream, o).starts, a.starts);
  o.seqlen = 1000;
  EXPECT_EQ(sample_windows(stream, o).starts, std::vector<int64_t>(20, 0));
  o.seqlen = 1001;
  EXPECT_THROW(sample_windows(stream, o), Error);
}

Config tiny_config() {
  Config c;
  c.dim = 32;
  c.vocab_size = 50;
  c.head_dim = 8;
  c.blocks = {{4, 2, 48}, {4, 2, 48}, {4, 2, 48}};
  return c;
}

CalibSamples random_samples(int64_t nsamples, int64_t seqlen, int vocab, uint64_t seed) {
  Rng rng(seed);
  std::vector<int32_t> stream(2000);
  for (auto& t : stream) t = int32_t(rng.below(uint64_t(vocab)));
  SamplingOptions o;
  o.nsamples = nsamples;
  o.seqlen = seqlen;
  o.seed = seed;
  return sample_windows(stream, o);
}

// A method that zeroes o_proj of every block it sees and records block 1's mlp_input statistics.
struct ZeroO : LayerwiseMethod {
  std::unique_ptr<LinearStatsTap> tap;
  std::vector<double> block1_sumsq;
  Tap* begin_block(const Model& m, int layer) override {
    tap = std::make_unique<LinearStatsTap>(m.config, layer, StatsRequest{true, true});
    return tap.get();
  }
  void end_block(Model& m, int layer, BlockPasses&) override {
    tap->finish();
    if (layer == 1) block1_sumsq = tap->stats(TensorKind::Gate).sumsq;
    auto& wo = m.weights.blocks[size_t(layer)].wo;
    std::fill(wo.f32(), wo.f32() + wo.numel(), 0.f);
  }
};

// Block l's statistics come from the outputs of the already-changed blocks 0..l-1.
TEST(Layerwise, InputsComeFromChangedEarlierBlocks) {
  Model m = init_random_model(tiny_config(), 1, 0.3f, 0.1f);
  CalibSamples s = random_samples(3, 16, 50, 2);
  Model pruned = m;
  pruned.weights = allocate_weights(m.config);
  for_each_tensor(m.config, m.weights, [&](const TensorRef& r) {
    for_each_tensor(pruned.config, pruned.weights, [&](TensorRef& q) {
      if (q.name == r.name) std::copy(r.tensor.f32(), r.tensor.f32() + r.tensor.numel(), q.tensor.f32());
    });
  });
  ZeroO method;
  LayerwiseOptions lo;
  lo.batch = 2;  // 2 + 1 samples: exercises a partial batch
  run_layerwise(pruned, s, method, lo);
  // Expected: block 1's MLP input = dense block 1 run on the output of the changed block 0.
  const int64_t N = s.nsamples * s.seqlen, C = 32;
  std::vector<float> x(size_t(N * C));
  embed_tokens(m, s.tokens.data(), N, x.data());
  BlockActs acts;
  block_forward(pruned, 0, x.data(), x.data(), s.nsamples, s.seqlen, acts);
  LinearStatsTap tap(m.config, 1, StatsRequest{true, false});
  BlockPass pass;
  pass.tap = &tap;
  block_forward(m, 1, x.data(), x.data(), s.nsamples, s.seqlen, acts, pass);
  const auto& ref = tap.stats(TensorKind::Up).sumsq;
  ASSERT_EQ(ref.size(), method.block1_sumsq.size());
  for (size_t j = 0; j < ref.size(); j++) EXPECT_NEAR(method.block1_sumsq[j], ref[j], 1e-4 * (1 + ref[j]));
}

TEST(PruneModel, ReportedSparsityEqualsMeasured) {
  CalibSamples s = random_samples(4, 24, 50, 5);
  for (UnstructuredMethod method :
       {UnstructuredMethod::Magnitude, UnstructuredMethod::Wanda, UnstructuredMethod::SparseGPT})
    for (bool nm : {false, true}) {
      Model m = init_random_model(tiny_config(), 3, 0.3f, 0.1f);
      UnstructuredOptions o;
      o.method = method;
      if (nm)
        o.target = parse_nm("2:4");
      else
        o.target.ratio = 0.5;
      o.skip_regex = "layers\\.2\\.mlp\\.down_proj";
      UnstructuredReport r = prune_unstructured(m, o, &s);
      EXPECT_EQ(r.layers.size(), 3u * 7 - 1);
      ASSERT_EQ(r.skipped, std::vector<std::string>{"model.layers.2.mlp.down_proj.weight"});
      int64_t zeros = 0, params = 0;
      for_each_tensor(m.config, m.weights, [&](const TensorRef& t) {
        if (!tensor_rule(t.kind).is_linear) return;
        int64_t z = count_zeros(t.tensor.f32(), t.tensor.numel());
        if (t.name == r.skipped[0]) {
          EXPECT_EQ(z, 0);
          return;
        }
        zeros += z;
        params += t.tensor.numel();
        for (const auto& l : r.layers)
          if (l.name == t.name) {
            EXPECT_EQ(l.zeros, z) << t.name;
            // Wanda / magnitude / N:M hit the target exactly; SparseGPT prunes floor() per column block.
            if (nm || method != UnstructuredMethod::SparseGPT) {
              EXPECT_DOUBLE_EQ(l.sparsity(), 0.5) << t.name;
            } else {
              EXPECT_NEAR(l.sparsity(), 0.5, 0.01) << t.name;
            }
          }
        if (nm) {
          EXPECT_TRUE(satisfies_nm(t.tensor.f32(), t.shape[0], t.shape[1], 2, 4)) << t.name;
        }
      });
      EXPECT_EQ(r.pruned_zeros(), zeros);
      EXPECT_DOUBLE_EQ(r.overall_sparsity(), double(zeros) / double(params));
      EXPECT_EQ(r.block_seconds.size(), 3u);
      auto j = r.to_json();
      EXPECT_EQ(j["layers"].size(), r.layers.size());
      EXPECT_EQ(unstructured_options_json(o)["method"], unstructured_method_name(method));
      // Embeddings and norms untouched.
      EXPECT_EQ(count_zeros(m.weights.embed.f32(), m.weights.embed.numel()), 0);
    }
}

TEST(PruneModel, OwlPreservesMeanAndRejectsNM) {
  CalibSamples s = random_samples(4, 24, 50, 6);
  Model m = init_random_model(tiny_config(), 4, 0.3f, 0.1f);
  UnstructuredOptions o;
  o.method = UnstructuredMethod::Wanda;
  o.target.ratio = 0.6;
  o.owl = true;
  UnstructuredReport r = prune_unstructured(m, o, &s);
  ASSERT_EQ(r.owl_outlier_ratio.size(), 3u);
  double mean = 0;
  for (double t : r.block_target) mean += t / 3;
  EXPECT_NEAR(mean, 0.6, 1e-9);
  EXPECT_NEAR(r.overall_sparsity(), 0.6, 0.03);  // floor(s_l * in) per row rounds down on 32-wide rows
  o.owl = false;
  o.target = parse_nm("2:4");
  o.owl = true;
  EXPECT_THROW(prune_unstructured(m, o, &s), Error);
  o.owl = false;
  o.skip_regex = "([";
  EXPECT_THROW(prune_unstructured(m, o, &s), Error);
  o.skip_regex = "";
  EXPECT_THROW(prune_unstructured(m, o, nullptr), Error);  // wanda needs calibration data
}

}  // namespace
}  // namespace sec
