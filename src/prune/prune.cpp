#include "prune/prune.h"

#include <chrono>

#include "calib/dataset.h"
#include "core/error.h"
#include "model/surgery.h"

namespace sec {

const std::vector<PruneMethodInfo>& prune_methods() {
  static const std::vector<PruneMethodInfo> methods = {
      {"magnitude", "unstructured / N:M, |W| (no calibration data)", false, 0, 0},
      {"wanda", "unstructured / N:M, |W| x ||X||, layer-wise", false, 128, 2048},
      {"sparsegpt", "unstructured / N:M with weight reconstruction, layer-wise", false, 128, 2048},
      {"llm-pruner", "structured: KV groups / heads, MLP and hidden channels by gradient importance", true, 10, 64},
      {"minitron", "structured: width (heads, KV groups, neurons, hidden) by activations, depth by BI or PPL", true,
       1024, 2048},
      {"slicegpt", "structured: rotate the residual stream by PCA and slice it (shortcut matrices, or --uniform)", true,
       128, 2048},
  };
  return methods;
}

const PruneMethodInfo& prune_method(const std::string& name) {
  std::string names;
  for (const auto& m : prune_methods()) {
    if (name == m.name) return m;
    names += (names.empty() ? "" : ", ") + std::string(m.name);
  }
  fail("unknown pruning method '", name, "' (expected ", names, ")");
}

bool needs_calibration(const PruneOptions& o) {
  const std::string& m = prune_method(o.method).name;
  if (m == "magnitude") return false;
  if (m == "llm-pruner") return o.llm_pruner.importance == GroupImportance::Taylor;
  return true;  // minitron: activations, depth and the search all read the calibration text
}

nlohmann::ordered_json calibration_json(const CalibSamples& s) {
  return {{"path", s.source_path},
          {"sha256", s.source_sha256},
          {"nsamples", s.nsamples},
          {"seqlen", s.seqlen},
          {"seed", s.seed},
          {"stream_tokens", s.stream_tokens},
          {"rule",
           "corpus tokenized once with one BOS; window i starts at Rng(seed).below(n_tokens - seqlen + 1), drawn in "
           "order"}};
}

namespace {

nlohmann::ordered_json llm_pruner_options_json(const LlmPrunerOptions& o) {
  nlohmann::ordered_json j;
  j["method"] = "llm-pruner";
  j["importance"] = group_importance_name(o.importance);
  if (o.importance == GroupImportance::Taylor) j["taylor"] = taylor_order_name(o.taylor);
  if (o.importance == GroupImportance::Random) j["seed"] = o.seed;
  j["aggregate"] = aggregate_name(o.aggregate);
  j["attn_ratio"] = o.attn_ratio;
  j["attn_unit"] = attn_unit_name(o.attn_unit);
  j["mlp_ratio"] = o.mlp_ratio;
  j["hidden_ratio"] = o.hidden_ratio;
  j["attn_layers"] = o.attn_layers.empty() ? "all" : o.attn_layers;
  j["mlp_layers"] = o.mlp_layers.empty() ? "all" : o.mlp_layers;
  j["global"] = o.global;
  j["target_params"] = o.target_params;
  j["round"] = o.round;
  j["allow_empty"] = o.allow_empty;
  j["micro_batch"] = o.micro_batch;
  return j;
}

nlohmann::ordered_json minitron_options_json(const MinitronOptions& o) {
  nlohmann::ordered_json j;
  j["method"] = "minitron";
  auto size = [](int v) { return v ? nlohmann::ordered_json(v) : nlohmann::ordered_json("keep"); };
  j["hidden"] = size(o.hidden);
  j["ffn"] = size(o.ffn);
  j["heads"] = size(o.heads);
  j["kv_heads"] = size(o.kv_heads);
  j["layers"] = size(o.layers);
  j["target_params"] = o.target_params;
  j["importance"] = width_importance_name(o.importance);
  j["reduce_batch"] = reduce_name(o.reduce_batch);
  j["reduce_seq"] = reduce_name(o.reduce_seq);
  j["depth"] = depth_importance_name(o.depth);
  j["contiguous"] = o.contiguous;
  if (o.target_params > 0) {
    j["round"] = o.round;
    j["candidates"] = o.candidates;
    j["search_steps"] = o.search_steps;
    j["search_windows"] = o.search_windows;
  }
  if (o.importance == WidthImportance::Random) j["seed"] = o.seed;
  j["batch"] = o.batch;
  return j;
}

nlohmann::ordered_json slicegpt_options_json(const SliceGptOptions& o) {
  return {{"method", "slicegpt"},
          {"sparsity", o.sparsity},
          {"uniform", o.uniform},
          {"slice_head", o.slice_head},
          {"round", o.round},
          {"orientation", o.orientation == Orientation::Pca ? "pca" : "random"},
          {"damping", o.damping},
          {"seed", o.seed},
          {"pca", "sum x^T x of each residual point (not mean-centred), float64, damped by damping * mean(diag)"},
          {"batch", o.batch}};
}

}  // namespace

nlohmann::ordered_json PruneReport::to_json() const {
  nlohmann::ordered_json j;
  j["secateur_version"] = SECATEUR_VERSION;
  j["method"] = method;
  j["options"] = options;
  j["calibration"] = calibration;
  j["source"] = source;
  j["params_before"] = params_before;
  j["params_after"] = params_after;
  j["seconds"] = seconds;
  j["plan"] = plan;
  return j;
}

PruneReport prune_model(Model& m, const PruneOptions& o, const CalibSamples* samples) {
  const auto t0 = std::chrono::steady_clock::now();
  const PruneMethodInfo& info = prune_method(o.method);
  PruneReport r;
  r.method = info.name;
  r.source = {{"path", m.source.path}, {"format", m.source.format}, {"sha256", m.source.sha256}};
  r.params_before = param_count(m.config);
  const bool calibrated = needs_calibration(o);
  SEC_CHECK(!calibrated || (samples && samples->nsamples > 0), "--method ", o.method,
            " needs calibration data (--calib)");
  if (calibrated) r.calibration = calibration_json(*samples);
  if (!info.structured) {
    UnstructuredOptions u = o.unstructured;
    u.method = parse_unstructured_method(o.method);
    r.options = unstructured_options_json(u);
    r.plan = prune_unstructured(m, u, samples).to_json();
  } else if (r.method == "llm-pruner") {
    r.options = llm_pruner_options_json(o.llm_pruner);
    LlmPrunerPlan plan = llm_pruner(m, o.llm_pruner, calibrated ? samples : nullptr);
    r.plan = plan.report;
    m = apply_selection(m, plan.selection, true);  // m is replaced: tensors kept whole need no copy
  } else if (r.method == "slicegpt") {
    r.options = slicegpt_options_json(o.slicegpt);
    r.plan = slicegpt(m, o.slicegpt, *samples);
  } else {
    r.options = minitron_options_json(o.minitron);
    SEC_CHECK(m.tokenizer, "minitron needs the model's tokenizer (for the calibration text)");
    MinitronPlan plan = minitron(m, o.minitron, *samples, load_corpus(samples->source_path));
    r.plan = plan.report;
    m = apply_selection(m, plan.selection, true);
  }
  r.params_after = param_count(m.config);
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return r;
}

void set_prune_provenance(Config& c, const PruneReport& r) {
  c.provenance["method"] = r.method;
  c.provenance["prune_options"] = r.options.dump();
  if (r.calibration.is_object()) {
    c.provenance["calib_data"] = r.calibration.value("path", "");
    c.provenance["calib_sha256"] = r.calibration.value("sha256", "");
    c.provenance["calib_nsamples"] = std::to_string(r.calibration.value("nsamples", int64_t(0)));
    c.provenance["calib_seqlen"] = std::to_string(r.calibration.value("seqlen", int64_t(0)));
    c.provenance["calib_seed"] = std::to_string(r.calibration.value("seed", uint64_t(0)));
  }
  c.provenance["source_model"] = r.source.value("path", "");
  c.provenance["source_sha256"] = r.source.value("sha256", "");
  c.provenance["params_before"] = std::to_string(r.params_before);
  c.provenance["params_after"] = std::to_string(r.params_after);
  if (r.plan.contains("sparsity")) c.provenance["sparsity"] = cat(r.plan["sparsity"].get<double>());
  c.provenance["secateur_version"] = SECATEUR_VERSION;
}

}  // namespace sec
