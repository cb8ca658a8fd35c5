// The AVX2 kernel family (AVX2 + FMA + F16C), compiled with those target flags only here
// (CMakeLists.txt) and chosen at run time from cpuid. Rules of the family files: see ops/kernels.h.
//
// GEMM micro-kernel: 6 rows x 16 columns of C in 12 ymm accumulators. Packing B from weight rows is
// an 8 x 8 register transpose. Sparse rows have no vexpandps here: 8 packed values are loaded and
// moved to the mask's lanes with vpermps from a 256-entry table (lanes not in the mask zeroed); the
// values array is padded so that the load may run past its end (core/sparse.h).
// GCC 12 warns about the deliberately undefined pass-through operand inside its own intrinsics.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include "ops/kernel_common.h"

namespace sec::kern {
namespace {

// For an 8-bit mask: the permutation taking packed values to the mask's lanes, and the lane mask.
struct ExpandTable {
  int32_t idx[256][8];
  int32_t keep[256][8];
};
constexpr ExpandTable make_expand_table() {
  ExpandTable t{};
  for (int m = 0; m < 256; m++) {
    int next = 0;
    for (int l = 0; l < 8; l++) {
      const bool on = (m >> l) & 1;
      t.idx[m][l] = on ? next : 0;
      t.keep[m][l] = on ? -1 : 0;
      next += on;
    }
  }
  return t;
}
alignas(64) constexpr ExpandTable kExpand = make_expand_table();

inline __m256 expand8(const float* v, unsigned m) {
  const __m256 packed = _mm256_loadu_ps(v);
  const __m256 moved =
      _mm256_permutevar8x32_ps(packed, _mm256_load_si256(reinterpret_cast<const __m256i*>(kExpand.idx[m])));
  return _mm256_and_ps(moved,
                       _mm256_castsi256_ps(_mm256_load_si256(reinterpret_cast<const __m256i*>(kExpand.keep[m]))));
}

inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
  return _mm_cvtss_f32(s);
}

// Row j, columns [k0, k0 + n) -> dst as f32 (k0 a multiple of 8).
inline void fetch_row(float* dst, const BSrc& B, int64_t j, int64_t k0, int64_t n) {
  const int64_t full = n / 8 * 8;
  switch (B.format) {
    case WFormat::F32:
      break;
    case WFormat::BF16: {
      const uint16_t* w = static_cast<const uint16_t*>(B.p) + j * B.ld + k0;
      for (int64_t k = 0; k < full; k += 8) {
        const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(w + k));
        _mm256_storeu_ps(dst + k, _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16)));
      }
      break;
    }
    case WFormat::F16: {
      const uint16_t* w = static_cast<const uint16_t*>(B.p) + j * B.ld + k0;
      for (int64_t k = 0; k < full; k += 8)
        _mm256_storeu_ps(dst + k, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w + k))));
      break;
    }
    case WFormat::Sparse: {
      const uint8_t* m = B.mask + j * B.mask_stride + k0 / 8;
      const float* v = B.values + B.row_off[j] + sparse_prefix(B, j, k0);
      for (int64_t k = 0; k < full; k += 8) {
        const unsigned mk = m[k / 8];
        _mm256_storeu_ps(dst + k, expand8(v, mk));
        v += __builtin_popcount(mk);
      }
      break;
    }
  }
  if (B.format == WFormat::F32 || full < n)
    fetch_row_scalar(dst + (B.format == WFormat::F32 ? 0 : full), B, j, k0 + (B.format == WFormat::F32 ? 0 : full),
                     B.format == WFormat::F32 ? n : n - full);
}

