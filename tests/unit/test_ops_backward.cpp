// Every op's backward against central finite differences of its scalar-reference forward, and the
// fast backward against its scalar reference. The scalar loss is L = sum(R * out) for a fixed random
// R, so dout = R. Gradient buffers start at 0.25 to check that backward ACCUMULATES (+=).
// Metric: NMSE = sum (analytic - numeric)^2 / sum numeric^2 over the checked elements.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <vector>

#include "core/random.h"
#include "core/threads.h"
#include "ops/ops.h"

namespace sec {
// The kernels' threaded paths are exercised with 3 threads even though ctest runs tests with one.
const int kThreadsForKernelTests = [] {
  set_num_threads(3);
  return 3;
}();

namespace {

using Vec = std::vector<float>;
constexpr float kInit = 0.25f;  // initial value of every gradient buffer

Vec randn(int64_t n, uint64_t seed, float std = 1.f) {
  Rng rng(seed);
  Vec v(static_cast<size_t>(n));
  for (auto& x : v) x = rng.normal(0.f, std);
  return v;
}
Vec filled(int64_t n) { return Vec(static_cast<size_t>(n), kInit); }
Vec minus_init(Vec v) {
  for (auto& x : v) x -= kInit;
  return v;
}
double dot(const Vec& a, const Vec& b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); i++) s += double(a[i]) * b[i];
  return s;
}

// Central differences of loss() w.r.t. every element of x (x restored afterwards); NMSE vs analytic.
double fd_nmse(Vec& x, const Vec& analytic, const std::function<double()>& loss, float eps = 1e-2f) {
  EXPECT_EQ(x.size(), analytic.size());
  double num = 0, den = 0;
  for (size_t i = 0; i < x.size(); i++) {
    float saved = x[i];
    x[i] = saved + eps;
    double lp = loss();
    x[i] = saved - eps;
    double lm = loss();
    x[i] = saved;
    double g = (lp - lm) / (2.0 * double(eps));
    num += (analytic[i] - g) * (analytic[i] - g);
    den += g * g;
  }
  return den > 0 ? num / den : num;
}

double max_rel(const Vec& a, const Vec& b) {
  double mx = 0, mb = 0;
  for (size_t i = 0; i < a.size(); i++) {
    mx = std::max(mx, double(std::fabs(a[i] - b[i])));
    mb = std::max(mb, double(std::fabs(b[i])));
  }
  return mb > 0 ? mx / mb : mx;
}

constexpr double kNmse = 1e-5;  // f32 forward + central differences with eps 1e-2
constexpr double kRel = 1e-5;   // fast vs scalar reference

TEST(OpsBackward, Matmul) {
  const int64_t N = 7, I = 13, O = 9;
  Vec inp = randn(N * I, 1), w = randn(O * I, 2), b = randn(O, 3), R = randn(N * O, 4), out(N * O);
  auto loss = [&] {
    matmul_forward_ref(out.data(), inp.data(), w.data(), b.data(), N, I, O);
    return dot(out, R);
  };
  Vec di = filled(N * I), dw = filled(O * I), db = filled(O);
  matmul_backward(di.data(), dw.data(), db.data(), R.data(), inp.data(), w.data(), N, I, O);
  di = minus_init(di), dw = minus_init(dw), db = minus_init(db);
  EXPECT_LE(fd_nmse(inp, di, loss), kNmse);
  EXPECT_LE(fd_nmse(w, dw, loss), kNmse);
  EXPECT_LE(fd_nmse(b, db, loss), kNmse);
  Vec ri = filled(N * I), rw = filled(O * I), rb = filled(O);
  matmul_backward_ref(ri.data(), rw.data(), rb.data(), R.data(), inp.data(), w.data(), N, I, O);
  EXPECT_LE(max_rel(minus_init(ri), di), kRel);
  EXPECT_LE(max_rel(minus_init(rw), dw), kRel);
  EXPECT_LE(max_rel(minus_init(rb), db), kRel);
  // Null gradients are skipped.
  matmul_backward(nullptr, nullptr, nullptr, R.data(), inp.data(), w.data(), N, I, O);
}

