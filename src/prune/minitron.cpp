#include "prune/minitron.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <deque>
#include <numeric>

#include "core/error.h"
#include "core/log.h"
#include "eval/perplexity.h"
#include "model/forward.h"
#include "ops/ops.h"
#include "prune/llm_pruner.h"
#include "train/data.h"
#include "train/trainer.h"

namespace sec {

Reduce parse_reduce(const std::string& s) {
  if (s == "mean") return Reduce::Mean;
  if (s == "l2") return Reduce::L2;
  if (s == "var") return Reduce::Var;
  fail("unknown reduction '", s, "' (expected mean, l2 or var)");
}
WidthImportance parse_width_importance(const std::string& s) {
  if (s == "activation") return WidthImportance::Activation;
  if (s == "random") return WidthImportance::Random;
  if (s == "magnitude") return WidthImportance::Magnitude;
  fail("unknown minitron --importance '", s, "' (expected activation, random or magnitude)");
}
DepthImportance parse_depth_importance(const std::string& s) {
  if (s == "bi") return DepthImportance::BlockImportance;
  if (s == "ppl") return DepthImportance::Perplexity;
  fail("unknown --depth '", s, "' (expected bi or ppl)");
}
const char* reduce_name(Reduce r) { return r == Reduce::Mean ? "mean" : r == Reduce::L2 ? "l2" : "var"; }
const char* width_importance_name(WidthImportance w) {
  return w == WidthImportance::Activation ? "activation" : w == WidthImportance::Random ? "random" : "magnitude";
}
const char* depth_importance_name(DepthImportance d) { return d == DepthImportance::BlockImportance ? "bi" : "ppl"; }

namespace {

// Per-feature sums over samples of a per-sample value (the sequence-reduced feature), for the
// batch reduction.
struct SampleSums {
  std::vector<double> sum, sumsq;
  int64_t samples = 0;
  void add(const std::vector<double>& a) {
    if (sum.empty()) sum.assign(a.size(), 0.0), sumsq.assign(a.size(), 0.0);
    for (size_t i = 0; i < a.size(); i++) sum[i] += a[i], sumsq[i] += a[i] * a[i];
    samples++;
  }
  std::vector<double> reduce(Reduce r) const {
    std::vector<double> out(sum.size());
    const double n = double(std::max<int64_t>(samples, 1));
    for (size_t i = 0; i < out.size(); i++) {
      const double mean = sum[i] / n;
      out[i] = r == Reduce::Mean ? mean
               : r == Reduce::L2 ? std::sqrt(sumsq[i])
                                 : std::max(0.0, sumsq[i] / n - mean * mean);
    }
    return out;
  }
};

// The sequence reduction of one sample: per feature, from sum and sum of squares over T positions.
std::vector<double> seq_reduce(const std::vector<double>& s, const std::vector<double>& s2, int64_t T, Reduce r) {
  std::vector<double> out(s.size());
  for (size_t i = 0; i < s.size(); i++) {
    const double mean = s[i] / double(T);
    out[i] = r == Reduce::Mean ? mean
             : r == Reduce::L2 ? std::sqrt(s2[i])
                               : std::max(0.0, s2[i] / double(T) - mean * mean);
  }
  return out;
}

double cosine(const float* a, const float* b, int64_t n) {
  double ab = 0, aa = 0, bb = 0;
  for (int64_t i = 0; i < n; i++) ab += double(a[i]) * b[i], aa += double(a[i]) * a[i], bb += double(b[i]) * b[i];
  return ab / (std::sqrt(aa * bb) + 1e-30);
}

class WidthTap : public Tap {
 public:
  WidthTap(const Config& c, Reduce seq, int window)
      : c_(c),
        seq_(seq),
        window_(window),
        heads_(size_t(c.n_layers())),
        neurons_(size_t(c.n_layers())),
        norms_(size_t(2 * c.n_layers())),
        bi_sum_(size_t(c.n_layers()), 0.0),
        win_sum_(size_t(std::max(0, c.n_layers() - window + 1)), 0.0) {}

  bool wants(TapPoint p, int) const override {
    return p == TapPoint::AttnHeads || p == TapPoint::MlpHidden || p == TapPoint::AttnInput ||
           p == TapPoint::MlpInput || p == TapPoint::BlockInput || p == TapPoint::BlockOutput;
  }

