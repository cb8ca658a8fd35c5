// The AVX-512 kernel family (F/BW/VL/DQ + FMA + F16C), compiled with those target flags only here
// (CMakeLists.txt) and chosen at run time from cpuid (core/cpu.h). Rules of the family files: see
// ops/kernels.h.
//
// GEMM micro-kernel: 12 rows x 32 columns of C in 24 zmm accumulators; per k one 32-float row of the
// packed B panel (2 loads) and 12 broadcasts of packed A. The B panel (kc = 256 deep, 32 KB) stays
// in L1 while the micro-kernel sweeps the tile's rows. Packing B from weight rows is a transpose
// (16 x 16 blocks in registers); bf16 / f16 / sparse rows are expanded to f32 first.
// GEMV: four weight rows at a time, 16 columns per step (sparse rows by vpermps: 64 for one or two
// rows of x, else 32), each weight vector used for every x row.
// Sparse rows: vexpandps places the next popcount(mask) packed values at the mask's lanes. GCC 12
// folds the 16-float load into vexpandps's memory operand (the values are padded, so the load may
// run past the end); a register form forced with an asm barrier measured the same (Zen 4). Where
// the CPU has AVX512_VPOPCNTDQ the GEMV computes each lane's index instead (expand_vpermps).
// GCC 12 warns about the deliberately undefined pass-through operand inside its own intrinsics.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include "core/cpu.h"
#include "ops/kernel_common.h"

namespace sec::kern {
namespace {

inline __mmask16 tail16(int64_t n) { return n >= 16 ? __mmask16(0xffff) : n <= 0 ? 0 : __mmask16((1u << n) - 1); }

inline uint16_t load_u16(const uint8_t* p) {
  uint16_t v;
  std::memcpy(&v, p, 2);
  return v;
}
inline uint32_t load_u32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

// What vexpandps computes, for 16 columns whose mask is m (mask_bytes: where it is stored): lane i
// takes the packed value popcount(m & (2^i - 1)) or 0. The counts come from one vpopcntd, the
// values from one vpermps: twice vexpandps's speed on AMD Zen 5 (not yet measured on Intel:
// docs/HACKING.md). vpopcntd is written as asm because this file is not compiled for AVX512_VPOPCNTDQ;
// it runs only where cpuid reports it (sparse_vpopcnt()). The 4-byte mask read passes the row's end
// by 2 bytes at most, which stay inside the blob (the values follow the masks, core/sparse.h); the
// bits it adds are cleared by `below`.
inline __m512 expand_vpermps(__mmask16 m, const uint8_t* mask_bytes, const float* vals) {
  const __m512i below = _mm512_setr_epi32(0, 1, 3, 7, 15, 31, 63, 127, 255, 511, 1023, 2047, 4095, 8191, 16383, 32767);
  __m512i idx = _mm512_and_si512(_mm512_set1_epi32(int(load_u32(mask_bytes))), below);
  asm("vpopcntd %1, %0" : "=v"(idx) : "v"(idx));
  return _mm512_maskz_permutexvar_ps(m, idx, _mm512_loadu_ps(vals));  // values are padded: see the top
}

// ---- weight rows as f32, 16 columns at a time ------------------------------------------------------
// Row j from column k0 on (k0 a multiple of 16): next(mk) gives the next 16 columns (lanes outside
// mk zero), converted in registers.
template <WFormat F>
struct RowReader {
  const void* p = nullptr;        // dense formats: the next element
  const float* vals = nullptr;    // sparse: the next stored value
  const uint8_t* mask = nullptr;  // sparse: the next 16 columns' mask bits
  RowReader() = default;
  RowReader(const BSrc& B, int64_t j, int64_t k0) {
    if constexpr (F == WFormat::Sparse) {
      mask = B.mask + j * B.mask_stride + k0 / 8;
      vals = B.values + B.row_off[j] + sparse_prefix(B, j, k0);
    } else if constexpr (F == WFormat::F32) {
      p = static_cast<const float*>(B.p) + j * B.ld + k0;
    } else {
      p = static_cast<const uint16_t*>(B.p) + j * B.ld + k0;
    }
  }
  const void* ahead(int64_t n) const {  // for prefetching: n columns ahead (sparse: about n / 2)
    if constexpr (F == WFormat::Sparse) return vals + n / 2;
    if constexpr (F == WFormat::F32) return static_cast<const float*>(p) + n;
    return static_cast<const uint16_t*>(p) + n;
  }
  __m512 next(__mmask16 mk) {
    if constexpr (F == WFormat::Sparse) {
      const __mmask16 m = __mmask16(load_u16(mask) & mk);
      const __m512 v = _mm512_maskz_expand_ps(m, _mm512_loadu_ps(vals));  // values are padded: see the top
      vals += __builtin_popcount(m);
      mask += 2;
      return v;
    } else if constexpr (F == WFormat::F32) {
      const float* q = static_cast<const float*>(p);
      p = q + 16;
      return mk == 0xffff ? _mm512_loadu_ps(q) : _mm512_maskz_loadu_ps(mk, q);
    } else {
      const uint16_t* q = static_cast<const uint16_t*>(p);
      p = q + 16;
      const __m256i h = _mm256_maskz_loadu_epi16(mk, q);
      if constexpr (F == WFormat::BF16) return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
      return _mm512_cvtph_ps(h);
    }
  }
};

// ---- 16 x 16 transpose: out[c] = column c of the rows r[0..15] ------------------------------------------
inline void transpose16(__m512 r[16]) {
  __m512 t[16], u[16];
  for (int i = 0; i < 8; i++) {
    t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
  }
  for (int i = 0; i < 4; i++) {
    const __m512d a = _mm512_castps_pd(t[4 * i]), b = _mm512_castps_pd(t[4 * i + 1]);
    const __m512d c = _mm512_castps_pd(t[4 * i + 2]), d = _mm512_castps_pd(t[4 * i + 3]);
    u[4 * i + 0] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, c));
    u[4 * i + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, c));
    u[4 * i + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(b, d));
    u[4 * i + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(b, d));
  }
  // u[4i + q], 128-bit lane l: column 4l + q of rows 4i..4i+3.
  for (int q = 0; q < 4; q++) {
    const __m512 v0 = _mm512_shuffle_f32x4(u[q], u[4 + q], 0x88), w0 = _mm512_shuffle_f32x4(u[q], u[4 + q], 0xdd);
    const __m512 v1 = _mm512_shuffle_f32x4(u[8 + q], u[12 + q], 0x88);
    const __m512 w1 = _mm512_shuffle_f32x4(u[8 + q], u[12 + q], 0xdd);
    r[q] = _mm512_shuffle_f32x4(v0, v1, 0x88);
    r[8 + q] = _mm512_shuffle_f32x4(v0, v1, 0xdd);
    r[4 + q] = _mm512_shuffle_f32x4(w0, w1, 0x88);
    r[12 + q] = _mm512_shuffle_f32x4(w0, w1, 0xdd);
  }
}