TEST(OpsBackward, EmbeddingScatterAdd) {
  const int64_t N = 9, C = 70, V = 5;
  std::vector<int32_t> tokens = {0, 3, 3, 1, 4, 3, 0, 2, 2};
  Vec table = randn(V * C, 5), R = randn(N * C, 6), out(N * C);
  auto loss = [&] {
    embedding_forward(out.data(), tokens.data(), table.data(), N, C);
    return dot(out, R);
  };
  Vec dt = filled(V * C), rt = filled(V * C);
  embedding_backward(dt.data(), R.data(), tokens.data(), N, C);
  embedding_backward_ref(rt.data(), R.data(), tokens.data(), N, C);
  dt = minus_init(dt);
  EXPECT_LE(fd_nmse(table, dt, loss), kNmse);
  EXPECT_LE(max_rel(minus_init(rt), dt), kRel);
}

TEST(OpsBackward, RmsNorm) {
  const int64_t N = 5, C = 24;
  Vec inp = randn(N * C, 7, 2.f), w = randn(C, 8), R = randn(N * C, 9), out(N * C), rstd(N);
  const float eps = 1e-5f;
  auto loss = [&] {
    rmsnorm_forward_ref(out.data(), rstd.data(), inp.data(), w.data(), N, C, eps);
    return dot(out, R);
  };
  loss();  // rstd
  Vec di = filled(N * C), dw = filled(C), ri = filled(N * C), rw = filled(C);
  rmsnorm_backward(di.data(), dw.data(), R.data(), inp.data(), w.data(), rstd.data(), N, C);
  rmsnorm_backward_ref(ri.data(), rw.data(), R.data(), inp.data(), w.data(), rstd.data(), N, C);
  di = minus_init(di), dw = minus_init(dw);
  EXPECT_LE(fd_nmse(inp, di, loss), kNmse);
  EXPECT_LE(fd_nmse(w, dw, loss), kNmse);
  EXPECT_LE(max_rel(minus_init(ri), di), kRel);
  EXPECT_LE(max_rel(minus_init(rw), dw), kRel);
}

TEST(OpsBackward, Rope) {
  const int64_t B = 2, T = 5, H = 3, hd = 8, pos0 = 3;
  Vec x = randn(B * T * H * hd, 10), R = randn(B * T * H * hd, 11);
  Vec inv_freq = {1.f, 0.3f, 0.05f, 0.001f};
  auto loss = [&] {
    Vec y = x;
    rope_forward_ref(y.data(), inv_freq.data(), B, T, H, hd, pos0);
    return dot(y, R);
  };
  Vec dx = R, rx = R;
  rope_backward(dx.data(), inv_freq.data(), B, T, H, hd, pos0);
  rope_backward_ref(rx.data(), inv_freq.data(), B, T, H, hd, pos0);
  EXPECT_LE(fd_nmse(x, dx, loss), kNmse);
  EXPECT_LE(max_rel(rx, dx), kRel);
}

void check_attention(int64_t B, int64_t T, int64_t Hq, int64_t Hkv, int64_t hd) {
  SCOPED_TRACE(testing::Message() << "B=" << B << " T=" << T << " Hq=" << Hq << " Hkv=" << Hkv << " hd=" << hd);
  Vec q = randn(B * T * Hq * hd, 12), k = randn(B * T * Hkv * hd, 13), v = randn(B * T * Hkv * hd, 14);
  Vec R = randn(B * T * Hq * hd, 15), out(B * T * Hq * hd), att(B * Hq * T * T);
  auto loss = [&] {
    attention_forward_ref(out.data(), nullptr, q.data(), k.data(), v.data(), B, T, T, 0, Hq, Hkv, hd);
    return dot(out, R);
  };
  attention_forward(out.data(), att.data(), q.data(), k.data(), v.data(), B, T, T, 0, Hq, Hkv, hd);
  Vec dq = filled(q.size()), dk = filled(k.size()), dv = filled(v.size());
  Vec rq = dq, rk = dk, rv = dv;
  attention_backward(dq.data(), dk.data(), dv.data(), R.data(), att.data(), q.data(), k.data(), v.data(), B, T, Hq, Hkv,
                     hd);
  attention_backward_ref(rq.data(), rk.data(), rv.data(), R.data(), att.data(), q.data(), k.data(), v.data(), B, T, Hq,
                         Hkv, hd);
  dq = minus_init(dq), dk = minus_init(dk), dv = minus_init(dv);
  EXPECT_LE(max_rel(minus_init(rq), dq), kRel);
  EXPECT_LE(max_rel(minus_init(rk), dk), kRel);
  EXPECT_LE(max_rel(minus_init(rv), dv), kRel);
  if (T <= 16) {
    EXPECT_LE(fd_nmse(q, dq, loss), kNmse);
    EXPECT_LE(fd_nmse(k, dk, loss), kNmse);
    EXPECT_LE(fd_nmse(v, dv, loss), kNmse);
  }
}

