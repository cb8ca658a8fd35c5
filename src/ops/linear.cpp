// Linear layers and embeddings.
#include <algorithm>
#include <cstring>

#include "core/error.h"
#include "core/threads.h"
#include "ops/ops.h"

namespace sec {

void matmul_forward_ref(float* out, const float* inp, const float* weight, const float* bias, int64_t N, int64_t I,
                        int64_t O) {
  for (int64_t n = 0; n < N; n++)
    for (int64_t o = 0; o < O; o++) {
      double acc = bias ? bias[o] : 0.0;
      for (int64_t i = 0; i < I; i++) acc += double(inp[n * I + i]) * weight[o * I + i];
      out[n * O + o] = float(acc);
    }
}

// dinp (N, I) += dout (N, O) . weight (O, I); dweight (O, I) += dout^T (O, N) . inp (N, I); dbias (O) += sum_n dout
void matmul_backward(float* dinp, float* dweight, float* dbias, const float* dout, const float* inp,
                     const float* weight, int64_t N, int64_t I, int64_t O) {
  if (N == 0 || O == 0 || I == 0) return;
  if (dinp) gemm(false, false, N, I, O, 1.f, dout, O, weight, I, 1.f, dinp, I);
  if (dweight) gemm(true, false, O, I, N, 1.f, dout, O, inp, I, 1.f, dweight, I);
  if (dbias) {
    const int64_t tasks = task_count(O, double(N), 16384.0), per = (O + tasks - 1) / tasks;
    parallel_for(tasks, [&](int64_t t) {
      for (int64_t o = t * per, e = std::min(O, o + per); o < e; o++) {
        float acc = 0;
        for (int64_t n = 0; n < N; n++) acc += dout[n * O + o];
        dbias[o] += acc;
      }
    });
  }
}

void matmul_backward_ref(float* dinp, float* dweight, float* dbias, const float* dout, const float* inp,
                         const float* weight, int64_t N, int64_t I, int64_t O) {
  if (dinp)
    for (int64_t n = 0; n < N; n++)
      for (int64_t i = 0; i < I; i++) {
        double acc = 0;
        for (int64_t o = 0; o < O; o++) acc += double(dout[n * O + o]) * weight[o * I + i];
        dinp[n * I + i] += float(acc);
      }
  if (dweight)
    for (int64_t o = 0; o < O; o++)
      for (int64_t i = 0; i < I; i++) {
        double acc = 0;
        for (int64_t n = 0; n < N; n++) acc += double(dout[n * O + o]) * inp[n * I + i];
        dweight[o * I + i] += float(acc);
      }
  if (dbias)
    for (int64_t o = 0; o < O; o++) {
      double acc = 0;
      for (int64_t n = 0; n < N; n++) acc += dout[n * O + o];
      dbias[o] += float(acc);
    }
}

void linear_backward(float* dinp, float* dweight, float* dbias, const float* dout, const float* inp,
                     const Tensor& weight, int64_t N) {
  SEC_ASSERT(weight.ndim() == 2);
  SEC_CHECK(weight.dtype() == DType::F32, "training needs f32 weights, not ", dtype_name(weight.dtype()));
  matmul_backward(dinp, dweight, dbias, dout, inp, weight.f32(), N, weight.dim(1), weight.dim(0));
}

void embedding_forward(float* out, const int32_t* tokens, const float* table, int64_t N, int64_t C) {
  for (int64_t n = 0; n < N; n++) std::memcpy(out + n * C, table + int64_t(tokens[n]) * C, size_t(C) * 4);
}

// Parallel over the columns: every task owns a slice of C, so repeated tokens never race.
void embedding_backward(float* dtable, const float* dout, const int32_t* tokens, int64_t N, int64_t C) {
  const int64_t block = 64, blocks = (C + block - 1) / block;
  const int64_t tasks = N * C > 65536 ? blocks : 1, per = (blocks + tasks - 1) / tasks;
  parallel_for(tasks, [&](int64_t t) {
    const int64_t c0 = t * per * block, c1 = std::min(C, c0 + per * block);
    for (int64_t n = 0; n < N; n++) {
      float* d = dtable + int64_t(tokens[n]) * C;
      const float* g = dout + n * C;
      for (int64_t c = c0; c < c1; c++) d[c] += g[c];
    }
  });
}

void embedding_backward_ref(float* dtable, const float* dout, const int32_t* tokens, int64_t N, int64_t C) {
  for (int64_t n = 0; n < N; n++)
    for (int64_t c = 0; c < C; c++) dtable[int64_t(tokens[n]) * C + c] += dout[n * C + c];
}

void add_inplace(float* x, const float* y, int64_t N) {
  const int64_t tasks = task_count(N, 1.0, double(kParallelMinWork)), per = (N + tasks - 1) / tasks;
  parallel_for(tasks, [&](int64_t t) {
    const int64_t e = std::min(N, (t + 1) * per);
#pragma omp simd
    for (int64_t i = t * per; i < e; i++) x[i] += y[i];
  });
}

}  // namespace sec
