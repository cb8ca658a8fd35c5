// Evaluation against the PyTorch reference (tools/reference/eval_ref.py, float64): perplexity over
// the windows of both protocols and KL / top-1 / |delta p| to a perturbed copy, for random tiny
// models and for stories260K on TinyStories eval.txt; per-choice zero-shot log-likelihoods (and the
// lm-eval token split) of the first items of every task with the Llama-2 tokenizer.
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>

#include "calib/dataset.h"
#include "core/file.h"
#include "core/random.h"
#include "core/threads.h"
#include "eval/perplexity.h"
#include "eval/zeroshot.h"
#include "io/tokenizer_files.h"
#include "model/init.h"
#include "model/model_io.h"
#include "testing/reference_io.h"
#include "testing/testing.h"

namespace sec {
namespace {

using nlohmann::json;

// A deep copy with every weight perturbed by N(0, rel * |w|) noise.
Model perturbed_copy(const Model& m, float rel, uint64_t seed) {
  Model p = m;
  Rng rng(seed);
  for_each_tensor(p.config, p.weights, [&](TensorRef& t) {
    t.tensor = t.tensor.clone();
    float* w = t.tensor.f32();
    for (int64_t i = 0; i < t.tensor.numel(); i++) w[i] += rng.normal(0.f, rel * std::fabs(w[i]) + 1e-4f);
  });
  return p;
}

json reference_ppl(const Model& m, const Model* ref, const std::vector<int32_t>& stream, PplProtocol p, int64_t seqlen,
                   int64_t max_windows) {
  testing::TempDir dir, model_dir, ref_dir;
  testing::write_reference_model(m, model_dir.path());
  std::vector<std::string> args = {"ppl",
                                   model_dir.path(),
                                   dir.file("stream.i32"),
                                   ppl_protocol_name(p),
                                   std::to_string(seqlen),
                                   std::to_string(max_windows),
                                   std::to_string(model_bos_id(m)),
                                   dir.file("out.json")};
  if (ref) {
    testing::write_reference_model(*ref, ref_dir.path());
    args.push_back(ref_dir.path());
  }
  testing::write_i32(dir.file("stream.i32"), std::vector<int>(stream.begin(), stream.end()));
  auto r = testing::run_python("eval_ref.py", args);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  if (r.exit_code != 0) return json::object();
  return json::parse(read_text_file(dir.file("out.json")));
}

void expect_matches_reference(const Model& m, const Model* ref, const std::vector<int32_t>& stream, PplProtocol p,
                              int64_t seqlen, int64_t max_windows, const std::string& what) {
  PplOptions o;
  o.protocol = p;
  o.seqlen = seqlen;
  o.max_windows = max_windows;
  o.batch = 2;
  o.progress = false;
  PplResult got = evaluate_perplexity(m, stream, o, ref);
  auto t0 = std::chrono::steady_clock::now();
  json want = reference_ppl(m, ref, stream, p, seqlen, max_windows);
  std::printf("[ info ] C++ %.2f s, PyTorch reference %.2f s\n", got.seconds,
              std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  ASSERT_TRUE(want.contains("ppl")) << what;
  std::string w = what + " (" + ppl_protocol_name(p) + ")";
  EXPECT_EQ(got.scored_tokens, want["scored_tokens"].get<int64_t>()) << w;
  const double ppl = want["ppl"];
  EXPECT_NEAR(got.ppl, ppl, 1e-4 * ppl) << w;
  EXPECT_NEAR(got.ppl_stderr, want["ppl_stderr"].get<double>(), 1e-3 * want["ppl_stderr"].get<double>()) << w;
  std::printf("[ info ] %s: PPL %.6f (reference %.6f, rel diff %.2e), %lld scored tokens\n", w.c_str(), got.ppl, ppl,
              std::fabs(got.ppl - ppl) / ppl, (long long)got.scored_tokens);
  if (!ref) return;
  const double kl = want["kl_mean"], top1 = want["top1"], dp = want["abs_dp_mean"];
  EXPECT_GT(kl, 1e-3) << w << ": the perturbation is too small to test anything";
  EXPECT_NEAR(got.kl_mean, kl, 1e-3 * kl) << w;
  EXPECT_NEAR(got.kl_stderr, want["kl_stderr"].get<double>(), 1e-2 * want["kl_stderr"].get<double>()) << w;
  EXPECT_NEAR(got.top1, top1, 2.0 / double(got.scored_tokens)) << w;  // an exact near-tie may flip
  EXPECT_NEAR(got.abs_dp_mean, dp, 1e-3 * dp) << w;
  EXPECT_NEAR(got.ref_ppl, want["ref_ppl"].get<double>(), 1e-4 * want["ref_ppl"].get<double>()) << w;
  std::printf("[ info ] %s: KL %.6f (reference %.6f), top-1 %.4f (%.4f), |dp| %.6f (%.6f)\n", w.c_str(), got.kl_mean,
              kl, got.top1, top1, got.abs_dp_mean, dp);
}

Config tiny_config(int heads, int kv_heads, bool tied) {
  Config c;
  c.dim = 48;
  c.vocab_size = 97;
  c.head_dim = 48 / heads;
  c.blocks = {{heads, kv_heads, 72}, {heads, kv_heads, 72}};
  c.tied_embeddings = tied;
  c.max_seq_len = 128;
  return c;
}

TEST(EvalOracle, RandomTinyModelsPplAndKlMatchPyTorch) {
  SEC_REQUIRE_PYTHON_ORACLE();
  Rng rng(21);
  std::vector<int32_t> stream(700);
  for (auto& t : stream) t = int32_t(rng.below(97));
  stream[0] = 1;  // the stream's BOS
  uint64_t seed = 30;
  for (const Config& c : {tiny_config(4, 2, false), tiny_config(6, 1, true)}) {
    Model m = init_random_model(c, seed, 0.3f, 0.2f);
    Model ref = perturbed_copy(m, 0.1f, seed + 1);
    // With a reference the oracle checks PPL, scored tokens, KL, top-1 and |dp| in one call.
    for (PplProtocol p : {PplProtocol::Papers, PplProtocol::LlamaCpp})
      expect_matches_reference(m, &ref, stream, p, 64, -1, "random tiny vs perturbed");
    seed += 10;
  }
}

TEST(EvalOracle, Stories260KOnTinyStoriesEvalMatchesPyTorch) {
  SEC_REQUIRE_SHARED("models/stories260K/stories260K.bin");
  SEC_REQUIRE_SHARED("data/tinystories/eval.txt");
  SEC_REQUIRE_PYTHON_ORACLE();
  set_num_threads(1);  // a 260K-parameter model: threads only add synchronisation
  Model m = load_model(testing::shared_path("models/stories260K/stories260K.bin"));
  ASSERT_TRUE(m.tokenizer);
  Corpus corpus = load_corpus(testing::shared_path("data/tinystories/eval.txt"));
  std::vector<int32_t> stream = tokenize_text(*m.tokenizer, corpus.documents[0], true);
  ASSERT_GT(stream.size(), 30000u);
  EXPECT_EQ(stream[0], 1);
  // The whole file, both protocols, seqlen 256 (the float64 reference's T^2 attention makes 512
  // twice as slow for no extra coverage).
  for (PplProtocol p : {PplProtocol::Papers, PplProtocol::LlamaCpp})
    expect_matches_reference(m, nullptr, stream, p, 256, -1, "stories260K eval.txt");
  // KL to a perturbed copy over the first windows.
  Model ref = perturbed_copy(m, 0.05f, 5);
  expect_matches_reference(m, &ref, stream, PplProtocol::Papers, 256, 8, "stories260K vs perturbed");
  set_num_threads(0);
}

TEST(EvalOracle, ZeroShotLogLikelihoodsMatchPyTorch) {
  SEC_REQUIRE_SHARED("tokenizers/llama2/tokenizer.model");
  SEC_REQUIRE_SHARED("data/tasks/piqa.jsonl");
  SEC_REQUIRE_PYTHON_ORACLE();
  Config c;
  c.dim = 32;
  c.vocab_size = 32000;
  c.head_dim = 8;
  c.blocks = {{4, 2, 64}, {4, 2, 64}};
  c.max_seq_len = 512;
  Model m = init_random_model(c, 41, 0.2f, 0.1f);
  const std::string spm = testing::shared_path("tokenizers/llama2/tokenizer.model");
  m.tokenizer = std::make_shared<const Tokenizer>(read_sentencepiece_model(spm));

  std::vector<McChoice> choices;
  std::vector<std::pair<std::string, std::vector<McItem>>> tasks;
  for (const auto& task : zeroshot_task_names()) {
    tasks.push_back({task, load_task(task, testing::shared_path("data/tasks"), 2)});
    for (const auto& item : tasks.back().second)
      for (const auto& ch : item.choices) choices.push_back(ch);
  }
  json pairs = json::array();
  std::vector<EncodedChoice> reqs;
  for (const auto& ch : choices) {
    pairs.push_back({ch.context, ch.continuation});
    reqs.push_back(encode_choice(*m.tokenizer, ch, false));
  }
  testing::TempDir dir, model_dir;
  testing::write_reference_model(m, model_dir.path());
  write_file_atomic(dir.file("pairs.json"), pairs.dump());
  auto r = testing::run_python("eval_ref.py",
                               {"loglik", model_dir.path(), spm, dir.file("pairs.json"), dir.file("out.json")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  json want = json::parse(read_text_file(dir.file("out.json")));

  std::vector<double> got = continuation_loglikelihoods(m, reqs, 5, c.max_seq_len);
  ASSERT_EQ(got.size(), want["loglik"].size());
  double max_rel = 0;
  for (size_t i = 0; i < got.size(); i++) {
    EXPECT_EQ(reqs[i].context, want["context"][i].get<std::vector<int32_t>>())
        << "choice " << i << ": " << choices[i].context;
    EXPECT_EQ(reqs[i].continuation, want["continuation"][i].get<std::vector<int32_t>>())
        << "choice " << i << ": " << choices[i].continuation;
    const double ll = want["loglik"][i];
    EXPECT_NEAR(got[i], ll, 1e-4 * std::fabs(ll)) << "choice " << i;
    max_rel = std::max(max_rel, std::fabs(got[i] - ll) / std::fabs(ll));
  }
  std::printf("[ info ] %zu choices of %zu tasks: max relative log-likelihood difference %.2e\n", got.size(),
              tasks.size(), max_rel);

  // Whole-task scoring: several choices per forward pass gives the same scores as one at a time.
  for (const auto& [task, items] : tasks) {
    ZeroShotOptions one;
    one.batch = 1;
    one.progress = false;
    ZeroShotOptions many = one;
    many.batch = 8;
    TaskScore a = evaluate_task(m, task, items, one).score, b = evaluate_task(m, task, items, many).score;
    EXPECT_EQ(a.acc, b.acc) << task;
    EXPECT_EQ(a.acc_norm, b.acc_norm) << task;
  }
}

}  // namespace
}  // namespace sec