  void observe(TapPoint p, int l, const TapData& d) override {
    switch (p) {
      case TapPoint::AttnHeads:
        return add_heads(l, d);
      case TapPoint::MlpHidden:
        return add_abs(neurons_[size_t(l)], d);
      case TapPoint::AttnInput:
        return add_abs(norms_[size_t(2 * l)], d);
      case TapPoint::MlpInput:
        return add_abs(norms_[size_t(2 * l + 1)], d);
      case TapPoint::BlockInput:
        if (l == 0) inputs_.clear();                               // a new batch of samples
        inputs_.emplace_back(d.data, d.data + d.rows() * d.cols);  // the output may overwrite it
        if (int(inputs_.size()) > window_) inputs_.pop_front();
        return;
      case TapPoint::BlockOutput: {
        const int64_t N = d.rows(), C = d.cols;
        const std::vector<float>& own = inputs_.back();
        const std::vector<float>& first = inputs_.front();  // input of block l - window + 1
        double s = 0, w = 0;
        const bool window_done =
            l - window_ + 1 >= 0 && int(inputs_.size()) == window_ && int64_t(first.size()) == N * C;
        for (int64_t n = 0; n < N; n++) {
          if (int64_t(own.size()) == N * C) s += cosine(own.data() + n * C, d.data + n * C, C);
          if (window_done) w += cosine(first.data() + n * C, d.data + n * C, C);
        }
        bi_sum_[size_t(l)] += s;
        if (window_done) win_sum_[size_t(l - window_ + 1)] += w;
        if (l == 0) tokens_ += N;
        return;
      }
      default:
        return;
    }
  }

  WidthScores scores(Reduce batch) const {
    WidthScores w;
    w.window = window_;
    const int L = c_.n_layers();
    w.channels.assign(size_t(c_.dim), 0.0);
    for (int l = 0; l < L; l++) {
      w.heads.push_back(heads_[size_t(l)].reduce(batch));
      w.neurons.push_back(neurons_[size_t(l)].reduce(batch));
      std::vector<double> kv(size_t(c_.blocks[size_t(l)].n_kv_heads), 0.0);
      const int64_t Hq = c_.blocks[size_t(l)].n_heads, Hkv = c_.blocks[size_t(l)].n_kv_heads;
      for (int64_t h = 0; h < int64_t(w.heads.back().size()); h++)
        kv[size_t(kv_head_of(h, Hq, Hkv))] += w.heads.back()[size_t(h)];
      w.kv_groups.push_back(kv);
      for (int k = 0; k < 2; k++) {
        const auto r = norms_[size_t(2 * l + k)].reduce(batch);
        for (size_t i = 0; i < r.size(); i++) w.channels[i] += r[i];
      }
      w.block_bi.push_back(1.0 - bi_sum_[size_t(l)] / double(std::max<int64_t>(tokens_, 1)));
    }
    for (double s : win_sum_) w.window_bi.push_back(1.0 - s / double(std::max<int64_t>(tokens_, 1)));
    return w;
  }

 private:
  // Per sample: per feature sum / sum of squares over the sequence of v = |x|.
  void add_abs(SampleSums& acc, const TapData& d) {
    for (int64_t b = 0; b < d.B; b++) {
      std::vector<double> s(size_t(d.cols), 0.0), s2(size_t(d.cols), 0.0);
      for (int64_t t = 0; t < d.T; t++) {
        const float* x = d.data + (b * d.T + t) * d.cols;
        for (int64_t i = 0; i < d.cols; i++) {
          const double v = std::fabs(x[i]);
          s[size_t(i)] += v;
          s2[size_t(i)] += v * v;
        }
      }
      acc.add(seq_reduce(s, s2, d.T, seq_));
    }
  }
  void add_heads(int l, const TapData& d) {
    const int64_t hd = c_.head_dim, H = d.cols / hd;
    for (int64_t b = 0; b < d.B; b++) {
      std::vector<double> s(size_t(H), 0.0), s2(size_t(H), 0.0);
      for (int64_t t = 0; t < d.T; t++) {
        const float* x = d.data + (b * d.T + t) * d.cols;
        for (int64_t h = 0; h < H; h++) {
          double n2 = 0;
          for (int64_t i = 0; i < hd; i++) n2 += double(x[h * hd + i]) * x[h * hd + i];
          s[size_t(h)] += std::sqrt(n2);
          s2[size_t(h)] += n2;
        }
      }
      heads_[size_t(l)].add(seq_reduce(s, s2, d.T, seq_));
    }
  }

