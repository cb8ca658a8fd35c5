#include "prune/mask.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "core/error.h"
#include "core/threads.h"

namespace sec {

std::string SparsityTarget::str() const {
  if (is_nm()) return cat(n, ":", m);
  return cat(std::round(ratio * 1000) / 10, "%");
}

SparsityTarget parse_nm(const std::string& s) {
  SparsityTarget t;
  size_t colon = s.find(':');
  SEC_CHECK(colon != std::string::npos, "N:M pattern '", s, "' must look like 2:4");
  try {
    size_t a = 0, b = 0;
    t.n = std::stoi(s.substr(0, colon), &a);
    t.m = std::stoi(s.substr(colon + 1), &b);
    SEC_CHECK(a == colon && b == s.size() - colon - 1, "bad N:M pattern '", s, "'");
  } catch (const std::logic_error&) {
    fail("N:M pattern '", s, "' must look like 2:4");
  }
  SEC_CHECK(t.n > 0 && t.n < t.m, "N:M pattern '", s, "' needs 0 < N < M");
  t.ratio = double(t.n) / t.m;
  return t;
}

int64_t prune_count(double ratio, int64_t count) {
  SEC_CHECK(ratio >= 0 && ratio <= 1, "sparsity ", ratio, " is outside [0, 1]");
  // A tiny epsilon so that e.g. 0.7 * 10 (= 6.9999...) counts as 7.
  return std::min<int64_t>(count, int64_t(std::floor(ratio * double(count) + 1e-9)));
}

// Indices of the k lowest of score[0..n) (ties: lower index first) into `mask` (stride 1).
static void mark_lowest(const float* score, int64_t n, int64_t k, uint8_t* mask, std::vector<int64_t>& idx) {
  if (k <= 0) return;
  idx.resize(size_t(n));
  std::iota(idx.begin(), idx.end(), 0);
  auto less = [score](int64_t a, int64_t b) { return score[a] < score[b] || (score[a] == score[b] && a < b); };
  if (k < n) std::nth_element(idx.begin(), idx.begin() + k, idx.end(), less);
  for (int64_t i = 0; i < k && i < n; i++) mask[idx[i]] = 1;
}

Mask select_lowest_per_row(const float* score, int64_t rows, int64_t cols, int64_t k) {
  Mask mask(size_t(rows * cols), 0);
  parallel_ranges(rows, double(cols), 16384.0, [&](int64_t r0, int64_t r1) {
    std::vector<int64_t> idx;
    for (int64_t r = r0; r < r1; r++) mark_lowest(score + r * cols, cols, k, mask.data() + r * cols, idx);
  });
  return mask;
}

Mask select_lowest(const float* score, int64_t n, int64_t k) {
  Mask mask(size_t(n), 0);
  std::vector<int64_t> idx;
  mark_lowest(score, n, k, mask.data(), idx);
  return mask;
}

Mask select_nm(const float* score, int64_t rows, int64_t cols, int n, int m) {
  SEC_CHECK(cols % m == 0, "N:M pruning needs the input size (", cols, ") to be a multiple of M = ", m);
  Mask mask(size_t(rows * cols), 0);
  parallel_ranges(rows, double(cols), 16384.0, [&](int64_t r0, int64_t r1) {
    std::vector<int64_t> idx;
    for (int64_t r = r0; r < r1; r++)
      for (int64_t g = 0; g < cols; g += m) mark_lowest(score + r * cols + g, m, n, mask.data() + r * cols + g, idx);
  });
  return mask;
}

void apply_mask(float* w, const Mask& mask) {
  parallel_ranges(int64_t(mask.size()), 1.0, 32768.0, [&](int64_t i0, int64_t i1) {
#pragma omp simd
    for (int64_t i = i0; i < i1; i++)
      if (mask[i]) w[i] = 0.f;
  });
}

int64_t count_zeros(const float* w, int64_t n) {
  return parallel_sum<int64_t>(n, 1.0, 32768.0, [&](int64_t i0, int64_t i1) {
    int64_t z = 0;
    for (int64_t i = i0; i < i1; i++) z += (w[i] == 0.f);
    return z;
  });
}

int64_t count_set(const Mask& mask) {
  int64_t z = 0;
  for (uint8_t b : mask) z += b;
  return z;
}

bool satisfies_nm(const float* w, int64_t rows, int64_t cols, int n, int m) {
  if (cols % m) return false;
  for (int64_t r = 0; r < rows; r++)
    for (int64_t g = 0; g < cols; g += m) {
      int zeros = 0;
      for (int j = 0; j < m; j++) zeros += (w[r * cols + g + j] == 0.f);
      if (zeros < n) return false;
    }
  return true;
}

}  // namespace sec
