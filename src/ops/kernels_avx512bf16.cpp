// The AVX-512 family with AVX512_BF16: bf16 weights in the GEMV (decode) take vdpbf16ps, which
// multiplies 32 bf16 pairs of weights and activations exactly and adds them into 16 f32 sums -- half
// the bytes of f32 weights per multiply-add, no conversion instructions. Everything else is the
// avx512 family's. Compiled with -mavx512bf16 only here (CMakeLists.txt); rules: ops/kernels.h.
// GCC 12 warns about the deliberately undefined pass-through operand inside its own intrinsics.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include "ops/kernel_common.h"

namespace sec::kern {
namespace {

inline __mmask32 tail32(int64_t n) { return n >= 32 ? __mmask32(0xffffffffu) : n <= 0 ? 0 : __mmask32((1u << n) - 1); }

// R weight rows from o, NX rows of x (bf16, ldx elements per row).
template <int R, int NX>
void gemv_block(float* out, int64_t ldo, const uint16_t* x, int64_t ldx, const BSrc& W, int64_t K, int64_t o,
                int64_t o1, const float* bias) {
  __m512 acc[R][NX];
  for (int r = 0; r < R; r++)
    for (int n = 0; n < NX; n++) acc[r][n] = _mm512_setzero_ps();
  const uint16_t* w = static_cast<const uint16_t*>(W.p) + o * W.ld;
  const GemvPrefetch<WFormat::BF16, R> pf(W, K, o, o1);  // the prefetch both other families use
  auto step = [&](int64_t k, __mmask32 mk, bool full) {
    __m512bh xv[NX];
    for (int n = 0; n < NX; n++)
      xv[n] = (__m512bh)(full ? _mm512_loadu_si512(x + n * ldx + k) : _mm512_maskz_loadu_epi16(mk, x + n * ldx + k));
    for (int r = 0; r < R; r++) {
      const uint16_t* p = w + r * W.ld + k;
      _mm_prefetch(pf.address(r, k, nullptr), _MM_HINT_T0);
      const __m512bh wv = (__m512bh)(full ? _mm512_loadu_si512(p) : _mm512_maskz_loadu_epi16(mk, p));
      for (int n = 0; n < NX; n++) acc[r][n] = _mm512_dpbf16_ps(acc[r][n], wv, xv[n]);
    }
  };
  int64_t k = 0;
  for (; k + 32 <= K; k += 32) step(k, 0xffffffffu, true);
  if (k < K) step(k, tail32(K - k), false);
  for (int r = 0; r < R; r++)
    for (int n = 0; n < NX; n++) out[n * ldo + o + r] = _mm512_reduce_add_ps(acc[r][n]) + (bias ? bias[o + r] : 0.f);
}

template <int NX>
void gemv_rows(float* out, int64_t ldo, const uint16_t* x, int64_t ldx, const BSrc& W, int64_t K, int64_t o0,
               int64_t o1, const float* bias) {
  int64_t o = o0;
  for (; o + 4 <= o1; o += 4) gemv_block<4, NX>(out, ldo, x, ldx, W, K, o, o1, bias);
  for (; o < o1; o++) gemv_block<1, NX>(out, ldo, x, ldx, W, K, o, o1, bias);
}

void gemv(float* out, int64_t ldo, const void* xv, int64_t ldx, int64_t N, const BSrc& W, int64_t K, int64_t o0,
          int64_t o1, const float* bias) {
  if (W.format != WFormat::BF16) return family_avx512().gemv(out, ldo, xv, ldx, N, W, K, o0, o1, bias);
  const uint16_t* x = static_cast<const uint16_t*>(xv);
  for (int64_t n = 0; n < N; n += 4) {
    const uint16_t* xn = x + n * ldx;
    float* on = out + n * ldo;
    switch (kmin(4, N - n)) {
      case 1:
        gemv_rows<1>(on, ldo, xn, ldx, W, K, o0, o1, bias);
        break;
      case 2:
        gemv_rows<2>(on, ldo, xn, ldx, W, K, o0, o1, bias);
        break;
      case 3:
        gemv_rows<3>(on, ldo, xn, ldx, W, K, o0, o1, bias);
        break;
      default:
        gemv_rows<4>(on, ldo, xn, ldx, W, K, o0, o1, bias);
        break;
    }
  }
}

}  // namespace

const Family& family_avx512bf16() {
  static const Family f = [] {
    Family g = family_avx512();
    g.name = "avx512+bf16";
    g.gemv = gemv;
    g.bf16_native_x = true;
    return g;
  }();
  return f;
}

}  // namespace sec::kern
