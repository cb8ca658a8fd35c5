// Whole-model gradients against PyTorch autograd (tools/reference/grad_ref.py, float64).
// Metric per parameter tensor: relative error = max|ours - ref| / max|ref|; acceptance <= 1e-4 (f32).
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "core/random.h"
#include "model/init.h"
#include "model/model_io.h"
#include "model/train_forward.h"
#include "testing/reference_io.h"
#include "testing/testing.h"

namespace sec {
namespace {

using testing::tiny_config;

Batch random_batch(int64_t B, int64_t T, int vocab, uint64_t seed) {
  Rng rng(seed);
  Batch b;
  b.B = B;
  b.T = T;
  for (int64_t i = 0; i < B * T; i++) {
    b.tokens.push_back(int32_t(rng.below(uint64_t(vocab))));
    b.targets.push_back(rng.uniform() < 0.15 ? -1 : int32_t(rng.below(uint64_t(vocab))));  // some ignored
  }
  return b;
}

// Returns the worst per-tensor relative error; reports every tensor over the limit.
double check_against_pytorch(const Model& m, const Batch& batch, const char* what) {
  testing::TempDir dir;
  testing::write_reference_model(m, dir.path());
  testing::write_i32(dir.file("tokens.i32"), std::vector<int>(batch.tokens.begin(), batch.tokens.end()));
  testing::write_i32(dir.file("targets.i32"), std::vector<int>(batch.targets.begin(), batch.targets.end()));
  auto r = testing::run_python("grad_ref.py", {"grads", dir.path(), dir.file("tokens.i32"), dir.file("targets.i32"),
                                               std::to_string(batch.B), std::to_string(batch.T), dir.file("ref.f32")});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  auto ref = testing::read_f32(dir.file("ref.f32"));
  Weights g = allocate_weights(m.config);
  LossValue loss = forward_backward(m, batch, LossSpec{}, &g);
  if (ref.empty()) return 1e9;
  EXPECT_NEAR(loss.total, ref[0], 1e-5 * std::fabs(ref[0])) << what;
  size_t off = 1;
  double worst = 0;
  for_each_tensor(m.config, g, [&](const TensorRef& t) {
    const int64_t n = t.tensor.numel();
    if (off + size_t(n) > ref.size()) {
      ADD_FAILURE() << "reference too short at " << t.name;
      return;
    }
    double mx = 0, mb = 0;
    for (int64_t i = 0; i < n; i++) {
      mx = std::max(mx, double(std::fabs(t.tensor.f32()[i] - ref[off + i])));
      mb = std::max(mb, double(std::fabs(ref[off + i])));
    }
    off += size_t(n);
    if (n == 0) return;
    double rel = mb > 0 ? mx / mb : mx;
    EXPECT_LE(rel, 1e-4) << what << ": " << t.name << " (max |ref| " << mb << ")";
    worst = std::max(worst, rel);
  });
  EXPECT_EQ(off, ref.size());
  return worst;
}

TEST(GradientsOracle, RandomTinyConfigsMatchPyTorch) {
  SEC_REQUIRE_PYTHON_ORACLE();
  Config per_block = tiny_config(4, 2, false, false);
  per_block.blocks = {{4, 2, 72}, {2, 1, 30}, {0, 0, 50}, {6, 3, 0}};
  Config llama3 = tiny_config(4, 1, true, false);
  llama3.rope_theta = 500000.f;
  llama3.rope_scaling = {"llama3", 8.f, 1.f, 4.f, 32};
  struct Case {
    const char* name;
    Config config;
  };
  std::vector<Case> cases = {
      {"MHA tied", tiny_config(4, 4, true, false)},
      {"GQA untied", tiny_config(4, 2, false, false)},
      {"MQA untied", tiny_config(6, 1, false, false)},
      {"GQA with q/k/v biases", tiny_config(4, 2, false, true)},
      {"per-block dims", per_block},
      {"llama3 rope scaling", llama3},
  };
  uint64_t seed = 11;
  for (const auto& c : cases) {
    Model m = init_random_model(c.config, seed, 0.3f, 0.2f);
    double worst = check_against_pytorch(m, random_batch(2, 24, c.config.vocab_size, seed + 50), c.name);
    std::printf("%-24s worst per-tensor relative error %.3g\n", c.name, worst);
    seed++;
  }
}

TEST(GradientsOracle, Stories260KMatchesPyTorch) {
  SEC_REQUIRE_PYTHON_ORACLE();
  SEC_REQUIRE_SHARED("models/stories260K/stories260K.bin");
  Model m = load_model(testing::shared_path("models/stories260K/stories260K.bin"));
  double worst = check_against_pytorch(m, random_batch(2, 64, m.config.vocab_size, 3), "stories260K");
  std::printf("stories260K worst per-tensor relative error %.3g\n", worst);
}

TEST(Gradients, RecomputationGivesTheSameGradients) {
  Model m = init_random_model(tiny_config(4, 2, false, true), 5, 0.3f, 0.2f);
  Batch b = random_batch(2, 16, m.config.vocab_size, 6);
  Weights g1 = allocate_weights(m.config), g2 = allocate_weights(m.config);
  LossValue l1 = forward_backward(m, b, LossSpec{}, &g1);
  TrainOptions o;
  o.recompute = true;
  LossValue l2 = forward_backward(m, b, LossSpec{}, &g2, nullptr, o);
  EXPECT_EQ(l1.total, l2.total);
  std::vector<const Tensor*> a, c;
  for_each_tensor(m.config, g1, [&](const TensorRef& r) { a.push_back(&r.tensor); });
  for_each_tensor(m.config, g2, [&](const TensorRef& r) { c.push_back(&r.tensor); });
  for (size_t i = 0; i < a.size(); i++)
    EXPECT_LE(testing::max_abs_diff(a[i]->f32(), c[i]->f32(), size_t(a[i]->numel())), 0.f);
}

TEST(Gradients, PerSampleSquaredGradientsSumOverSequences) {
  Model m = init_random_model(tiny_config(4, 2, false, false), 7, 0.3f, 0.2f);
  Batch b = random_batch(3, 10, m.config.vocab_size, 8);
  Weights sq = allocate_weights(m.config), sum = allocate_weights(m.config);
  accumulate_squared_gradients(m, b, sq, &sum);
  // Check one tensor against three separate single-sequence gradients.
  double max_err = 0;
  std::vector<float> expect_sq(size_t(m.weights.blocks[1].wq.numel()), 0.f);
  for (int64_t s = 0; s < 3; s++) {
    Batch one;
    one.B = 1;
    one.T = b.T;
    one.tokens.assign(b.tokens.begin() + s * b.T, b.tokens.begin() + (s + 1) * b.T);
    one.targets.assign(b.targets.begin() + s * b.T, b.targets.begin() + (s + 1) * b.T);
    Weights g = compute_gradients(m, one);
    for (size_t i = 0; i < expect_sq.size(); i++) expect_sq[i] += g.blocks[1].wq.f32()[i] * g.blocks[1].wq.f32()[i];
  }
  for (size_t i = 0; i < expect_sq.size(); i++)
    max_err = std::max(max_err, double(std::fabs(expect_sq[i] - sq.blocks[1].wq.f32()[i])));
  // One batch of 3 vs 3 batches of 1: other matrix shapes, so the gradients agree to float32
  // reordering error (the backward pass chains as many reductions as the forward); squaring
  // doubles the relative error.
  EXPECT_LE(max_err, 2 * testing::f32_reordering_tolerance(m.config, b.T) *
                         testing::max_abs(expect_sq.data(), expect_sq.size()));
}

TEST(Gradients, KnowledgeDistillationAgainstFiniteDifferences) {
  // KD + hidden-state losses: d(loss)/d(one weight) vs finite differences of the float32 loss.
  // The loss L is only known to a few ulps: delta = 4 eps |L| (a mean of many terms whose rounding
  // errors of either sign mostly cancel; OpenBLAS's kernels give losses ~1 ulp apart). A central
  // difference D(h) = (L(w+h) - L(w-h)) / 2h is then off by delta / h from rounding and by
  // h^2 f^(3) / 6 from truncation; with L ~ 400 (the MSE part) and h = 1e-2, delta / h is 2e-3, so a
  // fixed 1e-3 passed or failed with the BLAS kernel. Richardson's R = (4 D(h) - D(2h)) / 3 cancels
  // the h^2 term (what is left is O(h^4): 6e-6 f^(5) / 30 here) with a rounding error of at most
  // (4 delta / h + delta / 2h) / 3 = 1.5 delta / h, so a larger h = 0.05 can be used: the tolerance
  // 1.5 delta / h is 6e-3 for the MSE loss and 8e-5 for the cosine one, a few % of the gradients.
  Model student = init_random_model(tiny_config(4, 2, false, false), 9, 0.3f, 0.2f);
  Model teacher = init_random_model(tiny_config(4, 2, false, false), 10, 0.3f, 0.2f);
  Batch b = random_batch(2, 8, student.config.vocab_size, 12);
  std::vector<float> tlogits(size_t(b.B * b.T * student.config.vocab_size));
  std::vector<Tensor> th = hidden_states(teacher, b.tokens.data(), b.B, b.T, tlogits.data());
  for (HiddenLoss hl : {HiddenLoss::Mse, HiddenLoss::Cosine}) {
    LossSpec spec;
    spec.teacher_logits = tlogits.data();
    spec.kd_temp = 2.f;
    spec.hidden = hl;
    spec.hidden_weight = 0.5f;
    spec.teacher_hidden = {nullptr, th[1].f32(), th[2].f32()};
    Weights g = allocate_weights(student.config);
    const double loss = forward_backward(student, b, spec, &g).total;
    float* w = student.weights.blocks[0].w_up.f32();
    const float h = 0.05f;
    const double delta = 4 * std::numeric_limits<float>::epsilon() * std::fabs(loss);
    for (int64_t i : {0, 17, 301}) {
      const float saved = w[i];
      auto central = [&](float step) {
        w[i] = saved + step;
        const double lp = forward_loss(student, b, spec).total;
        w[i] = saved - step;
        const double lm = forward_loss(student, b, spec).total;
        w[i] = saved;
        return (lp - lm) / (double(saved + step) - double(saved - step));  // the steps as rounded to float
      };
      const double fd = (4 * central(h) - central(2 * h)) / 3, an = g.blocks[0].w_up.f32()[i];
      EXPECT_NEAR(an, fd, 1.5 * delta / h) << "element " << i << ", loss " << loss;
    }
  }
}

}  // namespace
}  // namespace sec
