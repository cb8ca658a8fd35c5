// LLM-Pruner group importance against the PyTorch reference (tools/reference/llm_pruner_ref.py):
// every importance x Taylor order x aggregation, for KV groups, query heads, MLP channels and
// hidden channels of a random tiny GQA model with q/k/v biases.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "model/init.h"
#include "prune/llm_pruner.h"
#include "testing/reference_io.h"
#include "testing/testing.h"

namespace sec {
namespace {

// |ours - ref| relative to the reference (float32 gradients against float64 ones). A vector-wise
// score |sum g w| can cancel: its error is bounded by the gradients' relative error times
// sum |g w|, so it is measured relative to the element-wise first-order score of the same group
// (`bound`, aggregated the same way; every aggregation is monotone in its members). A product's
// relative error is the sum of its M members' (a single norm entry's gradient can be off by 1e-4
// relative after cancellation over the tokens), so it gets M x 1e-4.
void compare(const std::vector<ScoredGroup>& ours, const nlohmann::json& ref, const nlohmann::json& bound, bool product,
             const std::string& what, double* worst) {
  ASSERT_EQ(ours.size(), ref.size()) << what;
  for (size_t i = 0; i < ours.size(); i++) {
    const double r = ref[i].get<double>();
    const double err = std::fabs(ours[i].score - r) / std::max(std::fabs(r), bound[i].get<double>());
    const double tol = 1e-4 * (product ? double(ours[i].group.members.size()) : 1.0);
    *worst = std::max(*worst, err / tol * 1e-4);
    EXPECT_LE(err, tol) << what << " group " << i << ": " << ours[i].score << " vs " << r;
  }
}

TEST(LlmPrunerOracle, EveryImportanceAndAggregationMatchesPyTorch) {
  SEC_REQUIRE_PYTHON_ORACLE();
  Model m = init_random_model(testing::tiny_config(4, 2, false, true), 21, 0.3f, 0.2f);
  m.config.blocks[2] = {2, 1, 40};  // blocks may differ
  m = init_random_model(m.config, 21, 0.3f, 0.2f);
  CalibSamples s = testing::random_calibration(4, 12, m.config.vocab_size, 22);
  testing::TempDir dir;
  testing::write_reference_model(m, dir.path());
  testing::write_i32(dir.file("windows.i32"), s.tokens);
  auto r = testing::run_python("llm_pruner_ref.py",
                               {"scores", dir.path(), dir.file("windows.i32"), "4", "12", dir.file("scores.json")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  nlohmann::json ref;
  std::ifstream(dir.file("scores.json")) >> ref;

  const GradientStats stats = calibration_gradients(m, s, true, 3);  // 3: a partial micro-batch too
  int combos = 0;
  double worst = 0;
  for (auto [imp, taylor] : std::vector<std::pair<std::string, std::string>>{{"taylor", "vector"},
                                                                             {"taylor", "first"},
                                                                             {"taylor", "second"},
                                                                             {"taylor", "mix"},
                                                                             {"l1", "-"},
                                                                             {"l2", "-"}})
    for (const char* agg : {"sum", "mean", "max", "prod", "last"}) {
      const std::string key = imp + "/" + taylor + "/" + agg;
      ASSERT_TRUE(ref.contains(key)) << key;
      GroupScores gs = score_groups(m, &stats, parse_group_importance(imp),
                                    parse_taylor_order(taylor == "-" ? "first" : taylor), parse_aggregate(agg));
      const nlohmann::json& rk = ref[key];
      const nlohmann::json& bk = taylor == "vector" ? ref[std::string("taylor/first/") + agg] : rk;
      const bool prod = std::string(agg) == "prod";
      for (int l = 0; l < m.config.n_layers(); l++) {
        const size_t b = size_t(l);
        const std::string at = " block " + std::to_string(l);
        compare(gs.kv[b], rk["kv"][b], bk["kv"][b], prod, key + " kv" + at, &worst);
        compare(gs.heads[b], rk["heads"][b], bk["heads"][b], prod, key + " heads" + at, &worst);
        compare(gs.ffn[b], rk["ffn"][b], bk["ffn"][b], prod, key + " ffn" + at, &worst);
      }
      compare(gs.hidden, rk["hidden"], bk["hidden"], prod, key + " hidden", &worst);
      combos++;
    }
  EXPECT_EQ(combos, 30);
  std::printf("worst relative score error over %d combinations: %.3g (per member for products)\n", combos, worst);
}

TEST(LlmPruner, RandomImportanceIsSeededAndGradientFree) {
  Model m = init_random_model(testing::tiny_config(4, 2, false, false), 23, 0.3f, 0.2f);
  GroupScores a = score_groups(m, nullptr, GroupImportance::Random, TaylorOrder::First, Aggregate::Sum, 5);
  GroupScores b = score_groups(m, nullptr, GroupImportance::Random, TaylorOrder::First, Aggregate::Sum, 5);
  GroupScores c = score_groups(m, nullptr, GroupImportance::Random, TaylorOrder::First, Aggregate::Sum, 6);
  ASSERT_EQ(a.ffn[1].size(), 72u);
  int differ = 0;
  for (size_t i = 0; i < a.ffn[1].size(); i++) {
    EXPECT_EQ(a.ffn[1][i].score, b.ffn[1][i].score);
    EXPECT_GE(a.ffn[1][i].score, 0.0);
    EXPECT_LT(a.ffn[1][i].score, 1.0);
    differ += a.ffn[1][i].score != c.ffn[1][i].score;
  }
  EXPECT_GT(differ, 60);
  EXPECT_THROW(score_groups(m, nullptr, GroupImportance::Taylor, TaylorOrder::First, Aggregate::Sum), Error);
}

}  // namespace
}  // namespace sec
