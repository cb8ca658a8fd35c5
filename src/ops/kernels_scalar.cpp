// The portable kernel family: plain C++ (the compiler may vectorise it for the build's target), the
// fallback for CPUs without AVX2 + FMA + F16C. Same blocking as the SIMD families, small tiles.
#include "ops/kernel_common.h"

namespace sec::kern {
namespace {

struct Scalar {
  static constexpr int MR = 4, NR = 8, KC = 256;

  static void micro(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, int rows, int cols, float alpha,
                    float beta, const float* bias, bool first) {
    float acc[MR][NR] = {};
    for (int64_t k = 0; k < kc; k++)
      for (int r = 0; r < MR; r++)
        for (int j = 0; j < NR; j++) acc[r][j] += a[k * MR + r] * b[k * NR + j];
    for (int r = 0; r < rows; r++)
      for (int j = 0; j < cols; j++) {
        float& d = c[r * ldc + j];
        if (first)
          d = alpha * acc[r][j] + (beta != 0.f ? beta * d : 0.f) + (bias ? bias[j] : 0.f);
        else
          d += alpha * acc[r][j];
      }
  }

  static void pack_b_panel(float* dst, const BSrc& B, int64_t j0, int cols, int64_t k0, int64_t kc, float* stage) {
    if (!B.weight) return pack_b_strided<NR>(dst, B, j0, cols, k0, kc);
    for (int j = 0; j < NR; j++) {
      if (j < cols) {
        fetch_row_scalar(stage, B, j0 + j, k0, kc);
        for (int64_t k = 0; k < kc; k++) dst[k * NR + j] = stage[k];
      } else {
        for (int64_t k = 0; k < kc; k++) dst[k * NR + j] = 0.f;
      }
    }
  }
};

void pack_a(float* Ap, const ASrc& a, int64_t panels, int64_t p, int64_t m0, int64_t rows, int64_t K) {
  pack_a_generic<Scalar::MR, Scalar::KC>(Ap, a, panels, p, m0, rows, K);
}

}  // namespace

const Family& family_scalar() {
  static const Family f{
      "scalar",    Scalar::MR,      Scalar::NR, Scalar::KC, pack_a, gemm_tile_t<Scalar>, scratch_floats_t<Scalar>,
      gemv_scalar, few_rows_scalar, false};
  return f;
}

}  // namespace sec::kern
