// The GEMM / GEMV driver: picks the kernel family for this CPU (ops/kernels.h), cuts a product into
// tasks and runs them on the thread pool (core/threads.h). linear_forward dispatches here on how
// the weight is stored.
//
// GEMM (C = alpha A.B + beta C + bias), BLIS-style: A is packed once into panels of mr rows ([K][mr]
// each, shared by all tasks); each task owns a tile of C (rows x columns), packs the K-blocks of
// its columns of B into panels of nr columns ([kc][nr]; a weight stored as bf16/f16/sparse is
// expanded to f32 here, so every format shares the f32 micro-kernel) and sweeps the mr x nr
// micro-kernel over the tile. GEMV (few rows of x, decode): each task takes a run of weight rows and
// streams them once. A few rows of A against a row-major B (Family::few_rows): each task takes a
// run of B's columns.
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "core/cpu.h"
#include "core/dtype.h"
#include "core/error.h"
#include "core/sparse.h"
#include "core/threads.h"
#include "ops/kernels.h"
#include "ops/ops.h"

namespace sec {

namespace {

using kern::ASrc;
using kern::BSrc;
using kern::Family;
using kern::WFormat;

const Family& family() {
  switch (kernel_isa()) {
    case KernelIsa::Avx512Bf16:
      return kern::family_avx512bf16();
    case KernelIsa::Avx512:
      return kern::family_avx512();
    case KernelIsa::Avx2:
      return kern::family_avx2();
    case KernelIsa::Scalar:
      break;
  }
  return kern::family_scalar();
}

// Grow-only 64-byte-aligned buffer, one per thread and purpose.
class Scratch {
 public:
  ~Scratch() { std::free(p_); }
  float* get(size_t floats) {
    if (floats > n_) {
      std::free(p_);
      n_ = std::max(floats, n_ * 3 / 2);
      p_ = static_cast<float*>(std::aligned_alloc(64, (n_ * 4 + 63) / 64 * 64));
      SEC_CHECK(p_ != nullptr, "out of memory for kernel scratch (", n_ * 4, " bytes)");
    }
    return p_;
  }

