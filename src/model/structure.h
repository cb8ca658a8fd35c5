// Dependency groups of structured pruning (methods.md §5.1), derived from the tensor table's axis
// descriptions (model/weights.h) — never listed by hand. A group is the set of tensor slices that
// must be removed together so the model stays consistent:
//   KV group g of block l:   every slice on block l's KV-head axis at head g (k/v rows, their
//                            biases) and on its query-head axis at every head h that reads g
//                            (kv_head_of, the attention kernel's mapping): q rows, q bias, o_proj
//                            columns.
//   query head h of block l: the query-head slices of head h alone (removing one head per KV group
//                            keeps the group sizes equal).
//   MLP channel c of block l: every slice on block l's FFN axis at c (gate/up rows, down column).
//   hidden channel c of a residual segment: every slice on a residual axis whose point lies in the
//                            segment (embedding column, RMSNorm entries, input columns of
//                            q/k/v/gate/up and the head, output rows of o/down). A segment is a run
//                            of residual points joined by identity residuals; a plain model is one
//                            segment from the embedding to the head. A tied embedding counts once.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "model/config.h"
#include "model/weights.h"

namespace sec {

// Rows (dim 0) or columns (dim 1) [begin, begin + count) of a 2-D tensor, or entries of a 1-D one.
struct Slice {
  TensorKind kind;
  int layer;  // -1 for global tensors
  int dim;
  int64_t begin, count;
  int64_t n_params(const Config& c) const;  // count x the other dimension's size
};

enum class GroupKind { KvGroup, QueryHead, FfnChannel, HiddenChannel };
const char* group_kind_name(GroupKind k);

struct Group {
  GroupKind kind;
  int layer;                   // block, or for hidden channels the segment's first residual point
  int64_t index;               // KV head, query head, FFN channel or hidden channel
  std::vector<Slice> members;  // in forward order of their tensors
  int64_t n_params(const Config& c) const;
};

// Residual segments: [first, last] residual points joined by identity residuals.
struct ResidSegment {
  int first, last;
  int width;
};
std::vector<ResidSegment> resid_segments(const Config& c);

std::vector<Group> kv_groups(const Config& c, int layer);
std::vector<Group> query_head_groups(const Config& c, int layer);
std::vector<Group> ffn_groups(const Config& c, int layer);
std::vector<Group> hidden_groups(const Config& c, const ResidSegment& seg);

// "KV group 2 of block 3: k_proj rows [16, 24), v_proj rows [16, 24), q_proj rows [32, 48), ..."
std::string describe(const Config& c, const Group& g);

}  // namespace sec