template <int MR_>
struct Avx512 {
  static constexpr int MR = MR_, NR = 32, KC = 512;

  static void micro(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, int rows, int cols, float alpha,
                    float beta, const float* bias, bool first) {
    // The C tile is read (or written) after the K loop: start fetching it now, so the store does not
    // wait on memory (C is usually not in cache on the first K-block).
    for (int r = 0; r < rows; r++) {
      _mm_prefetch(reinterpret_cast<const char*>(c + r * ldc), _MM_HINT_T0);
      _mm_prefetch(reinterpret_cast<const char*>(c + r * ldc + 16), _MM_HINT_T0);
    }
    __m512 c0[MR], c1[MR];
#pragma GCC unroll 16
    for (int r = 0; r < MR; r++) c0[r] = c1[r] = _mm512_setzero_ps();
#pragma GCC unroll 4
    for (int64_t k = 0; k < kc; k++) {
      const __m512 b0 = _mm512_load_ps(b + k * NR), b1 = _mm512_load_ps(b + k * NR + 16);
      const float* ak = a + k * MR;
      _mm_prefetch(reinterpret_cast<const char*>(ak + 16 * MR), _MM_HINT_T0);
#pragma GCC unroll 16
      for (int r = 0; r < MR; r++) {
        const __m512 ar = _mm512_set1_ps(ak[r]);
        c0[r] = _mm512_fmadd_ps(ar, b0, c0[r]);
        c1[r] = _mm512_fmadd_ps(ar, b1, c1[r]);
      }
    }
    const __mmask16 m0 = tail16(cols), m1 = tail16(cols - 16);
    const __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
    const __m512 bias0 = first && bias ? _mm512_maskz_loadu_ps(m0, bias) : _mm512_setzero_ps();
    const __m512 bias1 = first && bias ? _mm512_maskz_loadu_ps(m1, bias + 16) : _mm512_setzero_ps();
#pragma GCC unroll 16
    for (int r = 0; r < MR; r++) {
      if (r >= rows) break;
      float* cr = c + r * ldc;
      __m512 v0 = c0[r], v1 = c1[r];
      if (alpha != 1.f) v0 = _mm512_mul_ps(v0, va), v1 = _mm512_mul_ps(v1, va);
      if (first) {
        if (beta != 0.f) {
          v0 = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(m0, cr), v0);
          v1 = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(m1, cr + 16), v1);
        }
        v0 = _mm512_add_ps(v0, bias0);
        v1 = _mm512_add_ps(v1, bias1);
      } else {
        v0 = _mm512_add_ps(v0, _mm512_maskz_loadu_ps(m0, cr));
        v1 = _mm512_add_ps(v1, _mm512_maskz_loadu_ps(m1, cr + 16));
      }
      _mm512_mask_storeu_ps(cr, m0, v0);
      _mm512_mask_storeu_ps(cr + 16, m1, v1);
    }
  }

  // dst [kc][32] = columns j0..j0+31 of B, K-rows k0..k0+kc. Weight rows in any format are read
  // and converted in registers, 16 rows x 16 columns at a time, then transposed (no staging copy).
  static void pack_b_panel(float* dst, const BSrc& B, int64_t j0, int cols, int64_t k0, int64_t kc,
                           float* /*stage: not needed here*/) {
    if (!B.weight) return pack_b_strided<NR>(dst, B, j0, cols, k0, kc);
    switch (B.format) {
      case WFormat::F32:
        return pack_b_rows<WFormat::F32>(dst, B, j0, cols, k0, kc);
      case WFormat::BF16:
        return pack_b_rows<WFormat::BF16>(dst, B, j0, cols, k0, kc);
      case WFormat::F16:
        return pack_b_rows<WFormat::F16>(dst, B, j0, cols, k0, kc);
      case WFormat::Sparse:
        return pack_b_rows<WFormat::Sparse>(dst, B, j0, cols, k0, kc);
    }
  }

  template <WFormat F>
  static void pack_b_rows(float* dst, const BSrc& B, int64_t j0, int cols, int64_t k0, int64_t kc) {
    for (int h = 0; h < 2; h++) {
      const int n = int(kmin(16, kmax(0, cols - h * 16)));  // rows of this half that exist
      if (n == 0) {
        for (int64_t k = 0; k < kc; k++) _mm512_store_ps(dst + k * NR + h * 16, _mm512_setzero_ps());
        continue;
      }
      RowReader<F> rd[16];
      for (int i = 0; i < n; i++) rd[i] = RowReader<F>(B, j0 + h * 16 + i, k0);
      for (int64_t k = 0; k < kc; k += 16) {
        const __mmask16 mk = tail16(kc - k);
        __m512 r[16];
        for (int i = 0; i < 16; i++) {
          if (i < n) {
            if (k + 64 < kc) _mm_prefetch(static_cast<const char*>(rd[i].ahead(64)), _MM_HINT_T0);
            r[i] = rd[i].next(mk);
          } else {
            r[i] = _mm512_setzero_ps();
          }
        }
        transpose16(r);
        const int64_t kn = kmin(16, kc - k);
        for (int i = 0; i < kn; i++) _mm512_store_ps(dst + (k + i) * NR + h * 16, r[i]);
      }
    }
  }
};

