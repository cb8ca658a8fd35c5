// The GEMM / GEMV / bf16 / f16 / sparse kernels against scalar references with double sums, on
// every kernel family this CPU can run (scalar, avx2, avx512, avx512+bf16), on shapes that are not
// multiples of the vector width, the micro-tile or the K-block, through the threaded paths.
//
// Tolerances are float32 error analysis: a sum of K products computed in f32 in any order differs
// from the exact sum by at most gamma_K * sum |a_k b_k|, gamma_K = K u / (1 - K u), u = 2^-24
// (Higham, Accuracy and Stability of Numerical Algorithms, 3.1). The products of bf16 values
// are exact in f32, so bf16 gets the same bound once its activations are rounded as the reference
// rounds them. The bf16 / f16 references convert with their own code (frexp/ldexp), not secateur's.
#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <cstring>
#include <thread>
#include <tuple>
#include <vector>

#include "core/cpu.h"
#include "core/error.h"
#include "core/random.h"
#include "core/sparse.h"
#include "core/threads.h"
#include "ops/ops.h"

namespace sec {
namespace {

const int kThreads = [] {
  set_num_threads(3);
  return 3;
}();

std::vector<KernelIsa> isas() {
  std::vector<KernelIsa> v;
  for (int i = 0; i <= int(best_kernel_isa()); i++) v.push_back(KernelIsa(i));
  return v;
}

// Sets one kernel choice for a scope and restores it after.
template <class T, T (*Get)(), T (*Set)(T)>
class ScopedChoice {
 public:
  explicit ScopedChoice(T v) : saved_(Get()) { Set(v); }
  ~ScopedChoice() { Set(saved_); }

