// Decode-shaped products: linear_forward with 1 (or --rows) activation rows over every linear of
// `layers` TinyLlama-1.1B-shaped blocks (q, k, v, o 2048x2048 / 256x2048, gate, up 5632x2048, down
// 2048x5632), with the weights stored as f32, bf16, f16, 50% unstructured sparse and 2:4 sparse.
// Each pass reads every weight once, like one decoded token. Reports the bytes streamed per second
// next to this machine's read bandwidth (bench/membw.h), all measured in the same run, alternating
// the sides, best of --repeat.
//   bench/bench_gemv [--layers 4] [--rows 1] [--repeat 5] [--formats f32,bf16,f16,sparse,2:4,openblas] [--hot 1]
//   (sparse-vexpandps, 2:4-vexpandps: the sparse formats with vexpandps where vpopcntd is the default)
// "openblas" is the f32 weights through cblas_sgemv / cblas_sgemm (OpenBLAS's threads, its core as
// chosen at start-up: core/threads.h), for comparison.
// --hot 1: one 256 x 2048 matrix per format instead, in cache, 200 products per pass: what the
// kernels do when memory is not the limit (bytes per second of weights from L2).
#include <cblas.h>
#include <time.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "core/cpu.h"
#include "core/random.h"
#include "core/sparse.h"
#include "core/threads.h"
#include "membw.h"
#include "ops/ops.h"

using namespace sec;