 private:
  float* p_ = nullptr;
  size_t n_ = 0;
};
thread_local Scratch t_apack, t_tile, t_xconv;

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
int64_t round_up(int64_t a, int64_t b) { return ceil_div(a, b) * b; }

void gemv_impl(const Family& f, float* out, int64_t ldo, const float* inp, int64_t ldx, const BSrc& b,
               double bytes_per_row, int64_t N, int64_t I, int64_t O, const float* bias);
int64_t gemv_max_rows(WFormat fmt);

void gemm_impl(const Family& f, int64_t M, int64_t N, int64_t K, const ASrc& a, BSrc b, float alpha, float beta,
               const float* bias, float* C, int64_t ldc) {
  if (M <= 0 || N <= 0) return;
  if (K == 0) {
    for (int64_t m = 0; m < M; m++)
      for (int64_t n = 0; n < N; n++)
        C[m * ldc + n] = (beta != 0.f ? beta * C[m * ldc + n] : 0.f) + (bias ? bias[n] : 0.f);
    return;
  }
  // A strided B whose columns are contiguous is a weight-like [N, K] matrix: use the transposing pack.
  if (!b.weight && b.rs == 1 && b.cs != 1) b = BSrc{true, WFormat::F32, b.p, 0, 0, b.cs};
  // A few rows against weight-like rows (attention's q . K^T when decoding): stream them.
  if (b.weight && b.format != WFormat::BF16 && !a.round_bf16 && a.cs == 1 && beta == 0.f &&
      M <= std::min<int64_t>(gemv_max_rows(b.format), kern::kGemvMaxRows)) {
    gemv_impl(f, C, ldc, a.p, a.rs, b, 4.0 * double(K), M, K, N, alpha == 1.f ? bias : nullptr);
    if (alpha != 1.f)
      for (int64_t m = 0; m < M; m++)
        for (int64_t n = 0; n < N; n++) C[m * ldc + n] = alpha * C[m * ldc + n] + (bias ? bias[n] : 0.f);
    return;
  }
  // A few rows against a row-major B (attention's P . V when decoding): packing them into mr-row
  // panels would multiply mostly zero rows; read each row of B once instead. Tasks of >= 64K
  // multiply-adds, split by columns.
  if (!b.weight && b.cs == 1 && !a.round_bf16 && a.cs == 1 && M <= kern::kFewRowsMax) {
    const float* B = static_cast<const float*>(b.p);
    const int64_t cols = round_up(std::max<int64_t>(64, 65536 / std::max<int64_t>(1, M * K)), 64);
    const int64_t tasks = parallel_inline() ? 1 : ceil_div(N, cols), per = tasks == 1 ? N : cols;
    parallel_for(tasks, [&](int64_t t) {
      f.few_rows(C, ldc, a.p, a.rs, M, B, b.rs, K, t * per, std::min(N, (t + 1) * per), alpha, beta, bias);
    });
    return;
  }
  const int64_t mr = f.mr, nr = f.nr, panels = ceil_div(M, mr);
  float* Ap = t_apack.get(size_t(panels * K * mr));
  const int64_t pack_tasks = task_count(panels, double(K * mr), 32768.0), per = ceil_div(panels, pack_tasks);
  parallel_for(pack_tasks, [&](int64_t t) {
    for (int64_t p = t * per, e = std::min(panels, p + per); p < e; p++)
      f.pack_a(Ap, a, panels, p, p * mr, std::min(mr, M - p * mr), K);
  });
  // Tiles: up to ~1024 rows (a prefill's tokens in one tile, so B is packed once) by 256 columns
  // (B's packed K-block, 256 x KC, stays in L2); smaller until every thread has about four tiles,
  // so that a slow or descheduled thread is covered by the others.
  const int64_t want = parallel_inline() ? 1 : 4 * num_threads();
  int64_t mt = ceil_div(M, 1024), MB = round_up(ceil_div(M, mt), mr), NB = round_up(std::min<int64_t>(N, 256), nr);
  auto tiles = [&] { return ceil_div(M, MB) * ceil_div(N, NB); };
  while (tiles() < want && NB > 2 * nr) NB = round_up(NB / 2, nr);
  while (tiles() < want && MB > 4 * mr) MB = round_up(MB / 2, mr);
  const int64_t tm = ceil_div(M, MB), tn = ceil_div(N, NB);
  parallel_for(tm * tn, [&](int64_t t) {
    kern::Tile tile;
    tile.C = C;
    tile.ldc = ldc;
    tile.Ap = Ap;
    tile.panels = panels;
    tile.K = K;
    tile.B = &b;
    tile.m0 = (t / tn) * MB;
    tile.m1 = std::min(M, tile.m0 + MB);
    tile.n0 = (t % tn) * NB;
    tile.n1 = std::min(N, tile.n0 + NB);
    tile.alpha = alpha;
    tile.beta = beta;
    tile.bias = bias;
    tile.scratch = t_tile.get(size_t(f.scratch_floats(tile.n1 - tile.n0)));
    f.gemm_tile(tile);
  });
}

BSrc weight_src(const Tensor& w) {
  BSrc b;
  b.weight = true;
  b.p = w.raw();
  b.ld = w.dim(1);
  switch (w.dtype()) {
    case DType::F32:
      b.format = WFormat::F32;
      break;
    case DType::BF16:
      b.format = WFormat::BF16;
      break;
    case DType::F16:
      b.format = WFormat::F16;
      break;
    case DType::F32_SPARSE: {
      const SparseView v = sparse_view(w);
      b.format = WFormat::Sparse;
      b.row_off = v.row_off;
      b.mask = v.mask;
      b.mask_stride = v.mask_stride;
      b.values = v.values;
      break;
    }
  }
  return b;
}

// Bytes a GEMV streams per weight row (for sizing tasks).
double row_bytes(const Tensor& w) {
  const double I = double(w.dim(1));
  switch (w.dtype()) {
    case DType::F32:
      return 4 * I;
    case DType::BF16:
    case DType::F16:
      return 2 * I;
    case DType::F32_SPARSE: {
      const SparseView v = sparse_view(w);
      return v.rows ? 4.0 * double(v.nnz) / double(v.rows) + I / 8 : I / 8;
    }
  }
  return 4 * I;
}

void gemv_impl(const Family& f, float* out, int64_t ldo, const float* inp, int64_t ldx, const BSrc& b,
               double bytes_per_row, int64_t N, int64_t I, int64_t O, const float* bias) {
  const void* x = inp;
  if (b.format == WFormat::BF16) {  // the activations of a bf16 product are bf16 (kernels.h)
    if (f.bf16_native_x) {
      auto* xb = reinterpret_cast<uint16_t*>(t_xconv.get(size_t(N * I + 1) / 2 + 16));
      for (int64_t n = 0; n < N; n++)
        for (int64_t i = 0; i < I; i++) xb[n * I + i] = f32_to_bf16(inp[n * ldx + i]);
      x = xb;
    } else {
      float* xr = t_xconv.get(size_t(N * I));
      for (int64_t n = 0; n < N; n++)
        for (int64_t i = 0; i < I; i++) xr[n * I + i] = bf16_to_f32(f32_to_bf16(inp[n * ldx + i]));
      x = xr;
    }
    ldx = I;
  }
  // Runs of rows of ~256 KB of weights per task: still more tasks than threads (see threads.h) for
  // every weight of a real model, and long enough sequential reads for the prefetchers (measured
  // +3% f32, +5-8% bf16 / sparse decode against 64 KB in bench_gemv).
  const int64_t rows = std::max<int64_t>(4, round_up(int64_t(std::ceil(262144.0 / std::max(bytes_per_row, 1.0))), 4));
  const int64_t tasks = parallel_inline() ? 1 : ceil_div(O, rows), per = tasks == 1 ? O : rows;
  parallel_for(tasks, [&](int64_t t) { f.gemv(out, ldo, x, ldx, N, b, I, t * per, std::min(O, (t + 1) * per), bias); });
}

// Up to this many rows of x a product streams the weight once per call (GEMV); beyond, packing pays.
int64_t gemv_max_rows(WFormat fmt) { return fmt == WFormat::F32 ? 4 : 8; }

void linear_impl(float* out, const float* inp, const BSrc& b, double bytes_per_row, const float* bias, int64_t N,
                 int64_t I, int64_t O) {
  if (N <= 0 || O <= 0) return;
  const Family& f = family();
  if (N <= std::min<int64_t>(gemv_max_rows(b.format), kern::kGemvMaxRows))
    return gemv_impl(f, out, O, inp, I, b, bytes_per_row, N, I, O, bias);
  ASrc a{inp, I, 1, b.format == WFormat::BF16};
  gemm_impl(f, N, O, I, a, b, 1.f, 0.f, bias, out, O);
}

}  // namespace

void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
          const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  ASrc a{A, trans_a ? 1 : lda, trans_a ? lda : 1, false};
  BSrc b;
  b.p = B;
  b.rs = trans_b ? 1 : ldb;
  b.cs = trans_b ? ldb : 1;
  gemm_impl(family(), M, N, K, a, b, alpha, beta, nullptr, C, ldc);
}