using Gemm = Avx512<14>;  // 12 x 32 measured as fast as 14 x 32 (bench/bench_gemm), less register pressure

// bf16 rounding of 16 floats (nearest, ties to even; NaN stays NaN), as f32.
inline __m512 round_bf16_16(__m512 v) {
  const __m512i u = _mm512_castps_si512(v);
  const __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
  __m512i r = _mm512_add_epi32(u, _mm512_add_epi32(lsb, _mm512_set1_epi32(0x7fff)));
  r = _mm512_mask_or_epi32(r, _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q), u, _mm512_set1_epi32(0x400000));
  return _mm512_castsi512_ps(_mm512_and_si512(r, _mm512_set1_epi32(int(0xffff0000u))));
}

// Panel p of packed A (layout: kernels.h). Row-major A: 16 x 16 blocks transposed in registers.
void pack_a(float* Ap, const ASrc& a, int64_t panels, int64_t p, int64_t m0, int64_t rows, int64_t K) {
  constexpr int MR = Gemm::MR, KC = Gemm::KC;
  if (a.cs != 1) return pack_a_generic<MR, KC>(Ap, a, panels, p, m0, rows, K);
  const __mmask16 lanes = __mmask16((1u << MR) - 1);
  for (int64_t pc = 0; pc < K; pc += KC) {
    const int64_t kc = kmin(KC, K - pc);
    float* dst = Ap + pc * panels * MR + p * kc * MR;
    for (int64_t k = 0; k < kc; k += 16) {
      const __mmask16 mk = tail16(kc - k);
      __m512 r[16];
      for (int i = 0; i < 16; i++) {
        r[i] = i < rows ? _mm512_maskz_loadu_ps(mk, a.p + (m0 + i) * a.rs + pc + k) : _mm512_setzero_ps();
        if (a.round_bf16) r[i] = round_bf16_16(r[i]);
      }
      transpose16(r);
      for (int64_t c = 0, e = kmin(16, kc - k); c < e; c++) _mm512_mask_storeu_ps(dst + (k + c) * MR, lanes, r[c]);
    }
  }
}

