// Internal to src/ops: the kernel families, one per instruction-set level, each a table of function
// pointers, and the operand descriptions they take. ops/gemm.cpp picks the family from
// kernel_isa() (core/cpu.h), cuts the work into tasks and runs them on the thread pool; a family
// only computes the piece of the output it is handed.
//
// Each family is one file compiled with its own target flags (CMakeLists.txt): kernels_scalar.cpp
// (none), kernels_avx2.cpp (AVX2 FMA F16C), kernels_avx512.cpp (+ AVX-512 F/BW/VL/DQ),
// kernels_avx512bf16.cpp (+ AVX512_BF16). A generic x86-64 build thus still runs AVX-512 code on
// an AVX-512 CPU. So that no function compiled for a newer instruction set can be picked by the
// linker for an older CPU (inline functions and templates are merged across files), those files
// define everything in an anonymous namespace and call nothing inline from other headers: no
// <algorithm>, no std containers, only intrinsics, memcpy and their own helpers (kernel_common.h).
#pragma once
#include <cstdint>

namespace sec::kern {

enum class WFormat : uint8_t { F32, BF16, F16, Sparse };

// The GEMV kernels take at most this many rows of x (more go through the GEMM).
constexpr int kGemvMaxRows = 16;
// Up to this many rows of A, a product with a row-major f32 B (attention's P . V when decoding) reads
// each row of B once for all of them (Family::few_rows); more go through the GEMM.
constexpr int kFewRowsMax = 4;

// B of C = A . B, K x N: either a strided f32 matrix, B(k, j) = p[k * rs + j * cs], or a weight
// W [N, K] (a linear's [O, I]), B(k, j) = W[j][k], stored in `format` with rows of `ld` elements
// (sparse: the blob's row offsets, masks and values, core/sparse.h).
struct BSrc {
  bool weight = false;
  WFormat format = WFormat::F32;
  const void* p = nullptr;
  int64_t rs = 0, cs = 0;  // strided f32
  int64_t ld = 0;          // dense weight rows
  const uint64_t* row_off = nullptr;
  const uint8_t* mask = nullptr;
  int64_t mask_stride = 0;
  const float* values = nullptr;
};

// A of C = A . B, M x K, f32: A(m, k) = p[m * rs + k * cs]. round_bf16: multiply bf16(A) (round to
// nearest even) -- the activations of a product with bf16 weights, on every instruction set.
struct ASrc {
  const float* p = nullptr;
  int64_t rs = 0, cs = 0;
  bool round_bf16 = false;
};

// One tile, rows [m0, m1) and columns [n0, n1), of C = alpha * A . B + beta * C + bias.
struct Tile {
  float* C = nullptr;
  int64_t ldc = 0;
  const float* Ap = nullptr;  // packed A (Family::pack_a), all of its panels
  int64_t panels = 0;         // number of mr-row panels of A
  int64_t K = 0;
  const BSrc* B = nullptr;
  int64_t m0 = 0, m1 = 0, n0 = 0, n1 = 0;  // m0 a multiple of mr
  float alpha = 1.f, beta = 0.f;           // beta == 0: C is not read
  const float* bias = nullptr;             // N floats or null
  float* scratch = nullptr;                // scratch_floats(n1 - n0) floats, 64-byte aligned
};

struct Family {
  const char* name;
  int mr, nr, kc;  // micro-kernel rows x columns; K-block
  // Packed A is laid out by K-block, then by panel: the K-block starting at column pc holds every
  // panel's columns [pc, pc + kc) (kc = min(KC, K - pc)), panel p at
  //   Ap + pc * panels * mr + p * kc * mr,  as [kc][mr]
  // so that the micro-kernel sweeping the panels of one K-block reads one contiguous stream.
  // pack_a writes panel p of A's rows [m0, m0 + rows) (rows <= mr; the other rows zero).
  void (*pack_a)(float* Ap, const ASrc& a, int64_t panels, int64_t p, int64_t m0, int64_t rows, int64_t K);
  void (*gemm_tile)(const Tile& t);
  int64_t (*scratch_floats)(int64_t ncols);
  // Rows [o0, o1) of out (N, ldo) = x (N, K) . W^T + bias, W a weight of any format. x: f32 rows of
  // ldx floats; for BF16 weights already rounded to bf16 -- or, when bf16_native_x, bf16 rows
  // (uint16, ldx elements) for vdpbf16ps.
  void (*gemv)(float* out, int64_t ldo, const void* x, int64_t ldx, int64_t N, const BSrc& W, int64_t K, int64_t o0,
               int64_t o1, const float* bias);
  // Columns [n0, n1) of C (M, ldc) = alpha * A (M, K; rows of lda) . B (K, N; rows of ldb) + beta * C +
  // bias, for M <= kFewRowsMax; beta == 0: C is not read. bias: N floats or null.
  void (*few_rows)(float* C, int64_t ldc, const float* A, int64_t lda, int64_t M, const float* B, int64_t ldb,
                   int64_t K, int64_t n0, int64_t n1, float alpha, float beta, const float* bias);
  bool bf16_native_x;
};

const Family& family_scalar();
const Family& family_avx2();
const Family& family_avx512();
const Family& family_avx512bf16();  // the avx512 family with vdpbf16ps for bf16 weights

}  // namespace sec::kern
