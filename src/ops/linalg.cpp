// Dense linear algebra in float64 for the methods that rotate models (SliceGPT's PCA): X^T X
// accumulated in double, and the symmetric eigendecomposition (LAPACK dsyevd, shipped by OpenBLAS).
#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/error.h"
#include "core/threads.h"
#include "ops/ops.h"

extern "C" {
// LAPACK, column-major; the trailing size_t are the Fortran string lengths.
void dsyevd_(const char* jobz, const char* uplo, const int* n, double* a, const int* lda, double* w, double* work,
             const int* lwork, int* iwork, const int* liwork, int* info, size_t, size_t);
}

namespace sec {

void xtx_accumulate_f64(double* xtx, const float* x, int64_t rows, int64_t cols) {
  // Rows converted to double in chunks, then one dsyrk per chunk into the upper triangle.
  const int64_t chunk = std::max<int64_t>(1, std::min<int64_t>(rows, (int64_t(1) << 22) / std::max<int64_t>(cols, 1)));
  std::vector<double> buf(size_t(chunk * cols));
  for (int64_t r0 = 0; r0 < rows; r0 += chunk) {
    const int64_t n = std::min(chunk, rows - r0);
    parallel_ranges(n * cols, 1.0, double(kParallelMinWork), [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; i++) buf[size_t(i)] = x[r0 * cols + i];
    });
    cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, int(cols), int(n), 1.0, buf.data(), int(cols), 1.0, xtx,
                int(cols));
  }
}

void xtx_accumulate_f64_ref(double* xtx, const float* x, int64_t rows, int64_t cols) {
  for (int64_t i = 0; i < cols; i++)
    for (int64_t j = i; j < cols; j++) {
      double acc = 0;
      for (int64_t r = 0; r < rows; r++) acc += double(x[r * cols + i]) * x[r * cols + j];
      xtx[i * cols + j] += acc;
    }
}

void symmetric_eigen(double* a, double* values, int64_t n) {
  // The upper triangle (row-major) is the lower triangle of the column-major matrix LAPACK sees.
  const int ni = int(n);
  int info = 0, lwork = -1, liwork = -1, iwork_query = 0;
  double work_query = 0;
  dsyevd_("V", "L", &ni, a, &ni, values, &work_query, &lwork, &iwork_query, &liwork, &info, 1, 1);
  SEC_CHECK(info == 0, "symmetric eigendecomposition: workspace query failed (info ", info, ")");
  lwork = int(work_query);
  liwork = iwork_query;
  std::vector<double> work(size_t(std::max(lwork, 1)));
  std::vector<int> iwork(size_t(std::max(liwork, 1)));
  dsyevd_("V", "L", &ni, a, &ni, values, work.data(), &lwork, iwork.data(), &liwork, &info, 1, 1);
  SEC_CHECK(info == 0, "symmetric eigendecomposition did not converge (dsyevd info ", info, ")");
  // Column-major eigenvectors (column j = vector j) are row j of `a` as we see it: transpose so that
  // column j of the row-major result is eigenvector j, then order by descending eigenvalue.
  std::vector<double> v(a, a + n * n);
  for (int64_t j = 0; j < n; j++) {
    const int64_t src = n - 1 - j;  // dsyevd sorts ascending
    for (int64_t i = 0; i < n; i++) a[i * n + j] = v[size_t(src * n + i)];
  }
  std::reverse(values, values + n);
}

}  // namespace sec