// ---- GEMV ----------------------------------------------------------------------------------------------
// Weight row o's 16 values at columns [k, k + 16) as f32 (dense formats; lanes past K are zero).
template <WFormat F>
inline __m512 wvec(const BSrc& W, int64_t o, int64_t k, __mmask16 mk) {
  if constexpr (F == WFormat::F32) {
    return _mm512_maskz_loadu_ps(mk, static_cast<const float*>(W.p) + o * W.ld + k);
  } else if constexpr (F == WFormat::BF16) {
    const __m256i h = _mm256_maskz_loadu_epi16(mk, static_cast<const uint16_t*>(W.p) + o * W.ld + k);
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
  } else {
    return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(mk, static_cast<const uint16_t*>(W.p) + o * W.ld + k));
  }
}

// R weight rows from o, NX rows of x: out[n][o + r] = x[n] . W[o + r] + bias.
// The prefetch (GemvPrefetch, kernel_common.h), measured in bench_gemv (4 blocks, one row of x):
// f16 1.62x -> 1.9x and 50% sparse 1.5x -> 1.66x the f32 speed.

// Vpermps (sparse only): expand_vpermps instead of vexpandps.
template <WFormat F, int R, int NX, bool Vpermps = false>
void gemv_block(float* out, int64_t ldo, const float* x, int64_t ldx, const BSrc& W, int64_t K, int64_t o, int64_t o1,
                const float* bias) {
  __m512 acc[R][NX];
  for (int r = 0; r < R; r++)
    for (int n = 0; n < NX; n++) acc[r][n] = _mm512_setzero_ps();
  const float* vals[R] = {};
  const uint8_t* masks[R];
  if constexpr (F == WFormat::Sparse)
    for (int r = 0; r < R; r++) {
      vals[r] = W.values + W.row_off[o + r];
      masks[r] = W.mask + (o + r) * W.mask_stride;
    }
  if constexpr (F == WFormat::Sparse)  // the next block's masks (the values: GemvPrefetch)
    if (o + 2 * R <= o1)
      for (int64_t b = 0; b < R * W.mask_stride; b += 64)
        _mm_prefetch(reinterpret_cast<const char*>(W.mask + (o + R) * W.mask_stride + b), _MM_HINT_T0);
  const GemvPrefetch<F, R> pf(W, K, o, o1);
  // Full groups of 16 columns without masks (a masked load costs an extra uop), then the tail.
  auto step = [&](int64_t k, __mmask16 mk, bool full) {
    __m512 xv[NX];
    for (int n = 0; n < NX; n++)
      xv[n] = full ? _mm512_loadu_ps(x + n * ldx + k) : _mm512_maskz_loadu_ps(mk, x + n * ldx + k);
    for (int r = 0; r < R; r++) {
      __m512 w;
      _mm_prefetch(pf.address(r, k, vals[r]), _MM_HINT_T0);
      if constexpr (F == WFormat::Sparse) {
        const __mmask16 m = __mmask16(load_u16(masks[r] + k / 8) & mk);  // mask bits past K are 0
        if constexpr (Vpermps)
          w = expand_vpermps(m, masks[r] + k / 8, vals[r]);
        else
          w = _mm512_maskz_expand_ps(m, _mm512_loadu_ps(vals[r]));
        vals[r] += __builtin_popcount(m);
      } else if constexpr (F == WFormat::F32) {
        const float* p = static_cast<const float*>(W.p) + (o + r) * W.ld + k;
        w = full ? _mm512_loadu_ps(p) : _mm512_maskz_loadu_ps(mk, p);
      } else {
        w = wvec<F>(W, o + r, k, mk);
      }
      for (int n = 0; n < NX; n++) acc[r][n] = _mm512_fmadd_ps(w, xv[n], acc[r][n]);
    }
  };
  // Sparse with vpermps: G groups of 16 columns per step (4 for one or two rows of x, else 2, for the
  // registers), so each row's mask word, prefetch address and pointer update serve G vectors (the
  // scalar work, not the shuffles, limited a 16-column step on Zen 5).
  constexpr int G = NX <= 2 ? 4 : 2;
  auto step_groups = [&](int64_t k) {
    __m512 xv[G][NX];
    for (int g = 0; g < G; g++)
      for (int n = 0; n < NX; n++) xv[g][n] = _mm512_loadu_ps(x + n * ldx + k + 16 * g);
    for (int r = 0; r < R; r++) {
      const char* p = pf.address(r, k, vals[r]);
      for (int l = 0; l < G / 2; l++) _mm_prefetch(p + 64 * l, _MM_HINT_T0);  // 32 columns: 64 bytes at 50%
      const uint8_t* mb = masks[r] + k / 8;
      uint64_t word = 0;
      std::memcpy(&word, mb, 2 * G);
      for (int g = 0; g < G; g++) {
        const float* v = vals[r] + __builtin_popcountll(word & ((uint64_t(1) << (16 * g)) - 1));
        const __m512 w = expand_vpermps(__mmask16(word >> (16 * g)), mb + 2 * g, v);
        for (int n = 0; n < NX; n++) acc[r][n] = _mm512_fmadd_ps(w, xv[g][n], acc[r][n]);
      }
      vals[r] += __builtin_popcountll(word);
    }
  };
  int64_t k = 0;
  if constexpr (F == WFormat::Sparse && Vpermps)
    for (; k + 16 * G <= K; k += 16 * G) step_groups(k);
  for (; k + 16 <= K; k += 16) step(k, 0xffff, true);
  if (k < K) step(k, tail16(K - k), false);
  for (int r = 0; r < R; r++)
    for (int n = 0; n < NX; n++) out[n * ldo + o + r] = _mm512_reduce_add_ps(acc[r][n]) + (bias ? bias[o + r] : 0.f);
}

