// Logits of the real stories260K weights against the PyTorch reference, on real text.
#include <gtest/gtest.h>

#include "calib/dataset.h"
#include "model/forward.h"
#include "model/model_io.h"
#include "testing/reference_io.h"
#include "testing/testing.h"

namespace sec {
namespace {

TEST(Stories260KOracle, LogitsMatchPyTorchOnABatchOfTextWindows) {
  SEC_REQUIRE_SHARED("models/stories260K/stories260K.bin");
  SEC_REQUIRE_SHARED("data/tinystories/eval.txt");
  SEC_REQUIRE_PYTHON_ORACLE();
  Model m = load_model(testing::shared_path("models/stories260K/stories260K.bin"));
  Corpus corpus = load_corpus(testing::shared_path("data/tinystories/eval.txt"));
  auto ids = tokenize_text(*m.tokenizer, corpus.documents[0], true);
  const int64_t B = 4, T = 128;
  ASSERT_GE(int64_t(ids.size()), B * T);
  std::vector<int32_t> tokens(ids.begin(), ids.begin() + B * T);

  testing::TempDir dir;
  testing::write_reference_model(m, dir.path());
  testing::write_i32(dir.file("tokens.i32"), tokens);
  auto r = testing::run_python("llama_ref.py", {"logits", dir.path(), dir.file("tokens.i32"), std::to_string(B),
                                                std::to_string(T), dir.file("ref.f32")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto ref = testing::read_f32(dir.file("ref.f32"));
  Tensor logits = model_forward(m, tokens, B, T);
  ASSERT_EQ(int64_t(ref.size()), logits.numel());
  // float32 against float64: half the reordering tolerance, relative to the largest |logit|.
  const double tol = testing::f32_reordering_tolerance(m.config, T) / 2 * testing::max_abs(ref.data(), ref.size());
  EXPECT_LE(testing::max_abs_diff(logits.f32(), ref.data(), ref.size()), tol);
}

}  // namespace
}  // namespace sec
