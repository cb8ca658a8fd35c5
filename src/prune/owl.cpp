// OWL (methods.md §4): outlier-weighted per-block sparsity on top of Wanda / SparseGPT.
// As in the OWL reference code, the outlier threshold is M times the mean of ALL Wanda scores of the
// block (its linears concatenated), and D_l is the fraction of those scores above it.
#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "core/threads.h"
#include "prune/unstructured.h"

namespace sec {

// Sum of f(r, j) over a linear's entries.
template <class T, class F>
static T sum_entries(const ScoredLinear& l, F f) {
  return parallel_sum<T>(l.rows, double(l.cols), 32768.0, [&](int64_t r0, int64_t r1) {
    T s = 0;
    for (int64_t r = r0; r < r1; r++)
      for (int64_t j = 0; j < l.cols; j++) s += f(r, j);
    return s;
  });
}

double owl_outlier_ratio(const std::vector<ScoredLinear>& layers, double M) {
  double sum = 0;
  int64_t count = 0;
  for (const auto& l : layers) {
    sum += sum_entries<double>(
        l, [&](int64_t r, int64_t j) { return double(std::fabs(l.w[r * l.cols + j])) * l.col_norms[j]; });
    count += l.rows * l.cols;
  }
  if (count == 0) return 0;
  // Scores are f32 products in Wanda; compare in the same precision as they are computed.
  const float threshold = float(M * sum / double(count));
  int64_t above = 0;
  for (const auto& l : layers)
    above += sum_entries<int64_t>(
        l, [&](int64_t r, int64_t j) { return int64_t(std::fabs(l.w[r * l.cols + j]) * l.col_norms[j] > threshold); });
  return double(above) / double(count);
}

std::vector<double> owl_block_sparsity(const std::vector<double>& D, const std::vector<int64_t>& params, double s,
                                       double lambda) {
  SEC_ASSERT(D.size() == params.size());
  const size_t L = D.size();
  std::vector<double> out(L, s);
  if (L == 0) return out;
  double lo = *std::min_element(D.begin(), D.end()), hi = *std::max_element(D.begin(), D.end());
  if (hi - lo <= 0) return out;
  std::vector<double> dn(L);
  double wsum = 0, wmean = 0;
  for (size_t l = 0; l < L; l++) {
    dn[l] = (D[l] - lo) / (hi - lo) * 2 * lambda;
    wmean += dn[l] * double(params[l]);
    wsum += double(params[l]);
  }
  wmean = wsum > 0 ? wmean / wsum : 0;
  for (size_t l = 0; l < L; l++) out[l] = std::clamp(s - (dn[l] - wmean), 0.0, 1.0);
  return out;
}

}  // namespace sec
