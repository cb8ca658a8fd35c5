#include "calib/layerwise.h"

#include <cblas.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>

#include "core/error.h"
#include "core/log.h"
#include "core/threads.h"

namespace sec {

TapPoint input_tap_of(TensorKind kind) {
  switch (kind) {
    case TensorKind::Q:
    case TensorKind::K:
    case TensorKind::V:
      return TapPoint::AttnInput;
    case TensorKind::O:
      return TapPoint::AttnHeads;
    case TensorKind::Gate:
    case TensorKind::Up:
      return TapPoint::MlpInput;
    case TensorKind::Down:
      return TapPoint::MlpHidden;
    default:
      SEC_ASSERT(false && "not a block linear layer");
  }
  return TapPoint::BlockInput;
}

std::vector<TensorKind> block_linear_kinds() {
  std::vector<TensorKind> out;
  for (const auto& r : tensor_name_rules())
    if (r.is_linear) out.push_back(r.kind);
  return out;
}

std::vector<float> InputStats::col_norms() const {
  std::vector<float> n(sumsq.size());
  for (size_t j = 0; j < sumsq.size(); j++) n[j] = float(std::sqrt(sumsq[j]));
  return n;
}

LinearStatsTap::LinearStatsTap(const Config& c, int layer, StatsRequest req,
                               std::function<bool(const std::string&)> include)
    : layer_(layer), req_(req) {
  for (TensorKind k : block_linear_kinds()) {
    std::string name = tensor_name_hf(k, layer);
    if (include && !include(name)) continue;
    TapPoint p = input_tap_of(k);
    if (!tensor_present(c, k, layer)) continue;  // a block without heads or MLP has nothing to observe
    const int64_t cols = tensor_shape(c, k, layer)[1];
    auto& s = by_point_[p];
    if (!s) {
      s = std::make_shared<InputStats>();
      s->cols = cols;
      if (req.sumsq) s->sumsq.assign(size_t(cols), 0.0);
      if (req.xtx) s->xtx = Tensor::zeros({cols, cols});
    }
    by_name_[name] = s;
  }
}

bool LinearStatsTap::wants(TapPoint point, int layer) const { return layer == layer_ && by_point_.count(point); }

void LinearStatsTap::observe(TapPoint point, int layer, const TapData& d) {
  if (!wants(point, layer)) return;
  const float* x = d.data;
  const int64_t rows = d.rows(), cols = d.cols;
  InputStats& s = *by_point_.at(point);
  SEC_ASSERT(cols == s.cols);
  s.rows += rows;
  if (req_.sumsq) {
    // Column sums in double: each task its own, added in task order (the result does not depend on
    // timing).
    double* acc = s.sumsq.data();
    const int64_t tasks = task_count(rows, double(cols), 262144.0), per = (rows + tasks - 1) / tasks;
    std::vector<std::vector<double>> local(size_t(tasks), std::vector<double>(size_t(cols), 0.0));
    parallel_for(tasks, [&](int64_t t) {
      double* l = local[size_t(t)].data();
      for (int64_t r = t * per, e = std::min(rows, r + per); r < e; r++) {
        const float* row = x + r * cols;
        for (int64_t j = 0; j < cols; j++) l[j] += double(row[j]) * row[j];
      }
    });
    for (const auto& l : local)
      for (int64_t j = 0; j < cols; j++) acc[j] += l[size_t(j)];
  }
  if (req_.xtx) {
    // Upper triangle (row-major) of X^T X accumulated by BLAS; finish() mirrors it.
    cblas_ssyrk(CblasRowMajor, CblasUpper, CblasTrans, int(cols), int(rows), 1.f, x, int(cols), 1.f, s.xtx.f32(),
                int(cols));
  }
}

void LinearStatsTap::finish() {
  if (!req_.xtx) return;
  for (auto& [p, s] : by_point_) {
    float* h = s->xtx.f32();
    const int64_t n = s->cols;
    parallel_ranges(n, double(n), 32768.0, [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; i++)
        for (int64_t j = 0; j < i; j++) h[i * n + j] = h[j * n + i];
    });
  }
}

const InputStats& LinearStatsTap::stats(const std::string& name) const {
  auto it = by_name_.find(name);
  SEC_ASSERT(it != by_name_.end());
  return *it->second;
}

