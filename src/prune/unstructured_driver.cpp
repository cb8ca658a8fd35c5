#include "prune/unstructured_driver.h"

#include <chrono>
#include <regex>

#include "core/error.h"
#include "core/log.h"

namespace sec {

UnstructuredMethod parse_unstructured_method(const std::string& s) {
  if (s == "magnitude") return UnstructuredMethod::Magnitude;
  if (s == "wanda") return UnstructuredMethod::Wanda;
  if (s == "sparsegpt") return UnstructuredMethod::SparseGPT;
  fail("unknown pruning method '", s, "' (expected magnitude, wanda or sparsegpt)");
}

const char* unstructured_method_name(UnstructuredMethod m) {
  switch (m) {
    case UnstructuredMethod::Magnitude:
      return "magnitude";
    case UnstructuredMethod::Wanda:
      return "wanda";
    case UnstructuredMethod::SparseGPT:
      return "sparsegpt";
  }
  return "?";
}

int64_t UnstructuredReport::pruned_zeros() const {
  int64_t z = 0;
  for (const auto& l : layers) z += l.zeros;
  return z;
}

int64_t UnstructuredReport::prunable_params() const {
  int64_t n = 0;
  for (const auto& l : layers) n += l.rows * l.cols;
  return n;
}

double UnstructuredReport::overall_sparsity() const {
  int64_t n = prunable_params();
  return n ? double(pruned_zeros()) / double(n) : 0;
}

nlohmann::ordered_json UnstructuredReport::to_json() const {
  nlohmann::ordered_json j;
  j["seconds"] = seconds;
  j["prunable_params"] = prunable_params();
  j["zeros"] = pruned_zeros();
  j["sparsity"] = overall_sparsity();
  j["block_seconds"] = block_seconds;
  j["block_target"] = block_target;
  if (!owl_outlier_ratio.empty()) j["owl_outlier_ratio"] = owl_outlier_ratio;
  j["skipped"] = skipped;
  auto& arr = j["layers"] = nlohmann::ordered_json::array();
  for (const auto& l : layers)
    arr.push_back({{"name", l.name},
                   {"layer", l.layer},
                   {"shape", {l.rows, l.cols}},
                   {"target", l.target},
                   {"zeros", l.zeros},
                   {"sparsity", l.sparsity()}});
  return j;
}

namespace {

struct Target {
  std::string name;
  TensorKind kind;
  Tensor* w;
};

// The prunable linears of one block, in table order.
std::vector<Target> block_targets(Model& m, int layer, const std::regex* skip, std::vector<std::string>* skipped) {
  std::vector<Target> out;
  for_each_tensor(m.config, m.weights, [&](TensorRef& r) {
    if (r.layer != layer || !tensor_rule(r.kind).is_linear || r.tensor.numel() == 0) return;
    if (skip && std::regex_search(r.name, *skip)) {
      if (skipped) skipped->push_back(r.name);
      return;
    }
    out.push_back({r.name, r.kind, &r.tensor});
  });
  return out;
}

// Statistics-only pass of OWL: D_l of every block from the dense model's Wanda scores.
class OwlStatsPass : public LayerwiseMethod {
 public:
  OwlStatsPass(const std::regex* skip, double M) : skip_(skip), M_(M) {}
  Tap* begin_block(const Model& m, int layer) override {
    tap_ = std::make_unique<LinearStatsTap>(m.config, layer, StatsRequest{true, false}, include_fn());
    return tap_.get();
  }
  void end_block(Model& m, int layer, BlockPasses&) override {
    std::vector<std::vector<float>> norms;
    std::vector<ScoredLinear> scored;
    int64_t params = 0;
    auto targets = block_targets(m, layer, skip_, nullptr);
    norms.reserve(targets.size());
    for (const auto& t : targets) {
      norms.push_back(tap_->stats(t.name).col_norms());
      scored.push_back({t.w->f32(), t.w->dim(0), t.w->dim(1), norms.back().data()});
      params += t.w->numel();
    }
    ratio.push_back(owl_outlier_ratio(scored, M_));
    block_params.push_back(params);
    tap_.reset();
  }
  bool changes_model() const override { return false; }
  std::vector<double> ratio;
  std::vector<int64_t> block_params;

