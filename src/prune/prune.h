// Model-level driver of the unstructured / N:M methods: chooses the layers (the blocks' linear
// layers, minus --skip), runs the layer-wise calibration driver (Wanda, SparseGPT; OWL adds a
// statistics-only pass first), applies the method to each layer, and produces the JSON report and
// the provenance that outputs carry.
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "calib/layerwise.h"
#include "model/model.h"
#include "prune/mask.h"
#include "prune/unstructured.h"

namespace sec {

enum class PruneMethod { Magnitude, Wanda, SparseGPT };
PruneMethod parse_prune_method(const std::string& s);  // magnitude | wanda | sparsegpt; throws Error
const char* prune_method_name(PruneMethod m);

struct PruneOptions {
  PruneMethod method = PruneMethod::Wanda;
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

struct PruneReport {
  nlohmann::ordered_json options;      // every option, resolved
  nlohmann::ordered_json calibration;  // data path, sha256, nsamples, seqlen, seed, sampling rule
  nlohmann::ordered_json source;       // model path, format, sha256
  std::vector<LayerPruneReport> layers;
  std::vector<std::string> skipped;       // linear layers left dense by --skip
  std::vector<double> block_seconds;      // per block (calibration passes + pruning)
  std::vector<double> block_target;       // sparsity asked of each block (OWL: allocated)
  std::vector<double> owl_outlier_ratio;  // per block, when OWL ran
  double seconds = 0;
  int64_t pruned_zeros() const;
  int64_t prunable_params() const;
  double overall_sparsity() const;  // zeros / params over the pruned layers
  nlohmann::ordered_json to_json() const;
};

// Prunes m in place. `samples` is required for Wanda and SparseGPT (and OWL); unused by magnitude.
PruneReport prune_model(Model& m, const PruneOptions& opts, const CalibSamples* samples);

// The same from given hidden states (nsamples, seqlen, C) entering block 0 instead of tokens
// (benchmarks with random block inputs); `calibration` is recorded in the report as given.
PruneReport prune_model_hidden(Model& m, const PruneOptions& opts, const std::vector<float>& hidden, int64_t nsamples,
                               int64_t seqlen);

// Writes the method, options, calibration hash and source hash into m.config.provenance.
void set_prune_provenance(Config& c, const PruneReport& r);

}  // namespace sec
