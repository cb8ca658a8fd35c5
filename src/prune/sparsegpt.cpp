// SparseGPT (methods.md §3), for one weight matrix W [rows, cols] and X^T X of its input.
//
// Precision: f32 throughout, like the reference implementation (fasterprune runs in float32).
//
// The upper Cholesky factor U of H^-1 (H^-1 = U^T U) is computed without forming H^-1: with
// rev(A)[i][j] = A[n-1-i][n-1-j], factor rev(H) = L L^T; then H = V V^T with V = rev(L) upper, so
// H^-1 = (V^-1)^T V^-1 and, by uniqueness of the Cholesky factor, U = V^-1. One potrf + one trtri
// (2n^3/3 flops) instead of potrf + potri + potrf (4n^3/3) -- and no explicit inverse.
//
// The column sweep is done row by row inside each block of B columns: with the block's mask known
// (unstructured: chosen at the block start; N:M: chosen from the row's current values at every
// M-th column), a row's updates W[r, i:] -= err * U[i, i:] touch only that row, so rows run in
// parallel on contiguous memory. The block's accumulated error then updates the later columns with
// one GEMM: W[:, end:] -= Err . U[block, end:].
#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "core/error.h"
#include "core/threads.h"
#include "prune/unstructured.h"

extern "C" {
// LAPACK (OpenBLAS ships it). Column-major; the trailing size_t are the Fortran string lengths.
void spotrf_(const char* uplo, const int* n, float* a, const int* lda, int* info, size_t);
void strtri_(const char* uplo, const char* diag, const int* n, float* a, const int* lda, int* info, size_t, size_t);
}

namespace sec {

// Upper Cholesky factor of H^-1 in place of h (n x n row-major, symmetric positive definite).
// The strictly lower triangle is zeroed.
static void upper_cholesky_of_inverse(float* h, int64_t n) {
  const int ni = int(n);
  int info = 0;
  std::reverse(h, h + n * n);  // rev(H): reversing the flat buffer reverses rows and columns
  // Row-major buffer = column-major transpose; H is symmetric, so Fortran's "U" factor (A = U^T U)
  // lands in our row-major lower triangle as L = U^T with rev(H) = L L^T.
  spotrf_("U", &ni, h, &ni, &info, 1);
  SEC_CHECK(info == 0, "SparseGPT: the dampened Hessian is not positive definite (Cholesky failed at column ", info,
            "); increase percdamp or use more calibration data");
  std::reverse(h, h + n * n);  // V = rev(L), now in our row-major upper triangle
  // Our upper triangle is Fortran's lower: invert V^T there, giving (V^-1)^T, i.e. V^-1 for us.
  strtri_("L", "N", &ni, h, &ni, &info, 1, 1);
  SEC_CHECK(info == 0, "SparseGPT: singular Cholesky factor (trtri info ", info, ")");
  parallel_ranges(n, double(n), 32768.0, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; i++) std::fill(h + i * n, h + i * n + i, 0.f);
  });
}

void sparsegpt_prune(float* w, int64_t rows, int64_t cols, const float* xtx, const SparsityTarget& t,
                     const SparseGptOptions& opts) {
  const int64_t n = cols;
  const int64_t B = opts.blocksize;
  SEC_CHECK(B > 0, "SparseGPT: blocksize must be positive");
  if (t.is_nm()) {
    SEC_CHECK(cols % t.m == 0, "N:M pruning needs the input size (", cols, ") to be a multiple of M = ", t.m);
    SEC_CHECK(B % t.m == 0, "SparseGPT: blocksize ", B, " must be a multiple of M = ", t.m);
  }
  std::vector<float> hbuf(xtx, xtx + n * n);
  float* h = hbuf.data();
  // 1. Dead inputs: never active in the calibration data.
  for (int64_t j = 0; j < n; j++)
    if (h[j * n + j] == 0.f) {
      h[j * n + j] = 1.f;
      for (int64_t r = 0; r < rows; r++) w[r * cols + j] = 0.f;
    }
  // 2. Dampening.
  double mean_diag = 0;
  for (int64_t j = 0; j < n; j++) mean_diag += h[j * n + j];
  const float damp = float(opts.percdamp * mean_diag / double(n));
  for (int64_t j = 0; j < n; j++) h[j * n + j] += damp;
  // 3. U = upper Cholesky factor of H^-1.
  upper_cholesky_of_inverse(h, n);
  const float* U = h;

  std::vector<float> err(size_t(rows * B)), ublk(size_t(B * B)), r(size_t(rows * B));
  Mask mask;
  for (int64_t i1 = 0; i1 < n; i1 += B) {
    const int64_t i2 = std::min(i1 + B, n), cnt = i2 - i1;
    // The block's diagonal square of U, contiguous (cnt x cnt).
    for (int64_t a = 0; a < cnt; a++) std::memcpy(&ublk[a * cnt], U + (i1 + a) * n + i1, size_t(cnt) * 4);
    // 4. Unstructured mask of the block: the lowest r = w^2 / U_jj^2 over the whole block.
    if (!t.is_nm()) {
      parallel_ranges(rows, double(cnt), 32768.0, [&](int64_t r0, int64_t r1) {
        for (int64_t row = r0; row < r1; row++)
          for (int64_t a = 0; a < cnt; a++) {
            float d = ublk[a * cnt + a], x = w[row * cols + i1 + a];
            r[row * cnt + a] = x * x / (d * d);
          }
      });
      mask = select_lowest(r.data(), rows * cnt, prune_count(t.ratio, rows * cnt));
    }
    // 5. Column sweep, row by row (a row: ~cnt^2 / 2 multiply-adds).
    parallel_ranges(rows, double(cnt * cnt), 32768.0, [&](int64_t r0, int64_t r1) {
      for (int64_t row = r0; row < r1; row++) {
        float* wr = w + row * cols + i1;
        float* er = err.data() + row * cnt;
        uint8_t nm_mask[64];  // N:M mask of the current group (M <= 64)
        for (int64_t a = 0; a < cnt; a++) {
          bool pruned;
          if (t.is_nm()) {
            if (a % t.m == 0) {
              // N lowest of w^2 / U_jj^2 among the next M columns, from the row's current values.
              SEC_ASSERT(t.m <= 64);
              float rr[64];
              for (int g = 0; g < t.m; g++) {
                float d = ublk[(a + g) * cnt + a + g];
                rr[g] = wr[a + g] * wr[a + g] / (d * d);
                nm_mask[g] = 0;
              }
              for (int k = 0; k < t.n; k++) {  // N smallest, ties to the lower index
                int best = -1;
                for (int g = 0; g < t.m; g++)
                  if (!nm_mask[g] && (best < 0 || rr[g] < rr[best])) best = g;
                nm_mask[best] = 1;
              }
            }
            pruned = nm_mask[a % t.m];
          } else {
            pruned = mask[row * cnt + a];
          }
          const float* urow = &ublk[a * cnt];
          const float q = pruned ? 0.f : wr[a];
          const float e = (wr[a] - q) / urow[a];
          wr[a] = q;
#pragma omp simd
          for (int64_t b = a + 1; b < cnt; b++) wr[b] -= e * urow[b];
          er[a] = e;
        }
      }
    });
    // Lazy update of all later columns: W[:, i2:] -= Err (rows x cnt) . U[i1:i2, i2:] (cnt x rest).
    if (i2 < n)
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, int(rows), int(n - i2), int(cnt), -1.f, err.data(),
                  int(cnt), U + i1 * n + i2, int(n), 1.f, w + i2, int(cols));
  }
}

}  // namespace sec
