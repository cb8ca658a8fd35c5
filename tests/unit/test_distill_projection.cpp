// Distillation into a student of another width: the hidden-state loss through a learned projection
// (p = s . P^T) — gradients of the student's weights and of P against finite differences, the
// balanced weight (hidden term rescaled to the logit loss), and a trainer run whose student is
// narrower than its teacher.
#include <gtest/gtest.h>

#include <cmath>

#include "core/error.h"
#include "model/init.h"
#include "model/train_forward.h"
#include "testing/testing.h"
#include "train/trainer.h"

namespace sec {
namespace {

using testing::tiny_config;

Batch random_batch(int64_t B, int64_t T, int vocab, uint64_t seed) {
  Batch b;
  b.B = B;
  b.T = T;
  b.tokens = testing::random_tokens(B * T, vocab, seed);
  b.targets = testing::random_tokens(B * T, vocab, seed + 1);
  b.targets[1] = -1;  // a position without a target is skipped by every term
  return b;
}

// Deterministic values in [-std, std].
Tensor random_tensor(Shape s, float std, uint64_t seed) {
  Tensor t = Tensor::empty(s);
  auto v = testing::random_tokens(t.numel(), 2001, seed);
  for (int64_t i = 0; i < t.numel(); i++) t.f32()[i] = std * (float(v[size_t(i)]) / 1000.f - 1.f);
  return t;
}

// Richardson-extrapolated central difference: the O(eps^2) term cancels; what is left is the float32
// rounding of the loss, about 2^-24 * |loss| * sqrt(rows) per evaluation, divided by eps (5e-3).
template <class F>
double derivative(float& x, F loss) {
  const float saved = x;
  auto central = [&](float eps) {
    x = saved + eps;
    const double p = loss();
    x = saved - eps;
    const double m = loss();
    x = saved;
    return (p - m) / (2 * double(eps));
  };
  return (4 * central(5e-3f) - central(1e-2f)) / 3;
}

TEST(DistillProjection, GradientsOfStudentAndProjectionMatchFiniteDifferences) {
  Model student = init_random_model(tiny_config(4, 2, false, false), 31, 0.3f, 0.2f);  // width 48
  const int64_t Ct = 40, Cs = student.config.dim, V = student.config.vocab_size;
  Batch b = random_batch(2, 8, int(V), 32);
  const int64_t N = b.B * b.T;
  Tensor teacher_logits = random_tensor({N, V}, 0.5f, 33);
  Tensor t1 = random_tensor({N, Ct}, 1.f, 34), t2 = random_tensor({N, Ct}, 1.f, 35);
  Tensor P1 = random_tensor({Ct, Cs}, 0.2f, 36), P2 = random_tensor({Ct, Cs}, 0.2f, 37);
  for (HiddenLoss hl : {HiddenLoss::Mse, HiddenLoss::Cosine}) {
    SCOPED_TRACE(hl == HiddenLoss::Mse ? "mse" : "cosine");
    LossSpec spec;
    spec.teacher_logits = teacher_logits.f32();
    spec.hidden = hl;
    spec.hidden_weight = 0.7f;
    spec.teacher_hidden = {t1.f32(), nullptr, t2.f32()};
    Tensor g1 = Tensor::zeros({Ct, Cs}), g2 = Tensor::zeros({Ct, Cs});
    spec.hidden_proj = {&P1, nullptr, &P2};
    spec.hidden_proj_grad = {&g1, nullptr, &g2};
    Weights g = allocate_weights(student.config);
    const LossValue v = forward_backward(student, b, spec, &g);
    EXPECT_GT(v.hidden, 0.0);
    EXPECT_NEAR(v.total, v.main + double(0.7f) * v.hidden, 1e-9 * v.total);
    auto loss = [&] { return forward_loss(student, b, spec).total; };
    const double noise = 8 * std::ldexp(std::fabs(v.total), -24) * std::sqrt(double(N)) / 5e-3;
    for (int64_t i : {int64_t(0), int64_t(77), int64_t(301)}) {
      const double fd = derivative(student.weights.blocks[0].w_up.f32()[i], loss);
      EXPECT_NEAR(g.blocks[0].w_up.f32()[i], fd, 1e-4 * std::fabs(fd) + noise) << "w_up " << i;
      const double fp = derivative(P2.f32()[i * 3], loss);
      EXPECT_NEAR(g2.f32()[i * 3], fp, 1e-4 * std::fabs(fp) + noise) << "P2 " << i * 3;
    }
    // Balanced: the weight becomes 0.7 * main / hidden, so the hidden term equals 0.7 * main.
    spec.hidden_balance = true;
    const LossValue bal = forward_loss(student, b, spec);
    EXPECT_NEAR(bal.total, bal.main * (1 + double(0.7f)), 1e-9 * bal.total);
  }
}

TEST(DistillProjection, TrainerDistilsIntoANarrowerStudent) {
  Config tc = tiny_config(4, 2, false, false);
  Model teacher = init_random_model(tc, 41, 0.3f, 0.1f);
  Config sc = tc;
  sc.dim = 32;  // another width: every pair needs a projection
  sc.blocks.resize(2);
  Model student = init_random_model(sc, 42, 0.3f, 0.1f);
  std::vector<TrainSample> data;
  for (int i = 0; i < 8; i++) {
    TrainSample s;
    s.tokens = testing::random_tokens(10, 97, 50 + uint64_t(i));
    s.targets = testing::random_tokens(10, 97, 60 + uint64_t(i));
    data.push_back(s);
  }
  TrainerOptions o;
  o.teacher = &teacher;
  o.hidden = HiddenLoss::Cosine;
  o.hidden_weight = 0.5f;
  o.hidden_layers = default_hidden_layers(2, 3);
  EXPECT_EQ(o.hidden_layers, (std::vector<int>{1, 2}));
  o.batch = 4;
  o.micro_batch = 2;
  o.max_steps = 20;
  o.lr = 1e-2f;
  o.warmup_steps = 0;
  o.eval_samples = 8;
  const double before = eval_loss(student, nullptr, data, o);
  TrainResult r = train(student, nullptr, data, {}, o);
  const double after = eval_loss(student, nullptr, data, o);
  EXPECT_LT(after, 0.8 * before);
  EXPECT_LT(r.losses.back(), r.losses.front());
  EXPECT_EQ(parse_hidden_layers("0:2,1:0", 2, 3), (std::vector<int>{2, 0}));
  EXPECT_THROW(parse_hidden_layers("0:3", 2, 3), Error);
  EXPECT_THROW(parse_hidden_layers("zero:1", 2, 3), Error);
}

}  // namespace
}  // namespace sec
