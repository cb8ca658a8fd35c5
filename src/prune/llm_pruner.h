// LLM-Pruner (methods.md §5): importance of dependency groups from gradients of the calibration
// loss (or weight magnitudes), aggregation over each group's members, and selection of the groups
// to remove, block-wise or globally. The result is a Selection that model/surgery applies.
//
// Importance of one member (a slice of one tensor, model/structure.h), from the element values
//   first:  e = g w            second: e = 1/2 w^2 F        mix: e = g w - 1/2 w^2 F
//   (g = d(mean next-token CE over the calibration set)/dw, F = (1/N) sum_j g_j^2 with g_j the
//   gradient of sample j's own mean loss: the Fisher diagonal)
//   element-wise (first, second, mix):  sum over the slice of |e|
//   vector-wise (vector):               sum over the slice's weight vectors of |sum over the vector of g w|
//                                       (a vector = a row of a row slice, a column of a column slice,
//                                       an entry of a 1-D tensor), as the official code's "vectorize"
//   l1: sum |w|    l2: sum w^2 (the official MagnitudeImportance, no square root)
// A group's importance aggregates its members' importances: sum, mean, max, prod, or last (the
// member of the tensor executed last: o_proj for attention groups, down_proj for MLP channels, the
// head (or the final norm when tied) for hidden channels). Random importance is one uniform number
// per group. Every member counts, whatever its length (the official code drops importance vectors
// whose length is not a multiple of the shortest one, e.g. the embedding's).
#pragma once
#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "calib/sampling.h"
#include "model/model.h"
#include "model/structure.h"
#include "model/surgery.h"

namespace sec {

enum class GroupImportance { Taylor, L1, L2, Random };
enum class TaylorOrder { Vector, First, Second, Mix };
enum class Aggregate { Sum, Mean, Max, Prod, Last };
enum class AttnUnit { KvGroup, Head };
GroupImportance parse_group_importance(const std::string& s);  // taylor | l1 | l2 | random
TaylorOrder parse_taylor_order(const std::string& s);          // vector | first | second | mix
Aggregate parse_aggregate(const std::string& s);               // sum | mean | max | prod | last
AttnUnit parse_attn_unit(const std::string& s);                // kv-group | head
const char* group_importance_name(GroupImportance i);
const char* taylor_order_name(TaylorOrder t);
const char* aggregate_name(Aggregate a);
const char* attn_unit_name(AttnUnit u);

// Blocks [first, last], inclusive.
struct LayerRange {
  int first = 0, last = 0;
  bool contains(int l) const { return l >= first && l <= last; }
};
// "A-B" (inclusive), "A" or "" (every block); throws Error for a range outside the model.
LayerRange parse_layer_range(const std::string& s, int n_layers, const char* option);

struct LlmPrunerOptions {
  GroupImportance importance = GroupImportance::Taylor;
  TaylorOrder taylor = TaylorOrder::First;
  Aggregate aggregate = Aggregate::Sum;
  double attn_ratio = 0, mlp_ratio = 0, hidden_ratio = 0;  // each in [0, 1)
  AttnUnit attn_unit = AttnUnit::KvGroup;
  std::string attn_layers, mlp_layers;  // "A-B" inclusive; empty: every block
  bool global = false;                  // rank attention and MLP groups of every block together
  double target_params = 0;             // (0, 1): keep this fraction of the parameters; 0: ratios decide
  int round = 1;                        // FFN sizes kept a multiple of this
  bool allow_empty = false;             // let a block lose every head or every MLP channel
  uint64_t seed = 0;                    // random importance
  int64_t micro_batch = 4;              // calibration samples per forward/backward
};

// What the importance needs from the calibration data: the gradient of the mean loss and, for
// second / mix, the Fisher diagonal. Weights-shaped; `fisher` is empty when not needed.
struct GradientStats {
  Weights grad, fisher;
  int64_t samples = 0, tokens = 0;
  double loss = 0;  // mean CE over the calibration set
};
// Only the tensors `needed` accepts get gradients (none of the others are computed); empty: all.
GradientStats calibration_gradients(const Model& m, const CalibSamples& samples, bool fisher, int64_t micro_batch,
                                    const std::function<bool(const TensorRef&)>& needed = {});

struct ScoredGroup {
  Group group;
  double score;
};
// Candidate groups with their importance: per block, KV groups, query heads and MLP channels, and the
// hidden channels of a plain model's residual stream.
struct GroupScores {
  std::vector<std::vector<ScoredGroup>> kv, heads, ffn;
  std::vector<ScoredGroup> hidden;
};
// The groups the options may remove (attention groups of the --attn-layers blocks, MLP channels of
// the --mlp-layers blocks, hidden channels with --hidden-ratio), unscored; o == null: every group.
GroupScores candidate_groups(const Model& m, const LlmPrunerOptions* o = nullptr);
// Whether a tensor has a member in some group: the gradients the scores need.
std::function<bool(const TensorRef&)> member_tensors(const GroupScores& groups);
// Scores the groups in place. `stats` (gradients of the member tensors) may be null for l1 / l2 / random.
void score_groups(const Model& m, const GradientStats* stats, GroupImportance importance, TaylorOrder taylor,
                  Aggregate aggregate, uint64_t seed, GroupScores& groups);
// Every group of the model, scored.
GroupScores score_groups(const Model& m, const GradientStats* stats, GroupImportance importance, TaylorOrder taylor,
                         Aggregate aggregate, uint64_t seed = 0);

struct LlmPrunerPlan {
  Selection selection;
  nlohmann::ordered_json report;  // groups removed per block with their scores, sizes, ratios used
};
// Chooses the groups to remove (block-wise ratios, global ranking, --target-params search).
LlmPrunerPlan llm_pruner_plan(const Model& m, const GroupScores& scores, const LlmPrunerOptions& o);

// The whole method: gradients (when Taylor), scores, plan. The model is not changed.
LlmPrunerPlan llm_pruner(const Model& m, const LlmPrunerOptions& o, const CalibSamples* samples);

}  // namespace sec