 private:
  std::function<bool(const std::string&)> include_fn() const {
    if (!skip_) return {};
    const std::regex* s = skip_;
    return [s](const std::string& n) { return !std::regex_search(n, *s); };
  }
  const std::regex* skip_;
  double M_;
  std::unique_ptr<LinearStatsTap> tap_;
};

// Wanda / SparseGPT through the layer-wise driver.
class CalibratedPrune : public LayerwiseMethod {
 public:
  CalibratedPrune(const UnstructuredOptions& o, const std::regex* skip, const std::vector<double>& block_sparsity,
                  UnstructuredReport& rep)
      : o_(o), skip_(skip), block_sparsity_(block_sparsity), rep_(rep) {}
  Tap* begin_block(const Model& m, int layer) override {
    StatsRequest req{o_.method == UnstructuredMethod::Wanda, o_.method == UnstructuredMethod::SparseGPT};
    std::function<bool(const std::string&)> include;
    if (skip_) {
      const std::regex* s = skip_;
      include = [s](const std::string& n) { return !std::regex_search(n, *s); };
    }
    tap_ = std::make_unique<LinearStatsTap>(m.config, layer, req, include);
    return tap_.get();
  }
  void end_block(Model& m, int layer, BlockPasses&) override {
    tap_->finish();
    SparsityTarget t = o_.target;
    if (!t.is_nm()) t.ratio = block_sparsity_[size_t(layer)];
    for (const auto& tg : block_targets(m, layer, skip_, &rep_.skipped)) {
      float* w = tg.w->f32();
      const int64_t rows = tg.w->dim(0), cols = tg.w->dim(1);
      const InputStats& st = tap_->stats(tg.name);
      if (o_.method == UnstructuredMethod::Wanda) {
        std::vector<float> norms = st.col_norms();
        apply_mask(w, wanda_mask(w, norms.data(), rows, cols, t));
      } else {
        sparsegpt_prune(w, rows, cols, st.xtx.f32(), t, o_.sparsegpt);
      }
      rep_.layers.push_back({tg.name, layer, rows, cols, t.fraction(), count_zeros(w, rows * cols)});
    }
    tap_.reset();  // free this block's statistics before the next block
  }

