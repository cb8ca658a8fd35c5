// Magnitude pruning (methods.md §1): score |W_ij|, one threshold per matrix (the papers' baseline)
// or per output row.
#include <cmath>

#include "core/error.h"
#include "prune/unstructured.h"

namespace sec {

Mask magnitude_mask(const float* w, int64_t rows, int64_t cols, const SparsityTarget& t, bool per_row) {
  std::vector<float> score(size_t(rows * cols));
#pragma omp parallel for simd
  for (int64_t i = 0; i < rows * cols; i++) score[i] = std::fabs(w[i]);
  if (t.is_nm()) return select_nm(score.data(), rows, cols, t.n, t.m);
  if (per_row) return select_lowest_per_row(score.data(), rows, cols, prune_count(t.ratio, cols));
  return select_lowest(score.data(), rows * cols, prune_count(t.ratio, rows * cols));
}

}  // namespace sec