template <WFormat F, int NX, bool Vpermps>
void gemv_rows(float* out, int64_t ldo, const float* x, int64_t ldx, const BSrc& W, int64_t K, int64_t o0, int64_t o1,
               const float* bias) {
  int64_t o = o0;
  for (; o + 4 <= o1; o += 4) gemv_block<F, 4, NX, Vpermps>(out, ldo, x, ldx, W, K, o, o1, bias);
  for (; o < o1; o++) gemv_block<F, 1, NX, Vpermps>(out, ldo, x, ldx, W, K, o, o1, bias);
}

template <WFormat F, bool Vpermps = false>
void gemv_format(float* out, int64_t ldo, const float* x, int64_t ldx, int64_t N, const BSrc& W, int64_t K, int64_t o0,
                 int64_t o1, const float* bias) {
  for (int64_t n = 0; n < N; n += 4) {
    const float* xn = x + n * ldx;
    float* on = out + n * ldo;
    switch (kmin(4, N - n)) {
      case 1:
        gemv_rows<F, 1, Vpermps>(on, ldo, xn, ldx, W, K, o0, o1, bias);
        break;
      case 2:
        gemv_rows<F, 2, Vpermps>(on, ldo, xn, ldx, W, K, o0, o1, bias);
        break;
      case 3:
        gemv_rows<F, 3, Vpermps>(on, ldo, xn, ldx, W, K, o0, o1, bias);
        break;
      default:
        gemv_rows<F, 4, Vpermps>(on, ldo, xn, ldx, W, K, o0, o1, bias);
        break;
    }
  }
}