const InputStats& LinearStatsTap::stats(TensorKind kind) const { return stats(tensor_name_hf(kind, layer_)); }

namespace {
// Forwards to the method's tap and tells block_forward that the pass's outputs are not used
// (unless the tap observes them).
struct StatisticsOnlyTap : Tap {
  StatisticsOnlyTap(Tap* inner, int layer) : inner(inner), layer(layer) {}
  bool wants(TapPoint p, int l) const override { return inner->wants(p, l); }
  void observe(TapPoint p, int l, const TapData& d) override { inner->observe(p, l, d); }
  bool needs_block_output() const override { return inner->wants(TapPoint::BlockOutput, layer); }
  bool needs_mlp() const override { return inner->needs_mlp(); }
  Tap* inner;
  int layer;
};
}  // namespace

LayerwiseResult run_layerwise(Model& m, const CalibSamples& samples, LayerwiseMethod& method,
                              const LayerwiseOptions& opts) {
  const int64_t C = m.config.embed_dim(), N = samples.nsamples * samples.seqlen;
  std::vector<float> hidden(size_t(N * C));
  embed_tokens(m, samples.tokens.data(), N, hidden.data());
  return run_layerwise_hidden(m, hidden, samples.nsamples, samples.seqlen, method, opts, 0);
}

LayerwiseResult run_layerwise_hidden(Model& m, std::vector<float>& hidden, int64_t nsamples, int64_t seqlen,
                                     LayerwiseMethod& method, const LayerwiseOptions& opts, int first_layer) {
  const int64_t batch = std::max<int64_t>(1, std::min(opts.batch, nsamples));
  std::vector<float> work;  // the second activation buffer
  BlockActs acts;
  LayerwiseResult res;
  const int L = m.config.n_layers();
  // Runs block l from `in` to `out` in batches of samples.
  auto run_block = [&](int l, const std::vector<float>& in, std::vector<float>& out, Tap* tap) {
    const int64_t Cin = m.config.block_in(l), Cout = m.config.block_out(l);
    SEC_ASSERT(int64_t(in.size()) == nsamples * seqlen * Cin);
    out.resize(size_t(nsamples * seqlen * Cout));
    BlockPass pass;
    pass.tap = tap;
    for (int64_t s0 = 0; s0 < nsamples; s0 += batch) {
      const int64_t b = std::min(batch, nsamples - s0);
      block_forward(m, l, in.data() + s0 * seqlen * Cin, out.data() + s0 * seqlen * Cout, b, seqlen, acts, pass);
    }
  };
  Progress progress(opts.label, L - first_layer, "blocks");
  for (int l = first_layer; l < L; l++) {
    auto t0 = std::chrono::steady_clock::now();
    Tap* tap = method.begin_block(m, l);
    StatisticsOnlyTap stats_only(tap, l);
    // Statistics of the unchanged block; when the method leaves the block as it is, this pass's
    // outputs are the next block's inputs, else they are recomputed below.
    if (tap) run_block(l, hidden, work, method.changes_model() ? &stats_only : tap);
    // The method's own passes run the block as it is at that moment; their outputs land in `work`,
    // which the output pass below recomputes unless the method hands them over.
    struct Passes : BlockPasses {
      std::function<void(Tap*, bool)> go;
      std::vector<float>* work;
      bool ready = false;
      void run(Tap* t) override { go(t, false); }
      std::vector<float>& run_keep(Tap* t) override {
        go(t, true);
        return *work;
      }
      void outputs_ready() override { ready = true; }
    } passes;
    passes.work = &work;
    passes.go = [&](Tap* t, bool keep) {
      SEC_ASSERT(method.changes_model());
      StatisticsOnlyTap only(t, l);
      run_block(l, hidden, work, keep ? t : &only);
    };
    method.end_block(m, l, passes);
    if (passes.ready)
      SEC_ASSERT(int64_t(work.size()) == nsamples * seqlen * m.config.block_out(l));
    else if ((method.changes_model() || !tap) && l + 1 < L)
      run_block(l, hidden, work, nullptr);  // outputs of the changed block (the last block's feed nothing)
    hidden.swap(work);
    res.block_seconds.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    progress.update(l - first_layer + 1);
    log_debug(opts.label, ": block ", l, " took ", res.block_seconds.back(), " s");
  }
  progress.finish();
  return res;
}

}  // namespace sec
