// Minitron (methods.md §6): width importance from activations, depth importance, architecture choice.
//
// Width (one forward pass of the dense model over the calibration windows, statistics through taps):
//   per position, the value of a feature is
//     attention head h:   ||head h's output||_2 (its slice of the o_proj input)
//     MLP neuron c:       |x_c| at the down_proj input (after SwiGLU)
//     embedding channel c: |x_c| at the output of a block's RMSNorm (both norms of every block)
//   reduced over the sequence of each sample, then over the samples (batch), each by mean, l2
//   (sqrt of the sum of squares) or var (population variance); defaults seq = mean, batch = l2 (the
//   paper's best and ModelOpt's). An embedding channel sums its reduced scores over every norm.
//   GQA: KV groups are ranked by the sum of their query heads' scores and whole groups kept; within a
//   kept group the best query heads, the same number in every group — always with the mapping the
//   attention uses (model/structure.h).
//   --importance magnitude: the sum of squared weights of each group's members; random: seeded.
// Depth: Block Importance BI_i = 1 - mean over tokens of cos(block input, block output), or the
//   perplexity of the model with block i removed (papers protocol over the first windows of the
//   calibration text); with --contiguous, windows of k consecutive blocks (BI between the window's
//   input and output; perplexity with the whole window removed).
// Architecture: the asked sizes, or with target_params the best of several candidate architectures
//   under the budget, scored by KL to the dense model on held-out calibration windows after pruning
//   and after a short logit distillation.
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "calib/dataset.h"
#include "calib/sampling.h"
#include "model/model.h"
#include "model/surgery.h"

namespace sec {

enum class Reduce { Mean, L2, Var };
enum class WidthImportance { Activation, Random, Magnitude };
enum class DepthImportance { BlockImportance, Perplexity };
Reduce parse_reduce(const std::string& s);                     // mean | l2 | var
WidthImportance parse_width_importance(const std::string& s);  // activation | random | magnitude
DepthImportance parse_depth_importance(const std::string& s);  // bi | ppl
const char* reduce_name(Reduce r);
const char* width_importance_name(WidthImportance w);
const char* depth_importance_name(DepthImportance d);

struct MinitronOptions {
  int hidden = 0, ffn = 0, heads = 0, kv_heads = 0, layers = 0;  // 0: keep the model's
  double target_params = 0;  // > 0: search under this budget (a fraction if <= 1, else a count)
  WidthImportance importance = WidthImportance::Activation;
  Reduce reduce_batch = Reduce::L2, reduce_seq = Reduce::Mean;
  DepthImportance depth = DepthImportance::BlockImportance;
  bool contiguous = false;
  int round = 0;                // search: sizes a multiple of this (0: min(64, a power of two <= dim / 8))
  int candidates = 6;           // search: at most this many architectures are scored
  int64_t search_steps = 20;    // search: distillation steps before the final KL (0: KL right after pruning)
  int64_t search_windows = 16;  // search: held-out calibration windows for the KL
  uint64_t seed = 0;            // random importance; held-out windows use seed + 1
  int64_t batch = 1;            // calibration samples per forward pass
};

// Per-feature statistics of the dense model on the calibration windows.
struct WidthScores {
  std::vector<std::vector<double>> heads, kv_groups, neurons;  // per block
  std::vector<double> channels;                                // hidden channels
  std::vector<double> block_bi;                                // depth: BI per block
  std::vector<double> window_bi;                               // BI of each window of `window` blocks
  int window = 1;
};
// One forward pass collecting the activation statistics (and BI; window_bi for windows of
// `window` blocks when window > 1).
WidthScores activation_scores(const Model& m, const CalibSamples& s, Reduce batch, Reduce seq, int window,
                              int64_t micro_batch);

// Perplexity of the model with each block (or window of blocks) removed, on `windows` windows of
// `stream` (papers protocol, seqlen tokens).
std::vector<double> depth_perplexities(const Model& m, const std::vector<int32_t>& stream, int64_t seqlen,
                                       int64_t windows, int window);

struct MinitronPlan {
  Selection selection;
  nlohmann::ordered_json report;
};
// The whole method. `calib_text` is the calibration corpus (depth perplexity, held-out windows).
MinitronPlan minitron(const Model& m, const MinitronOptions& o, const CalibSamples& samples, const Corpus& calib_text);

}  // namespace sec
