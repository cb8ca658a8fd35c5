// Every fast forward kernel against its plain scalar reference.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "core/random.h"
#include "core/threads.h"
#include "ops/ops.h"
#include "testing/testing.h"

namespace sec {
// The kernels' threaded paths are exercised with 3 threads even though ctest runs tests with one.
const int kThreadsForKernelTests = [] {
  set_num_threads(3);
  return 3;
}();

namespace {

std::vector<float> randn(size_t n, uint64_t seed, float std = 1.f) {
  Rng rng(seed);
  std::vector<float> v(n);
  for (auto& x : v) x = rng.normal(0.f, std);
  return v;
}

void expect_close(const std::vector<float>& a, const std::vector<float>& b, float tol) {
  ASSERT_EQ(a.size(), b.size());
  EXPECT_LE(testing::max_abs_diff(a.data(), b.data(), a.size()), tol);
}

constexpr double kEps = std::numeric_limits<float>::epsilon();

// BLAS (fast) vs the scalar reference of y = x W^T + b. Each output is a length-I dot product,
// whose float32 rounding in any summation order is about sqrt(I) eps sum_i |x_i w_i| (rounding
// errors of either sign add like a random walk; Higham, Accuracy and Stability of Numerical
// Algorithms, sec. 2.8). The two computations differ by at most twice that, and a factor 4
// covers the largest of many outputs: tolerance 8 sqrt(I + 1) eps (sum_i |x_i w_i| + |b|) per output.
void expect_close_matmul(const std::vector<float>& fast, const std::vector<float>& ref, const float* x, const float* w,
                         const float* b, int N, int I, int O) {
  double worst = 0;  // largest |fast - ref| / tolerance
  for (int n = 0; n < N; n++)
    for (int o = 0; o < O; o++) {
      double terms = b ? std::fabs(b[o]) : 0;
      for (int i = 0; i < I; i++) terms += std::fabs(double(x[size_t(n) * I + i]) * w[size_t(o) * I + i]);
      const double tol = 8 * std::sqrt(I + 1.0) * kEps * terms;
      const size_t k = size_t(n) * O + o;
      worst = std::max(worst, std::fabs(double(fast[k]) - ref[k]) / std::max(tol, 1e-30));
    }
  EXPECT_LE(worst, 1.0) << "N " << N << " I " << I << " O " << O;
}

TEST(OpsForward, MatmulWithAndWithoutBias) {
  for (auto [N, I, O] : {std::tuple{1, 1, 1}, {7, 13, 5}, {64, 96, 130}}) {
    auto x = randn(N * I, 1), w = randn(O * I, 2), b = randn(O, 3);
    for (bool bias : {false, true}) {
      std::vector<float> fast(N * O), ref(N * O);
      matmul_forward(fast.data(), x.data(), w.data(), bias ? b.data() : nullptr, N, I, O);
      matmul_forward_ref(ref.data(), x.data(), w.data(), bias ? b.data() : nullptr, N, I, O);
      expect_close_matmul(fast, ref, x.data(), w.data(), bias ? b.data() : nullptr, N, I, O);
    }
  }
}

TEST(OpsForward, RmsNorm) {
  const int N = 9, C = 37;
  auto x = randn(N * C, 4, 3.f), w = randn(C, 5);
  std::vector<float> fast(N * C), ref(N * C), r1(N), r2(N);
  rmsnorm_forward(fast.data(), r1.data(), x.data(), w.data(), N, C, 1e-5f);
  rmsnorm_forward_ref(ref.data(), r2.data(), x.data(), w.data(), N, C, 1e-5f);
  expect_close(fast, ref, 1e-5f);
  expect_close(r1, r2, 1e-6f);
  // Definition check on one row: output row has RMS equal to the weights' scaling.
  double ss = 0;
  for (int i = 0; i < C; i++) ss += double(x[i]) * x[i];
  EXPECT_NEAR(ref[3], x[3] / std::sqrt(ss / C + 1e-5) * w[3], 1e-5);
}

TEST(OpsForward, RopeMatchesReferenceAndPreservesNorm) {
  const int B = 2, T = 5, H = 3, hd = 8;
  std::vector<float> inv = {1.f, 0.1f, 0.01f, 0.001f};
  auto x = randn(B * T * H * hd, 6);
  for (int pos0 : {0, 17}) {
    auto fast = x, ref = x;
    rope_forward(fast.data(), inv.data(), B, T, H, hd, pos0);
    rope_forward_ref(ref.data(), inv.data(), B, T, H, hd, pos0);
    expect_close(fast, ref, 1e-6f);
    // A rotation keeps each pair's norm.
    float a = x[0] * x[0] + x[4] * x[4], b = fast[0] * fast[0] + fast[4] * fast[4];
    EXPECT_NEAR(a, b, 1e-5f);
  }
  // Position 0 is the identity.
  auto y = x;
  rope_forward(y.data(), inv.data(), 1, 1, H, hd, 0);
  for (int i = 0; i < H * hd; i++) EXPECT_EQ(y[i], x[i]);
}

struct AttnCase {
  int B, T, S_cap, pos0, Hq, Hkv, hd;
};

// BLAS attention vs the scalar reference, per query row: a score q.k / sqrt(hd) rounds by about
// sqrt(hd) eps A, A = the row's largest sum_d |q_d k_d| / sqrt(hd); softmax turns a score error
// e into a relative probability error <= 2e; the output sum_s p_s v_s adds sqrt(S) eps max|v|.
// So |d out| <= eps max|v| (2 sqrt(hd) A + sqrt(S)) and |d p| <= 2 sqrt(hd) eps A (p <= 1), each
// times 2 x 4 (two computations, the largest of many), as in expect_close_matmul.
struct AttnTolerance {
  std::vector<double> out, prob;  // per (b, t, h) row
};
AttnTolerance attention_tolerance(const AttnCase& c, const std::vector<float>& q, const std::vector<float>& k,
                                  const std::vector<float>& v) {
  AttnTolerance tol;
  double max_v = 0;
  for (float x : v) max_v = std::max(max_v, double(std::fabs(x)));
  const int group = c.Hq / c.Hkv;
  for (int b = 0; b < c.B; b++)
    for (int t = 0; t < c.T; t++)
      for (int h = 0; h < c.Hq; h++) {
        const int kvh = h / group, keys = c.pos0 + t + 1;
        double A = 0;
        for (int s = 0; s < keys; s++) {
          double sum = 0;
          for (int d = 0; d < c.hd; d++)
            sum += std::fabs(double(q[((size_t(b) * c.T + t) * c.Hq + h) * c.hd + d]) *
                             k[((size_t(b) * c.S_cap + s) * c.Hkv + kvh) * c.hd + d]);
          A = std::max(A, sum / std::sqrt(double(c.hd)));
        }
        const double score = std::sqrt(double(c.hd)) * kEps * A;
        tol.out.push_back(8 * (2 * score + std::sqrt(double(keys)) * kEps) * max_v);
        tol.prob.push_back(8 * 2 * score);
      }
  return tol;
}

// out is (B, T, Hq, hd); att is (B, Hq, T, S).
void expect_close_attention(const AttnCase& c, const AttnTolerance& tol, const std::vector<float>& fast,
                            const std::vector<float>& ref, const std::vector<float>* att_fast,
                            const std::vector<float>* att_ref) {
  const int S = c.pos0 + c.T;
  double worst = 0;
  for (int b = 0; b < c.B; b++)
    for (int t = 0; t < c.T; t++)
      for (int h = 0; h < c.Hq; h++) {
        const size_t row = (size_t(b) * c.T + t) * c.Hq + h;
        for (int d = 0; d < c.hd; d++)
          worst = std::max(worst, std::fabs(double(fast[row * c.hd + d]) - ref[row * c.hd + d]) / tol.out[row]);
        if (!att_fast) continue;
        for (int s = 0; s < S; s++) {
          const size_t i = ((size_t(b) * c.Hq + h) * c.T + t) * S + s;
          worst = std::max(worst, std::fabs(double((*att_fast)[i]) - (*att_ref)[i]) / tol.prob[row]);
        }
      }
  EXPECT_LE(worst, 1.0) << "B " << c.B << " T " << c.T << " Hq " << c.Hq << " hd " << c.hd;
}

TEST(OpsForward, AttentionCausalGqa) {
  for (AttnCase c : {AttnCase{1, 1, 1, 0, 1, 1, 4}, AttnCase{2, 7, 7, 0, 4, 2, 8}, AttnCase{2, 200, 200, 0, 4, 1, 16},
                     AttnCase{1, 3, 40, 11, 6, 3, 8}, AttnCase{3, 1, 9, 8, 2, 2, 8},
                     // Decoding at a long context (P . V is one row against 531 keys) and with a head
                     // size that is not a multiple of the kernels' 16-float vectors.
                     AttnCase{2, 1, 600, 530, 8, 2, 64}, AttnCase{1, 1, 50, 40, 6, 3, 20}}) {
    const int S = c.pos0 + c.T;
    auto q = randn(size_t(c.B) * c.T * c.Hq * c.hd, 7);
    auto k = randn(size_t(c.B) * c.S_cap * c.Hkv * c.hd, 8);
    auto v = randn(size_t(c.B) * c.S_cap * c.Hkv * c.hd, 9);
    std::vector<float> fast(q.size()), ref(q.size());
    std::vector<float> att_fast(size_t(c.B) * c.Hq * c.T * S), att_ref(att_fast.size());
    attention_forward(fast.data(), att_fast.data(), q.data(), k.data(), v.data(), c.B, c.T, c.S_cap, c.pos0, c.Hq,
                      c.Hkv, c.hd);
    attention_forward_ref(ref.data(), att_ref.data(), q.data(), k.data(), v.data(), c.B, c.T, c.S_cap, c.pos0, c.Hq,
                          c.Hkv, c.hd);
    const AttnTolerance tol = attention_tolerance(c, q, k, v);
    expect_close_attention(c, tol, fast, ref, &att_fast, &att_ref);
    // Same output without keeping the probabilities.
    std::vector<float> fast2(q.size());
    attention_forward(fast2.data(), nullptr, q.data(), k.data(), v.data(), c.B, c.T, c.S_cap, c.pos0, c.Hq, c.Hkv,
                      c.hd);
    expect_close_attention(c, tol, fast2, ref, nullptr, nullptr);
    // Causality: probabilities of future positions are exactly zero, rows sum to one.
    for (int t = 0; t < c.T; t++) {
      double sum = 0;
      for (int s = 0; s < S; s++) {
        float p = att_fast[size_t(t) * S + s];
        if (s > c.pos0 + t) {
          EXPECT_EQ(p, 0.f);
        }
        sum += p;
      }
      EXPECT_NEAR(sum, 1.0, 1e-5);
    }
  }
}

TEST(OpsForward, SwiGlu) {
  auto g = randn(1000, 10, 4.f), u = randn(1000, 11);
  std::vector<float> fast(1000), ref(1000);
  swiglu_forward(fast.data(), g.data(), u.data(), 1000);
  swiglu_forward_ref(ref.data(), g.data(), u.data(), 1000);
  expect_close(fast, ref, 1e-5f);
}

TEST(OpsForward, LogSoftmaxCrossEntropyKl) {
  const int N = 6, V = 301;
  auto a = randn(N * V, 12, 5.f), b = randn(N * V, 13, 5.f);
  std::vector<float> ls(N * V), ls_ref(N * V);
  log_softmax_forward(ls.data(), a.data(), N, V);
  log_softmax_forward_ref(ls_ref.data(), a.data(), N, V);
  expect_close(ls, ls_ref, 1e-5f);

  std::vector<int32_t> targets = {0, 5, 300, -1, 17, 42};
  std::vector<float> ce(N), ce_ref(N);
  cross_entropy_forward(ce.data(), a.data(), targets.data(), N, V);
  cross_entropy_forward_ref(ce_ref.data(), a.data(), targets.data(), N, V);
  expect_close(ce, ce_ref, 1e-5f);
  EXPECT_EQ(ce[3], 0.f);  // ignored target
  EXPECT_NEAR(ce[1], -ls_ref[1 * V + 5], 1e-5f);

  for (float temp : {1.f, 2.5f}) {
    std::vector<float> kl(N), kl_ref(N), self(N);
    kl_div_forward(kl.data(), a.data(), b.data(), N, V, temp);
    kl_div_forward_ref(kl_ref.data(), a.data(), b.data(), N, V, temp);
    expect_close(kl, kl_ref, 1e-4f);
    kl_div_forward(self.data(), a.data(), a.data(), N, V, temp);
    for (float s : self) EXPECT_NEAR(s, 0.f, 1e-6f);
    for (float s : kl) EXPECT_GT(s, 0.f);
  }
}

// Sizes above kParallelMinWork so that the OpenMP paths run (with the 3 threads set above).
TEST(OpsForward, LargeInputsTakeTheThreadedPaths) {
  const int N = 300, C = 160, V = 257;
  ASSERT_GT(int64_t(N) * C, kParallelMinWork);
  auto x = randn(N * C, 20, 2.f), w = randn(C, 21), g = randn(N * C, 22, 3.f), b = randn(C, 23);
  std::vector<float> f1(N * C), r1(N * C);
  rmsnorm_forward(f1.data(), nullptr, x.data(), w.data(), N, C, 1e-5f);
  rmsnorm_forward_ref(r1.data(), nullptr, x.data(), w.data(), N, C, 1e-5f);
  expect_close(f1, r1, 1e-5f);
  swiglu_forward(f1.data(), x.data(), g.data(), N * C);
  swiglu_forward_ref(r1.data(), x.data(), g.data(), N * C);
  expect_close(f1, r1, 1e-4f);
  std::vector<float> inv = {1.f, 0.5f, 0.1f, 0.01f};
  auto fr = x, rr = x;
  rope_forward(fr.data(), inv.data(), 2, 150, 20, 8, 3);
  rope_forward_ref(rr.data(), inv.data(), 2, 150, 20, 8, 3);
  expect_close(fr, rr, 1e-5f);
  std::vector<float> mf(N * C), mr(N * C);
  auto wm = randn(C * C, 24);
  matmul_forward(mf.data(), x.data(), wm.data(), b.data(), N, C, C);
  matmul_forward_ref(mr.data(), x.data(), wm.data(), b.data(), N, C, C);
  expect_close_matmul(mf, mr, x.data(), wm.data(), b.data(), N, C, C);
  auto logits = randn(N * V, 25, 4.f);
  std::vector<float> lf(N * V), lr(N * V);
  log_softmax_forward(lf.data(), logits.data(), N, V);
  log_softmax_forward_ref(lr.data(), logits.data(), N, V);
  expect_close(lf, lr, 1e-5f);
}

}  // namespace
}  // namespace sec
