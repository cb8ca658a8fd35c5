#include "model/structure.h"

#include <optional>

#include "core/error.h"
#include "ops/ops.h"

namespace sec {

const char* group_kind_name(GroupKind k) {
  switch (k) {
    case GroupKind::KvGroup:
      return "kv_group";
    case GroupKind::QueryHead:
      return "query_head";
    case GroupKind::FfnChannel:
      return "ffn_channel";
    case GroupKind::HiddenChannel:
      return "hidden_channel";
  }
  return "?";
}

int64_t Slice::n_params(const Config& c) const {
  const Shape s = tensor_shape(c, kind, layer);
  int64_t n = count;
  for (size_t i = 0; i < s.size(); i++)
    if (int(i) != dim) n *= s[i];
  return n;
}

int64_t Group::n_params(const Config& c) const {
  int64_t n = 0;
  for (const auto& s : members) n += s.n_params(c);
  return n;
}

namespace {

struct Range {
  int64_t begin, count;
};

// Every dimension of every tensor the config has, for which `range(axis, layer)` names a range:
// the group's slices, in forward order.
template <class RangeFn>
std::vector<Slice> collect(const Config& c, RangeFn range) {
  std::vector<Slice> out;
  auto visit = [&](const TensorNameRule& r, int layer) {
    if (!tensor_present(c, r.kind, layer)) return;
    for (size_t d = 0; d < r.axes.size(); d++)
      for (const Range& rg : range(r.axes[d], layer))
        if (rg.count > 0) out.push_back(Slice{r.kind, layer, int(d), rg.begin, rg.count});
  };
  const auto& rules = tensor_name_rules();
  for (const auto& r : rules)
    if (r.kind == TensorKind::Embed) visit(r, -1);
  for (int l = 0; l < c.n_layers(); l++)
    for (const auto& r : rules)
      if (r.per_block) visit(r, l);
  for (const auto& r : rules)
    if (!r.per_block && r.kind != TensorKind::Embed) visit(r, -1);
  return out;
}

// Query heads of block l that read KV head g, as contiguous runs of rows (x head_dim).
std::vector<Range> query_rows_reading(const Config& c, int l, int64_t g) {
  const int64_t Hq = c.blocks[size_t(l)].n_heads, Hkv = c.blocks[size_t(l)].n_kv_heads, hd = c.head_dim;
  std::vector<Range> runs;
  for (int64_t h = 0; h < Hq; h++) {
    if (kv_head_of(h, Hq, Hkv) != g) continue;
    if (!runs.empty() && runs.back().begin + runs.back().count == h * hd)
      runs.back().count += hd;
    else
      runs.push_back({h * hd, hd});
  }
  return runs;
}

}  // namespace

std::vector<ResidSegment> resid_segments(const Config& c) {
  std::vector<ResidSegment> segs;
  segs.push_back({0, 0, c.resid_width(0)});
  for (int p = 1; p < c.n_resid_points(); p++) {
    // Point p follows point p-1 through block (p-1)/2's attention (p odd) or MLP (p even).
    const BlockDims& b = c.blocks[size_t((p - 1) / 2)];
    const bool shortcut = p % 2 == 1 ? b.attn_shortcut : b.mlp_shortcut;
    if (shortcut)
      segs.push_back({p, p, c.resid_width(p)});
    else
      segs.back().last = p;
  }
  return segs;
}

std::vector<Group> kv_groups(const Config& c, int layer) {
  std::vector<Group> out;
  const int64_t hd = c.head_dim;
  for (int64_t g = 0; g < c.blocks[size_t(layer)].n_kv_heads; g++) {
    const std::vector<Range> q_rows = query_rows_reading(c, layer, g);
    auto range = [&](Axis a, int l) -> std::vector<Range> {
      if (l != layer) return {};
      if (a == Axis::KVHeads) return {{g * hd, hd}};
      if (a == Axis::QHeads) return q_rows;
      return {};
    };
    out.push_back(Group{GroupKind::KvGroup, layer, g, collect(c, range)});
  }
  return out;
}

std::vector<Group> query_head_groups(const Config& c, int layer) {
  std::vector<Group> out;
  const int64_t hd = c.head_dim;
  for (int64_t h = 0; h < c.blocks[size_t(layer)].n_heads; h++) {
    auto range = [&](Axis a, int l) -> std::vector<Range> {
      if (l == layer && a == Axis::QHeads) return {{h * hd, hd}};
      return {};
    };
    out.push_back(Group{GroupKind::QueryHead, layer, h, collect(c, range)});
  }
  return out;
}

std::vector<Group> ffn_groups(const Config& c, int layer) {
  std::vector<Group> out;
  for (int64_t ch = 0; ch < c.blocks[size_t(layer)].ffn_dim; ch++) {
    auto range = [&](Axis a, int l) -> std::vector<Range> {
      if (l == layer && a == Axis::Ffn) return {{ch, 1}};
      return {};
    };
    out.push_back(Group{GroupKind::FfnChannel, layer, ch, collect(c, range)});
  }
  return out;
}

std::vector<Group> hidden_groups(const Config& c, const ResidSegment& seg) {
  if (c.tied_embeddings) {
    const auto segs = resid_segments(c);
    SEC_CHECK(segs.front().first == segs.back().first, "the tied embedding is both the input of residual point 0 and ",
              "the head of point ", c.n_resid_points() - 1,
              ", which lie in different residual segments: untie the head first");
  }
  std::vector<Group> out;
  for (int64_t ch = 0; ch < seg.width; ch++) {
    auto range = [&](Axis a, int l) -> std::vector<Range> {
      const int p = resid_point(c, a, l);
      if (p >= seg.first && p <= seg.last) return {{ch, 1}};
      return {};
    };
    out.push_back(Group{GroupKind::HiddenChannel, seg.first, ch, collect(c, range)});
  }
  return out;
}

std::string describe(const Config& c, const Group& g) {
  std::string s = cat(group_kind_name(g.kind), " ", g.index,
                      g.kind == GroupKind::HiddenChannel ? " of the segment at " : " of block ", g.layer, ":");
  for (size_t i = 0; i < g.members.size(); i++) {
    const Slice& m = g.members[i];
    const char* what = tensor_rule(m.kind).axes.size() == 1 ? " entries [" : m.dim == 0 ? " rows [" : " cols [";
    s += cat(i ? ", " : " ", tensor_name_hf(m.kind, m.layer), what, m.begin, ", ", m.begin + m.count, ")");
  }
  return s;
}

}  // namespace sec
