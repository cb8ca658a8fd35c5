// Model-level driver of the unstructured / N:M methods: chooses the layers (the blocks' linear
// layers, minus --skip), runs the layer-wise calibration driver (Wanda, SparseGPT; OWL adds a
// statistics-only pass first), and applies each layer's plan (a mask, or SparseGPT's pruned and
// reconstructed weights) as the block is reached. prune/prune.h is the entry point for every method.
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "calib/layerwise.h"
#include "model/model.h"
#include "prune/mask.h"
#include "prune/unstructured.h"

namespace sec {

enum class UnstructuredMethod { Magnitude, Wanda, SparseGPT };
UnstructuredMethod parse_unstructured_method(const std::string& s);  // magnitude | wanda | sparsegpt; throws Error
const char* unstructured_method_name(UnstructuredMethod m);

struct UnstructuredOptions {
  UnstructuredMethod method = UnstructuredMethod::Wanda;
  SparsityTarget target;           // ratio, or N:M
  bool magnitude_per_row = false;  // magnitude: per output row instead of per matrix
  bool owl = false;                // per-block sparsity from outlier ratios (unstructured only)
  double owl_m = 5.0, owl_lambda = 0.08;
  SparseGptOptions sparsegpt;
  std::string skip_regex;  // canonical names matching it (std::regex_search, ECMAScript) are left dense
  LayerwiseOptions layerwise;
};

struct LayerPruneReport {
  std::string name;
  int layer = -1;
  int64_t rows = 0, cols = 0;
  double target = 0;  // requested fraction of zeros
  int64_t zeros = 0;  // measured after pruning
  double sparsity() const { return rows * cols > 0 ? double(zeros) / double(rows * cols) : 0; }
};

struct UnstructuredReport {
  std::vector<LayerPruneReport> layers;
  std::vector<std::string> skipped;       // linear layers left dense by --skip
  std::vector<double> block_seconds;      // per block (calibration passes + pruning)
  std::vector<double> block_target;       // sparsity asked of each block (OWL: allocated)
  std::vector<double> owl_outlier_ratio;  // per block, when OWL ran
  double seconds = 0;
  int64_t pruned_zeros() const;
  int64_t prunable_params() const;
  double overall_sparsity() const;         // zeros / params over the pruned layers
  nlohmann::ordered_json to_json() const;  // the method's part of the prune report
};

// Every option, resolved (recorded in the report and the output's provenance).
nlohmann::ordered_json unstructured_options_json(const UnstructuredOptions& o);

// Prunes m in place. `samples` is required for Wanda and SparseGPT (and OWL); unused by magnitude.
UnstructuredReport prune_unstructured(Model& m, const UnstructuredOptions& opts, const CalibSamples* samples);

// The same from given hidden states (nsamples, seqlen, C) entering block 0 instead of tokens
// (benchmarks with random block inputs).
UnstructuredReport prune_unstructured_hidden(Model& m, const UnstructuredOptions& opts,
                                             const std::vector<float>& hidden, int64_t nsamples, int64_t seqlen);

}  // namespace sec
