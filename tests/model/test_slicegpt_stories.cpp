// ctest-label: slow
// SliceGPT: computational invariance on random tiny models and stories260K (rotated, unsliced:
// the same logits), and on stories260K (calibration 128 x 256 from tinystories/calib.txt, eval.txt
// at 256): the per-block and --uniform models' perplexity, exact reloads of both outputs in GGUF and
// HF, llama.cpp running the uniform GGUF and refusing the per-block one, LoRA recovery, bad input.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "calib/dataset.h"
#include "core/random.h"
#include "core/threads.h"
#include "eval/perplexity.h"
#include "io/gguf.h"
#include "model/forward.h"
#include "model/generate.h"
#include "model/init.h"
#include "model/model_io.h"
#include "prune/slicegpt.h"
#include "testing/testing.h"
#include "train/data.h"
#include "train/lora.h"
#include "train/trainer.h"

namespace sec {
namespace {

const char* kModel = "models/stories260K/stories260K.bin";
const char* kCalib = "data/tinystories/calib.txt";
const char* kEval = "data/tinystories/eval.txt";

float max_abs(const Tensor& t) {
  float m = 0;
  for (int64_t i = 0; i < t.numel(); i++) m = std::max(m, std::fabs(t.f32()[i]));
  return m;
}

Model deep_copy(const Model& m) {
  Model c = m;
  for_each_tensor(c.config, c.weights, [](TensorRef& r) { r.tensor = r.tensor.clone(); });
  return c;
}

// max |a - b| over the logits, relative to the largest |logit|: the rotation reorders every sum
// (float32 rounding of a few ulps per block), the function is the same.
double logit_difference(const Model& a, const Model& b, int64_t B, int64_t T, uint64_t seed) {
  auto tokens = testing::random_tokens(B * T, a.config.vocab_size, seed);
  Tensor x = model_forward(a, tokens, B, T), y = model_forward(b, tokens, B, T);
  return testing::max_abs_diff(x.f32(), y.f32(), size_t(x.numel())) / max_abs(y);
}

std::vector<double> random_rotation(int64_t C, uint64_t seed) {
  // Gram-Schmidt of a Gaussian matrix (the test's own, independent of the library's).
  Rng rng(seed);
  std::vector<double> q(size_t(C * C));
  for (auto& x : q) x = rng.normal();
  for (int64_t j = 0; j < C; j++) {
    for (int pass = 0; pass < 2; pass++)
      for (int64_t p = 0; p < j; p++) {
        double dot = 0;
        for (int64_t i = 0; i < C; i++) dot += q[size_t(i * C + p)] * q[size_t(i * C + j)];
        for (int64_t i = 0; i < C; i++) q[size_t(i * C + j)] -= dot * q[size_t(i * C + p)];
      }
    double n = 0;
    for (int64_t i = 0; i < C; i++) n += q[size_t(i * C + j)] * q[size_t(i * C + j)];
    for (int64_t i = 0; i < C; i++) q[size_t(i * C + j)] /= std::sqrt(n);
  }
  return q;
}

TEST(SliceGptInvariance, RandomOrthogonalRotationKeepsTheLogits) {
  Config per_block = testing::tiny_config(4, 2, false, false);
  per_block.blocks = {{4, 2, 72}, {2, 1, 30}, {0, 0, 40}};
  std::vector<std::pair<const char*, Config>> cases = {{"MHA tied", testing::tiny_config(4, 4, true, false)},
                                                       {"GQA", testing::tiny_config(4, 2, false, false)},
                                                       {"GQA biased", testing::tiny_config(4, 2, false, true)},
                                                       {"MQA tied", testing::tiny_config(6, 1, true, false)},
                                                       {"per-block dims", per_block}};
  uint64_t seed = 70;
  for (const auto& [name, c] : cases) {
    Model dense = init_random_model(c, seed, 0.3f, 0.2f);
    Model rotated = deep_copy(dense);
    rotate_model(rotated, random_rotation(c.dim, seed + 1));
    EXPECT_LE(logit_difference(rotated, dense, 2, 20, seed + 2), 1e-5) << name;
    seed += 10;
  }
}

TEST(SliceGptInvariance, PcaRotationWithoutSlicingKeepsTheLogits) {
  for (bool uniform : {false, true}) {
    Model dense = init_random_model(testing::tiny_config(4, 2, false, true), 80, 0.3f, 0.2f);
    Model rotated = deep_copy(dense);
    const CalibSamples s = testing::random_calibration(4, 16, dense.config.vocab_size, 81);
    SliceGptOptions o;
    o.sparsity = 0;
    o.uniform = uniform;
    slicegpt(rotated, o, s);
    EXPECT_EQ(rotated.config.has_shortcuts(), !uniform);
    EXPECT_LE(logit_difference(rotated, dense, 2, 20, 82), 1e-5) << (uniform ? "uniform" : "per block");
  }
}

Model load_stories() {
  LoadOptions lo;
  lo.require_tokenizer = true;
  return load_model(testing::shared_path(kModel), lo);
}

PplResult eval_stories(const Model& m, const Model* ref) {
  std::vector<int32_t> stream =
      tokenize_text(*m.tokenizer, load_corpus(testing::shared_path(kEval)).documents[0], true);
  PplOptions o;
  o.seqlen = 256;
  o.progress = false;
  return evaluate_perplexity(m, stream, o, ref);
}

std::vector<std::string> prune_args(const std::string& out, const std::vector<std::string>& extra) {
  return testing::stories_prune_args("slicegpt", out, extra);
}

TEST(SliceGptStories, RotationAloneKeepsStories260K) {
  SEC_REQUIRE_SHARED(kModel);
  SEC_REQUIRE_SHARED(kCalib);
  set_num_threads(1);
  Model dense = load_stories();
  Model rotated = deep_copy(dense);
  rotate_model(rotated, random_rotation(64, 90));
  EXPECT_LE(logit_difference(rotated, dense, 2, 64, 91), 1e-5);
  testing::TempDir dir;
  for (bool uniform : {false, true}) {
    std::vector<std::string> extra = {"--sparsity", "0"};
    if (uniform) extra.push_back("--uniform");
    auto r = testing::run_cli(prune_args(dir.file("r.gguf"), extra));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    Model m = load_model(dir.file("r.gguf"));
    EXPECT_LE(logit_difference(m, dense, 2, 64, 92), 1e-5) << (uniform ? "uniform" : "per block");
    const PplResult e = eval_stories(m, &dense);
    std::printf("[ info ] stories260K rotated by SliceGPT's PCA (%s), unsliced: KL to dense %.3g on eval.txt\n",
                uniform ? "uniform" : "per block", e.kl_mean);
    EXPECT_LT(e.kl_mean, 1e-6);
  }
  set_num_threads(0);
}

TEST(SliceGptStories, SlicedModelsReloadExactlyAndRunWhereTheyShould) {
  SEC_REQUIRE_SHARED(kModel);
  SEC_REQUIRE_SHARED(kCalib);
  testing::TempDir dir;
  set_num_threads(1);
  Model dense = load_stories();
  for (bool uniform : {false, true}) {
    SCOPED_TRACE(uniform ? "uniform" : "per block");
    std::vector<std::string> extra = {"--sparsity", "0.25"};
    if (uniform) extra.push_back("--uniform");
    const std::string gguf = dir.file(uniform ? "u.gguf" : "b.gguf");
    auto r = testing::run_cli(prune_args(gguf, extra));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    nlohmann::json rep;
    std::ifstream(gguf + ".report.json") >> rep;
    Model m = load_model(gguf);
    EXPECT_EQ(m.config.plain_residual(), uniform);
    EXPECT_EQ(uniform ? m.config.dim : m.config.block_in(1), 48);  // hidden 64 -> 48
    if (!uniform) {
      EXPECT_EQ(m.config.final_dim(), 64);  // the head is not sliced
    }
    EXPECT_EQ(rep["params_after"].get<int64_t>(), param_count(m.config));
    const PplResult e = eval_stories(m, &dense);
    std::printf("[ info ] stories260K SliceGPT 25%% %s: %lld params, eval PPL %.4f, KL to dense %.4f\n",
                uniform ? "--uniform" : "per block", (long long)param_count(m.config), e.ppl, e.kl_mean);
    // HF output reloads to the same logits (bit for bit: the same f32 tensors).
    const std::string hf = dir.file(uniform ? "u-hf" : "b-hf");
    ASSERT_EQ(testing::run_cli({"convert", gguf, "-o", hf}).exit_code, 0);
    Model back = load_model(hf);
    EXPECT_EQ(back.config.resid_dims, m.config.resid_dims);
    EXPECT_EQ(back.config.norm_mean_dim, m.config.norm_mean_dim);
    EXPECT_EQ(logit_difference(back, m, 1, 32, 93), 0.0);
    nlohmann::json cfg;
    std::ifstream(hf + "/config.json") >> cfg;
    EXPECT_EQ(cfg["model_type"], uniform ? "llama" : "secateur_slicegpt");
    GgufFile g(gguf);
    EXPECT_EQ(g.get_string("general.architecture"), uniform ? "llama" : "slicegpt");
    if (!testing::llamacpp_available()) continue;
    // llama.cpp: the uniform model runs with secateur's greedy text; the per-block one is refused.
    auto lr = testing::run_llamacpp({"generate", gguf, "--tokens", "40", "--prompt-ids", "1"});
    if (uniform) {
      ASSERT_EQ(lr.exit_code, 0) << lr.err;
      GenerateOptions go;
      go.max_new_tokens = 40;
      go.temperature = 0.f;
      const std::vector<int32_t> ours = generate(m, {1}, go);
      EXPECT_EQ(nlohmann::json::parse(lr.out)["ids"].get<std::vector<int32_t>>(), ours) << m.tokenizer->decode(ours);
    } else {
      EXPECT_NE(lr.exit_code, 0);
      EXPECT_NE((lr.out + lr.err).find("slicegpt"), std::string::npos) << lr.err;
    }
  }
  set_num_threads(0);
}

TEST(SliceGptStories, LoraRecoveryLowersPerplexity) {
  SEC_REQUIRE_SHARED(kModel);
  SEC_REQUIRE_SHARED(kCalib);
  testing::TempDir dir;
  ASSERT_EQ(testing::run_cli(prune_args(dir.file("b.gguf"), {"--sparsity", "0.25"})).exit_code, 0);
  set_num_threads(1);
  Model m = load_model(dir.file("b.gguf"));
  auto train_data = load_train_samples(*m.tokenizer, testing::shared_path(kCalib), DataFormat::Text, 128);
  TrainerOptions o;
  o.batch = 16;
  o.micro_batch = 8;
  o.max_steps = 40;
  o.lr = 2e-3f;
  o.warmup_steps = 4;
  LoraOptions lo;
  LoraAdapters lora(m, lo, 1);
  const double before = eval_stories(m, nullptr).ppl;
  train(m, &lora, train_data, {}, o);
  lora.merge_into(m, true);
  const double after = eval_stories(m, nullptr).ppl;
  set_num_threads(0);
  std::printf("[ info ] LoRA after SliceGPT 25%%: eval PPL %.3f -> %.3f (40 steps of 16 x 128 tokens)\n", before,
              after);
  EXPECT_LT(after, 0.95 * before);
}

TEST(SliceGptStories, BadInputIsAClearErrorAndWritesNothing) {
  SEC_REQUIRE_SHARED(kModel);
  SEC_REQUIRE_SHARED(kCalib);
  testing::TempDir dir;
  const std::string out = dir.file("x.gguf");
  auto fails = [&](const std::vector<std::string>& extra, const std::string& needle) {
    std::vector<std::string> a = prune_args(out, extra);
    a[9] = "4";
    auto r = testing::run_cli(a);
    EXPECT_NE(r.exit_code, 0) << needle;
    EXPECT_NE(r.err.find(needle), std::string::npos) << r.err;
    EXPECT_FALSE(std::filesystem::exists(out)) << needle;
  };
  fails({"--sparsity", "1"}, "--sparsity must be in [0, 1)");
  fails({"--sparsity", "-0.1"}, "--sparsity must be in [0, 1)");
  fails({"--sparsity", "0.9"}, "rounded down to a multiple of --round 8 = 0 dimensions");
  fails({"--orientation", "sideways"}, "unknown --orientation");
  fails({"--attn-ratio", "0.2"}, "--attn-ratio does not apply to --method slicegpt");
  // A LayerNorm model (OPT) is refused with a clear error.
  std::filesystem::create_directories(dir.file("opt"));
  std::ofstream(dir.file("opt/config.json")) << R"({"model_type": "opt", "hidden_size": 64})";
  auto r = testing::run_cli(
      {"prune", dir.file("opt"), "-o", out, "--method", "slicegpt", "--calib", testing::shared_path(kCalib)});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("LayerNorm"), std::string::npos) << r.err;
  EXPECT_FALSE(std::filesystem::exists(out));
}

}  // namespace
}  // namespace sec
