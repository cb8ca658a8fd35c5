// Structural surgery: the only code that changes a model's shapes. A Selection says which units of
// every axis survive (query heads, KV heads, FFN channels of each block, channels of each residual
// point) and which blocks stay; apply_selection builds the smaller dense model whose config,
// per-block sizes, norms, biases, tokenizer and provenance are consistent. The gather is generic:
// each tensor dimension keeps the units its axis (model/weights.h) keeps, so biases, norms and new
// tensor kinds follow with no extra code. Structured pruning methods turn their decisions (groups
// of model/structure.h, blocks) into a Selection.
#pragma once
#include <cstdint>
#include <vector>

#include "model/model.h"
#include "model/structure.h"

namespace sec {

struct BlockKeep {
  bool keep = true;
  std::vector<int64_t> q_heads, kv_heads, ffn;  // surviving units, ascending
};

struct Selection {
  std::vector<BlockKeep> blocks;
  std::vector<std::vector<int64_t>> resid;  // surviving channels of each residual point 0..2L

  static Selection keep_all(const Config& c);
  // Remove one group's units: a KV group takes the query heads that read it along.
  void remove(const Config& c, const Group& g);
  void remove_block(int layer) { blocks[size_t(layer)].keep = false; }
};

// The config of the selected model (throws Error if the selection is inconsistent: query heads
// whose KV head is removed, unequal query heads per KV group, a residual segment cut unevenly, a
// removed block with shortcut matrices).
Config selected_config(const Config& c, const Selection& s);

// The selected model: a new Model whose tensors are gathered copies (the input is unchanged). With
// share_whole, a tensor kept whole shares the input's buffer instead of being copied (a cheap
// view for evaluating variants, e.g. the model without one block; writing to it writes both).
Model apply_selection(const Model& m, const Selection& s, bool share_whole = false);

}  // namespace sec
