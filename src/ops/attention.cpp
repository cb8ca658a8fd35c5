// Causal scaled-dot-product attention with grouped-query heads.
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "core/error.h"
#include "core/threads.h"
#include "ops/ops.h"

namespace sec {

namespace {
// Softmax of row[0..valid) in place; row[valid..len) set to 0 (masked future positions).
void masked_softmax_row(float* row, int64_t valid, int64_t len) {
  float mx = -std::numeric_limits<float>::infinity();
  for (int64_t s = 0; s < valid; s++) mx = std::max(mx, row[s]);
  float sum = 0;
  for (int64_t s = 0; s < valid; s++) {
    row[s] = std::exp(row[s] - mx);
    sum += row[s];
  }
  float inv = 1.f / sum;
#pragma omp simd
  for (int64_t s = 0; s < valid; s++) row[s] *= inv;
  for (int64_t s = valid; s < len; s++) row[s] = 0.f;
}
}  // namespace

// Per (batch, head, chunk of query rows): scores = Q K^T / sqrt(hd), masked softmax, out = P V, the
// products on secateur's GEMM (inline: each task runs on one thread). A chunk only multiplies the
// keys it can see (about half the work of the full square for long prompts). The chunks are pool
// tasks, the longest first; one-token decoding is B x Hq tasks whose q . K^T is a streaming GEMV
// and P . V the few-rows product (gemm.cpp), neither packing its one row of A.
void attention_forward(float* out, float* att, const float* q, const float* k, const float* v, int64_t B, int64_t T,
                       int64_t S_cap, int64_t pos0, int64_t Hq, int64_t Hkv, int64_t hd) {
  SEC_ASSERT(Hkv > 0 && Hq % Hkv == 0 && pos0 + T <= S_cap);
  const int64_t S = pos0 + T;
  const float scale = 1.f / std::sqrt(float(hd));
  const int64_t chunk = 128, chunks = (T + chunk - 1) / chunk;
  parallel_for(B * Hq * chunks, [&](int64_t task) {
    const int64_t c = chunks - 1 - task % chunks, h = (task / chunks) % Hq, b = task / (chunks * Hq);
    const int64_t kh = kv_head_of(h, Hq, Hkv), t0 = c * chunk;
    const float* kb = k + (b * S_cap * Hkv + kh) * hd;
    const float* vb = v + (b * S_cap * Hkv + kh) * hd;
    const int64_t rows = std::min(chunk, T - t0), keys = pos0 + t0 + rows;
    thread_local std::vector<float> scratch;
    if (!att && scratch.size() < size_t(rows * keys)) scratch.resize(size_t(rows * keys));
    float* scores = att ? att + ((b * Hq + h) * T + t0) * S : scratch.data();
    const int64_t ld = att ? S : keys;
    const float* qb = q + ((b * T + t0) * Hq + h) * hd;
    gemm(false, true, rows, keys, hd, scale, qb, Hq * hd, kb, Hkv * hd, 0.f, scores, ld);
    for (int64_t r = 0; r < rows; r++) masked_softmax_row(scores + r * ld, pos0 + t0 + r + 1, att ? S : keys);
    gemm(false, false, rows, hd, keys, 1.f, scores, ld, vb, Hkv * hd, 0.f, out + ((b * T + t0) * Hq + h) * hd, Hq * hd);
  });
}

void attention_forward_ref(float* out, float* att, const float* q, const float* k, const float* v, int64_t B, int64_t T,
                           int64_t S_cap, int64_t pos0, int64_t Hq, int64_t Hkv, int64_t hd) {
  const int64_t S = pos0 + T;
  std::vector<double> p(static_cast<size_t>(S));
  for (int64_t b = 0; b < B; b++)
    for (int64_t t = 0; t < T; t++)
      for (int64_t h = 0; h < Hq; h++) {
        const int64_t kh = kv_head_of(h, Hq, Hkv), valid = pos0 + t + 1;
        const float* qv = q + ((b * T + t) * Hq + h) * hd;
        double mx = -1e300, sum = 0;
        for (int64_t s = 0; s < valid; s++) {
          const float* kv = k + ((b * S_cap + s) * Hkv + kh) * hd;
          double d = 0;
          for (int64_t i = 0; i < hd; i++) d += double(qv[i]) * kv[i];
          p[s] = d / std::sqrt(double(hd));
          mx = std::max(mx, p[s]);
        }
        for (int64_t s = 0; s < valid; s++) sum += (p[s] = std::exp(p[s] - mx));
        for (int64_t s = 0; s < S; s++) {
          double ps = s < valid ? p[s] / sum : 0.0;
          if (att) att[((b * Hq + h) * T + t) * S + s] = float(ps);
        }
        float* o = out + ((b * T + t) * Hq + h) * hd;
        for (int64_t i = 0; i < hd; i++) {
          double acc = 0;
          for (int64_t s = 0; s < valid; s++) acc += p[s] / sum * v[((b * S_cap + s) * Hkv + kh) * hd + i];
          o[i] = float(acc);
        }
      }
}

// Per (batch, query head), with P = att (T, T), O = P V, S = Q K^T * scale:
//   dP = dO V^T;  dV += P^T dO;  dS = P * (dP - rowsum(dP * P));  dQ += scale dS K;  dK += scale dS^T Q.
// Rows are processed in chunks that only touch the keys they can see (causal), like the forward.
void attention_backward(float* dq, float* dk, float* dv, const float* dout, const float* att, const float* q,
                        const float* k, const float* v, int64_t B, int64_t T, int64_t Hq, int64_t Hkv, int64_t hd) {
  SEC_ASSERT(Hkv > 0 && Hq % Hkv == 0);
  const int64_t ldq = Hq * hd, ldk = Hkv * hd;
  const float scale = 1.f / std::sqrt(float(hd));
  const int64_t chunk = 128;
  // One task per (batch, KV head): the query heads of a group all add into that head's dK / dV.
  // With fewer such tasks than threads, the heads run one after the other on threaded GEMMs instead.
  // The query heads kh*group .. (kh+1)*group-1 are those that read KV head kh (kv_head_of).
  const int64_t tasks = B * Hkv, group = Hq / Hkv;
  auto run = [&](int64_t task) {
    const int64_t b = task / Hkv, kh = task % Hkv;
    thread_local std::vector<float> dp;
    if (dp.size() < size_t(std::min(chunk, T) * T)) dp.resize(size_t(std::min(chunk, T) * T));
    const float* kb = k + (b * T * Hkv + kh) * hd;
    const float* vb = v + (b * T * Hkv + kh) * hd;
    float* dkb = dk + (b * T * Hkv + kh) * hd;
    float* dvb = dv + (b * T * Hkv + kh) * hd;
    for (int64_t h = kh * group; h < (kh + 1) * group; h++)
      for (int64_t t0 = 0; t0 < T; t0 += chunk) {
        const int64_t rows = std::min(chunk, T - t0), keys = t0 + rows;
        const float* P = att + ((b * Hq + h) * T + t0) * T;  // (rows, T), ld T
        const float* dO = dout + ((b * T + t0) * Hq + h) * hd;
        const float* qb = q + ((b * T + t0) * Hq + h) * hd;
        float* dqb = dq + ((b * T + t0) * Hq + h) * hd;
        // dP (rows, keys) = dO (rows, hd) . V[:keys]^T
        gemm(false, true, rows, keys, hd, 1.f, dO, ldq, vb, ldk, 0.f, dp.data(), keys);
        // dV[:keys] (keys, hd) += P^T (keys, rows) . dO (rows, hd)
        gemm(true, false, keys, hd, rows, 1.f, P, T, dO, ldq, 1.f, dvb, ldk);
        for (int64_t r = 0; r < rows; r++) {
          const float* p = P + r * T;
          float* d = dp.data() + r * keys;
          const int64_t valid = t0 + r + 1;
          float dot = 0;
          for (int64_t s = 0; s < valid; s++) dot += p[s] * d[s];
          for (int64_t s = 0; s < valid; s++) d[s] = scale * p[s] * (d[s] - dot);
          for (int64_t s = valid; s < keys; s++) d[s] = 0.f;
        }
        // dQ (rows, hd) += dS (rows, keys) . K[:keys] (keys, hd)
        gemm(false, false, rows, hd, keys, 1.f, dp.data(), keys, kb, ldk, 1.f, dqb, ldq);
        // dK[:keys] (keys, hd) += dS^T (keys, rows) . Q (rows, hd)
        gemm(true, false, keys, hd, rows, 1.f, dp.data(), keys, qb, ldq, 1.f, dkb, ldk);
      }
  };
  if (tasks >= 2 * num_threads() || parallel_inline())
    parallel_for(tasks, run);
  else
    for (int64_t t = 0; t < tasks; t++) run(t);
}

void attention_backward_ref(float* dq, float* dk, float* dv, const float* dout, const float* att, const float* q,
                            const float* k, const float* v, int64_t B, int64_t T, int64_t Hq, int64_t Hkv, int64_t hd) {
  const double scale = 1.0 / std::sqrt(double(hd));
  std::vector<double> dp(static_cast<size_t>(T));
  for (int64_t b = 0; b < B; b++)
    for (int64_t h = 0; h < Hq; h++)
      for (int64_t t = 0; t < T; t++) {
        const int64_t kh = kv_head_of(h, Hq, Hkv);
        const float* p = att + ((b * Hq + h) * T + t) * T;
        const float* dO = dout + ((b * T + t) * Hq + h) * hd;
        double dot = 0;
        for (int64_t s = 0; s <= t; s++) {
          const float* vs = v + ((b * T + s) * Hkv + kh) * hd;
          double acc = 0;
          for (int64_t i = 0; i < hd; i++) {
            acc += double(dO[i]) * vs[i];
            dv[((b * T + s) * Hkv + kh) * hd + i] += float(double(p[s]) * dO[i]);
          }
          dp[s] = acc;
          dot += acc * p[s];
        }
        for (int64_t s = 0; s <= t; s++) {
          double ds = scale * p[s] * (dp[s] - dot);
          for (int64_t i = 0; i < hd; i++) {
            dq[((b * T + t) * Hq + h) * hd + i] += float(ds * k[((b * T + s) * Hkv + kh) * hd + i]);
            dk[((b * T + s) * Hkv + kh) * hd + i] += float(ds * q[((b * T + t) * Hq + h) * hd + i]);
          }
        }
      }
}

}  // namespace sec
