#include "model/surgery.h"

#include <algorithm>
#include <cstring>
#include <numeric>

#include "core/error.h"
#include "core/threads.h"
#include "ops/ops.h"

namespace sec {

namespace {

std::vector<int64_t> all_units(int64_t n) {
  std::vector<int64_t> v(static_cast<size_t>(n));
  std::iota(v.begin(), v.end(), 0);
  return v;
}

// Element indices of whole units (heads of `unit` rows each).
std::vector<int64_t> expand(const std::vector<int64_t>& units, int64_t unit) {
  std::vector<int64_t> v;
  v.reserve(units.size() * size_t(unit));
  for (int64_t u : units)
    for (int64_t i = 0; i < unit; i++) v.push_back(u * unit + i);
  return v;
}

void erase_value(std::vector<int64_t>& v, int64_t x) { v.erase(std::remove(v.begin(), v.end(), x), v.end()); }

void check_units(const std::vector<int64_t>& v, int64_t n, const char* what, int layer) {
  for (size_t i = 0; i < v.size(); i++) {
    SEC_CHECK(v[i] >= 0 && v[i] < n, "selection: block ", layer, " keeps ", what, " ", v[i], " of ", n);
    SEC_CHECK(i == 0 || v[i] > v[i - 1], "selection: block ", layer, "'s kept ", what, " are not ascending");
  }
}

}  // namespace

Selection Selection::keep_all(const Config& c) {
  Selection s;
  for (const auto& b : c.blocks)
    s.blocks.push_back({true, all_units(b.n_heads), all_units(b.n_kv_heads), all_units(b.ffn_dim)});
  for (int p = 0; p < c.n_resid_points(); p++) s.resid.push_back(all_units(c.resid_width(p)));
  return s;
}

void Selection::remove(const Config& c, const Group& g) {
  switch (g.kind) {
    case GroupKind::KvGroup: {
      BlockKeep& b = blocks[size_t(g.layer)];
      erase_value(b.kv_heads, g.index);
      const int64_t Hq = c.blocks[size_t(g.layer)].n_heads, Hkv = c.blocks[size_t(g.layer)].n_kv_heads;
      b.q_heads.erase(std::remove_if(b.q_heads.begin(), b.q_heads.end(),
                                     [&](int64_t h) { return kv_head_of(h, Hq, Hkv) == g.index; }),
                      b.q_heads.end());
      break;
    }
    case GroupKind::QueryHead:
      erase_value(blocks[size_t(g.layer)].q_heads, g.index);
      break;
    case GroupKind::FfnChannel:
      erase_value(blocks[size_t(g.layer)].ffn, g.index);
      break;
    case GroupKind::HiddenChannel:
      for (const auto& seg : resid_segments(c))
        if (seg.first == g.layer)
          for (int p = seg.first; p <= seg.last; p++) erase_value(resid[size_t(p)], g.index);
      break;
  }
}

Config selected_config(const Config& c, const Selection& s) {
  SEC_CHECK(int(s.blocks.size()) == c.n_layers() && int(s.resid.size()) == c.n_resid_points(),
            "selection: it describes ", s.blocks.size(), " blocks and ", s.resid.size(),
            " residual points, the model has ", c.n_layers(), " and ", c.n_resid_points());
  for (int p = 0; p < c.n_resid_points(); p++) {
    check_units(s.resid[size_t(p)], c.resid_width(p), "residual channel", p / 2);
    SEC_CHECK(!s.resid[size_t(p)].empty(), "selection: residual point ", p, " keeps no channel");
  }
  // Points joined by an identity residual add their values channel by channel: they must keep the
  // same channels.
  for (const auto& seg : resid_segments(c))
    for (int p = seg.first + 1; p <= seg.last; p++)
      SEC_CHECK(s.resid[size_t(p)] == s.resid[size_t(seg.first)], "selection: residual points ", seg.first, " and ", p,
                " are joined by an identity residual but keep different channels");
  Config n = c;
  n.blocks.clear();
  std::vector<int> widths = {int(s.resid[0].size())};
  for (int l = 0; l < c.n_layers(); l++) {
    const BlockDims& b = c.blocks[size_t(l)];
    const BlockKeep& k = s.blocks[size_t(l)];
    if (!k.keep) {
      SEC_CHECK(!b.attn_shortcut && !b.mlp_shortcut, "selection: block ", l,
                " carries shortcut matrices; removing it would not leave the residual stream unchanged");
      continue;
    }
    check_units(k.q_heads, b.n_heads, "query head", l);
    check_units(k.kv_heads, b.n_kv_heads, "KV head", l);
    check_units(k.ffn, b.ffn_dim, "FFN channel", l);
    const int64_t Hq = int64_t(k.q_heads.size()), Hkv = int64_t(k.kv_heads.size());
    SEC_CHECK((Hq == 0) == (Hkv == 0), "selection: block ", l, " keeps ", Hq, " query heads and ", Hkv, " KV heads");
    if (Hkv > 0) {
      SEC_CHECK(Hq % Hkv == 0, "selection: block ", l, " keeps ", Hq, " query heads for ", Hkv,
                " KV heads: every KV group must keep the same number of query heads");
      // New head j must read the KV head it read before (the attention's mapping on both sides).
      for (int64_t j = 0; j < Hq; j++) {
        const int64_t old_kv = kv_head_of(k.q_heads[size_t(j)], b.n_heads, b.n_kv_heads);
        SEC_CHECK(old_kv == k.kv_heads[size_t(kv_head_of(j, Hq, Hkv))], "selection: block ", l, " keeps query head ",
                  k.q_heads[size_t(j)], " but not its KV head ", old_kv,
                  ", or the KV groups keep unequal numbers of query heads");
      }
    }
    n.blocks.push_back(BlockDims{int(Hq), int(Hkv), int(k.ffn.size()), b.attn_shortcut, b.mlp_shortcut});
    widths.push_back(int(s.resid[size_t(2 * l + 1)].size()));
    widths.push_back(int(s.resid[size_t(2 * l + 2)].size()));
  }
  SEC_CHECK(!n.blocks.empty(), "selection: every block is removed");
  const bool one_width = std::all_of(widths.begin(), widths.end(), [&](int w) { return w == widths[0]; });
  n.resid_dims = one_width ? std::vector<int>{} : widths;
  n.dim = *std::max_element(widths.begin(), widths.end());
  try {
    n.validate();
  } catch (const Error& e) {
    fail("selection gives an invalid model: ", e.what());
  }
  return n;
}

Model apply_selection(const Model& m, const Selection& s, bool share_whole) {
  const Config& c = m.config;
  Model out;
  out.config = selected_config(c, s);
  out.tokenizer = m.tokenizer;
  out.source = m.source;
  out.weights.blocks.resize(size_t(out.config.n_layers()));
  std::vector<int> old_layer;
  for (int l = 0; l < c.n_layers(); l++)
    if (s.blocks[size_t(l)].keep) old_layer.push_back(l);
  for_each_tensor(out.config, out.weights, [&](TensorRef& r) {
    const int ol = r.layer < 0 ? -1 : old_layer[size_t(r.layer)];
    const Tensor& src = weight_tensor(m.weights, r.kind, ol);
    SEC_ASSERT(src.defined() && src.ndim() == int(r.shape.size()));
    // For each dimension, the source indices it keeps (null: all of them, in order).
    std::vector<std::vector<int64_t>> idx(r.shape.size());
    std::vector<bool> all(r.shape.size(), false);
    const auto& axes = tensor_rule(r.kind).axes;
    for (size_t d = 0; d < axes.size(); d++) {
      switch (axes[d]) {
        case Axis::Vocab:
          all[d] = true;
          break;
        case Axis::QHeads:
          idx[d] = expand(s.blocks[size_t(ol)].q_heads, c.head_dim);
          break;
        case Axis::KVHeads:
          idx[d] = expand(s.blocks[size_t(ol)].kv_heads, c.head_dim);
          break;
        case Axis::Ffn:
          idx[d] = s.blocks[size_t(ol)].ffn;
          break;
        default:
          idx[d] = s.resid[size_t(resid_point(c, axes[d], ol))];
      }
      if (!all[d]) {
        all[d] = int64_t(idx[d].size()) == src.dim(int(d));  // kept everything: a plain copy
        SEC_ASSERT(int64_t(idx[d].size()) == r.shape[d] || all[d]);
      }
    }
    if (share_whole && std::all_of(all.begin(), all.end(), [](bool b) { return b; })) {
      r.tensor = src;
      return;
    }
    r.tensor = Tensor::empty(r.shape);
    const float* in = src.f32();
    float* o = r.tensor.f32();
    if (r.shape.size() == 1) {
      for (int64_t i = 0; i < r.shape[0]; i++) o[i] = in[all[0] ? i : idx[0][size_t(i)]];
      return;
    }
    const int64_t rows = r.shape[0], cols = r.shape[1], src_cols = src.dim(1);
    parallel_ranges(rows, double(cols), double(1 << 16), [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; i++) {
        const float* row = in + (all[0] ? i : idx[0][size_t(i)]) * src_cols;
        float* dst = o + i * cols;
        if (all[1])
          std::memcpy(dst, row, size_t(cols) * 4);
        else
          for (int64_t j = 0; j < cols; j++) dst[j] = row[idx[1][size_t(j)]];
      }
    });
  });
  return out;
}

}  // namespace sec
