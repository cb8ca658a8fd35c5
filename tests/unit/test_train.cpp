// Training components: AdamW vs hand computation, schedule, clipping, gradient accumulation, LoRA
// gradients / merge / PEFT files, masked updates, resumable checkpoints, data preparation.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/file.h"
#include "core/random.h"
#include "io/safetensors.h"
#include "model/init.h"
#include "model/train_forward.h"
#include "testing/testing.h"
#include "train/data.h"
#include "train/lora.h"
#include "train/optimizer.h"
#include "train/trainer.h"

namespace sec {
namespace {

Config tiny_config() {
  Config c;
  c.dim = 32;
  c.vocab_size = 61;
  c.head_dim = 8;
  c.blocks = {{4, 2, 48}, {4, 2, 48}};
  return c;
}

std::vector<TrainSample> random_samples(int n, int T, int vocab, uint64_t seed) {
  Rng rng(seed);
  std::vector<TrainSample> out(static_cast<size_t>(n));
  for (auto& s : out)
    for (int t = 0; t < T; t++) {
      s.tokens.push_back(int32_t(rng.below(uint64_t(vocab))));
      s.targets.push_back(int32_t(rng.below(uint64_t(vocab)) % 7));  // learnable: small ids
    }
  return out;
}

// Zero out every other weight of the linear layers (a 50% "pruned" model).
void prune_half(Model& m) {
  for_each_tensor(m.config, m.weights, [](TensorRef& r) {
    if (!tensor_rule(r.kind).is_linear) return;
    for (int64_t i = 0; i < r.tensor.numel(); i += 2) r.tensor.f32()[i] = 0.f;
  });
}

TEST(Train, AdamWMatchesHandComputation) {
  Tensor w = Tensor::from_vector({1.f, -2.f, 0.5f}, {3}), g = Tensor::zeros({3});
  std::vector<Param> ps = {{"w", w, g, {}, true}};
  AdamWOptions o;
  o.weight_decay = 0.1f;
  AdamW opt(ps, o);
  double p[3] = {1, -2, 0.5}, m[3] = {0, 0, 0}, v[3] = {0, 0, 0};
  const float grads[2][3] = {{0.1f, -0.3f, 2.f}, {-0.2f, 0.05f, 1.f}};
  const double lr = 0.01;
  for (int t = 1; t <= 2; t++) {
    for (int i = 0; i < 3; i++) g.f32()[i] = grads[t - 1][i];
    opt.step(ps, float(lr));
    for (int i = 0; i < 3; i++) {
      double gi = grads[t - 1][i];
      p[i] *= 1 - lr * 0.1;
      m[i] = 0.9 * m[i] + 0.1 * gi;
      v[i] = 0.999 * v[i] + 0.001 * gi * gi;
      double mh = m[i] / (1 - std::pow(0.9, t)), vh = v[i] / (1 - std::pow(0.999, t));
      p[i] -= lr * mh / (std::sqrt(vh) + 1e-8);
      EXPECT_NEAR(w.f32()[i], p[i], 1e-6) << "step " << t << " element " << i;
    }
  }
}

TEST(Train, MaskedAdamWKeepsZeros) {
  Tensor w = Tensor::from_vector({0.f, 1.f, 0.f, 2.f}, {2, 2}), g = Tensor::from_vector({1, 1, 1, 1}, {2, 2});
  std::vector<Param> ps = {{"w", w, g, zero_mask(w), true}};
  AdamW opt(ps, {});
  opt.step(ps, 0.1f);
  EXPECT_EQ(w.f32()[0], 0.f);
  EXPECT_EQ(w.f32()[2], 0.f);
  EXPECT_NE(w.f32()[1], 1.f);
}

TEST(Train, WarmupCosineSchedule) {
  EXPECT_FLOAT_EQ(lr_at(0, 100, 10, 1.f, 0.f), 0.1f);
  EXPECT_FLOAT_EQ(lr_at(9, 100, 10, 1.f, 0.f), 1.f);
  EXPECT_FLOAT_EQ(lr_at(10, 100, 10, 1.f, 0.f), 1.f);
  EXPECT_NEAR(lr_at(55, 100, 10, 1.f, 0.f), 0.5f, 1e-6);
  EXPECT_NEAR(lr_at(100, 100, 10, 1.f, 0.1f), 0.1f, 1e-6);
  EXPECT_LT(lr_at(80, 100, 10, 1.f, 0.f), lr_at(60, 100, 10, 1.f, 0.f));
}

TEST(Train, GlobalNormClipping) {
  Tensor a = Tensor::from_vector({3.f, 0.f}, {2}), b = Tensor::from_vector({4.f}, {1});
  std::vector<Param> ps = {{"a", Tensor::zeros({2}), a, {}, true}, {"b", Tensor::zeros({1}), b, {}, true}};
  EXPECT_NEAR(clip_grad_norm(ps, 10.0), 5.0, 1e-9);  // below the limit: unchanged
  EXPECT_EQ(b.f32()[0], 4.f);
  EXPECT_NEAR(clip_grad_norm(ps, 1.0), 5.0, 1e-9);
  EXPECT_NEAR(a.f32()[0], 0.6f, 1e-5);
  EXPECT_NEAR(b.f32()[0], 0.8f, 1e-5);
}

TEST(Train, FourMicroBatchesEqualOneBatchOfFour) {
  auto data = random_samples(8, 12, 61, 1);
  data[2].targets[3] = -1;  // uneven target counts across micro-batches
  data[5].targets.assign(12, -1);
  TrainerOptions o;
  o.batch = 4;
  o.max_steps = 2;
  o.lr = 1e-2f;
  o.warmup_steps = 0;
  Model a = init_random_model(tiny_config(), 3, 0.1f), b = init_random_model(tiny_config(), 3, 0.1f);
  o.micro_batch = 1;
  TrainResult ra = train(a, nullptr, data, {}, o);
  o.micro_batch = 4;
  TrainResult rb = train(b, nullptr, data, {}, o);
  // Micro-batches multiply other matrix shapes: each token's loss moves by at most twice the
  // logits' float32 reordering error (the weights barely move in two steps of lr 1e-2).
  std::vector<int32_t> tokens;
  for (int i = 0; i < 4; i++) tokens.insert(tokens.end(), data[size_t(i)].tokens.begin(), data[size_t(i)].tokens.end());
  Tensor logits = model_forward(a, tokens, 4, 12);
  const double loss_tol =
      2 * testing::f32_reordering_tolerance(a.config, 12) * testing::max_abs(logits.f32(), size_t(logits.numel()));
  for (size_t i = 0; i < ra.losses.size(); i++) EXPECT_NEAR(ra.losses[i], rb.losses[i], loss_tol);
  double mx = 0;
  for (size_t k = 0; k < a.weights.blocks.size(); k++)
    mx = std::max(mx, double(testing::max_abs_diff(a.weights.blocks[k].wq.f32(), b.weights.blocks[k].wq.f32(),
                                                   size_t(a.weights.blocks[k].wq.numel()))));
  EXPECT_LE(mx, 1e-5);
}

// LoRA parameter gradients against central differences of the loss (with dropout, fixed seed).
void check_lora_gradients(bool pruned) {
  Model m = init_random_model(tiny_config(), 5, 0.2f, 0.1f);
  if (pruned) prune_half(m);
  LoraOptions lo;
  lo.rank = 3;
  lo.dropout = 0.2f;
  LoraAdapters lora(m, lo, 6);
  Rng rng(7);
  for (auto& L : lora.layers())
    for (int64_t i = 0; i < L.B.numel(); i++) L.B.f32()[i] = rng.normal(0.f, 0.2f);  // B != 0 so dA != 0
  auto samples = random_samples(2, 10, 61, 8);
  Batch b;
  b.B = 2;
  b.T = 10;
  for (auto& s : samples) {
    b.tokens.insert(b.tokens.end(), s.tokens.begin(), s.tokens.end());
    b.targets.insert(b.targets.end(), s.targets.begin(), s.targets.end());
  }
  lora.set_training(true, 42);
  forward_backward(m, b, LossSpec{}, nullptr, &lora);
  for (size_t li : {size_t(0), size_t(3), lora.layers().size() - 1}) {
    LoraLayer& L = lora.layers()[li];
    for (bool isA : {true, false}) {
      Tensor& p = isA ? L.A : L.B;
      Tensor& g = isA ? L.dA : L.dB;
      for (int64_t i : {int64_t(0), p.numel() / 2 + 1}) {
        const float saved = p.f32()[i];
        auto central = [&](float eps) {
          p.f32()[i] = saved + eps;
          double lp = forward_loss(m, b, LossSpec{}, &lora).total;
          p.f32()[i] = saved - eps;
          double lm = forward_loss(m, b, LossSpec{}, &lora).total;
          p.f32()[i] = saved;
          return (lp - lm) / (2 * double(eps));
        };
        // Richardson extrapolation of two central differences cancels the O(eps^2) truncation
        // term; what is left is the float32 rounding of the loss (~1e-6 over ~20 rows of CE ~ 4)
        // divided by eps: ~1e-4.
        const double fd = (4 * central(5e-3f) - central(1e-2f)) / 3;
        EXPECT_NEAR(g.f32()[i], fd, 1e-3 * std::max(1.0, std::fabs(fd)))
            << (pruned ? "masked " : "plain ") << (isA ? "A" : "B") << " layer " << li << " element " << i;
      }
    }
  }
}

TEST(Train, LoraGradientsMatchFiniteDifferences) { check_lora_gradients(false); }
TEST(Train, MaskedLoraGradientsMatchFiniteDifferences) { check_lora_gradients(true); }

TEST(Train, LoraOnPrunedModelKeepsZerosAndMergeEqualsAdapter) {
  Model m = init_random_model(tiny_config(), 9, 0.2f, 0.1f);
  prune_half(m);
  Model original = m;
  original.weights = allocate_weights(m.config);
  for_each_tensor(m.config, m.weights, [&](TensorRef& r) {
    for_each_tensor(original.config, original.weights, [&](TensorRef& o) {
      if (o.name == r.name) std::memcpy(o.tensor.raw(), r.tensor.raw(), r.tensor.nbytes());
    });
  });
  LoraOptions lo;
  lo.rank = 4;
  LoraAdapters lora(m, lo, 10);
  TrainerOptions o;
  o.batch = 4;
  o.micro_batch = 2;
  o.max_steps = 5;
  o.lr = 1e-2f;
  auto data = random_samples(8, 12, 61, 11);
  TrainResult r = train(m, &lora, data, {}, o);
  EXPECT_LT(r.losses.back(), r.losses.front());
  auto tokens = data[0].tokens;
  tokens.insert(tokens.end(), data[1].tokens.begin(), data[1].tokens.end());
  Tensor adapter_logits = model_forward(m, tokens, 2, 12, &lora);
  lora.merge_into(m, false);
  Tensor merged_logits = model_forward(m, tokens, 2, 12);
  // W x + B (A x) and (W + B A) x round differently: float32 reordering error of the logits.
  EXPECT_LE(testing::max_abs_diff(adapter_logits.f32(), merged_logits.f32(), size_t(merged_logits.numel())),
            testing::f32_reordering_tolerance(m.config, 12) *
                testing::max_abs(adapter_logits.f32(), size_t(adapter_logits.numel())));
  int64_t zeros_before = 0, zeros_after = 0, changed = 0;
  for_each_tensor(m.config, m.weights, [&](const TensorRef& r2) {
    for_each_tensor(original.config, original.weights, [&](const TensorRef& o2) {
      if (o2.name != r2.name || !tensor_rule(r2.kind).is_linear) return;
      for (int64_t i = 0; i < r2.tensor.numel(); i++) {
        zeros_before += o2.tensor.f32()[i] == 0.f;
        zeros_after += o2.tensor.f32()[i] == 0.f && r2.tensor.f32()[i] == 0.f;
        changed += r2.tensor.f32()[i] != o2.tensor.f32()[i];
      }
    });
  });
  EXPECT_GT(zeros_before, 0);
  EXPECT_EQ(zeros_before, zeros_after);
  EXPECT_GT(changed, 0);
}

TEST(Train, PlainLoraMergeWithFillEqualsAdapter) {
  Model m = init_random_model(tiny_config(), 12, 0.2f, 0.1f);
  LoraAdapters lora(m, LoraOptions{}, 13);
  Rng rng(14);
  for (auto& L : lora.layers())
    for (int64_t i = 0; i < L.B.numel(); i++) L.B.f32()[i] = rng.normal(0.f, 0.1f);
  std::vector<int32_t> tokens = {1, 5, 9, 3, 7, 2, 60, 0};
  Tensor a = model_forward(m, tokens, 1, 8, &lora);
  lora.merge_into(m, true);
  Tensor b = model_forward(m, tokens, 1, 8);
  EXPECT_LE(testing::max_abs_diff(a.f32(), b.f32(), size_t(a.numel())),
            testing::f32_reordering_tolerance(m.config, 8) * testing::max_abs(a.f32(), size_t(a.numel())));
}

TEST(Train, FullFineTuneKeepsPrunedZeros) {
  Model m = init_random_model(tiny_config(), 15, 0.2f, 0.1f);
  prune_half(m);
  TrainerOptions o;
  o.batch = 2;
  o.micro_batch = 2;
  o.max_steps = 3;
  o.lr = 1e-2f;
  o.adam.weight_decay = 0.1f;
  train(m, nullptr, random_samples(4, 10, 61, 16), {}, o);
  for (int64_t i = 0; i < m.weights.blocks[0].w_up.numel(); i += 2) ASSERT_EQ(m.weights.blocks[0].w_up.f32()[i], 0.f);
  EXPECT_NE(m.weights.blocks[0].w_up.f32()[1], 0.f);
}

TEST(Train, ResumeFromCheckpointReproducesTheUninterruptedRun) {
  testing::TempDir dir;
  auto data = random_samples(12, 10, 61, 17);
  auto eval = random_samples(4, 10, 61, 18);
  TrainerOptions o;
  o.batch = 4;
  o.micro_batch = 2;
  o.epochs = 2;  // 6 steps, crossing an epoch boundary
  o.lr = 5e-3f;
  o.seed = 3;
  o.eval_every = 2;
  Model ref = init_random_model(tiny_config(), 19, 0.2f, 0.1f);
  LoraOptions lo;
  lo.dropout = 0.1f;
  LoraAdapters ref_lora(ref, lo, 20);
  TrainResult full = train(ref, &ref_lora, data, eval, o);
  ASSERT_EQ(full.losses.size(), 6u);

  Model m = init_random_model(tiny_config(), 19, 0.2f, 0.1f);
  LoraAdapters lora(m, lo, 20);
  o.checkpoint = dir.file("ckpt.safetensors");
  o.resume = true;
  o.stop_after = 4;  // "interrupted" after 4 steps
  TrainResult first = train(m, &lora, data, eval, o);
  EXPECT_EQ(first.steps_done, 4);
  Model m2 = init_random_model(tiny_config(), 19, 0.2f, 0.1f);
  LoraAdapters lora2(m2, lo, 999);  // different init: everything must come from the checkpoint
  o.stop_after = -1;
  TrainResult second = train(m2, &lora2, data, eval, o);
  EXPECT_EQ(second.start_step, 4);
  ASSERT_EQ(second.losses.size(), full.losses.size());
  for (size_t i = 0; i < full.losses.size(); i++) EXPECT_EQ(second.losses[i], full.losses[i]) << "step " << i;
  ASSERT_EQ(second.evals.size(), full.evals.size());
  for (size_t i = 0; i < full.evals.size(); i++) EXPECT_EQ(second.evals[i].second, full.evals[i].second);
}

TEST(Train, PeftAdapterFilesRoundTrip) {
  testing::TempDir dir;
  Model m = init_random_model(tiny_config(), 21, 0.2f, 0.1f);
  LoraOptions lo;
  lo.targets = parse_lora_targets("q_proj,v,down");
  LoraAdapters lora(m, lo, 22);
  lora.layers()[0].B.f32()[0] = 0.5f;
  lora.save_peft(dir.path(), "base");
  SafetensorsFile f(dir.file("adapter_model.safetensors"));
  ASSERT_TRUE(f.find("base_model.model.model.layers.1.self_attn.q_proj.lora_A.weight"));
  ASSERT_TRUE(f.find("base_model.model.model.layers.0.mlp.down_proj.lora_B.weight"));
  EXPECT_FALSE(f.find("base_model.model.model.layers.0.self_attn.k_proj.lora_A.weight"));
  EXPECT_EQ(f.tensors().size(), 2u * 3u * 2u);
  auto cfg = nlohmann::json::parse(read_text_file(dir.file("adapter_config.json")));
  EXPECT_EQ(cfg["r"], 8);
  EXPECT_EQ(cfg["peft_type"], "LORA");
  LoraAdapters other(m, lo, 23);
  other.load_peft(dir.path());
  EXPECT_EQ(other.layers()[0].B.f32()[0], 0.5f);
  EXPECT_EQ(other.layers()[2].A.f32()[3], lora.layers()[2].A.f32()[3]);
  EXPECT_THROW(parse_lora_targets("q,attn"), Error);
}

TEST(Train, TextSamplesAreShiftedWindows) {
  std::vector<int32_t> stream = {1, 10, 11, 12, 13, 14, 15, 16};
  auto s = text_samples(stream, 3);
  ASSERT_EQ(s.size(), 2u);
  EXPECT_EQ(s[0].tokens, (std::vector<int32_t>{1, 10, 11}));
  EXPECT_EQ(s[0].targets, (std::vector<int32_t>{10, 11, 12}));
  EXPECT_EQ(s[1].tokens, (std::vector<int32_t>{12, 13, 14}));
}

TEST(Train, DistillationLowersKlToTeacher) {
  Model teacher = init_random_model(tiny_config(), 24, 0.3f, 0.1f);
  Model student = init_random_model(tiny_config(), 25, 0.3f, 0.1f);
  auto data = random_samples(8, 10, 61, 26);
  TrainerOptions o;
  o.teacher = &teacher;
  o.kd_temp = 1.f;
  o.hidden = HiddenLoss::Cosine;
  o.hidden_weight = 0.1f;
  o.hidden_layers = default_hidden_layers(2, 2);
  o.batch = 4;
  o.micro_batch = 4;
  o.max_steps = 15;
  o.lr = 1e-2f;
  o.warmup_steps = 0;
  o.eval_samples = 8;
  double before = eval_loss(student, nullptr, data, o);
  train(student, nullptr, data, {}, o);
  double after = eval_loss(student, nullptr, data, o);
  EXPECT_LT(after, before * 0.8);
}

}  // namespace
}  // namespace sec