void gemm_ref(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
              const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  for (int64_t m = 0; m < M; m++)
    for (int64_t n = 0; n < N; n++) {
      double acc = 0;
      for (int64_t k = 0; k < K; k++)
        acc += double(trans_a ? A[k * lda + m] : A[m * lda + k]) * (trans_b ? B[n * ldb + k] : B[k * ldb + n]);
      C[m * ldc + n] = float(alpha * acc + (beta != 0.f ? double(beta) * C[m * ldc + n] : 0.0));
    }
}

void matmul_forward(float* out, const float* inp, const float* weight, const float* bias, int64_t N, int64_t I,
                    int64_t O) {
  BSrc b;
  b.weight = true;
  b.format = WFormat::F32;
  b.p = weight;
  b.ld = I;
  linear_impl(out, inp, b, 4.0 * double(I), bias, N, I, O);
}

void linear_forward(float* out, const float* inp, const Tensor& weight, const float* bias, int64_t N) {
  SEC_ASSERT(weight.ndim() == 2);
  linear_impl(out, inp, weight_src(weight), row_bytes(weight), bias, N, weight.dim(1), weight.dim(0));
}

void linear_forward_ref(float* out, const float* inp, const Tensor& weight, const float* bias, int64_t N) {
  SEC_ASSERT(weight.ndim() == 2);
  const int64_t O = weight.dim(0), I = weight.dim(1);
  const std::vector<float> w = weight.to_vector();
  const bool round_x = weight.dtype() == DType::BF16;
  for (int64_t n = 0; n < N; n++)
    for (int64_t o = 0; o < O; o++) {
      double acc = bias ? bias[o] : 0.0;
      for (int64_t i = 0; i < I; i++) {
        const float x = round_x ? bf16_to_f32(f32_to_bf16(inp[n * I + i])) : inp[n * I + i];
        acc += double(x) * w[size_t(o * I + i)];
      }
      out[n * O + o] = float(acc);
    }
}

std::string kernels_summary() {
  const Family& f = family();
  std::string s = std::string("kernels ") + kernel_isa_name(kernel_isa()) + ": f32 gemm " + std::to_string(f.mr) + "x" +
                  std::to_string(f.nr) + " (own, packed), gemv streaming; bf16 ";
  s += f.bf16_native_x ? "vdpbf16ps" : (kernel_isa() == KernelIsa::Scalar ? "scalar" : "convert+fma");
  s += kernel_isa() == KernelIsa::Scalar ? ", f16 scalar" : ", f16 f16c";
  if (kernel_isa() < KernelIsa::Avx512)
    s += ", sparse mask-expand";
  else  // the GEMM (prefill) always expands with vexpandps
    s += sparse_vpopcnt() ? ", sparse vpopcntd+vpermps (gemv) / vexpandps (gemm)" : ", sparse vexpandps";
  return s;
}

}  // namespace sec