namespace {

struct Shape2 {
  int64_t O, I;
};
const Shape2 kBlock[] = {{2048, 2048}, {256, 2048},  {256, 2048}, {2048, 2048},
                         {5632, 2048}, {5632, 2048}, {2048, 5632}};

// Dense weights N(0, 0.02); for the sparse formats half of them zeroed (random or 2:4 by magnitude).
Tensor make_weight(const Shape2& s, const std::string& fmt, uint64_t seed) {
  Rng rng(seed);
  Tensor w = Tensor::empty({s.O, s.I});
  float* p = w.f32();
  const int64_t n = s.O * s.I;
  for (int64_t i = 0; i < n; i++) p[i] = rng.normal(0.f, 0.02f);
  if (fmt == "sparse") {
    for (int64_t i = 0; i < n; i++)
      if (rng.uniform() < 0.5) p[i] = 0.f;
  } else if (fmt == "2:4") {
    for (int64_t g = 0; g < n; g += 4) {  // zero the two smallest of each group of four
      for (int z = 0; z < 2; z++) {
        int lo = -1;
        for (int j = 0; j < 4; j++)
          if (p[g + j] != 0.f && (lo < 0 || std::fabs(p[g + j]) < std::fabs(p[g + lo]))) lo = j;
        p[g + lo] = 0.f;
      }
    }
  }
  if (fmt == "f32" || fmt == "openblas") return w;
  if (fmt == "bf16") return w.to(DType::BF16);
  if (fmt == "f16") return w.to(DType::F16);
  return compress_sparse(w);
}

// CPU time of the whole process (all threads): with one thread, what the kernel costs even when
// the machine is shared (a descheduled thread accrues none).
double cpu_seconds() {
  timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return double(ts.tv_sec) + 1e-9 * double(ts.tv_nsec);
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

int main(int argc, char** argv) {
  int layers = 4, rows = 1, repeat = 5, hot = 0;
  // Where the AVX-512 GEMV expands sparse rows with vpopcntd + vpermps (core/cpu.h), also time its
  // vexpandps form ("-vexpandps" formats) in the same run.
  std::string formats =
      sparse_vpopcnt() ? "f32,bf16,f16,sparse,2:4,sparse-vexpandps,2:4-vexpandps" : "f32,bf16,f16,sparse,2:4";
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string k = argv[i];
    if (k == "--layers") layers = std::atoi(argv[i + 1]);
    if (k == "--rows") rows = std::atoi(argv[i + 1]);
    if (k == "--repeat") repeat = std::atoi(argv[i + 1]);
    if (k == "--formats") formats = argv[i + 1];
    if (k == "--hot") hot = std::atoi(argv[i + 1]);
  }
  set_num_threads(0);
  std::printf("%s\n%s\n%s\n", cpu_summary().c_str(), kernels_summary().c_str(), threads_summary().c_str());
  std::vector<std::string> fmts;
  for (size_t a = 0; a < formats.size();) {
    size_t b = formats.find(',', a);
    if (b == std::string::npos) b = formats.size();
    fmts.push_back(formats.substr(a, b - a));
    a = b + 1;
  }
  const std::string vexpand_suffix = "-vexpandps";
  auto base_format = [&](const std::string& f) {
    return f.ends_with(vexpand_suffix) ? f.substr(0, f.size() - vexpand_suffix.size()) : f;
  };
  const bool vpopcnt = sparse_vpopcnt();
  struct Set {
    std::string fmt;
    std::vector<Tensor> w;
    double bytes = 0, best = 1e30, best_cpu = 1e30;
  };
  std::vector<Set> sets;
  for (const auto& f : fmts) {
    Set s{f, {}, 0, 1e30, 1e30};
    if (hot) {
      Tensor w = make_weight({256, 2048}, base_format(f), 1);
      for (int r = 0; r < 200; r++) s.w.push_back(w), s.bytes += double(w.nbytes());
    } else {
      for (int l = 0; l < layers; l++)
        for (size_t j = 0; j < std::size(kBlock); j++) {
          s.w.push_back(make_weight(kBlock[j], base_format(f), uint64_t(l * 16 + j)));
          s.bytes += double(s.w.back().nbytes());
        }
    }
    sets.push_back(std::move(s));
  }
  std::vector<float> x(size_t(rows) * 5632), y(size_t(rows) * 5632);
  Rng rng(7);
  for (auto& v : x) v = rng.normal(0.f, 1.f);
  double bw_best = 0;
  for (int r = 0; r < repeat + 1; r++) {  // the first round warms up and is not counted
    const double bw = measure_read_bandwidth(size_t(1) << 30, num_threads(), 1);
    if (r) bw_best = std::max(bw_best, bw);
    for (auto& s : sets) {
      auto t0 = std::chrono::steady_clock::now();
      const double c0 = cpu_seconds();
      if (s.fmt == "openblas") {
        for (const Tensor& w : s.w) {
          const int O = int(w.dim(0)), I = int(w.dim(1));
          if (rows == 1)
            cblas_sgemv(CblasRowMajor, CblasNoTrans, O, I, 1.f, w.f32(), I, x.data(), 1, 0.f, y.data(), 1);
          else
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, O, I, 1.f, x.data(), I, w.f32(), I, 0.f,
                        y.data(), O);
        }
      } else {
        set_sparse_vpopcnt(vpopcnt && !s.fmt.ends_with(vexpand_suffix));
        for (const Tensor& w : s.w) linear_forward(y.data(), x.data(), w, nullptr, rows);
      }
      if (r) s.best = std::min(s.best, seconds_since(t0)), s.best_cpu = std::min(s.best_cpu, cpu_seconds() - c0);
    }
  }
  std::printf("membw read (1 GB, %d threads): %.1f GB/s\n", num_threads(), bw_best);
  const double f32_time = sets[0].fmt == "f32" ? sets[0].best : 0;
  for (const auto& s : sets) {
    std::printf("gemv %-16s rows %d: %d blocks, %7.1f MB, best %6.2f ms/pass, %5.1f GB/s = %3.0f%% of membw",
                s.fmt.c_str(), rows, layers, s.bytes / 1e6, s.best * 1e3, s.bytes / s.best / 1e9,
                100 * s.bytes / s.best / 1e9 / bw_best);
    if (f32_time > 0 && s.fmt != "f32") std::printf(", %.2fx f32 speed", f32_time / s.best);
    std::printf("; cpu %.2f ms = %.1f GB/s per busy thread\n", s.best_cpu * 1e3, s.bytes / s.best_cpu / 1e9);
  }
  return 0;
}
