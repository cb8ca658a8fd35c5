// Pruning masks and the selection rules every unstructured / semi-structured method shares.
// A Mask is one byte per weight, row-major like the weight [out, in]: 1 = pruned (set to zero).
// Selection is deterministic: among equal scores the lower (flat or in-row) index is pruned first,
// which is what a stable ascending sort followed by "take the first k" does.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace sec {

using Mask = std::vector<uint8_t>;

// Target sparsity: unstructured ratio, or N:M (N zeros in every group of M consecutive inputs).
struct SparsityTarget {
  double ratio = 0.5;
  int n = 0, m = 0;  // N:M when m > 0
  bool is_nm() const { return m > 0; }
  double fraction() const { return is_nm() ? double(n) / m : ratio; }
  std::string str() const;  // "50%" or "2:4"
};
// Parses "N:M" (0 < N < M); throws Error.
SparsityTarget parse_nm(const std::string& s);

// k lowest scores of each row (k = floor(ratio * cols) per row when called through ratio).
Mask select_lowest_per_row(const float* score, int64_t rows, int64_t cols, int64_t k);
// k lowest scores of the whole matrix (n entries).
Mask select_lowest(const float* score, int64_t n, int64_t k);
// In every group of M consecutive columns of each row, the N lowest. cols must be a multiple of M.
Mask select_nm(const float* score, int64_t rows, int64_t cols, int n, int m);

// The number pruned by a ratio: floor(ratio * count) (Wanda: int(W.shape[1] * sparsity_ratio)).
int64_t prune_count(double ratio, int64_t count);

void apply_mask(float* w, const Mask& mask);
int64_t count_zeros(const float* w, int64_t n);
int64_t count_set(const Mask& mask);
// True if every group of M consecutive entries in each row has at least N zeros.
bool satisfies_nm(const float* w, int64_t rows, int64_t cols, int n, int m);

}  // namespace sec