TEST(OpsBackward, AttentionGQA) {
  check_attention(2, 6, 4, 2, 8);  // GQA: dk/dv accumulate over the group
  check_attention(1, 7, 3, 3, 4);  // MHA
  check_attention(1, 5, 4, 1, 6);  // MQA
}

TEST(OpsBackward, AttentionLongRowsUseChunks) { check_attention(1, 300, 2, 1, 16); }  // > one 128-row chunk

TEST(OpsBackward, SwiGLU) {
  const int64_t N = 40;
  Vec g = randn(N, 16, 2.f), u = randn(N, 17), R = randn(N, 18), out(N);
  auto loss = [&] {
    swiglu_forward_ref(out.data(), g.data(), u.data(), N);
    return dot(out, R);
  };
  Vec dg = filled(N), du = filled(N), rg = filled(N), ru = filled(N);
  swiglu_backward(dg.data(), du.data(), R.data(), g.data(), u.data(), N);
  swiglu_backward_ref(rg.data(), ru.data(), R.data(), g.data(), u.data(), N);
  dg = minus_init(dg), du = minus_init(du);
  EXPECT_LE(fd_nmse(g, dg, loss), kNmse);
  EXPECT_LE(fd_nmse(u, du, loss), kNmse);
  EXPECT_LE(max_rel(minus_init(rg), dg), kRel);
  EXPECT_LE(max_rel(minus_init(ru), du), kRel);
}

TEST(OpsBackward, CrossEntropyWithIgnoredTargetsAndRowWeights) {
  const int64_t N = 6, V = 11;
  Vec logits = randn(N * V, 19, 2.f), dl = {0.5f, 0.25f, 1.f, 0.f, 2.f, 0.125f}, losses(N);
  std::vector<int32_t> targets = {3, -1, 0, 10, 7, -1};
  auto loss = [&] {
    cross_entropy_forward_ref(losses.data(), logits.data(), targets.data(), N, V);
    return dot(losses, dl);
  };
  Vec d = filled(N * V), r = filled(N * V);
  cross_entropy_backward(d.data(), dl.data(), logits.data(), targets.data(), N, V);
  cross_entropy_backward_ref(r.data(), dl.data(), logits.data(), targets.data(), N, V);
  d = minus_init(d);
  EXPECT_LE(fd_nmse(logits, d, loss), kNmse);
  EXPECT_LE(max_rel(minus_init(r), d), kRel);
  for (int64_t i = 0; i < V; i++) EXPECT_EQ(d[1 * V + i], 0.f);  // ignored row: no gradient
}

TEST(OpsBackward, KlDivergenceWrtStudentLogits) {
  const int64_t N = 4, V = 13;
  for (float temp : {1.f, 2.5f}) {
    Vec p = randn(N * V, 20, 2.f), q = randn(N * V, 21, 2.f), dkl = {1.f, 0.5f, 0.25f, 2.f}, kl(N);
    auto loss = [&] {
      kl_div_forward_ref(kl.data(), p.data(), q.data(), N, V, temp);
      return dot(kl, dkl);
    };
    Vec d = filled(N * V), r = filled(N * V);
    kl_div_backward(d.data(), dkl.data(), p.data(), q.data(), N, V, temp);
    kl_div_backward_ref(r.data(), dkl.data(), p.data(), q.data(), N, V, temp);
    d = minus_init(d);
    EXPECT_LE(fd_nmse(q, d, loss), kNmse) << "temp " << temp;
    EXPECT_LE(max_rel(minus_init(r), d), kRel) << "temp " << temp;
  }
}

}  // namespace
}  // namespace sec
