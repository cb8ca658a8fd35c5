// Pieces shared by the kernel family files (kernels_*.cpp), compiled into each with that file's
// target flags. Everything here has internal linkage (see kernels.h for why): include it from the
// family files only.
#pragma once
#include <cstdint>
#include <cstring>

#include "ops/kernels.h"

namespace sec::kern {
namespace {

inline int64_t kmin(int64_t a, int64_t b) { return a < b ? a : b; }
inline int64_t kmax(int64_t a, int64_t b) { return a > b ? a : b; }

inline uint32_t fbits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}
inline float bitsf(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

// f32 -> nearest bf16 (ties to even), returned as the f32 it stands for; NaN stays NaN.
inline float round_bf16(float f) {
  uint32_t u = fbits(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return bitsf((u | 0x400000u) & 0xffff0000u);
  u += 0x7fffu + ((u >> 16) & 1u);
  return bitsf(u & 0xffff0000u);
}
inline float bf16_value(uint16_t h) { return bitsf(uint32_t(h) << 16); }

inline float f16_value(uint16_t h) {
  const uint32_t sign = uint32_t(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, mant = h & 0x3ff;
  if (exp == 0) {  // zero or subnormal: mant * 2^-24
    const float v = float(mant) * (1.f / 16777216.f);
    return sign ? -v : v;
  }
  if (exp == 31) return bitsf(sign | 0x7f800000u | mant << 13);
  return bitsf(sign | (exp + 112) << 23 | mant << 13);
}

inline int popcount8(uint8_t b) { return __builtin_popcount(b); }

// Number of stored values of sparse row j before column k0 (k0 a multiple of 8).
inline int64_t sparse_prefix(const BSrc& B, int64_t j, int64_t k0) {
  const uint8_t* m = B.mask + j * B.mask_stride;
  int64_t n = 0, b = 0;
  for (; b + 8 <= k0 / 8; b += 8) {
    uint64_t w;
    std::memcpy(&w, m + b, 8);
    n += __builtin_popcountll(w);
  }
  for (; b < k0 / 8; b++) n += popcount8(m[b]);
  return n;
}

// Where a GEMV over R weight rows from o (of a task's rows [o, o1)) prefetches for row r: kPfBytes
// ahead in the row, and past the row's end the same row of the next block (rows o + R ..), which
// the task reads next. A row of 2-8 KB is one or two 4 KB pages, which the hardware prefetcher must
// find again for every row. Integer addresses: in pointer form with an early return, GCC 12
// dropped every such prefetch (check the assembly when changing this); past the last row they
// point nowhere, which is harmless for a prefetch.
template <WFormat F, int R>
struct GemvPrefetch {
  static constexpr int64_t kPfBytes = 4096, es = F == WFormat::F32 ? 4 : 2;  // es: bytes per dense element
  uintptr_t dense_row0 = 0;
  int64_t ld = 0, K = 0;
  uintptr_t sparse_end[R] = {}, sparse_next[R] = {};
  GemvPrefetch(const BSrc& W, int64_t K_, int64_t o, int64_t o1) : ld(W.ld), K(K_) {
    if constexpr (F == WFormat::Sparse) {
      for (int r = 0; r < R; r++) {
        sparse_end[r] = reinterpret_cast<uintptr_t>(W.values + W.row_off[o + r + 1]);
        sparse_next[r] = o + r + R < o1 ? reinterpret_cast<uintptr_t>(W.values + W.row_off[o + r + R]) : sparse_end[r];
      }
    } else {
      dense_row0 = reinterpret_cast<uintptr_t>(W.p) + uintptr_t(o * W.ld * es);
    }
  }
  // Row r at column k (dense) or with its next stored value at vals (sparse).
  const char* address(int r, int64_t k, const float* vals) const {
    uintptr_t p;
    if constexpr (F == WFormat::Sparse) {
      p = reinterpret_cast<uintptr_t>(vals) + kPfBytes;
      if (p >= sparse_end[r]) p = sparse_next[r] + (p - sparse_end[r]);
    } else {
      const int64_t col = k + kPfBytes / es;
      p = dense_row0 + uintptr_t(((col < K ? r : r + R) * ld + (col < K ? col : col - K)) * es);
    }
    return reinterpret_cast<const char*>(p);
  }
};

// Row j, columns [k0, k0 + n) of a weight, as f32 (scalar; the families use it for tails). k0 is a
// multiple of 8 (K-blocks are multiples of 64).
inline void fetch_row_scalar(float* dst, const BSrc& B, int64_t j, int64_t k0, int64_t n) {
  switch (B.format) {
    case WFormat::F32: {
      const float* w = static_cast<const float*>(B.p) + j * B.ld + k0;
      for (int64_t k = 0; k < n; k++) dst[k] = w[k];
      return;
    }
    case WFormat::BF16: {
      const uint16_t* w = static_cast<const uint16_t*>(B.p) + j * B.ld + k0;
      for (int64_t k = 0; k < n; k++) dst[k] = bf16_value(w[k]);
      return;
    }
    case WFormat::F16: {
      const uint16_t* w = static_cast<const uint16_t*>(B.p) + j * B.ld + k0;
      for (int64_t k = 0; k < n; k++) dst[k] = f16_value(w[k]);
      return;
    }
    case WFormat::Sparse: {
      const uint8_t* m = B.mask + j * B.mask_stride;
      const float* v = B.values + B.row_off[j] + sparse_prefix(B, j, k0);
      for (int64_t k = 0; k < n; k++) {
        const int64_t c = k0 + k;
        dst[k] = (m[c / 8] >> (c % 8)) & 1 ? *v++ : 0.f;
      }
      return;
    }
  }
}

// Panel p of packed A (layout: kernels.h), any strides; KC is the family's K-block.
template <int MR, int KC>
void pack_a_generic(float* Ap, const ASrc& a, int64_t panels, int64_t p, int64_t m0, int64_t rows, int64_t K) {
  for (int64_t pc = 0; pc < K; pc += KC) {
    const int64_t kc = kmin(KC, K - pc);
    float* dst = Ap + pc * panels * MR + p * kc * MR;
    if (a.cs == 1) {  // row-major A: row by row keeps the reads sequential
      for (int r = 0; r < MR; r++) {
        if (r < rows) {
          const float* src = a.p + (m0 + r) * a.rs + pc;
          if (a.round_bf16)
            for (int64_t k = 0; k < kc; k++) dst[k * MR + r] = round_bf16(src[k]);
          else
            for (int64_t k = 0; k < kc; k++) dst[k * MR + r] = src[k];
        } else {
          for (int64_t k = 0; k < kc; k++) dst[k * MR + r] = 0.f;
        }
      }
      continue;
    }
    if (a.rs == 1 && !a.round_bf16) {  // column-major A (a transposed operand, e.g. dY^T): rows are contiguous per k
      for (int64_t k = 0; k < kc; k++) {
        std::memcpy(dst + k * MR, a.p + m0 + (pc + k) * a.cs, size_t(rows) * 4);
        for (int r = int(rows); r < MR; r++) dst[k * MR + r] = 0.f;
      }
      continue;
    }
    for (int64_t k = 0; k < kc; k++)
      for (int r = 0; r < MR; r++) {
        const float v = r < rows ? a.p[(m0 + r) * a.rs + (pc + k) * a.cs] : 0.f;
        dst[k * MR + r] = a.round_bf16 ? round_bf16(v) : v;
      }
  }
}

// The tile loop shared by every family. KF supplies:
//   static constexpr int MR, NR, KC;
//   static void micro(int64_t kc, const float* a /*[kc][MR]*/, const float* b /*[kc][NR]*/, float* c, int64_t ldc,
//                     int rows, int cols, float alpha, float beta, const float* bias, bool first);
//     c[r][j] (r < rows, j < cols) = first ? alpha * acc + beta * c + bias[j] : c + alpha * acc
//   static void pack_b_panel(float* dst /*[kc][NR]*/, const BSrc& B, int64_t j0, int cols, int64_t k0, int64_t kc,
//                            float* stage /*NR * KC*/);
template <class KF>
int64_t scratch_floats_t(int64_t ncols) {
  return (ncols + KF::NR - 1) / KF::NR * KF::KC * KF::NR + KF::NR * KF::KC;
}

template <class KF>
void gemm_tile_t(const Tile& t) {
  constexpr int MR = KF::MR, NR = KF::NR, KC = KF::KC;
  const int64_t ncols = t.n1 - t.n0, npanels = (ncols + NR - 1) / NR;
  float* Bp = t.scratch;
  float* stage = Bp + npanels * KC * NR;
  for (int64_t pc = 0; pc < t.K; pc += KC) {
    const int64_t kc = kmin(KC, t.K - pc);
    for (int64_t p = 0; p < npanels; p++)
      KF::pack_b_panel(Bp + p * kc * NR, *t.B, t.n0 + p * NR, int(kmin(NR, ncols - p * NR)), pc, kc, stage);
    // One A micro-panel (MR x kc, L1) against every B panel of the tile (L2): C is written row
    // block by row block, and the weight-sized B is read from L2, not from memory.
    for (int64_t m = t.m0; m < t.m1; m += MR)
      for (int64_t p = 0; p < npanels; p++) {
        const int cols = int(kmin(NR, ncols - p * NR));
        const int64_t j = t.n0 + p * NR;
        KF::micro(kc, t.Ap + pc * t.panels * MR + (m / MR) * kc * MR, Bp + p * kc * NR, t.C + m * t.ldc + j, t.ldc,
                  int(kmin(MR, t.m1 - m)), cols, t.alpha, t.beta, t.bias ? t.bias + j : nullptr, pc == 0);
      }
  }
}

// B panel for a strided f32 B (no transpose needed when its rows run along j).
template <int NR>
void pack_b_strided(float* dst, const BSrc& B, int64_t j0, int cols, int64_t k0, int64_t kc) {
  const float* p = static_cast<const float*>(B.p);
  for (int64_t k = 0; k < kc; k++) {
    float* d = dst + k * NR;
    const float* s = p + (k0 + k) * B.rs + j0 * B.cs;
    if (B.cs == 1)
      for (int j = 0; j < cols; j++) d[j] = s[j];
    else
      for (int j = 0; j < cols; j++) d[j] = s[j * B.cs];
    for (int j = cols; j < NR; j++) d[j] = 0.f;
  }
}

// Scalar GEMV for any format, N <= kGemvMaxRows (the scalar family's, and the tails of the others).
inline void gemv_scalar(float* out, int64_t ldo, const void* xv, int64_t ldx, int64_t N, const BSrc& W, int64_t K,
                        int64_t o0, int64_t o1, const float* bias) {
  const float* x = static_cast<const float*>(xv);
  float row[256];
  for (int64_t o = o0; o < o1; o++) {
    float acc[kGemvMaxRows][8] = {};
    for (int64_t k0 = 0; k0 < K; k0 += 256) {
      const int64_t kn = kmin(256, K - k0);
      fetch_row_scalar(row, W, o, k0, kn);
      for (int64_t n = 0; n < N; n++) {
        const float* xn = x + n * ldx + k0;
        float* a = acc[n];
        int64_t k = 0;
        for (; k + 8 <= kn; k += 8)
          for (int l = 0; l < 8; l++) a[l] += xn[k + l] * row[k + l];
        for (; k < kn; k++) a[k % 8] += xn[k] * row[k];
      }
    }
    for (int64_t n = 0; n < N; n++) {
      float s = 0.f;
      for (int l = 0; l < 8; l++) s += acc[n][l];
      out[n * ldo + o] = (bias ? bias[o] : 0.f) + s;
    }
  }
}

// Scalar Family::few_rows (the scalar family's, and the column tails of the others): 64 columns of
// C at a time in accumulators, each row of B read once for every row of A.
inline void few_rows_scalar(float* C, int64_t ldc, const float* A, int64_t lda, int64_t M, const float* B, int64_t ldb,
                            int64_t K, int64_t n0, int64_t n1, float alpha, float beta, const float* bias) {
  for (int64_t n = n0; n < n1; n += 64) {
    const int64_t nn = kmin(64, n1 - n);
    float acc[kFewRowsMax][64] = {};
    for (int64_t k = 0; k < K; k++) {
      const float* b = B + k * ldb + n;
      for (int64_t m = 0; m < M; m++) {
        const float a = A[m * lda + k];
        for (int64_t j = 0; j < nn; j++) acc[m][j] += a * b[j];
      }
    }
    for (int64_t m = 0; m < M; m++)
      for (int64_t j = 0; j < nn; j++) {
        float& d = C[m * ldc + n + j];
        d = alpha * acc[m][j] + (beta != 0.f ? beta * d : 0.f) + (bias ? bias[n + j] : 0.f);
      }
  }
}

}  // namespace
}  // namespace sec::kern
