// ctest-label: slow
// Pruning quality on the real stories260K model: calibrated on tinystories/calib.txt
// (128 windows x 256 tokens: calib.txt is ~300 stories, ~70k tokens; stories260K's context is
// 512), perplexity on tinystories/eval.txt over non-overlapping 256-token windows (the papers'
// protocol). Also: the pruned model written as GGUF loads again with identical weights, and the
// CLI end to end.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>

#include "calib/sampling.h"
#include "eval/perplexity.h"
#include "model/forward.h"
#include "model/model_io.h"
#include "ops/ops.h"
#include "prune/unstructured_driver.h"
#include "testing/testing.h"

namespace sec {
namespace {

const char* kModel = "models/stories260K/stories260K.bin";
const char* kTok = "models/stories260K/tok512.bin";

Model load_stories() {
  LoadOptions lo;
  lo.tokenizer_path = testing::shared_path(kTok);
  lo.require_tokenizer = true;
  return load_model(testing::shared_path(kModel), lo);
}

// Papers' protocol (src/eval/perplexity.h): one BOS, non-overlapping windows, every prediction
// inside a window scored.
double perplexity(const Model& m, const std::vector<int32_t>& stream, int64_t seqlen) {
  PplOptions o;
  o.seqlen = seqlen;
  o.progress = false;
  return evaluate_perplexity(m, stream, o).ppl;
}

struct Fixture {
  CalibSamples calib;
  std::vector<int32_t> eval;
  double dense_ppl = 0;
};

const Fixture& fixture() {
  static Fixture f = [] {
    Fixture f;
    Model m = load_stories();
    f.calib = testing::stories_calibration(*m.tokenizer);
    f.eval =
        tokenize_text(*m.tokenizer, load_corpus(testing::shared_path("data/tinystories/eval.txt")).documents[0], true);
    f.dense_ppl = perplexity(m, f.eval, 256);
    return f;
  }();
  return f;
}

double pruned_ppl(UnstructuredMethod method, const std::string& target, bool owl = false, Model* out = nullptr) {
  Model m = load_stories();
  UnstructuredOptions o;
  o.method = method;
  o.target = target.find(':') != std::string::npos ? parse_nm(target) : SparsityTarget{std::stod(target), 0, 0};
  o.owl = owl;
  o.layerwise.batch = 16;
  UnstructuredReport r = prune_unstructured(m, o, &fixture().calib);
  double ppl = perplexity(m, fixture().eval, 256);
  std::printf("  %-10s %-5s %-4s sparsity %.4f  ppl %.3f  (dense %.3f)\n", unstructured_method_name(method),
              target.c_str(), owl ? "owl" : "", r.overall_sparsity(), ppl, fixture().dense_ppl);
  if (out) *out = std::move(m);
  return ppl;
}

TEST(PruneStories, WandaAndSparseGptBeatMagnitudeAt50) {
  SEC_REQUIRE_SHARED(kModel);
  SEC_REQUIRE_SHARED("data/tinystories/calib.txt");
  double mag = pruned_ppl(UnstructuredMethod::Magnitude, "0.5");
  double wanda = pruned_ppl(UnstructuredMethod::Wanda, "0.5");
  double sgpt = pruned_ppl(UnstructuredMethod::SparseGPT, "0.5");
  EXPECT_LT(wanda, mag);
  EXPECT_LT(sgpt, mag);
  EXPECT_GT(wanda, fixture().dense_ppl);
}

TEST(PruneStories, OwlWandaBeatsUniformWandaAt70) {
  SEC_REQUIRE_SHARED(kModel);
  double uniform = pruned_ppl(UnstructuredMethod::Wanda, "0.7");
  double owl = pruned_ppl(UnstructuredMethod::Wanda, "0.7", true);
  EXPECT_LT(owl, uniform);
}

TEST(PruneStories, PrunedGgufLoadsWithIdenticalWeights) {
  SEC_REQUIRE_SHARED(kModel);
  Model m;
  pruned_ppl(UnstructuredMethod::SparseGPT, "2:4", false, &m);
  testing::TempDir dir;
  SaveOptions so;
  so.format = ModelFormat::GGUF;
  save_model(m, dir.file("pruned.gguf"), so);
  Model back = load_model(dir.file("pruned.gguf"));
  EXPECT_EQ(back.config.provenance.count("method"), 0u);  // provenance is set by the CLI, not prune_model
  int64_t compared = 0;
  for_each_tensor(m.config, m.weights, [&](const TensorRef& a) {
    for_each_tensor(back.config, back.weights, [&](const TensorRef& b) {
      if (a.name != b.name) return;
      ASSERT_EQ(a.tensor.shape(), b.tensor.shape()) << a.name;
      EXPECT_EQ(testing::max_abs_diff(a.tensor.f32(), b.tensor.f32(), size_t(a.tensor.numel())), 0.f) << a.name;
      if (tensor_rule(a.kind).is_linear)
        EXPECT_TRUE(satisfies_nm(b.tensor.f32(), a.shape[0], a.shape[1], 2, 4)) << a.name;
      compared++;
    });
  });
  EXPECT_EQ(compared, 3 + 9 * 5 - 1);  // embed, final norm, (2 norms + 7 linears) x 5 blocks; tied head
}

TEST(PruneStories, CliWritesModelReportAndProvenance) {
  SEC_REQUIRE_SHARED(kModel);
  testing::TempDir dir;
  auto r = testing::run_cli({"prune",       testing::shared_path(kModel),
                             "--tokenizer", testing::shared_path(kTok),
                             "-o",          dir.file("out.gguf"),
                             "--method",    "wanda",
                             "--nm",        "4:8",
                             "--calib",     testing::shared_path("data/tinystories/calib.txt"),
                             "--nsamples",  "16",
                             "--seqlen",    "128",
                             "--skip",      "down_proj",
                             "--report",    dir.file("report.json")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("model.layers.0.self_attn.q_proj.weight"), std::string::npos) << r.out;
  nlohmann::json j;
  std::ifstream(dir.file("report.json")) >> j;
  EXPECT_EQ(j["options"]["method"], "wanda");
  EXPECT_EQ(j["options"]["nm"], "4:8");
  EXPECT_EQ(j["calibration"]["nsamples"], 16);
  EXPECT_EQ(j["calibration"]["sha256"].get<std::string>().size(), 64u);
  EXPECT_EQ(j["plan"]["layers"].size(), 30u);  // 6 of 7 linears x 5 blocks
  EXPECT_EQ(j["plan"]["skipped"].size(), 5u);
  EXPECT_DOUBLE_EQ(j["plan"]["sparsity"].get<double>(), 0.5);
  EXPECT_EQ(j["params_before"], j["params_after"]);
  Model back = load_model(dir.file("out.gguf"));
  EXPECT_EQ(back.config.provenance["method"], "wanda");
  EXPECT_EQ(back.config.provenance["calib_sha256"], j["calibration"]["sha256"]);
  EXPECT_EQ(back.config.provenance["source_sha256"].size(), 64u);
  // Bad inputs: no calibration for wanda, unknown method.
  EXPECT_NE(testing::run_cli({"prune", testing::shared_path(kModel), "-o", dir.file("x.gguf"), "--method", "wanda"})
                .exit_code,
            0);
  EXPECT_NE(
      testing::run_cli({"prune", testing::shared_path(kModel), "-o", dir.file("x.gguf"), "--method", "nope"}).exit_code,
      0);
}

TEST(PruneStories, CliMagnitudeNeedsNoCalibrationData) {
  SEC_REQUIRE_SHARED(kModel);
  testing::TempDir dir;
  auto r = testing::run_cli({"-q", "prune", testing::shared_path(kModel), "-o", dir.file("m.gguf"), "--method",
                             "magnitude", "--sparsity", "0.5"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  Model m = load_model(dir.file("m.gguf"));
  EXPECT_EQ(m.config.provenance["method"], "magnitude");
  EXPECT_EQ(m.config.provenance.count("calib_data"), 0u);
}

}  // namespace
}  // namespace sec
