// SliceGPT against a float64 PyTorch reproduction of the official procedure
// (tools/reference/slicegpt_ref.py): the sliced weights of a random tiny GQA model (up to the sign
// of each eigenvector), the forward of a sliced model (shortcut matrices, norms over the original
// width) against llama_ref, and — on stories260K — the perplexity against the official procedure.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "calib/dataset.h"
#include "calib/sampling.h"
#include "core/threads.h"
#include "eval/perplexity.h"
#include "model/forward.h"
#include "model/init.h"
#include "model/model_io.h"
#include "prune/slicegpt.h"
#include "testing/reference_io.h"
#include "testing/testing.h"

namespace sec {
namespace {

struct RefTensor {
  Shape shape;
  std::vector<float> data;
};

std::map<std::string, RefTensor> read_reference_model(const std::string& dir, nlohmann::json* config) {
  nlohmann::json man;
  std::ifstream(dir + "/manifest.json") >> man;
  if (config) *config = man["config"];
  const std::vector<float> raw = testing::read_f32(dir + "/weights.f32");
  std::map<std::string, RefTensor> out;
  for (const auto& t : man["tensors"]) {
    RefTensor r;
    r.shape = t["shape"].get<Shape>();
    const int64_t off = t["offset"], n = shape_numel(r.shape);
    r.data.assign(raw.begin() + off, raw.begin() + off + n);
    out[t["name"]] = r;
  }
  return out;
}

TEST(SliceGptOracle, SlicedWeightsMatchTheOfficialProcedureUpToEigenvectorSigns) {
  SEC_REQUIRE_PYTHON_ORACLE();
  for (bool tied : {false, true}) {
    SCOPED_TRACE(tied ? "tied, biased" : "untied, biased");
    Model m = init_random_model(testing::tiny_config(4, 2, tied, true), 61, 0.3f, 0.2f);
    CalibSamples s = testing::random_calibration(8, 16, m.config.vocab_size, 62);
    testing::TempDir dir;
    std::filesystem::create_directories(dir.file("dense"));
    testing::write_reference_model(m, dir.file("dense"));
    testing::write_i32(dir.file("w.i32"), s.tokens);
    // --final-identity: secateur keeps the last output's basis when the head is not sliced (the
    // official full rotation there is undone by the head); the reference then does the same.
    auto r = testing::run_python("slicegpt_ref.py", {"slice", dir.file("dense"), dir.file("w.i32"), "8", "16", "0.25",
                                                     "0", "0", dir.file("ref"), "--final-identity"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const auto ref = read_reference_model(dir.file("ref"), nullptr);
    SliceGptOptions o;
    o.sparsity = 0.25;
    slicegpt(m, o, s);
    ASSERT_EQ(m.config.block_in(0), 32);  // int(0.75 x 48) = 36, rounded down to a multiple of 8

    // Each eigenvector's sign is arbitrary: per residual point, the sign of each kept direction is
    // read off the first tensor carrying that point, then every tensor must agree with it.
    // Tolerance: our forward passes are float32 (the reference's float64), and each PCA amplifies
    // the activations' rounding by 1/(eigenvalue gap), block after block. That floor, measured: two
    // float32 runs of this procedure that differ only in summation order (calibration batch 1 vs 8)
    // differ by up to 2.2e-5 in relative Frobenius norm and 6.8e-5 of a tensor's largest entry on
    // these random models (seeds 61, 71, 81). So each tensor must be within 5e-5 relative in
    // Frobenius norm and every entry within 2e-4 of the tensor's largest: a few times the floor.
    std::map<int, std::vector<float>> sign;
    int tensors = 0;
    double worst = 0, worst_fro = 0;
    for_each_tensor(m.config, m.weights, [&](const TensorRef& t) {
      ASSERT_TRUE(ref.count(t.name)) << t.name;
      const RefTensor& rt = ref.at(t.name);
      ASSERT_EQ(rt.shape, t.shape) << t.name;
      const auto& axes = tensor_rule(t.kind).axes;
      const int64_t rows = t.shape[0], cols = t.shape.size() > 1 ? t.shape[1] : 1;
      auto at = [&](const std::vector<float>& v, int64_t i, int64_t j) { return v[size_t(i * cols + j)]; };
      std::vector<int> point(axes.size(), -1);
      for (size_t d = 0; d < axes.size(); d++) point[d] = resid_point(m.config, axes[d], t.layer);
      const std::vector<float> ours = t.tensor.to_vector();
      for (size_t d = 0; d < axes.size(); d++) {
        if (point[d] < 0 || sign.count(point[d])) continue;
        std::vector<float> sg(size_t(d == 0 ? rows : cols));
        for (size_t k = 0; k < sg.size(); k++) {
          double dot = 0;
          for (int64_t o2 = 0; o2 < (d == 0 ? cols : rows); o2++)
            dot += d == 0 ? double(at(ours, int64_t(k), o2)) * at(rt.data, int64_t(k), o2)
                          : double(at(ours, o2, int64_t(k))) * at(rt.data, o2, int64_t(k));
          sg[k] = dot < 0 ? -1.f : 1.f;
        }
        sign[point[d]] = sg;
      }
      float scale = 0;
      double diff2 = 0, ref2 = 0;
      for (float v : rt.data) scale = std::max(scale, std::fabs(v));
      for (int64_t i = 0; i < rows; i++)
        for (int64_t j = 0; j < cols; j++) {
          float s2 = 1.f;
          if (point[0] >= 0) s2 *= sign[point[0]][size_t(i)];
          if (axes.size() > 1 && point[1] >= 0) s2 *= sign[point[1]][size_t(j)];
          const double d = s2 * at(ours, i, j) - at(rt.data, i, j);
          diff2 += d * d;
          ref2 += double(at(rt.data, i, j)) * at(rt.data, i, j);
          worst = std::max(worst, std::fabs(d) / scale);
          EXPECT_LE(std::fabs(d), 2e-4 * scale) << t.name << " [" << i << ", " << j << "]";
        }
      const double rel = std::sqrt(diff2 / std::max(ref2, 1e-300));
      worst_fro = std::max(worst_fro, rel);
      EXPECT_LE(rel, 5e-5) << t.name;
      tensors++;
    });
    EXPECT_EQ(tensors, int(ref.size()));
    std::printf(
        "[ info ] %d tensors: relative Frobenius error <= %.2g, every entry within %.2g of its tensor's largest "
        "entry\n",
        tensors, worst_fro, worst);
  }
}

TEST(SliceGptOracle, SlicedForwardMatchesPyTorch) {
  SEC_REQUIRE_PYTHON_ORACLE();
  Model m = init_random_model(testing::tiny_config(4, 2, false, false), 63, 0.3f, 0.2f);
  SliceGptOptions o;
  o.sparsity = 0.3;
  o.slice_head = true;
  slicegpt(m, o, testing::random_calibration(4, 16, m.config.vocab_size, 64));
  ASSERT_TRUE(m.config.has_shortcuts());
  testing::TempDir dir;
  testing::write_reference_model(m, dir.path());
  auto tokens = testing::random_tokens(2 * 24, m.config.vocab_size, 65);
  testing::write_i32(dir.file("t.i32"), tokens);
  auto r = testing::run_python("llama_ref.py", {"logits", dir.path(), dir.file("t.i32"), "2", "24", dir.file("o.f32")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::vector<float> ref = testing::read_f32(dir.file("o.f32"));
  Tensor logits = model_forward(m, tokens, 2, 24);
  ASSERT_EQ(int64_t(ref.size()), logits.numel());
  EXPECT_LE(testing::max_abs_diff(logits.f32(), ref.data(), ref.size()), 1e-4f);
}

// ctest-label: slow
TEST(SliceGptOracle, Stories260KPerplexityWithinTenPercentOfTheOfficialProcedure) {
  SEC_REQUIRE_SHARED("models/stories260K/stories260K.bin");
  SEC_REQUIRE_SHARED("data/tinystories/calib.txt");
  SEC_REQUIRE_PYTHON_ORACLE();
  set_num_threads(1);
  LoadOptions lo;
  lo.require_tokenizer = true;
  Model m = load_model(testing::shared_path("models/stories260K/stories260K.bin"), lo);
  const CalibSamples calib = testing::stories_calibration(*m.tokenizer);
  const std::vector<int32_t> eval =
      tokenize_text(*m.tokenizer, load_corpus(testing::shared_path("data/tinystories/eval.txt")).documents[0], true);
  testing::TempDir dir;
  std::filesystem::create_directories(dir.file("dense"));
  testing::write_reference_model(m, dir.file("dense"));
  testing::write_i32(dir.file("calib.i32"), calib.tokens);
  testing::write_i32(dir.file("eval.i32"), eval);
  std::map<std::string, double> official;
  for (const char* center : {"1", "0"}) {
    auto r = testing::run_python("slicegpt_ref.py",
                                 {"slice", dir.file("dense"), dir.file("calib.i32"), "128", "256", "0.25", "0", center,
                                  dir.file(std::string("ref") + center), dir.file("eval.i32"), "256",
                                  dir.file(std::string("o") + center + ".json")});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    nlohmann::json j;
    std::ifstream(dir.file(std::string("o") + center + ".json")) >> j;
    official[center] = j["ppl"];
  }
  Model dense = m;
  SliceGptOptions o;
  o.sparsity = 0.25;
  o.batch = 8;
  slicegpt(m, o, calib);
  PplOptions po;
  po.seqlen = 256;
  po.progress = false;
  const double ours = evaluate_perplexity(m, eval, po).ppl;
  set_num_threads(0);
  std::printf(
      "[ info ] stories260K SliceGPT 25%% (hidden 64 -> 48, head not sliced) eval PPL: secateur %.4f, official "
      "procedure %.4f (with its embedding centring; %.4f without), ratio %.3f\n",
      ours, official["1"], official["0"], ours / official["1"]);
  EXPECT_LE(ours, 1.10 * official["1"]);
  EXPECT_NEAR(ours, official["0"], 1e-3 * official["0"]);  // the same procedure without the defect
}

}  // namespace
}  // namespace sec