 private:
  T saved_;
};
// The kernel family.
using EachIsa = ScopedChoice<KernelIsa, kernel_isa, set_kernel_isa>;
// How the AVX-512 GEMV expands sparse rows: vexpandps, or vpopcntd + vpermps where the CPU has
// AVX512_VPOPCNTDQ (core/cpu.h); sparse_vpopcnt_choices: the ones this machine can run.
using SparseExpand = ScopedChoice<bool, sparse_vpopcnt, set_sparse_vpopcnt>;
std::vector<bool> sparse_vpopcnt_choices(KernelIsa isa) {
  if (isa >= KernelIsa::Avx512 && cpu_features().avx512_vpopcntdq) return {false, true};
  return {false};
}

std::vector<float> randn(size_t n, uint64_t seed, float std = 1.f) {
  Rng rng(seed);
  std::vector<float> v(n);
  for (auto& x : v) x = rng.normal(0.f, std);
  return v;
}

double gamma(int64_t K) {
  const double u = std::ldexp(1.0, -24), ku = double(K + 2) * u;  // +2: the bias and alpha/beta terms
  return ku / (1 - ku);
}

// |fast - ref| <= gamma_K * bound + tiny, elementwise.
void expect_within(const std::vector<float>& fast, const std::vector<double>& ref, const std::vector<double>& bound,
                   int64_t K, const std::string& what) {
  ASSERT_EQ(fast.size(), ref.size());
  int bad = 0;
  for (size_t i = 0; i < fast.size(); i++) {
    const double tol = gamma(K) * bound[i] + 1e-30;
    if (!(std::fabs(double(fast[i]) - ref[i]) <= tol)) {
      if (bad++ < 5)
        ADD_FAILURE() << what << ": element " << i << " is " << fast[i] << ", reference " << ref[i] << " (tolerance "
                      << tol << ")";
    }
  }
  EXPECT_EQ(bad, 0) << what;
}

// ---- independent conversions (not secateur's) -----------------------------------------------------
double bf16_ref_value(uint16_t h) {
  const int sign = h >> 15, exp = (h >> 7) & 0xff, mant = h & 0x7f;
  const double v = exp == 0 ? std::ldexp(double(mant), -133) : std::ldexp(double(128 + mant), exp - 134);
  return sign ? -v : v;
}
double f16_ref_value(uint16_t h) {
  const int sign = h >> 15, exp = (h >> 10) & 0x1f, mant = h & 0x3ff;
  const double v = exp == 0 ? std::ldexp(double(mant), -24) : std::ldexp(double(1024 + mant), exp - 25);
  return sign ? -v : v;
}
// Nearest bf16 (8 significant bits, ties to even) of a normal float, by frexp and nearbyint.
double bf16_round_ref(float x) {
  if (x == 0.f) return 0.0;
  int e;
  const double m = std::frexp(double(x), &e);  // x = m 2^e, 0.5 <= |m| < 1
  return std::ldexp(std::nearbyint(std::ldexp(m, 8)), e - 8);
}

// Random bf16 / f16 bit patterns of moderate magnitude (|v| in about [2^-6, 2^2]), both signs.
std::vector<uint16_t> random_bf16(size_t n, uint64_t seed) {
  Rng rng(seed);
  std::vector<uint16_t> v(n);
  for (auto& h : v) {
    const uint32_t r = uint32_t(rng.next_u64());
    h = uint16_t((r & 0x8000) | uint32_t(121 + r % 8) << 7 | (r >> 8 & 0x7f));
  }
  return v;
}
std::vector<uint16_t> random_f16(size_t n, uint64_t seed) {
  Rng rng(seed);
  std::vector<uint16_t> v(n);
  for (auto& h : v) {
    const uint32_t r = uint32_t(rng.next_u64());
    h = uint16_t((r & 0x8000) | uint32_t(9 + r % 8) << 10 | (r >> 8 & 0x3ff));
  }
  return v;
}

Tensor tensor_of_bits(const std::vector<uint16_t>& bits, int64_t O, int64_t I, DType t) {
  Tensor w = Tensor::empty({O, I}, t);
  std::memcpy(w.raw(), bits.data(), bits.size() * 2);
  return w;
}

// out = x . W^T + b with W given as doubles, x optionally rounded to bf16; and the bound sum |x w| + |b|.
void reference_linear(const std::vector<float>& x, const std::vector<double>& w, const std::vector<float>* b, int64_t N,
                      int64_t I, int64_t O, bool round_x, std::vector<double>& ref, std::vector<double>& bound) {
  ref.assign(size_t(N * O), 0.0);
  bound.assign(size_t(N * O), 0.0);
  for (int64_t n = 0; n < N; n++)
    for (int64_t o = 0; o < O; o++) {
      double s = b ? (*b)[size_t(o)] : 0.0, a = b ? std::fabs((*b)[size_t(o)]) : 0.0;
      for (int64_t i = 0; i < I; i++) {
        const double xv = round_x ? bf16_round_ref(x[size_t(n * I + i)]) : double(x[size_t(n * I + i)]);
        const double p = xv * w[size_t(o * I + i)];
        s += p;
        a += std::fabs(p);
      }
      ref[size_t(n * O + o)] = s;
      bound[size_t(n * O + o)] = a;
    }
}

std::vector<double> to_double(const std::vector<float>& v) { return std::vector<double>(v.begin(), v.end()); }

// (N rows of x, I inputs, O outputs): N covers GEMV (1..4, 7) and GEMM (64, 513) paths; I and O are
// not multiples of 8/16/32 and I exceeds the K-block of 512 (also in a GEMM: 1030); at I = 4100 a
// one-row product is split into several tasks (runs of rows, gemm.cpp).
const std::vector<std::tuple<int64_t, int64_t, int64_t>> kShapes = {
    {1, 1, 1},    {1, 37, 5},   {1, 300, 67},   {1, 4100, 67},  {2, 300, 67},  {3, 515, 33},
    {4, 64, 128}, {7, 300, 67}, {64, 129, 257}, {64, 1030, 40}, {513, 300, 67}};

TEST(Kernels, CpuSummaryNamesTheChoice) {
  const std::string s = cpu_summary();
  EXPECT_FALSE(s.empty());
  const std::string k = kernels_summary();
  EXPECT_NE(k.find(kernel_isa_name(kernel_isa())), std::string::npos) << k;
  EXPECT_NE(threads_summary().find("threads"), std::string::npos);
  if (cpu_features().avx512f && cpu_features().avx512bw && cpu_features().avx512vl && cpu_features().avx512dq &&
      cpu_features().avx2 && cpu_features().fma && cpu_features().f16c) {
    EXPECT_GE(int(best_kernel_isa()), int(KernelIsa::Avx512));
  }
  EXPECT_EQ(set_kernel_isa(KernelIsa::Avx512Bf16), best_kernel_isa());  // never above what the CPU has
  set_kernel_isa(best_kernel_isa());
}

TEST(Kernels, GemmAllTransposesAlphaBeta) {
  // M > 512 rows (several row tiles), N > 256 columns (several column tiles), K > 256 (K-blocks);
  // M <= kFewRowsMax (4) with neither operand transposed is the few-rows product: N not a multiple of
  // its 16 / 64-column passes, and > 64 columns in several tasks (K small).
  for (KernelIsa isa : isas()) {
    EachIsa scope(isa);
    for (auto [M, N, K] : {std::tuple<int64_t, int64_t, int64_t>{1, 1, 1},
                           {5, 7, 3},
                           {37, 45, 300},
                           {600, 300, 261},
                           {2, 9, 4},
                           {3, 70, 300},
                           {4, 64, 513},
                           {1, 1000, 30},
                           {4, 333, 7}})
      for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++)
          for (auto [alpha, beta] : {std::pair{1.f, 0.f}, {0.5f, 1.f}, {-2.f, 0.25f}, {3.f, 0.f}}) {
            const int64_t lda = (ta ? M : K) + 3, ldb = (tb ? K : N) + 1, ldc = N + 2;
            auto A = randn(size_t((ta ? K : M) * lda), 1), B = randn(size_t((tb ? N : K) * ldb), 2);
            auto C = randn(size_t(M * ldc), 3);
            std::vector<float> fast = C;
            if (beta == 0.f) {  // C must not be read: poison it
              for (auto& c : fast) c = std::nanf("");
            }
            gemm(ta, tb, M, N, K, alpha, A.data(), lda, B.data(), ldb, beta, fast.data(), ldc);
            std::vector<double> ref, bound;
            std::vector<float> got;
            for (int64_t m = 0; m < M; m++)
              for (int64_t n = 0; n < N; n++) {
                double s = 0, a = 0;
                for (int64_t k = 0; k < K; k++) {
                  const double p = double(ta ? A[size_t(k * lda + m)] : A[size_t(m * lda + k)]) *
                                   (tb ? B[size_t(n * ldb + k)] : B[size_t(k * ldb + n)]);
                  s += p;
                  a += std::fabs(p);
                }
                const double c = beta != 0.f ? double(beta) * C[size_t(m * ldc + n)] : 0.0;
                ref.push_back(alpha * s + c);
                bound.push_back(std::fabs(alpha) * a + std::fabs(c));
                got.push_back(fast[size_t(m * ldc + n)]);
              }
            expect_within(got, ref, bound, K,
                          std::string("gemm ") + kernel_isa_name(isa) + " M" + std::to_string(M) + " N" +
                              std::to_string(N) + " K" + std::to_string(K) + " ta" + std::to_string(ta) + " tb" +
                              std::to_string(tb));
            for (int64_t m = 0; m < M; m++)  // the padding columns of C are untouched
              for (int64_t n = N; n < ldc; n++) {
                const float want = beta == 0.f ? std::nanf("") : C[size_t(m * ldc + n)];
                const float have = fast[size_t(m * ldc + n)];
                EXPECT_TRUE(std::memcmp(&want, &have, 4) == 0);
              }
          }
  }
}

TEST(Kernels, GemmRefMatchesDefinition) {
  const float A[6] = {1, 2, 3, 4, 5, 6}, B[6] = {1, 0, -1, 2, 0.5f, 1};  // A 2x3, B 3x2
  float C[4] = {1, 1, 1, 1};
  gemm_ref(false, false, 2, 2, 3, 1.f, A, 3, B, 2, 2.f, C, 2);
  EXPECT_FLOAT_EQ(C[0], 1 * 1 + 2 * -1 + 3 * 0.5f + 2);
  EXPECT_FLOAT_EQ(C[3], 4 * 0 + 5 * 2 + 6 * 1 + 2);
}

TEST(Kernels, LinearF32) {
  for (KernelIsa isa : isas()) {
    EachIsa scope(isa);
    for (auto [N, I, O] : kShapes)
      for (bool with_bias : {false, true}) {
        auto x = randn(size_t(N * I), 10), wv = randn(size_t(O * I), 11), b = randn(size_t(O), 12);
        Tensor w = Tensor::from_vector(wv, {O, I});
        std::vector<float> fast(size_t(N * O));
        linear_forward(fast.data(), x.data(), w, with_bias ? b.data() : nullptr, N);
        std::vector<double> ref, bound;
        reference_linear(x, to_double(wv), with_bias ? &b : nullptr, N, I, O, false, ref, bound);
        expect_within(fast, ref, bound, I,
                      std::string("f32 ") + kernel_isa_name(isa) + " N" + std::to_string(N) + " I" + std::to_string(I) +
                          " O" + std::to_string(O));
        // matmul_forward is the same product on a raw pointer.
        std::vector<float> raw(size_t(N * O));
        matmul_forward(raw.data(), x.data(), wv.data(), with_bias ? b.data() : nullptr, N, I, O);
        EXPECT_EQ(raw, fast);
      }
  }
}

TEST(Kernels, LinearBf16RoundsActivationsAndSumsExactProducts) {
  for (KernelIsa isa : isas()) {
    EachIsa scope(isa);
    for (auto [N, I, O] : kShapes) {
      auto x = randn(size_t(N * I), 20), b = randn(size_t(O), 22);
      auto bits = random_bf16(size_t(O * I), 21);
      Tensor w = tensor_of_bits(bits, O, I, DType::BF16);
      std::vector<double> wd(bits.size());
      for (size_t i = 0; i < bits.size(); i++) wd[i] = bf16_ref_value(bits[i]);
      std::vector<float> fast(size_t(N * O));
      linear_forward(fast.data(), x.data(), w, b.data(), N);
      std::vector<double> ref, bound;
      reference_linear(x, wd, &b, N, I, O, true, ref, bound);
      expect_within(fast, ref, bound, I, std::string("bf16 ") + kernel_isa_name(isa) + " N" + std::to_string(N));
      std::vector<float> r(size_t(N * O));
      linear_forward_ref(r.data(), x.data(), w, b.data(), N);
      expect_within(r, ref, bound, 2, "bf16 linear_forward_ref");
    }
  }
}

TEST(Kernels, LinearF16) {
  for (KernelIsa isa : isas()) {
    EachIsa scope(isa);
    for (auto [N, I, O] : kShapes) {
      auto x = randn(size_t(N * I), 30);
      auto bits = random_f16(size_t(O * I), 31);
      Tensor w = tensor_of_bits(bits, O, I, DType::F16);
      std::vector<double> wd(bits.size());
      for (size_t i = 0; i < bits.size(); i++) wd[i] = f16_ref_value(bits[i]);
      std::vector<float> fast(size_t(N * O));
      linear_forward(fast.data(), x.data(), w, nullptr, N);
      std::vector<double> ref, bound;
      reference_linear(x, wd, nullptr, N, I, O, false, ref, bound);
      expect_within(fast, ref, bound, I, std::string("f16 ") + kernel_isa_name(isa) + " N" + std::to_string(N));
    }
  }
}

// A matrix with `density` of its elements nonzero, some rows empty, some full.
std::vector<float> sparse_matrix(int64_t O, int64_t I, double density, uint64_t seed) {
  Rng rng(seed);
  std::vector<float> w(size_t(O * I));
  for (int64_t o = 0; o < O; o++)
    for (int64_t i = 0; i < I; i++) {
      const bool keep = o % 7 == 3 ? false : o % 11 == 5 ? true : rng.uniform() < density;
      w[size_t(o * I + i)] = keep ? rng.normal(0.f, 1.f) : 0.f;
    }
  return w;
}

// 2:4: in every aligned group of four, the two largest |w| kept.
std::vector<float> two_four(int64_t O, int64_t I, uint64_t seed) {
  auto w = randn(size_t(O * I), seed);
  for (int64_t g = 0; g + 4 <= O * I; g += 4) {
    int lo1 = 0;
    for (int j = 1; j < 4; j++)
      if (std::fabs(w[size_t(g + j)]) < std::fabs(w[size_t(g + lo1)])) lo1 = j;
    int lo2 = lo1 == 0 ? 1 : 0;
    for (int j = 0; j < 4; j++)
      if (j != lo1 && std::fabs(w[size_t(g + j)]) < std::fabs(w[size_t(g + lo2)])) lo2 = j;
    w[size_t(g + lo1)] = w[size_t(g + lo2)] = 0.f;
  }
  return w;
}

TEST(Kernels, SparseRoundTripIsBitExact) {
  for (auto [O, I] : {std::pair<int64_t, int64_t>{1, 1}, {3, 7}, {67, 300}, {40, 64}, {5, 1000}}) {
    for (double density : {0.0, 0.1, 0.5, 0.9, 1.0}) {
      auto w = sparse_matrix(O, I, density, 40);
      // -0.0, NaN and denormals are stored, only +0.0 is not.
      if (O * I > 3) {
        w[1] = -0.f;
        w[2] = std::nanf("");
        w[3] = 1e-42f;
      }
      Tensor dense = Tensor::from_vector(w, {O, I});
      Tensor s = compress_sparse(dense);
      EXPECT_EQ(s.dtype(), DType::F32_SPARSE);
      EXPECT_EQ(s.shape(), dense.shape());
      validate_sparse_blob(s.raw(), s.nbytes(), s.shape(), "roundtrip");
      Tensor back = decompress_sparse(s);
      ASSERT_EQ(back.dtype(), DType::F32);
      EXPECT_EQ(std::memcmp(back.raw(), dense.raw(), dense.nbytes()), 0) << O << "x" << I << " d " << density;
      // The Tensor API does the same.
      Tensor viaTo = dense.to(DType::F32_SPARSE).to(DType::F32);
      EXPECT_EQ(std::memcmp(viaTo.raw(), dense.raw(), dense.nbytes()), 0);
      EXPECT_EQ(s.clone().nbytes(), s.nbytes());
      EXPECT_EQ(std::memcmp(s.clone().raw(), s.raw(), s.nbytes()), 0);
      std::vector<float> v = s.to_vector();
      EXPECT_EQ(std::memcmp(v.data(), w.data(), w.size() * 4), 0);
    }
  }
}

TEST(Kernels, SparseSizeAndPattern) {
  const int64_t O = 256, I = 2048;
  Tensor half = compress_sparse(Tensor::from_vector(two_four(O, I, 50), {O, I}));
  EXPECT_EQ(sparse_pattern(half), "2:4");
  // Values 2 bytes + mask 1/8 byte per element, plus the header and row offsets.
  const double ratio = double(half.nbytes()) / double(O * I * 4);
  EXPECT_LT(ratio, 0.54);
  EXPECT_GT(ratio, 0.53);
  Tensor unstructured = compress_sparse(Tensor::from_vector(sparse_matrix(O, I, 0.5, 51), {O, I}));
  EXPECT_EQ(sparse_pattern(unstructured), "");
}

// Runs f(label) under every kernel family and sparse-row expansion this machine has.
template <class F>
void for_each_sparse_kernel(F f) {
  for (KernelIsa isa : isas())
    for (bool vpopcnt : sparse_vpopcnt_choices(isa)) {
      EachIsa scope(isa);
      SparseExpand expand(vpopcnt);
      f(std::string("sparse ") + kernel_isa_name(isa) + (vpopcnt ? " vpopcntd" : ""));
    }
}

// linear_forward with wv [O, I] stored sparse (x and the bias from `seed`) against the double sums.
void expect_sparse_linear(const std::vector<float>& wv, int64_t N, int64_t I, int64_t O, uint64_t seed,
                          const std::string& what) {
  auto x = randn(size_t(N * I), seed), b = randn(size_t(O), seed + 1);
  Tensor s = compress_sparse(Tensor::from_vector(wv, {O, I}));
  std::vector<float> fast(size_t(N * O));
  linear_forward(fast.data(), x.data(), s, b.data(), N);
  std::vector<double> ref, bound;
  reference_linear(x, to_double(wv), &b, N, I, O, false, ref, bound);
  expect_within(fast, ref, bound, I, what);
}

TEST(Kernels, LinearSparseEqualsDense) {
  for_each_sparse_kernel([](const std::string& label) {
    for (auto [N, I, O] : kShapes)
      for (int kind = 0; kind < 3; kind++) {
        auto wv = kind == 2 && I % 4 == 0 ? two_four(O, I, 60) : sparse_matrix(O, I, kind == 0 ? 0.5 : 0.1, 61);
        expect_sparse_linear(wv, N, I, O, 62,
                             label + " N" + std::to_string(N) + " I" + std::to_string(I) + " O" + std::to_string(O) +
                                 " kind " + std::to_string(kind));
      }
  });
}

// The extremes of the format: no stored value at all (nnz 0: the values section is only padding)
// and every value stored (a mask of ones), decode (N 1, 3: 16-, 32- and 64-column steps) and prefill
// (N 64) paths, odd shapes.
TEST(Kernels, LinearSparseEmptyAndFullMatrices) {
  for_each_sparse_kernel([](const std::string& label) {
    for (auto [N, I, O] :
         std::vector<std::tuple<int64_t, int64_t, int64_t>>{{1, 37, 5}, {1, 300, 67}, {3, 300, 67}, {64, 129, 33}})
      for (double density : {0.0, 1.0}) {
        std::vector<float> wv = density == 0.0 ? std::vector<float>(size_t(O * I), 0.f) : randn(size_t(O * I), 80);
        EXPECT_EQ(sparse_view(compress_sparse(Tensor::from_vector(wv, {O, I}))).nnz, density == 0.0 ? 0 : O * I);
        expect_sparse_linear(wv, N, I, O, 81, label + " N" + std::to_string(N) + " density " + std::to_string(density));
      }
  });
}

TEST(Kernels, SparseBlobValidationRejectsCorruption) {
  Tensor s = compress_sparse(Tensor::from_vector(sparse_matrix(9, 70, 0.5, 70), {9, 70}));
  std::vector<uint8_t> good(static_cast<const uint8_t*>(s.raw()), static_cast<const uint8_t*>(s.raw()) + s.nbytes());
  validate_sparse_blob(good.data(), good.size(), {9, 70}, "good");
  EXPECT_THROW(validate_sparse_blob(good.data(), good.size(), {9, 71}, "shape"), Error);
  EXPECT_THROW(validate_sparse_blob(good.data(), 40, {9, 70}, "short"), Error);
  EXPECT_THROW(validate_sparse_blob(good.data(), good.size() - 64, {9, 70}, "truncated"), Error);
  auto corrupt = [&](size_t at, uint8_t v) {
    auto b = good;
    b[at] ^= v;
    return b;
  };
  EXPECT_THROW(validate_sparse_blob(corrupt(0, 1).data(), good.size(), {9, 70}, "magic"), Error);
  EXPECT_THROW(validate_sparse_blob(corrupt(64 + 8 * 3, 0x40).data(), good.size(), {9, 70}, "offset"), Error);
  const size_t mask_at = (64 + 10 * 8 + 63) / 64 * 64;
  EXPECT_THROW(validate_sparse_blob(corrupt(mask_at + 1, 0x10).data(), good.size(), {9, 70}, "mask"), Error);
  EXPECT_THROW(validate_sparse_blob(corrupt(mask_at + 8, 0x80).data(), good.size(), {9, 70}, "bits past cols"), Error);
}

TEST(Threads, EveryTaskRunsOnceAndNestedJobsRunInline) {
  for (int64_t n : {1, 2, 3, 100, 10000}) {
    std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
    parallel_for(n, [&](int64_t t) {
      hits[size_t(t)]++;
      if (t % 37 == 0) {
        std::atomic<int> inner{0};
        parallel_for(5, [&](int64_t) { inner++; });
        EXPECT_EQ(inner.load(), 5);
      }
    });
    for (auto& h : hits) EXPECT_EQ(h.load(), 1);
  }
  EXPECT_EQ(num_threads(), kThreads);
}

TEST(Threads, ConcurrentCallersFromTwoThreads) {
  std::atomic<int64_t> total{0};
  auto work = [&] {
    for (int r = 0; r < 200; r++) parallel_for(17, [&](int64_t t) { total += t; });
  };
  std::thread a(work), b(work);
  a.join();
  b.join();
  EXPECT_EQ(total.load(), 2 * 200 * (16 * 17 / 2));
}

TEST(Threads, SleepingWorkersWakeUp) {
  const int saved = spin_us();
  set_spin_us(0);  // workers sleep at once between jobs
  for (int r = 0; r < 300; r++) {
    std::atomic<int> c{0};
    parallel_for(8, [&](int64_t) { c++; });
    ASSERT_EQ(c.load(), 8);
    if (r % 50 == 0) std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  set_spin_us(saved);
}

}  // namespace
}  // namespace sec
