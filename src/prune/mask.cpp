#include "prune/mask.h"

#include <algorithm>
#include <cmath>
#include <cstring>

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

// Total order of floats as unsigned integers (-0 taken as +0, so equal keys are equal floats).
static uint32_t order_key(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if (u == 0x80000000u) u = 0;
  return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

// The key of the k-th lowest score (k in [1, n)): a two-pass radix select over the high and low
// 16 bits, linear and branch-free where nth_element's partitions mispredict (whole-matrix
// magnitude pruning of a 22-block TinyLlama spent 30% of its time in nth_element).
static uint32_t kth_lowest_key(const float* score, int64_t n, int64_t k) {
  std::vector<int64_t> hist(65536);
  for (int64_t i = 0; i < n; i++) hist[order_key(score[i]) >> 16]++;
  int64_t before = 0;
  uint32_t hi = 0;
  while (before + hist[hi] < k) before += hist[hi++];
  std::fill(hist.begin(), hist.end(), 0);
  for (int64_t i = 0; i < n; i++) {
    const uint32_t key = order_key(score[i]);
    if ((key >> 16) == hi) hist[key & 0xffffu]++;
  }
  uint32_t lo = 0;
  while (before + hist[lo] < k) before += hist[lo++];
  return hi << 16 | lo;
}

// Marks the k lowest of score[0..n) in `mask` (stride 1); ties: lower index first. With t the k-th
// lowest value, that is every score below t and the first (k - that many) equal to t. Small n
// (rows, N:M groups) find t by nth_element on the keys, large n by a radix select. Keys order NaN
// too (above +inf, or below -inf with the sign bit), where a float comparison would not.
static void mark_lowest(const float* score, int64_t n, int64_t k, uint8_t* mask, std::vector<uint32_t>& tmp) {
  if (k <= 0) return;
  if (k >= n) {
    std::fill(mask, mask + n, uint8_t(1));
    return;
  }
  uint32_t t;
  if (n >= (int64_t(1) << 18)) {
    t = kth_lowest_key(score, n, k);
  } else {
    tmp.resize(size_t(n));
    for (int64_t i = 0; i < n; i++) tmp[size_t(i)] = order_key(score[i]);
    std::nth_element(tmp.begin(), tmp.begin() + (k - 1), tmp.end());
    t = tmp[size_t(k - 1)];
  }
  int64_t below = 0;
  for (int64_t i = 0; i < n; i++) {
    const bool lower = order_key(score[i]) < t;
    mask[i] |= uint8_t(lower);
    below += lower;
  }
  for (int64_t i = 0, equal_left = k - below; equal_left > 0; i++) {  // ties: the lowest indices
    if (order_key(score[i]) == t) {
      mask[i] = 1;
      equal_left--;
    }
  }
}

Mask select_lowest_per_row(const float* score, int64_t rows, int64_t cols, int64_t k) {
  Mask mask(size_t(rows * cols), 0);
  parallel_ranges(rows, double(cols), 16384.0, [&](int64_t r0, int64_t r1) {
    std::vector<uint32_t> tmp;
    for (int64_t r = r0; r < r1; r++) mark_lowest(score + r * cols, cols, k, mask.data() + r * cols, tmp);
  });
  return mask;
}

Mask select_lowest(const float* score, int64_t n, int64_t k) {
  Mask mask(size_t(n), 0);
  std::vector<uint32_t> tmp;
  mark_lowest(score, n, k, mask.data(), tmp);
  return mask;
}

Mask select_nm(const float* score, int64_t rows, int64_t cols, int n, int m) {
  SEC_CHECK(cols % m == 0, "N:M pruning needs the input size (", cols, ") to be a multiple of M = ", m);
  Mask mask(size_t(rows * cols), 0);
  parallel_ranges(rows, double(cols), 16384.0, [&](int64_t r0, int64_t r1) {
    std::vector<uint32_t> tmp;
    for (int64_t r = r0; r < r1; r++)
      for (int64_t g = 0; g < cols; g += m) mark_lowest(score + r * cols + g, m, n, mask.data() + r * cols + g, tmp);
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
