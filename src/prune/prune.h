// The one entry point of every pruning method. A method looks at the model (and the calibration
// data) and decides a plan — per-linear masks / reconstructed weights applied block by block
// (magnitude, Wanda, SparseGPT, OWL), or groups and blocks to remove (LLM-Pruner), which the shared
// surgery (model/surgery.h) applies (LLM-Pruner, Minitron), or rotations and widths applied block
// by block (SliceGPT). prune_model records the plan, every resolved option, the
// calibration data, the source and the parameter counts in one report, and set_prune_provenance
// writes the same facts into the output model's provenance.
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "calib/sampling.h"
#include "model/model.h"
#include "prune/llm_pruner.h"
#include "prune/minitron.h"
#include "prune/slicegpt.h"
#include "prune/unstructured_driver.h"

namespace sec {

struct PruneMethodInfo {
  const char* name;
  const char* summary;
  bool structured;           // changes shapes (a smaller dense model)
  int64_t nsamples, seqlen;  // calibration defaults (the method's paper / official code)
};
const std::vector<PruneMethodInfo>& prune_methods();
const PruneMethodInfo& prune_method(const std::string& name);  // throws Error for an unknown name

struct PruneOptions {
  std::string method = "wanda";
  UnstructuredOptions unstructured;  // magnitude / wanda / sparsegpt (method set from `method`)
  LlmPrunerOptions llm_pruner;
  MinitronOptions minitron;
  SliceGptOptions slicegpt;
};

// Whether this method with these options reads calibration data.
bool needs_calibration(const PruneOptions& o);

struct PruneReport {
  std::string method;
  nlohmann::ordered_json options;      // every option, resolved
  nlohmann::ordered_json calibration;  // data path, sha256, nsamples, seqlen, seed, rule; null without
  nlohmann::ordered_json source;       // model path, format, sha256
  nlohmann::ordered_json plan;         // what the method decided (per-layer zeros, groups per block ...)
  int64_t params_before = 0, params_after = 0;
  double seconds = 0;
  nlohmann::ordered_json to_json() const;
};

// Prunes m (replaced by the smaller model for structured methods).
PruneReport prune_model(Model& m, const PruneOptions& o, const CalibSamples* samples);

// Writes the method, options, calibration hash and source hash into c.provenance.
void set_prune_provenance(Config& c, const PruneReport& r);

// The calibration part of a report.
nlohmann::ordered_json calibration_json(const CalibSamples& s);

}  // namespace sec