// 8 x 8 transpose in registers.
inline void transpose8(__m256 r[8]) {
  __m256 t[8], u[8];
  for (int i = 0; i < 4; i++) {
    t[2 * i] = _mm256_unpacklo_ps(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm256_unpackhi_ps(r[2 * i], r[2 * i + 1]);
  }
  for (int i = 0; i < 2; i++) {
    const __m256d a = _mm256_castps_pd(t[4 * i]), b = _mm256_castps_pd(t[4 * i + 1]);
    const __m256d c = _mm256_castps_pd(t[4 * i + 2]), d = _mm256_castps_pd(t[4 * i + 3]);
    u[4 * i + 0] = _mm256_castpd_ps(_mm256_unpacklo_pd(a, c));
    u[4 * i + 1] = _mm256_castpd_ps(_mm256_unpackhi_pd(a, c));
    u[4 * i + 2] = _mm256_castpd_ps(_mm256_unpacklo_pd(b, d));
    u[4 * i + 3] = _mm256_castpd_ps(_mm256_unpackhi_pd(b, d));
  }
  // u[4i + q], 128-bit lane l: column 4l + q of rows 4i..4i+3.
  for (int q = 0; q < 4; q++) {
    r[q] = _mm256_permute2f128_ps(u[q], u[4 + q], 0x20);
    r[4 + q] = _mm256_permute2f128_ps(u[q], u[4 + q], 0x31);
  }
}

struct Avx2 {
  static constexpr int MR = 6, NR = 16, KC = 256;

  static void micro(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, int rows, int cols, float alpha,
                    float beta, const float* bias, bool first) {
    __m256 c0[MR], c1[MR];
#pragma GCC unroll 8
    for (int r = 0; r < MR; r++) c0[r] = c1[r] = _mm256_setzero_ps();
#pragma GCC unroll 4
    for (int64_t k = 0; k < kc; k++) {
      const __m256 b0 = _mm256_load_ps(b + k * NR), b1 = _mm256_load_ps(b + k * NR + 8);
      const float* ak = a + k * MR;
      _mm_prefetch(reinterpret_cast<const char*>(ak + 16 * MR), _MM_HINT_T0);
#pragma GCC unroll 8
      for (int r = 0; r < MR; r++) {
        const __m256 ar = _mm256_broadcast_ss(ak + r);
        c0[r] = _mm256_fmadd_ps(ar, b0, c0[r]);
        c1[r] = _mm256_fmadd_ps(ar, b1, c1[r]);
      }
    }
    alignas(32) float tile[MR][NR];
#pragma GCC unroll 8
    for (int r = 0; r < MR; r++) {
      _mm256_store_ps(tile[r], c0[r]);
      _mm256_store_ps(tile[r] + 8, c1[r]);
    }
    for (int r = 0; r < rows; r++) {
      float* cr = c + r * ldc;
      if (cols == NR) {
        __m256 v0 = _mm256_load_ps(tile[r]), v1 = _mm256_load_ps(tile[r] + 8);
        if (alpha != 1.f) v0 = _mm256_mul_ps(v0, _mm256_set1_ps(alpha)), v1 = _mm256_mul_ps(v1, _mm256_set1_ps(alpha));
        if (first) {
          if (beta != 0.f) {
            v0 = _mm256_fmadd_ps(_mm256_set1_ps(beta), _mm256_loadu_ps(cr), v0);
            v1 = _mm256_fmadd_ps(_mm256_set1_ps(beta), _mm256_loadu_ps(cr + 8), v1);
          }
          if (bias) v0 = _mm256_add_ps(v0, _mm256_loadu_ps(bias)), v1 = _mm256_add_ps(v1, _mm256_loadu_ps(bias + 8));
        } else {
          v0 = _mm256_add_ps(v0, _mm256_loadu_ps(cr));
          v1 = _mm256_add_ps(v1, _mm256_loadu_ps(cr + 8));
        }
        _mm256_storeu_ps(cr, v0);
        _mm256_storeu_ps(cr + 8, v1);
        continue;
      }
      for (int j = 0; j < cols; j++) {
        float& d = cr[j];
        if (first)
          d = alpha * tile[r][j] + (beta != 0.f ? beta * d : 0.f) + (bias ? bias[j] : 0.f);
        else
          d += alpha * tile[r][j];
      }
    }
  }

  static void pack_b_panel(float* dst, const BSrc& B, int64_t j0, int cols, int64_t k0, int64_t kc, float* stage) {
    if (!B.weight) return pack_b_strided<NR>(dst, B, j0, cols, k0, kc);
    const float* rows[NR];
    for (int j = 0; j < NR; j++) {
      if (j >= cols) {
        rows[j] = nullptr;
      } else if (B.format == WFormat::F32) {
        rows[j] = static_cast<const float*>(B.p) + (j0 + j) * B.ld + k0;
      } else {
        fetch_row(stage + j * KC, B, j0 + j, k0, kc);
        rows[j] = stage + j * KC;
      }
    }
    const int64_t full = kc / 8 * 8;
    for (int h = 0; h < 2; h++) {
      for (int64_t k = 0; k < full; k += 8) {
        __m256 r[8];
        for (int i = 0; i < 8; i++) {
          const float* src = rows[h * 8 + i];
          r[i] = src ? _mm256_loadu_ps(src + k) : _mm256_setzero_ps();
        }
        transpose8(r);
        for (int i = 0; i < 8; i++) _mm256_store_ps(dst + (k + i) * NR + h * 8, r[i]);
      }
    }
    for (int64_t k = full; k < kc; k++)
      for (int j = 0; j < NR; j++) dst[k * NR + j] = rows[j] ? rows[j][k] : 0.f;
  }
};

// Panel p of packed A (layout: kernels.h). Row-major A without bf16 rounding: 8 x 8 blocks
// transposed in registers (rows 6 and 7 zero), 6 lanes stored per column.
void pack_a(float* Ap, const ASrc& a, int64_t panels, int64_t p, int64_t m0, int64_t rows, int64_t K) {
  constexpr int MR = Avx2::MR, KC = Avx2::KC;
  if (a.cs != 1 || a.round_bf16) return pack_a_generic<MR, KC>(Ap, a, panels, p, m0, rows, K);
  const __m256i lanes = _mm256_setr_epi32(-1, -1, -1, -1, -1, -1, 0, 0);
  for (int64_t pc = 0; pc < K; pc += KC) {
    const int64_t kc = kmin(KC, K - pc), full = kc / 8 * 8;
    float* dst = Ap + pc * panels * MR + p * kc * MR;
    for (int64_t k = 0; k < full; k += 8) {
      __m256 r[8];
      for (int i = 0; i < 8; i++)
        r[i] = i < rows ? _mm256_loadu_ps(a.p + (m0 + i) * a.rs + pc + k) : _mm256_setzero_ps();
      transpose8(r);
      for (int c = 0; c < 8; c++) _mm256_maskstore_ps(dst + (k + c) * MR, lanes, r[c]);
    }
    for (int64_t k = full; k < kc; k++)
      for (int r = 0; r < MR; r++) dst[k * MR + r] = r < rows ? a.p[(m0 + r) * a.rs + pc + k] : 0.f;
  }
}

// ---- GEMV ----------------------------------------------------------------------------------------------
template <WFormat F>
inline __m256 wvec(const BSrc& W, int64_t o, int64_t k) {
  if constexpr (F == WFormat::F32) {
    return _mm256_loadu_ps(static_cast<const float*>(W.p) + o * W.ld + k);
  } else if constexpr (F == WFormat::BF16) {
    const __m128i h =
        _mm_loadu_si128(reinterpret_cast<const __m128i*>(static_cast<const uint16_t*>(W.p) + o * W.ld + k));
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
  } else {
    return _mm256_cvtph_ps(
        _mm_loadu_si128(reinterpret_cast<const __m128i*>(static_cast<const uint16_t*>(W.p) + o * W.ld + k)));
  }
}

// R weight rows from o, NX rows of x.
template <WFormat F, int R, int NX>
void gemv_block(float* out, int64_t ldo, const float* x, int64_t ldx, const BSrc& W, int64_t K, int64_t o, int64_t o1,
                const float* bias) {
  __m256 acc[R][NX];
  for (int r = 0; r < R; r++)
    for (int n = 0; n < NX; n++) acc[r][n] = _mm256_setzero_ps();
  const float* vals[R] = {};
  const uint8_t* masks[R];
  if constexpr (F == WFormat::Sparse)
    for (int r = 0; r < R; r++) {
      vals[r] = W.values + W.row_off[o + r];
      masks[r] = W.mask + (o + r) * W.mask_stride;
    }
  const GemvPrefetch<F, R> pf(W, K, o, o1);
  const int64_t full = K / 8 * 8;
  for (int64_t k = 0; k < full; k += 8) {
    __m256 xv[NX];
    for (int n = 0; n < NX; n++) xv[n] = _mm256_loadu_ps(x + n * ldx + k);
    for (int r = 0; r < R; r++) {
      __m256 w;
      _mm_prefetch(pf.address(r, k, vals[r]), _MM_HINT_T0);
      if constexpr (F == WFormat::Sparse) {
        const unsigned m = masks[r][k / 8];
        w = expand8(vals[r], m);
        vals[r] += __builtin_popcount(m);
      } else {
        w = wvec<F>(W, o + r, k);
      }
      for (int n = 0; n < NX; n++) acc[r][n] = _mm256_fmadd_ps(w, xv[n], acc[r][n]);
    }
  }
  float tail[8];
  for (int r = 0; r < R; r++) {
    if (full < K) fetch_row_scalar(tail, W, o + r, full, K - full);
    for (int n = 0; n < NX; n++) {
      float s = hsum(acc[r][n]) + (bias ? bias[o + r] : 0.f);
      for (int64_t k = full; k < K; k++) s += tail[k - full] * x[n * ldx + k];
      out[n * ldo + o + r] = s;
    }
  }
}

template <WFormat F, int NX>
void gemv_rows(float* out, int64_t ldo, const float* x, int64_t ldx, const BSrc& W, int64_t K, int64_t o0, int64_t o1,
               const float* bias) {
  int64_t o = o0;
  for (; o + 4 <= o1; o += 4) gemv_block<F, 4, NX>(out, ldo, x, ldx, W, K, o, o1, bias);
  for (; o < o1; o++) gemv_block<F, 1, NX>(out, ldo, x, ldx, W, K, o, o1, bias);
}

template <WFormat F>
void gemv_format(float* out, int64_t ldo, const float* x, int64_t ldx, int64_t N, const BSrc& W, int64_t K, int64_t o0,
                 int64_t o1, const float* bias) {
  for (int64_t n = 0; n < N; n += 2) {
    if (N - n >= 2)
      gemv_rows<F, 2>(out + n * ldo, ldo, x + n * ldx, ldx, W, K, o0, o1, bias);
    else
      gemv_rows<F, 1>(out + n * ldo, ldo, x + n * ldx, ldx, W, K, o0, o1, bias);
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
      return gemv_format<WFormat::Sparse>(out, ldo, x, ldx, N, W, K, o0, o1, bias);
  }
}

// ---- few rows of A times a row-major B ---------------------------------------------------------------
// 16 columns per pass in 2 x M ymm accumulators, each row of B loaded once for all M rows of A; the
// last columns (fewer than 16) on the scalar code.
template <int M>
void few_rows_pass(float* C, int64_t ldc, const float* A, int64_t lda, const float* B, int64_t ldb, int64_t K,
                   int64_t n, float alpha, float beta, const float* bias) {
  __m256 acc[M][2];
  for (int m = 0; m < M; m++) acc[m][0] = acc[m][1] = _mm256_setzero_ps();
  for (int64_t k = 0; k < K; k++) {
    const float* b = B + k * ldb + n;
    const __m256 b0 = _mm256_loadu_ps(b), b1 = _mm256_loadu_ps(b + 8);
    for (int m = 0; m < M; m++) {
      const __m256 a = _mm256_broadcast_ss(A + m * lda + k);
      acc[m][0] = _mm256_fmadd_ps(a, b0, acc[m][0]);
      acc[m][1] = _mm256_fmadd_ps(a, b1, acc[m][1]);
    }
  }
  for (int m = 0; m < M; m++)
    for (int c = 0; c < 2; c++) {
      float* d = C + m * ldc + n + 8 * c;
      __m256 r = _mm256_mul_ps(_mm256_set1_ps(alpha), acc[m][c]);
      if (beta != 0.f) r = _mm256_fmadd_ps(_mm256_set1_ps(beta), _mm256_loadu_ps(d), r);
      if (bias) r = _mm256_add_ps(r, _mm256_loadu_ps(bias + n + 8 * c));
      _mm256_storeu_ps(d, r);
    }
}

void few_rows(float* C, int64_t ldc, const float* A, int64_t lda, int64_t M, const float* B, int64_t ldb, int64_t K,
              int64_t n0, int64_t n1, float alpha, float beta, const float* bias) {
  int64_t n = n0;
  for (; n + 16 <= n1; n += 16) {
    switch (M) {
      case 1:
        few_rows_pass<1>(C, ldc, A, lda, B, ldb, K, n, alpha, beta, bias);
        break;
      case 2:
        few_rows_pass<2>(C, ldc, A, lda, B, ldb, K, n, alpha, beta, bias);
        break;
      case 3:
        few_rows_pass<3>(C, ldc, A, lda, B, ldb, K, n, alpha, beta, bias);
        break;
      default:
        few_rows_pass<4>(C, ldc, A, lda, B, ldb, K, n, alpha, beta, bias);
        break;
    }
  }
  if (n < n1) few_rows_scalar(C, ldc, A, lda, M, B, ldb, K, n, n1, alpha, beta, bias);
}

}  // namespace

const Family& family_avx2() {
  static const Family f{"avx2", Avx2::MR, Avx2::NR, Avx2::KC, pack_a, gemm_tile_t<Avx2>, scratch_floats_t<Avx2>,
                        gemv,   few_rows, false};
  return f;
}

}  // namespace sec::kern
