#include "prune/llm_pruner.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <memory>
#include <set>

#include "core/error.h"
#include "core/log.h"
#include "core/random.h"
#include "core/threads.h"
#include "model/train_forward.h"

namespace sec {

GroupImportance parse_group_importance(const std::string& s) {
  if (s == "taylor") return GroupImportance::Taylor;
  if (s == "l1") return GroupImportance::L1;
  if (s == "l2") return GroupImportance::L2;
  if (s == "random") return GroupImportance::Random;
  fail("unknown --importance '", s, "' (expected taylor, l1, l2 or random)");
}
TaylorOrder parse_taylor_order(const std::string& s) {
  if (s == "vector") return TaylorOrder::Vector;
  if (s == "first") return TaylorOrder::First;
  if (s == "second") return TaylorOrder::Second;
  if (s == "mix") return TaylorOrder::Mix;
  fail("unknown --taylor '", s, "' (expected vector, first, second or mix)");
}
Aggregate parse_aggregate(const std::string& s) {
  if (s == "sum") return Aggregate::Sum;
  if (s == "mean") return Aggregate::Mean;
  if (s == "max") return Aggregate::Max;
  if (s == "prod") return Aggregate::Prod;
  if (s == "last") return Aggregate::Last;
  fail("unknown --aggregate '", s, "' (expected sum, mean, max, prod or last)");
}
AttnUnit parse_attn_unit(const std::string& s) {
  if (s == "kv-group") return AttnUnit::KvGroup;
  if (s == "head") return AttnUnit::Head;
  fail("unknown --attn-unit '", s, "' (expected kv-group or head)");
}
const char* group_importance_name(GroupImportance i) {
  switch (i) {
    case GroupImportance::Taylor:
      return "taylor";
    case GroupImportance::L1:
      return "l1";
    case GroupImportance::L2:
      return "l2";
    case GroupImportance::Random:
      return "random";
  }
  return "?";
}
const char* taylor_order_name(TaylorOrder t) {
  switch (t) {
    case TaylorOrder::Vector:
      return "vector";
    case TaylorOrder::First:
      return "first";
    case TaylorOrder::Second:
      return "second";
    case TaylorOrder::Mix:
      return "mix";
  }
  return "?";
}
const char* aggregate_name(Aggregate a) {
  switch (a) {
    case Aggregate::Sum:
      return "sum";
    case Aggregate::Mean:
      return "mean";
    case Aggregate::Max:
      return "max";
    case Aggregate::Prod:
      return "prod";
    case Aggregate::Last:
      return "last";
  }
  return "?";
}
const char* attn_unit_name(AttnUnit u) { return u == AttnUnit::KvGroup ? "kv-group" : "head"; }

LayerRange parse_layer_range(const std::string& s, int n_layers, const char* option) {
  if (s.empty()) return {0, n_layers - 1};
  int a = 0, b = 0;
  char extra = 0;
  const bool pair = std::sscanf(s.c_str(), "%d-%d%c", &a, &b, &extra) == 2;
  const bool single = !pair && std::sscanf(s.c_str(), "%d%c", &a, &extra) == 1;
  SEC_CHECK(pair || single, option, " '", s, "' is not a block range (expected A-B, e.g. 4-29, or one block)");
  if (single) b = a;
  SEC_CHECK(a >= 0 && b >= a && b < n_layers, option, " ", s, " is outside the model's blocks 0-", n_layers - 1);
  return {a, b};
}

// ---- gradients ------------------------------------------------------------------------------------

namespace {

// Next-token batch of calibration windows [s0, s0 + B): each window of T tokens gives T - 1 targets
// (the loss Hugging Face computes with labels = input_ids).
Batch window_batch(const CalibSamples& s, int64_t s0, int64_t B) {
  Batch b;
  b.B = B;
  b.T = s.seqlen - 1;
  for (int64_t i = s0; i < s0 + B; i++) {
    const int32_t* w = s.sample(i);
    b.tokens.insert(b.tokens.end(), w, w + b.T);
    b.targets.insert(b.targets.end(), w + 1, w + s.seqlen);
  }
  return b;
}

}  // namespace

GradientStats calibration_gradients(const Model& m, const CalibSamples& s, bool fisher, int64_t micro_batch,
                                    const std::function<bool(const TensorRef&)>& needed) {
  SEC_CHECK(s.nsamples > 0 && s.seqlen >= 2, "gradients need calibration windows of at least 2 tokens");
  SEC_CHECK(micro_batch >= 1, "--batch must be at least 1");
  GradientStats g;
  g.samples = s.nsamples;
  g.tokens = s.nsamples * (s.seqlen - 1);
  g.grad = needed ? allocate_weights(m.config, needed) : allocate_weights(m.config);
  Progress progress("llm-pruner gradients", s.nsamples * (fisher ? 2 : 1), "samples");
  LossSpec loss;
  loss.denominator = double(g.tokens);  // micro-batches add up to the mean over every window
  for (int64_t s0 = 0; s0 < s.nsamples; s0 += micro_batch) {
    const int64_t B = std::min(micro_batch, s.nsamples - s0);
    g.loss += forward_backward(m, window_batch(s, s0, B), loss, &g.grad).total;
    progress.add(B);
  }
  if (fisher) {
    // F = (1/N) sum_j g_j^2 over the N samples' own mean losses (the official code's acc_grad).
    g.fisher = zeros_like(m.config, g.grad);
    for (int64_t s0 = 0; s0 < s.nsamples; s0 += micro_batch) {
      const int64_t B = std::min(micro_batch, s.nsamples - s0);
      accumulate_squared_gradients(m, window_batch(s, s0, B), g.fisher);
      progress.add(B);
    }
    for_each_tensor(m.config, g.fisher, [&](TensorRef& r) {
      if (!r.tensor.defined()) return;
      float* p = r.tensor.f32();
      const float inv = 1.f / float(s.nsamples);
      for (int64_t i = 0; i < r.tensor.numel(); i++) p[i] *= inv;
    });
  }
  progress.finish();
  return g;
}

// ---- scores ---------------------------------------------------------------------------------------

namespace {

// Per-row and per-column reductions of one tensor's element values (rows only for 1-D tensors),
// from which every member importance is a sum over the member's rows or columns.
struct Reductions {
  std::vector<double> rows, cols;
};

// Rows [r0, r1) of one tensor: row sums into rows[r0..r1), column sums added into cols. `value(i)`
// is element i's value; `vector` sums values (then |sum|), otherwise sums |value|. Eight partial
// sums per row keep the double loop vectorisable without reassociation.
template <class Value>
void reduce_rows(int64_t r0, int64_t r1, int64_t C, bool vector, const Value& value, double* rows, double* cols) {
  for (int64_t i = r0; i < r1; i++) {
    double acc[8] = {};
    int64_t j = 0;
    for (; j + 8 <= C; j += 8)
      for (int l = 0; l < 8; l++) {
        const double e = value(i * C + j + l), v = vector ? e : std::fabs(e);
        acc[l] += v;
        cols[j + l] += v;
      }
    for (; j < C; j++) {
      const double e = value(i * C + j), v = vector ? e : std::fabs(e);
      acc[j % 8] += v;
      cols[j] += v;
    }
    double sum = 0;
    for (double x : acc) sum += x;
    rows[i] = vector ? std::fabs(sum) : sum;
  }
}

Reductions reduce_tensor(const Tensor& w, const Tensor* g, const Tensor* F, GroupImportance imp, TaylorOrder order) {
  const int64_t R = w.dim(0), C = w.ndim() == 2 ? w.dim(1) : 1;
  const float* wp = w.f32();
  const float* gp = g ? g->f32() : nullptr;
  const float* fp = F && F->defined() ? F->f32() : nullptr;
  const bool vector = imp == GroupImportance::Taylor && order == TaylorOrder::Vector;
  Reductions r;
  r.rows.assign(size_t(R), 0.0);
  r.cols.assign(size_t(C), 0.0);
  // Each task its own column sums, added in task order (the result does not depend on timing).
  const int64_t tasks = task_count(R, double(C), 262144.0), per = (R + tasks - 1) / tasks;
  std::vector<std::vector<double>> cols(size_t(tasks), std::vector<double>(size_t(C), 0.0));
  auto run = [&](const auto& value) {
    parallel_for(tasks, [&](int64_t t) {
      reduce_rows(t * per, std::min(R, (t + 1) * per), C, vector, value, r.rows.data(), cols[size_t(t)].data());
    });
  };
  // Vector-wise: |sum| per row and per column; element-wise: sum of |e| per row and per column.
  if (imp == GroupImportance::L1)
    run([&](int64_t i) { return std::fabs(double(wp[i])); });
  else if (imp == GroupImportance::L2)
    run([&](int64_t i) { return double(wp[i]) * wp[i]; });
  else if (order == TaylorOrder::Vector || order == TaylorOrder::First)
    run([&](int64_t i) { return double(gp[i]) * wp[i]; });
  else if (order == TaylorOrder::Second)
    run([&](int64_t i) { return 0.5 * wp[i] * wp[i] * fp[i]; });
  else
    run([&](int64_t i) { return double(gp[i]) * wp[i] - 0.5 * wp[i] * wp[i] * fp[i]; });
  for (const auto& c : cols)
    for (int64_t j = 0; j < C; j++) r.cols[size_t(j)] += c[size_t(j)];
  if (vector)
    for (auto& v : r.cols) v = std::fabs(v);
  if (w.ndim() == 1) r.cols.clear();  // an entry of a 1-D tensor is its own vector
  return r;
}

double member_score(const Reductions& r, const Slice& s) {
  const std::vector<double>& v = s.dim == 0 ? r.rows : r.cols;
  double acc = 0;
  for (int64_t k = s.begin; k < s.begin + s.count; k++) acc += v[size_t(k)];
  return acc;
}

double aggregate(const std::vector<double>& m, Aggregate a) {
  SEC_ASSERT(!m.empty());
  switch (a) {
    case Aggregate::Sum: {
      double s = 0;
      for (double v : m) s += v;
      return s;
    }
    case Aggregate::Mean: {
      double s = 0;
      for (double v : m) s += v;
      return s / double(m.size());
    }
    case Aggregate::Max:
      return *std::max_element(m.begin(), m.end());
    case Aggregate::Prod: {
      double p = 1;
      for (double v : m) p *= v;
      return p;
    }
    case Aggregate::Last:
      return m.back();
  }
  return 0;
}

}  // namespace

GroupScores candidate_groups(const Model& m, const LlmPrunerOptions* o) {
  const Config& c = m.config;
  const bool budget = o && (o->target_params > 0 || o->global);
  const bool attn = !o || o->attn_ratio > 0 || budget, mlp = !o || o->mlp_ratio > 0 || budget;
  const LayerRange ar = parse_layer_range(o ? o->attn_layers : "", c.n_layers(), "--attn-layers");
  const LayerRange mr = parse_layer_range(o ? o->mlp_layers : "", c.n_layers(), "--mlp-layers");
  auto unscored = [](std::vector<Group> groups) {
    std::vector<ScoredGroup> out;
    for (auto& g : groups) out.push_back({std::move(g), 0.0});
    return out;
  };
  GroupScores gs;
  gs.kv.resize(size_t(c.n_layers()));
  gs.heads.resize(size_t(c.n_layers()));
  gs.ffn.resize(size_t(c.n_layers()));
  for (int l = 0; l < c.n_layers(); l++) {
    if (attn && ar.contains(l)) {
      if (!o || o->attn_unit == AttnUnit::KvGroup) gs.kv[size_t(l)] = unscored(kv_groups(c, l));
      if (!o || o->attn_unit == AttnUnit::Head) gs.heads[size_t(l)] = unscored(query_head_groups(c, l));
    }
    if (mlp && mr.contains(l)) gs.ffn[size_t(l)] = unscored(ffn_groups(c, l));
  }
  const auto segs = resid_segments(c);
  if ((!o || o->hidden_ratio > 0) && segs.size() == 1) gs.hidden = unscored(hidden_groups(c, segs[0]));
  return gs;
}

namespace {
template <class Fn>
void for_each_group(GroupScores& gs, Fn fn) {
  for (auto* kind : {&gs.kv, &gs.heads, &gs.ffn})
    for (auto& block : *kind)
      for (auto& g : block) fn(g);
  for (auto& g : gs.hidden) fn(g);
}
}  // namespace

std::function<bool(const TensorRef&)> member_tensors(const GroupScores& groups) {
  auto keys = std::make_shared<std::set<std::pair<int, int>>>();
  for_each_group(const_cast<GroupScores&>(groups), [&](const ScoredGroup& g) {
    for (const Slice& s : g.group.members) keys->insert({int(s.kind), s.layer});
  });
  return [keys](const TensorRef& r) { return keys->count({int(r.kind), r.layer}) > 0; };
}

void score_groups(const Model& m, const GradientStats* stats, GroupImportance imp, TaylorOrder order, Aggregate agg,
                  uint64_t seed, GroupScores& groups) {
  const bool needs_grad = imp == GroupImportance::Taylor;
  const bool needs_fisher = needs_grad && (order == TaylorOrder::Second || order == TaylorOrder::Mix);
  SEC_CHECK(!needs_grad || stats, "Taylor importance needs calibration gradients");
  SEC_CHECK(!needs_fisher || (stats && !stats->fisher.blocks.empty()), "second-order Taylor importance needs the ",
            "Fisher diagonal (per-sample gradients)");
  std::map<std::pair<int, int>, Reductions> red;  // (kind, layer) -> reductions, computed once per tensor
  auto reductions = [&](const Slice& sl) -> const Reductions& {
    auto it = red.find({int(sl.kind), sl.layer});
    if (it != red.end()) return it->second;
    const Tensor& w = weight_tensor(m.weights, sl.kind, sl.layer);
    const Tensor* g = needs_grad ? &weight_tensor(stats->grad, sl.kind, sl.layer) : nullptr;
    const Tensor* F = needs_fisher ? &weight_tensor(stats->fisher, sl.kind, sl.layer) : nullptr;
    SEC_ASSERT(!g || g->defined());
    return red[{int(sl.kind), sl.layer}] = reduce_tensor(w, g, F, imp, order);
  };
  Rng rng(seed);
  for_each_group(groups, [&](ScoredGroup& g) {
    if (imp == GroupImportance::Random) {
      g.score = rng.uniform();
      return;
    }
    std::vector<double> members;
    for (const Slice& sl : g.group.members) members.push_back(member_score(reductions(sl), sl));
    g.score = aggregate(members, agg);
  });
}

GroupScores score_groups(const Model& m, const GradientStats* stats, GroupImportance imp, TaylorOrder order,
                         Aggregate agg, uint64_t seed) {
  GroupScores gs = candidate_groups(m);
  score_groups(m, stats, imp, order, agg, seed, gs);
  return gs;
}

// ---- selection ------------------------------------------------------------------------------------

namespace {

// Indices (into v) of the n lowest scores; equal scores: the lower index goes first.
std::vector<size_t> lowest(const std::vector<ScoredGroup>& v, int64_t n) {
  std::vector<size_t> idx(v.size());
  for (size_t i = 0; i < idx.size(); i++) idx[i] = i;
  std::stable_sort(idx.begin(), idx.end(), [&](size_t a, size_t b) { return v[a].score < v[b].score; });
  idx.resize(size_t(std::max<int64_t>(0, std::min<int64_t>(n, int64_t(idx.size())))));
  std::sort(idx.begin(), idx.end());
  return idx;
}

// F - int(F * (1 - r)) units removed (the official code's count), at most n - 1 unless allowed.
int64_t removed_count(int64_t n, double r, bool allow_all) {
  int64_t k = n - int64_t(double(n) * (1.0 - r) + 1e-9);
  return std::min(k, allow_all ? n : std::max<int64_t>(0, n - 1));
}

// A kept FFN size rounded down to a multiple of `round` (at least `round` when the block had that many).
int64_t round_kept(int64_t kept, int64_t F, int round) {
  if (round <= 1 || kept == 0) return kept;
  int64_t r = kept / round * round;
  return r == 0 ? std::min<int64_t>(F, round) : r;
}

struct Decision {
  Selection sel;
  nlohmann::ordered_json blocks = nlohmann::ordered_json::array();
  nlohmann::ordered_json hidden = nlohmann::ordered_json::array();
};

nlohmann::ordered_json removed_json(const std::vector<ScoredGroup>& v, const std::vector<size_t>& idx) {
  nlohmann::ordered_json a = nlohmann::ordered_json::array();
  for (size_t i : idx) a.push_back({{"index", v[i].group.index}, {"score", v[i].score}});
  return a;
}

// Block-wise: the same ratios in every block of the ranges.
Decision blockwise(const Model& m, const GroupScores& gs, const LlmPrunerOptions& o, double attn_r, double mlp_r) {
  const Config& c = m.config;
  const LayerRange ar = parse_layer_range(o.attn_layers, c.n_layers(), "--attn-layers");
  const LayerRange mr = parse_layer_range(o.mlp_layers, c.n_layers(), "--mlp-layers");
  Decision d{Selection::keep_all(c)};
  for (int l = 0; l < c.n_layers(); l++) {
    const BlockDims& b = c.blocks[size_t(l)];
    nlohmann::ordered_json bj = {{"block", l}};
    if (ar.contains(l) && b.n_kv_heads > 0 && attn_r > 0) {
      if (o.attn_unit == AttnUnit::KvGroup) {
        const int64_t n = std::min<int64_t>(int64_t(std::floor(attn_r * b.n_kv_heads + 1e-9)),
                                            o.allow_empty ? b.n_kv_heads : b.n_kv_heads - 1);
        const auto idx = lowest(gs.kv[size_t(l)], n);
        for (size_t i : idx) d.sel.remove(c, gs.kv[size_t(l)][i].group);
        bj["kv_groups_removed"] = removed_json(gs.kv[size_t(l)], idx);
      } else {
        const int64_t r = b.n_heads / b.n_kv_heads;
        const int64_t n = std::min<int64_t>(int64_t(std::floor(attn_r * double(r) + 1e-9)), r - 1);
        nlohmann::ordered_json removed = nlohmann::ordered_json::array();
        for (int64_t g = 0; g < b.n_kv_heads; g++) {  // the n lowest heads within each KV group
          std::vector<ScoredGroup> in_group(gs.heads[size_t(l)].begin() + g * r,
                                            gs.heads[size_t(l)].begin() + (g + 1) * r);
          for (size_t i : lowest(in_group, n)) {
            d.sel.remove(c, in_group[i].group);
            removed.push_back({{"index", in_group[i].group.index}, {"score", in_group[i].score}});
          }
        }
        bj["heads_removed"] = removed;
      }
    }
    if (mr.contains(l) && b.ffn_dim > 0 && mlp_r > 0) {
      const int64_t F = b.ffn_dim;
      int64_t kept = F - removed_count(F, mlp_r, o.allow_empty);
      kept = round_kept(kept, F, o.round);
      const auto idx = lowest(gs.ffn[size_t(l)], F - kept);
      for (size_t i : idx) d.sel.remove(c, gs.ffn[size_t(l)][i].group);
      bj["ffn_removed"] = removed_json(gs.ffn[size_t(l)], idx);
    }
    d.blocks.push_back(bj);
  }
  if (o.hidden_ratio > 0) {
    SEC_CHECK(!gs.hidden.empty(), "--hidden-ratio: this model's residual stream has shortcut matrices; hidden ",
              "channels can only be removed from a plain model");
    const int64_t n = removed_count(int64_t(gs.hidden.size()), o.hidden_ratio, false);
    const auto idx = lowest(gs.hidden, n);
    for (size_t i : idx) d.sel.remove(c, gs.hidden[i].group);
    d.hidden = removed_json(gs.hidden, idx);
  }
  return d;
}

// Global: KV groups and FFN channels of every block in the ranges ranked together by importance
// per parameter, removed lowest first until `budget` parameters are gone (or the model is at most
// `limit` parameters).
Decision global(const Model& m, const GroupScores& gs, const LlmPrunerOptions& o, int64_t limit) {
  const Config& c = m.config;
  SEC_CHECK(o.attn_unit == AttnUnit::KvGroup, "--global ranks whole KV groups; --attn-unit head is block-wise only");
  const LayerRange ar = parse_layer_range(o.attn_layers, c.n_layers(), "--attn-layers");
  const LayerRange mr = parse_layer_range(o.mlp_layers, c.n_layers(), "--mlp-layers");
  // Start from the hidden-channel decision (by its ratio), then rank the rest.
  Decision d = blockwise(m, gs, o, 0, 0);
  struct Cand {
    const ScoredGroup* g;
    double per_param;
  };
  std::vector<Cand> cands;
  for (int l = 0; l < c.n_layers(); l++) {
    if (ar.contains(l))
      for (const auto& g : gs.kv[size_t(l)]) cands.push_back({&g, g.score / double(g.group.n_params(c))});
    if (mr.contains(l))
      for (const auto& g : gs.ffn[size_t(l)]) cands.push_back({&g, g.score / double(g.group.n_params(c))});
  }
  std::stable_sort(cands.begin(), cands.end(), [](const Cand& a, const Cand& b) { return a.per_param < b.per_param; });
  std::vector<int64_t> kv_left, ffn_left;
  for (const auto& b : c.blocks) {
    kv_left.push_back(b.n_kv_heads);
    ffn_left.push_back(b.ffn_dim);
  }
  int64_t params = param_count(selected_config(c, d.sel));
  std::vector<nlohmann::ordered_json> kv_removed(size_t(c.n_layers()), nlohmann::ordered_json::array()),
      ffn_removed(size_t(c.n_layers()), nlohmann::ordered_json::array());
  for (const Cand& cd : cands) {
    if (params <= limit) break;
    const Group& g = cd.g->group;
    auto& left = g.kind == GroupKind::KvGroup ? kv_left : ffn_left;
    const int64_t min_left = o.allow_empty ? 0 : (g.kind == GroupKind::FfnChannel ? std::max(1, o.round) : 1);
    if (left[size_t(g.layer)] <= min_left) continue;
    left[size_t(g.layer)]--;
    d.sel.remove(c, g);
    params -= g.n_params(c);
    (g.kind == GroupKind::KvGroup ? kv_removed : ffn_removed)[size_t(g.layer)].push_back(
        {{"index", g.index}, {"score", cd.g->score}, {"score_per_param", cd.per_param}});
  }
  // --round: kept FFN sizes down to a multiple, removing the next-lowest channels of the block.
  for (int l = 0; l < c.n_layers(); l++) {
    const int64_t F = c.blocks[size_t(l)].ffn_dim, kept = int64_t(d.sel.blocks[size_t(l)].ffn.size());
    const int64_t target = round_kept(kept, F, o.round);
    if (target == kept) continue;
    std::vector<ScoredGroup> still;
    for (const auto& g : gs.ffn[size_t(l)])
      if (std::binary_search(d.sel.blocks[size_t(l)].ffn.begin(), d.sel.blocks[size_t(l)].ffn.end(), g.group.index))
        still.push_back(g);
    for (size_t i : lowest(still, kept - target)) {
      d.sel.remove(c, still[i].group);
      ffn_removed[size_t(l)].push_back({{"index", still[i].group.index}, {"score", still[i].score}});
    }
  }
  for (int l = 0; l < c.n_layers(); l++) {
    d.blocks[size_t(l)]["kv_groups_removed"] = kv_removed[size_t(l)];
    d.blocks[size_t(l)]["ffn_removed"] = ffn_removed[size_t(l)];
  }
  return d;
}

}  // namespace

LlmPrunerPlan llm_pruner_plan(const Model& m, const GroupScores& gs, const LlmPrunerOptions& o) {
  const Config& c = m.config;
  for (auto [name, r] : {std::pair<const char*, double>{"--attn-ratio", o.attn_ratio},
                         {"--mlp-ratio", o.mlp_ratio},
                         {"--hidden-ratio", o.hidden_ratio}})
    SEC_CHECK(r >= 0 && r < 1, name, " must be in [0, 1), got ", r);
  SEC_CHECK(o.target_params >= 0 && o.target_params < 1, "--target-params must be a fraction in (0, 1), got ",
            o.target_params);
  SEC_CHECK(o.round >= 1, "--round must be at least 1");
  const bool target = o.target_params > 0;
  SEC_CHECK(target || o.attn_ratio > 0 || o.mlp_ratio > 0 || o.hidden_ratio > 0,
            "llm-pruner: nothing to prune (give --attn-ratio, --mlp-ratio, --hidden-ratio or --target-params)");
  const int64_t P0 = param_count(c);
  const int64_t limit = target ? int64_t(std::floor(o.target_params * double(P0))) : 0;
  auto params_of = [&](const Decision& d) { return param_count(selected_config(c, d.sel)); };

  Decision d;
  double attn_r = o.attn_ratio, mlp_r = o.mlp_ratio;
  if (o.global) {
    // The budget: --target-params, or what the block-wise ratios would remove, allocated globally.
    const int64_t lim = target ? limit : params_of(blockwise(m, gs, o, o.attn_ratio, o.mlp_ratio));
    d = global(m, gs, o, lim);
    SEC_CHECK(!target || params_of(d) <= limit, "--target-params ", o.target_params, " cannot be reached: removing ",
              "every removable group of the allowed blocks leaves ", params_of(d), " of ", P0, " parameters (",
              100.0 * double(params_of(d)) / double(P0), "%)");
  } else if (target) {
    // The smallest common ratio of attention and MLP whose model fits the budget (params fall as
    // the ratio grows, in steps): bisection on [0, 1).
    double lo = 0, hi = 1 - 1e-9;
    Decision top = blockwise(m, gs, o, hi, hi);
    SEC_CHECK(params_of(top) <= limit, "--target-params ", o.target_params, " cannot be reached: the largest ratios ",
              "leave ", params_of(top), " of ", P0, " parameters (", 100.0 * double(params_of(top)) / double(P0),
              "%) in the allowed blocks");
    for (int it = 0; it < 60; it++) {
      const double mid = 0.5 * (lo + hi);
      if (params_of(blockwise(m, gs, o, mid, mid)) <= limit)
        hi = mid;
      else
        lo = mid;
    }
    attn_r = mlp_r = hi;
    d = blockwise(m, gs, o, hi, hi);
  } else {
    d = blockwise(m, gs, o, attn_r, mlp_r);
  }

  LlmPrunerPlan plan;
  plan.selection = d.sel;
  const Config after = selected_config(c, d.sel);
  nlohmann::ordered_json& r = plan.report;
  r["params_before"] = P0;
  r["params_after"] = param_count(after);
  r["ratios"] = {{"attn", attn_r}, {"mlp", mlp_r}, {"hidden", o.hidden_ratio}};
  for (int l = 0; l < c.n_layers(); l++) {
    auto& bj = d.blocks[size_t(l)];
    const BlockDims& a = after.blocks[size_t(l)];
    bj["n_heads"] = a.n_heads;
    bj["n_kv_heads"] = a.n_kv_heads;
    bj["ffn_dim"] = a.ffn_dim;
  }
  r["blocks"] = d.blocks;
  if (!d.hidden.empty()) {
    r["hidden_removed"] = d.hidden;
    r["hidden_size"] = after.dim;
  }
  return plan;
}

LlmPrunerPlan llm_pruner(const Model& m, const LlmPrunerOptions& o, const CalibSamples* samples) {
  GroupScores gs = candidate_groups(m, &o);
  // Every option and the reachability of --target-params depend on the structure only: check them
  // on placeholder scores before spending the gradients.
  llm_pruner_plan(m, gs, o);
  GradientStats stats;
  const bool taylor = o.importance == GroupImportance::Taylor;
  if (taylor) {
    SEC_CHECK(samples && samples->nsamples > 0, "llm-pruner --importance taylor needs calibration data (--calib)");
    const bool fisher = o.taylor == TaylorOrder::Second || o.taylor == TaylorOrder::Mix;
    // Gradients of the candidates' member tensors only: e.g. block-wise attention/MLP pruning needs
    // no head or embedding gradient, each a weight-gradient GEMM of its own.
    stats = calibration_gradients(m, *samples, fisher, o.micro_batch, member_tensors(gs));
    log_info("llm-pruner: calibration loss ", stats.loss, " over ", stats.tokens, " tokens");
  }
  score_groups(m, taylor ? &stats : nullptr, o.importance, o.taylor, o.aggregate, o.seed, gs);
  const double loss = stats.loss;
  stats = GradientStats();  // the gradients are no longer needed
  LlmPrunerPlan plan = llm_pruner_plan(m, gs, o);
  if (taylor) plan.report["calibration_loss"] = loss;
  return plan;
}

}  // namespace sec