  const Config& c_;
  Reduce seq_;
  int window_;
  std::vector<SampleSums> heads_, neurons_, norms_;
  std::vector<double> bi_sum_, win_sum_;
  std::deque<std::vector<float>> inputs_;
  int64_t tokens_ = 0;
};

}  // namespace

WidthScores activation_scores(const Model& m, const CalibSamples& s, Reduce batch, Reduce seq, int window,
                              int64_t micro_batch) {
  SEC_CHECK(m.config.plain_residual(), "minitron: the model's residual stream has shortcut matrices (a sliced ",
            "model); prune the original model instead");
  WidthTap tap(m.config, seq, std::max(1, window));
  Progress progress("minitron statistics", s.nsamples, "samples");
  for (int64_t s0 = 0; s0 < s.nsamples; s0 += micro_batch) {
    const int64_t B = std::min(micro_batch, s.nsamples - s0);
    final_hidden(m, s.sample(s0), B, s.seqlen, &tap);  // no LM head: nothing here needs logits
    progress.add(B);
  }
  progress.finish();
  return tap.scores(batch);
}

std::vector<double> depth_perplexities(const Model& m, const std::vector<int32_t>& stream, int64_t seqlen,
                                       int64_t windows, int window) {
  const int L = m.config.n_layers();
  SEC_CHECK(window >= 1 && window < L, "minitron: cannot remove ", window, " of ", L, " blocks");
  std::vector<double> out;
  PplOptions po;
  po.seqlen = seqlen;
  po.max_windows = windows;
  po.progress = false;
  Progress progress("minitron depth perplexity", L - window + 1, "blocks");
  for (int i = 0; i + window <= L; i++) {
    Selection s = Selection::keep_all(m.config);
    for (int k = i; k < i + window; k++) s.remove_block(k);
    out.push_back(evaluate_perplexity(apply_selection(m, s, true), stream, po).ppl);
    progress.update(i + 1);
  }
  return out;
}

namespace {

struct Arch {
  int layers, hidden, ffn, heads, kv_heads;
  std::string str() const { return cat("L", layers, " h", hidden, " ffn", ffn, " q", heads, "/kv", kv_heads); }
};

// Indices of the k largest scores, ascending (ties: the lower index wins).
std::vector<int64_t> top_k(const std::vector<double>& score, int64_t k) {
  std::vector<int64_t> idx(score.size());
  std::iota(idx.begin(), idx.end(), 0);
  std::stable_sort(idx.begin(), idx.end(), [&](int64_t a, int64_t b) { return score[size_t(a)] > score[size_t(b)]; });
  idx.resize(size_t(std::min<int64_t>(k, int64_t(idx.size()))));
  std::sort(idx.begin(), idx.end());
  return idx;
}

std::vector<double> scores_of(const std::vector<ScoredGroup>& g) {
  std::vector<double> v;
  for (const auto& x : g) v.push_back(x.score);
  return v;
}

// Everything the architecture choice reads: width scores (by the chosen importance) and depth.
struct Importance {
  WidthScores width;
  std::vector<double> block_depth;                  // per block: lower = less needed (BI, or PPL with it removed)
  std::map<int, std::vector<double>> window_depth;  // per window size k > 1: per window start
};

void check_arch(const Config& c, const Arch& a) {
  const BlockDims& b = c.blocks[0];
  SEC_CHECK(c.uniform_blocks(), "minitron keeps every block the same size; this model's blocks differ");
  SEC_CHECK(a.layers >= 1 && a.layers <= c.n_layers(), "--layers ", a.layers, " is outside 1..", c.n_layers());
  SEC_CHECK(a.hidden >= 1 && a.hidden <= c.dim, "--hidden ", a.hidden, " is larger than the model's ", c.dim);
  SEC_CHECK(a.ffn >= 1 && a.ffn <= b.ffn_dim, "--ffn ", a.ffn, " is outside 1..", b.ffn_dim, " (the model's)");
  SEC_CHECK(a.kv_heads >= 1 && a.kv_heads <= b.n_kv_heads, "--kv-heads ", a.kv_heads, " is outside 1..", b.n_kv_heads,
            " (the model's)");
  SEC_CHECK(a.heads >= 1 && a.heads <= b.n_heads, "--heads ", a.heads, " is outside 1..", b.n_heads, " (the model's)");
  SEC_CHECK(a.heads % a.kv_heads == 0, "--heads ", a.heads, " is not a multiple of --kv-heads ", a.kv_heads,
            ": every KV group keeps the same number of query heads");
  SEC_CHECK(a.heads / a.kv_heads <= b.n_heads / b.n_kv_heads, "--heads ", a.heads, " with --kv-heads ", a.kv_heads,
            " needs ", a.heads / a.kv_heads, " query heads per KV group; the model has ", b.n_heads / b.n_kv_heads);
}

Selection select(const Model& m, const Importance& imp, const Arch& a, bool contiguous) {
  const Config& c = m.config;
  const int L = c.n_layers();
  Selection s = Selection::keep_all(c);
  const int k = L - a.layers;
  if (k > 0) {
    if (contiguous && k > 1) {
      const auto& w = imp.window_depth.at(k);
      const int start = int(std::min_element(w.begin(), w.end()) - w.begin());
      for (int i = start; i < start + k; i++) s.remove_block(i);
    } else {
      std::vector<double> neg;
      for (double d : imp.block_depth) neg.push_back(-d);
      for (int64_t i : top_k(neg, k)) s.remove_block(int(i));  // the k least important
    }
  }
  const int64_t Hq = c.blocks[0].n_heads, Hkv = c.blocks[0].n_kv_heads, per_group = a.heads / a.kv_heads;
  for (int l = 0; l < L; l++) {
    BlockKeep& bk = s.blocks[size_t(l)];
    bk.kv_heads = top_k(imp.width.kv_groups[size_t(l)], a.kv_heads);
    bk.q_heads.clear();
    for (int64_t g : bk.kv_heads) {  // the best query heads of each kept group, as many in each
      std::vector<double> in_group;
      for (int64_t h = g * (Hq / Hkv); h < (g + 1) * (Hq / Hkv); h++)
        in_group.push_back(imp.width.heads[size_t(l)][size_t(h)]);
      for (int64_t j : top_k(in_group, per_group)) bk.q_heads.push_back(g * (Hq / Hkv) + j);
    }
    bk.ffn = top_k(imp.width.neurons[size_t(l)], a.ffn);
  }
  const std::vector<int64_t> hidden = top_k(imp.width.channels, a.hidden);
  for (auto& r : s.resid) r = hidden;
  return s;
}

nlohmann::ordered_json arch_json(const Arch& a) {
  return {{"layers", a.layers}, {"hidden", a.hidden}, {"ffn", a.ffn}, {"heads", a.heads}, {"kv_heads", a.kv_heads}};
}

// Mean KL(dense || student) per position over the windows (B x T tokens each row).
double mean_kl(const Model& dense, const Model& student, const CalibSamples& w) {
  const int64_t V = dense.config.vocab_size, T = w.seqlen;
  double total = 0;
  std::vector<float> p(size_t(T * V)), q(size_t(T * V)), kl(static_cast<size_t>(T));
  for (int64_t i = 0; i < w.nsamples; i++) {
    model_forward(dense, w.sample(i), 1, T, p.data());
    model_forward(student, w.sample(i), 1, T, q.data());
    kl_div_forward(kl.data(), p.data(), q.data(), T, V, 1.f);
    for (float x : kl) total += x;
  }
  return total / double(w.nsamples * T);
}

int64_t arch_params(const Model& m, const Arch& a) {
  Config c = m.config;
  c.blocks.assign(size_t(a.layers), BlockDims{a.heads, a.kv_heads, a.ffn});
  c.dim = a.hidden;
  return param_count(c);
}

}  // namespace

MinitronPlan minitron(const Model& m, const MinitronOptions& o, const CalibSamples& samples, const Corpus& calib) {
  const Config& c = m.config;
  SEC_CHECK(c.plain_residual(), "minitron: the model has shortcut matrices (a sliced model); prune the original");
  SEC_CHECK(c.uniform_blocks(), "minitron keeps every block the same size; this model's blocks differ");
  const BlockDims& b = c.blocks[0];
  const int L = c.n_layers();
  const bool search = o.target_params > 0;
  Arch asked{o.layers ? o.layers : L, o.hidden ? o.hidden : c.dim, o.ffn ? o.ffn : b.ffn_dim, o.heads ? o.heads : 0,
             o.kv_heads ? o.kv_heads : b.n_kv_heads};
  if (!asked.heads) asked.heads = asked.kv_heads * (b.n_heads / b.n_kv_heads);  // keep the group size
  if (!search) check_arch(c, asked);
  SEC_CHECK(!search || (!o.layers && !o.hidden && !o.ffn && !o.heads && !o.kv_heads),
            "give either --target-params or the architecture (--hidden/--ffn/--heads/--kv-heads/--layers)");
  const int64_t P0 = param_count(c);
  const int64_t budget =
      search ? (o.target_params <= 1 ? int64_t(o.target_params * double(P0)) : int64_t(o.target_params)) : 0;
  SEC_CHECK(!search || budget < P0, "--target-params ", o.target_params, " is not below the model's ", P0,
            " parameters");

  // Candidates first (structure only), so that an impossible budget fails before any work.
  std::vector<Arch> cands;
  const int round =
      o.round > 0 ? o.round : std::max(1, std::min(64, 1 << int(std::floor(std::log2(std::max(1, c.dim / 8))))));
  if (search) {
    SEC_CHECK(o.candidates >= 1, "--candidates must be at least 1");
    for (int layers = L; layers >= std::max(1, (L + 1) / 2); layers--) {
      std::vector<Arch> at_depth;
      for (int h = c.dim / round * round; h >= std::max(round, c.dim / 2); h -= round) {
        int f = b.ffn_dim / round * round;
        while (f >= round && arch_params(m, Arch{layers, h, f, b.n_heads, b.n_kv_heads}) > budget) f -= round;
        if (f >= std::max(round, b.ffn_dim / 4)) at_depth.push_back({layers, h, f, b.n_heads, b.n_kv_heads});
      }
      // At each depth the two closest to the budget: the widest hidden size and the widest FFN.
      std::stable_sort(at_depth.begin(), at_depth.end(),
                       [&](const Arch& x, const Arch& y) { return arch_params(m, x) > arch_params(m, y); });
      for (size_t i = 0; i < at_depth.size() && i < 2; i++) cands.push_back(at_depth[i]);
    }
    SEC_CHECK(!cands.empty(), "--target-params: no architecture (depth >= ", (L + 1) / 2, ", hidden >= ", c.dim / 2,
              ", FFN >= ", b.ffn_dim / 4, ", sizes a multiple of ", round, ") fits in ", budget, " parameters");
    std::stable_sort(cands.begin(), cands.end(),
                     [&](const Arch& x, const Arch& y) { return arch_params(m, x) > arch_params(m, y); });
    if (int(cands.size()) > o.candidates) cands.resize(size_t(o.candidates));
  }

  // Importance: one forward pass gives the activation statistics and BI (cheap: it runs anyway);
  // the perplexity of the model without each block whenever depth matters or was asked for.
  Importance imp;
  std::vector<int> windows;  // depth window sizes the plan needs
  for (const Arch& a : search ? cands : std::vector<Arch>{asked})
    if (o.contiguous && L - a.layers > 1) windows.push_back(L - a.layers);
  std::sort(windows.begin(), windows.end());
  windows.erase(std::unique(windows.begin(), windows.end()), windows.end());
  imp.width = activation_scores(m, samples, o.reduce_batch, o.reduce_seq, 1, o.batch);
  const bool depth_pruning = search || asked.layers < L;
  std::vector<double> ppl_removed;
  std::vector<int32_t> stream;
  int64_t ppl_windows = 0;
  const bool have_text = m.tokenizer && !calib.documents.empty();
  SEC_CHECK(have_text || (o.depth != DepthImportance::Perplexity && !search), "minitron --depth ppl and ",
            "--target-params need the model's tokenizer and the calibration text");
  if (o.depth == DepthImportance::Perplexity || (depth_pruning && have_text)) {
    stream = tokenize_text(*m.tokenizer, calib.joined("\n\n"), true);
    ppl_windows = std::min<int64_t>(samples.nsamples, int64_t(stream.size()) / samples.seqlen);
    SEC_CHECK(ppl_windows > 0, "minitron: the calibration text has fewer than ", samples.seqlen, " tokens");
    ppl_removed = depth_perplexities(m, stream, samples.seqlen, ppl_windows, 1);
  }
  imp.block_depth = o.depth == DepthImportance::BlockImportance ? imp.width.block_bi : ppl_removed;
  for (int k : windows)
    imp.window_depth[k] = o.depth == DepthImportance::BlockImportance
                              ? activation_scores(m, samples, o.reduce_batch, o.reduce_seq, k, o.batch).window_bi
                              : depth_perplexities(m, stream, samples.seqlen, ppl_windows, k);
  if (o.importance != WidthImportance::Activation) {
    const GroupImportance g = o.importance == WidthImportance::Random ? GroupImportance::Random : GroupImportance::L2;
    GroupScores gs = score_groups(m, nullptr, g, TaylorOrder::First, Aggregate::Sum, o.seed);
    imp.width.heads.clear();
    imp.width.kv_groups.clear();
    imp.width.neurons.clear();
    for (int l = 0; l < L; l++) {
      imp.width.heads.push_back(scores_of(gs.heads[size_t(l)]));
      imp.width.kv_groups.push_back(scores_of(gs.kv[size_t(l)]));
      imp.width.neurons.push_back(scores_of(gs.ffn[size_t(l)]));
    }
    imp.width.channels = scores_of(gs.hidden);
  }

  MinitronPlan plan;
  nlohmann::ordered_json& r = plan.report;
  r["params_before"] = P0;
  r["importance"] = width_importance_name(o.importance);
  r["reduce"] = {{"batch", reduce_name(o.reduce_batch)}, {"seq", reduce_name(o.reduce_seq)}};
  r["depth"] = depth_importance_name(o.depth);
  if (!ppl_removed.empty())
    r["depth_perplexity"] = {
        {"windows", ppl_windows},
        {"seqlen", samples.seqlen},
        {"protocol", "papers: the first windows of the calibration text, tokenized once with BOS"}};
  nlohmann::ordered_json blocks = nlohmann::ordered_json::array();
  for (int l = 0; l < L; l++) {
    nlohmann::ordered_json bj = {{"block", l}, {"block_importance", imp.width.block_bi[size_t(l)]}};
    if (!ppl_removed.empty()) bj["ppl_without_block"] = ppl_removed[size_t(l)];
    bj["head_scores"] = imp.width.heads[size_t(l)];
    bj["kv_group_scores"] = imp.width.kv_groups[size_t(l)];
    bj["neuron_scores"] = imp.width.neurons[size_t(l)];
    blocks.push_back(bj);
  }
  r["blocks"] = blocks;
  auto least = [](const std::vector<double>& v) { return int(std::min_element(v.begin(), v.end()) - v.begin()); };
  r["least_important_block"] = {{"bi", least(imp.width.block_bi)}};
  if (!ppl_removed.empty()) r["least_important_block"]["ppl"] = least(ppl_removed);
  r["channel_scores"] = imp.width.channels;
  for (auto& [k, w] : imp.window_depth) r["window_depth"][std::to_string(k)] = w;

  Arch chosen = asked;
  if (search) {
    // Score every candidate: KL to the dense model on held-out windows, after pruning and after a
    // short logit distillation (Minitron's advice: rank candidates after light retraining).
    SamplingOptions so;
    so.nsamples = o.search_windows;
    so.seqlen = samples.seqlen;
    so.seed = o.seed + 1;
    const CalibSamples held_out = sample_windows(stream, so, "held-out calibration windows");
    const std::vector<TrainSample> train_data = text_samples(stream, int(samples.seqlen));
    nlohmann::ordered_json table = nlohmann::ordered_json::array();
    double best = 1e300;
    for (const Arch& a : cands) {
      Model student = apply_selection(m, select(m, imp, a, o.contiguous));
      const double kl0 = mean_kl(m, student, held_out);
      double kl1 = kl0;
      if (o.search_steps > 0) {
        TrainerOptions t;
        t.label = "minitron search " + a.str();
        t.teacher = &m;
        t.max_steps = o.search_steps;
        t.batch = 8;
        t.micro_batch = 4;
        t.lr = 1e-3f;
        t.warmup_steps = std::max<int64_t>(1, o.search_steps / 10);
        t.seed = o.seed;
        train(student, nullptr, train_data, {}, t);
        kl1 = mean_kl(m, student, held_out);
      }
      log_info("minitron candidate ", a.str(), ": ", param_count(student.config), " params, KL ", kl0, " -> ", kl1);
      table.push_back({{"architecture", arch_json(a)},
                       {"params", param_count(student.config)},
                       {"kl_pruned", kl0},
                       {"kl_distilled", kl1}});
      if (kl1 < best) best = kl1, chosen = a;
    }
    r["budget"] = budget;
    r["search"] = {{"candidates", table},
                   {"search_steps", o.search_steps},
                   {"held_out_windows", o.search_windows},
                   {"round", round},
                   {"score", "mean KL(dense || candidate) per position on held-out calibration windows"}};
  }
  plan.selection = select(m, imp, chosen, o.contiguous);
  r["architecture"] = arch_json(chosen);
  r["blocks_removed"] = nlohmann::ordered_json::array();
  for (int l = 0; l < L; l++)
    if (!plan.selection.blocks[size_t(l)].keep) r["blocks_removed"].push_back(l);
  r["params_after"] = param_count(selected_config(c, plan.selection));
  return plan;
}

}  // namespace sec
