// Wanda (methods.md §2): S_ij = |W_ij| * ||X_j||_2, the floor(s * in) lowest of each output row
// pruned (or the N lowest of every M consecutive inputs of a row). No weight update.
#include <cmath>

#include "core/error.h"
#include "core/threads.h"
#include "prune/unstructured.h"

namespace sec {

void wanda_scores(float* score, const float* w, const float* col_norms, int64_t rows, int64_t cols) {
  parallel_ranges(rows, double(cols), 32768.0, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; r++)
#pragma omp simd
      for (int64_t j = 0; j < cols; j++) score[r * cols + j] = std::fabs(w[r * cols + j]) * col_norms[j];
  });
}

Mask wanda_mask(const float* w, const float* col_norms, int64_t rows, int64_t cols, const SparsityTarget& t) {
  std::vector<float> score(size_t(rows * cols));
  wanda_scores(score.data(), w, col_norms, rows, cols);
  if (t.is_nm()) return select_nm(score.data(), rows, cols, t.n, t.m);
  return select_lowest_per_row(score.data(), rows, cols, prune_count(t.ratio, cols));
}

}  // namespace sec
