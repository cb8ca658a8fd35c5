// Magnitude pruning (methods.md §1): score |W_ij|, one threshold per matrix (the papers' baseline)
// or per output row.
#include <cmath>

#include "core/error.h"
#include "core/threads.h"
#include "prune/unstructured.h"

namespace sec {

Mask magnitude_mask(const float* w, int64_t rows, int64_t cols, const SparsityTarget& t, bool per_row) {
  std::vector<float> score(size_t(rows * cols));
  parallel_ranges(rows * cols, 1.0, 32768.0, [&](int64_t i0, int64_t i1) {
#pragma omp simd
    for (int64_t i = i0; i < i1; i++) score[i] = std::fabs(w[i]);
  });
  if (t.is_nm()) return select_nm(score.data(), rows, cols, t.n, t.m);
  if (per_row) return select_lowest_per_row(score.data(), rows, cols, prune_count(t.ratio, cols));
  return select_lowest(score.data(), rows * cols, prune_count(t.ratio, rows * cols));
}

}  // namespace sec