void gemv(float* out, int64_t ldo, const void* xv, int64_t ldx, int64_t N, const BSrc& W, int64_t K, int64_t o0,
          int64_t o1, const float* bias) {
  const float* x = static_cast<const float*>(xv);
  switch (W.format) {
    case WFormat::F32:
      return gemv_format<WFormat::F32>(out, ldo, x, ldx, N, W, K, o0, o1, bias);
    case WFormat::BF16:
      return gemv_format<WFormat::BF16>(out, ldo, x, ldx, N, W, K, o0, o1, bias);
    case WFormat::F16:
      return gemv_format<WFormat::F16>(out, ldo, x, ldx, N, W, K, o0, o1, bias);
    case WFormat::Sparse:
      if (sparse_vpopcnt()) return gemv_format<WFormat::Sparse, true>(out, ldo, x, ldx, N, W, K, o0, o1, bias);
      return gemv_format<WFormat::Sparse>(out, ldo, x, ldx, N, W, K, o0, o1, bias);
  }
}

// ---- few rows of A times a row-major B ---------------------------------------------------------------
// 64 columns per pass in 4 x M zmm accumulators (masked at the end of the range): each row of B is
// loaded once for all M rows of A.
template <int M>
void few_rows_pass(float* C, int64_t ldc, const float* A, int64_t lda, const float* B, int64_t ldb, int64_t K,
                   int64_t n, int64_t n1, float alpha, float beta, const float* bias) {
  __mmask16 mk[4];
  for (int c = 0; c < 4; c++) mk[c] = tail16(n1 - n - 16 * c);
  __m512 acc[M][4];
  for (int m = 0; m < M; m++)
    for (int c = 0; c < 4; c++) acc[m][c] = _mm512_setzero_ps();
  for (int64_t k = 0; k < K; k++) {
    const float* b = B + k * ldb + n;
    __m512 bv[4];
    for (int c = 0; c < 4; c++) bv[c] = _mm512_maskz_loadu_ps(mk[c], b + 16 * c);
    for (int m = 0; m < M; m++) {
      const __m512 a = _mm512_set1_ps(A[m * lda + k]);
      for (int c = 0; c < 4; c++) acc[m][c] = _mm512_fmadd_ps(a, bv[c], acc[m][c]);
    }
  }
  for (int m = 0; m < M; m++)
    for (int c = 0; c < 4; c++) {
      float* d = C + m * ldc + n + 16 * c;
      __m512 r = _mm512_mul_ps(_mm512_set1_ps(alpha), acc[m][c]);
      if (beta != 0.f) r = _mm512_fmadd_ps(_mm512_set1_ps(beta), _mm512_maskz_loadu_ps(mk[c], d), r);
      if (bias) r = _mm512_add_ps(r, _mm512_maskz_loadu_ps(mk[c], bias + n + 16 * c));
      _mm512_mask_storeu_ps(d, mk[c], r);
    }
}

void few_rows(float* C, int64_t ldc, const float* A, int64_t lda, int64_t M, const float* B, int64_t ldb, int64_t K,
              int64_t n0, int64_t n1, float alpha, float beta, const float* bias) {
  for (int64_t n = n0; n < n1; n += 64) {
    switch (M) {
      case 1:
        few_rows_pass<1>(C, ldc, A, lda, B, ldb, K, n, n1, alpha, beta, bias);
        break;
      case 2:
        few_rows_pass<2>(C, ldc, A, lda, B, ldb, K, n, n1, alpha, beta, bias);
        break;
      case 3:
        few_rows_pass<3>(C, ldc, A, lda, B, ldb, K, n, n1, alpha, beta, bias);
        break;
      default:
        few_rows_pass<4>(C, ldc, A, lda, B, ldb, K, n, n1, alpha, beta, bias);
        break;
    }
  }
}

}  // namespace

const Family& family_avx512() {
  static const Family f{"avx512", Gemm::MR, Gemm::NR, Gemm::KC, pack_a, gemm_tile_t<Gemm>, scratch_floats_t<Gemm>,
                        gemv,     few_rows, false};
  return f;
}

}  // namespace sec::kern