 private:
  const UnstructuredOptions& o_;
  const std::regex* skip_;
  const std::vector<double>& block_sparsity_;
  UnstructuredReport& rep_;
  std::unique_ptr<LinearStatsTap> tap_;
};

}  // namespace

nlohmann::ordered_json unstructured_options_json(const UnstructuredOptions& o) {
  nlohmann::ordered_json j;
  j["method"] = unstructured_method_name(o.method);
  if (o.target.is_nm())
    j["nm"] = cat(o.target.n, ":", o.target.m);
  else
    j["sparsity"] = o.target.ratio;
  j["owl"] = o.owl;
  if (o.owl) {
    j["owl_m"] = o.owl_m;
    j["owl_lambda"] = o.owl_lambda;
  }
  if (o.method == UnstructuredMethod::Magnitude) j["magnitude_per_row"] = o.magnitude_per_row;
  if (o.method == UnstructuredMethod::SparseGPT) {
    j["percdamp"] = o.sparsegpt.percdamp;
    j["blocksize"] = o.sparsegpt.blocksize;
  }
  j["skip"] = o.skip_regex;
  j["layers"] = "block linear layers (q, k, v, o, gate, up, down); embeddings and LM head dense";
  j["calibration_batch"] = o.layerwise.batch;
  return j;
}

using Runner = std::function<LayerwiseResult(Model&, LayerwiseMethod&, const LayerwiseOptions&)>;

static UnstructuredReport prune_impl(Model& m, const UnstructuredOptions& o, const Runner& run);

UnstructuredReport prune_unstructured(Model& m, const UnstructuredOptions& o, const CalibSamples* samples) {
  if (o.method == UnstructuredMethod::Magnitude) return prune_impl(m, o, {});
  SEC_CHECK(samples != nullptr && samples->nsamples > 0, unstructured_method_name(o.method),
            " needs calibration data (--calib)");
  Runner run = [samples](Model& mm, LayerwiseMethod& method, const LayerwiseOptions& lo) {
    return run_layerwise(mm, *samples, method, lo);
  };
  return prune_impl(m, o, run);
}

UnstructuredReport prune_unstructured_hidden(Model& m, const UnstructuredOptions& o, const std::vector<float>& hidden,
                                             int64_t nsamples, int64_t seqlen) {
  Runner run = [&](Model& mm, LayerwiseMethod& method, const LayerwiseOptions& lo) {
    std::vector<float> h = hidden;  // the driver overwrites its buffer
    return run_layerwise_hidden(mm, h, nsamples, seqlen, method, lo);
  };
  return prune_impl(m, o, run);
}

static UnstructuredReport prune_impl(Model& m, const UnstructuredOptions& o, const Runner& run) {
  auto t0 = std::chrono::steady_clock::now();
  UnstructuredReport rep;
  const int L = m.config.n_layers();
  if (!o.target.is_nm())
    SEC_CHECK(o.target.ratio >= 0 && o.target.ratio < 1, "--sparsity must be in [0, 1), got ", o.target.ratio);
  SEC_CHECK(!(o.owl && o.target.is_nm()),
            "--owl allocates unstructured per-block sparsity; it cannot be combined with --nm");
  SEC_CHECK(!(o.owl && o.method == UnstructuredMethod::Magnitude),
            "--owl works on top of wanda or sparsegpt, not magnitude");
  std::regex skip_re;
  const std::regex* skip = nullptr;
  if (!o.skip_regex.empty()) {
    try {
      skip_re = std::regex(o.skip_regex);
    } catch (const std::regex_error& e) {
      fail("--skip '", o.skip_regex, "' is not a valid regular expression: ", e.what());
    }
    skip = &skip_re;
  }
  const bool calibrated = o.method != UnstructuredMethod::Magnitude;
  if (o.target.is_nm()) {
    // Fail before any work if some layer's input size is not a multiple of M.
    for (int l = 0; l < L; l++)
      for (const auto& t : block_targets(m, l, skip, nullptr))
        SEC_CHECK(t.w->dim(1) % o.target.m == 0, t.name, ": input size ", t.w->dim(1),
                  " is not a multiple of M = ", o.target.m, " (use --skip to leave it dense)");
  }

  rep.block_target.assign(size_t(L), o.target.fraction());
  if (o.owl) {
    SEC_CHECK(o.owl_lambda >= 0 && o.owl_m > 0, "--owl-lambda must be >= 0 and --owl-m > 0");
    OwlStatsPass pass(skip, o.owl_m);
    LayerwiseOptions lo = o.layerwise;
    lo.label = "owl outlier ratios";
    run(m, pass, lo);
    rep.owl_outlier_ratio = pass.ratio;
    rep.block_target = owl_block_sparsity(pass.ratio, pass.block_params, o.target.ratio, o.owl_lambda);
    for (int l = 0; l < L; l++)
      log_info("owl: block ", l, " outlier ratio ", 100 * pass.ratio[size_t(l)], "% -> sparsity ",
               rep.block_target[size_t(l)]);
  }

  if (calibrated) {
    CalibratedPrune method(o, skip, rep.block_target, rep);
    LayerwiseOptions lo = o.layerwise;
    lo.label = cat("prune ", unstructured_method_name(o.method));
    rep.block_seconds = run(m, method, lo).block_seconds;
  } else {
    Progress progress("prune magnitude", L, "blocks");
    for (int l = 0; l < L; l++) {
      auto b0 = std::chrono::steady_clock::now();
      for (const auto& tg : block_targets(m, l, skip, &rep.skipped)) {
        float* w = tg.w->f32();
        const int64_t rows = tg.w->dim(0), cols = tg.w->dim(1);
        apply_mask(w, magnitude_mask(w, rows, cols, o.target, o.magnitude_per_row));
        rep.layers.push_back({tg.name, l, rows, cols, o.target.fraction(), count_zeros(w, rows * cols)});
      }
      rep.block_seconds.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - b0).count());
      progress.update(l + 1);
    }
  }
  rep.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return rep;
}

}  // namespace sec
