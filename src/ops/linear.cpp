// Linear layers and embeddings.
#include <cblas.h>

#include <cstring>

#include "core/error.h"
#include "ops/ops.h"

namespace sec {

// out (N, O) = inp (N, I) . weight (O, I)^T + bias
void matmul_forward(float* out, const float* inp, const float* weight, const float* bias, int64_t N, int64_t I,
                    int64_t O) {
  if (N == 0 || O == 0) return;
  if (bias) {
#pragma omp parallel for
    for (int64_t n = 0; n < N; n++) std::memcpy(out + n * O, bias, size_t(O) * 4);
  }
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, int(N), int(O), int(I), 1.f, inp, int(I), weight, int(I),
              bias ? 1.f : 0.f, out, int(O));
}

void matmul_forward_ref(float* out, const float* inp, const float* weight, const float* bias, int64_t N, int64_t I,
                        int64_t O) {
  for (int64_t n = 0; n < N; n++)
    for (int64_t o = 0; o < O; o++) {
      double acc = bias ? bias[o] : 0.0;
      for (int64_t i = 0; i < I; i++) acc += double(inp[n * I + i]) * weight[o * I + i];
      out[n * O + o] = float(acc);
    }
}

void embedding_forward(float* out, const int32_t* tokens, const float* table, int64_t N, int64_t C) {
  for (int64_t n = 0; n < N; n++) std::memcpy(out + n * C, table + int64_t(tokens[n]) * C, size_t(C) * 4);
}

void add_inplace(float* x, const float* y, int64_t N) {
#pragma omp parallel for simd
  for (int64_t i = 0; i < N; i++) x[i] += y[i];
}

}  // namespace sec
