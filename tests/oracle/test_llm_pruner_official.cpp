// ctest-label: slow
// secateur's LLM-Pruner against the official code's procedure (reproduced in PyTorch by
// tools/reference/llm_pruner_ref.py "official", since the official code cannot be run here) on
// stories260K: calibration 128 x 256 from tinystories/calib.txt (the same windows on both sides),
// Taylor first order, sum, attention ratio 0.25 (one KV group per block), MLP ratio 0.2, every
// block; perplexity on tinystories/eval.txt (papers protocol, 256-token windows). The bar: ours
// within 10% of the official result (lower is better).
#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>

#include "calib/dataset.h"
#include "calib/sampling.h"
#include "core/threads.h"
#include "eval/perplexity.h"
#include "model/model_io.h"
#include "model/surgery.h"
#include "prune/llm_pruner.h"
#include "testing/reference_io.h"
#include "testing/testing.h"

namespace sec {
namespace {

TEST(LlmPrunerOfficial, Stories260KPerplexityWithinTenPercentOfTheOfficialProcedure) {
  SEC_REQUIRE_SHARED("models/stories260K/stories260K.bin");
  SEC_REQUIRE_SHARED("data/tinystories/calib.txt");
  SEC_REQUIRE_PYTHON_ORACLE();
  set_num_threads(1);
  LoadOptions lo;
  lo.require_tokenizer = true;
  Model m = load_model(testing::shared_path("models/stories260K/stories260K.bin"), lo);
  CalibSamples calib = testing::stories_calibration(*m.tokenizer);
  std::vector<int32_t> eval =
      tokenize_text(*m.tokenizer, load_corpus(testing::shared_path("data/tinystories/eval.txt")).documents[0], true);

  testing::TempDir dir;
  testing::write_reference_model(m, dir.path());
  testing::write_i32(dir.file("calib.i32"), calib.tokens);
  testing::write_i32(dir.file("eval.i32"), eval);
  auto r = testing::run_python("llm_pruner_ref.py", {"official", dir.path(), dir.file("calib.i32"), "128", "256",
                                                     dir.file("eval.i32"), "256", "0.25", "0.2", dir.file("o.json")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  nlohmann::json official;
  std::ifstream(dir.file("o.json")) >> official;

  LlmPrunerOptions o;
  o.attn_ratio = 0.25;
  o.mlp_ratio = 0.2;
  o.micro_batch = 8;
  Model pruned = apply_selection(m, llm_pruner(m, o, &calib).selection);
  PplOptions po;
  po.seqlen = 256;
  po.progress = false;
  const PplResult ours = evaluate_perplexity(pruned, eval, po);
  set_num_threads(0);
  std::printf(
      "[ info ] stories260K LLM-Pruner eval PPL: secateur %.4f (%lld params), official procedure %.4f "
      "(%lld params), ratio %.3f\n",
      ours.ppl, (long long)param_count(pruned.config), official["ppl"].get<double>(),
      (long long)official["params"].get<int64_t>(), ours.ppl / official["ppl"].get<double>());
  EXPECT_EQ(official["params"].get<int64_t>(), param_count(pruned.config));  // the same architecture
  EXPECT_EQ(official["scored"].get<int64_t>(), ours.scored_tokens);
  EXPECT_LE(ours.ppl, 1.10 * official["ppl"].get<double>());
}

}  // namespace
}  // namespace sec
