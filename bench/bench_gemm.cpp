// Prefill-shaped f32 products, out (M, O) = x (M, I) . W^T with TinyLlama-1.1B's linears (q/o
// 2048x2048, k/v 256x2048, gate/up 5632x2048, down 2048x5632, LM head 32000x2048), M = 512 tokens:
// secateur's own kernels (linear_forward) against OpenBLAS -- with each of its x86-64 cores picked
// in this process (gotoblas_dynamic_quit/init + OPENBLAS_CORETYPE; Prescott is what a CPU OpenBLAS
// does not know gets) -- and BLIS (dlopen'ed, if found), all in the same run, the sides alternated,
// best of --repeat. GFLOP/s = 2 M O I / time.
//   bench/bench_gemm [--tokens 512] [--repeat 5] [--cores Prescott,Haswell,SkylakeX,Cooperlake]
//                    [--blis /usr/lib/x86_64-linux-gnu/blis-openmp/libblis.so.4] [--shapes all|block]
//                    [--clock wall|cpu]
// --clock cpu times by the process's CPU time: with OMP_NUM_THREADS=1 on a shared machine, what a
// kernel costs regardless of how often it was descheduled.
#include <cblas.h>
#include <dlfcn.h>
#include <time.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>
#include <vector>

#include "core/cpu.h"
#include "core/random.h"
#include "core/threads.h"
#include "ops/ops.h"

using namespace sec;

namespace {

struct Lin {
  const char* name;
  int64_t O, I;
};
const Lin kLinears[] = {
    {"q/o", 2048, 2048}, {"k/v", 256, 2048}, {"gate/up", 5632, 2048}, {"down", 2048, 5632}, {"lm_head", 32000, 2048}};
// How often each shape occurs in one block (the LM head once per model: counted separately).
const int kPerBlock[] = {2, 2, 2, 1, 0};

std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> v;
  for (size_t a = 0; a < s.size();) {
    size_t b = s.find(',', a);
    if (b == std::string::npos) b = s.size();
    if (b > a) v.push_back(s.substr(a, b - a));
    a = b + 1;
  }
  return v;
}

bool set_openblas_core(const std::string& name) {
  using Fn = void (*)();
  using Name = char* (*)();
  auto quit = reinterpret_cast<Fn>(dlsym(RTLD_DEFAULT, "gotoblas_dynamic_quit"));
  auto init = reinterpret_cast<Fn>(dlsym(RTLD_DEFAULT, "gotoblas_dynamic_init"));
  auto core = reinterpret_cast<Name>(dlsym(RTLD_DEFAULT, "openblas_get_corename"));
  if (!quit || !init || !core) return false;
  setenv("OPENBLAS_CORETYPE", name.c_str(), 1);
  quit();
  init();
  unsetenv("OPENBLAS_CORETYPE");
  return strcasecmp(core(), name.c_str()) == 0;
}

double seconds(const std::string& clock) {
  timespec ts;
  clock_gettime(clock == "cpu" ? CLOCK_PROCESS_CPUTIME_ID : CLOCK_MONOTONIC, &ts);
  return double(ts.tv_sec) + 1e-9 * double(ts.tv_nsec);
}

using Sgemm = void (*)(CBLAS_ORDER, CBLAS_TRANSPOSE, CBLAS_TRANSPOSE, int, int, int, float, const float*, int,
                       const float*, int, float, float*, int);

}  // namespace

int main(int argc, char** argv) {
  int64_t M = 512;
  int repeat = 5;
  std::string cores = "Prescott,Haswell,SkylakeX,Cooperlake", shapes = "all", clock = "wall";
  std::string blis_path = "/usr/lib/x86_64-linux-gnu/blis-openmp/libblis.so.4";
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string k = argv[i];
    if (k == "--tokens") M = std::atol(argv[i + 1]);
    if (k == "--repeat") repeat = std::atoi(argv[i + 1]);
    if (k == "--cores") cores = argv[i + 1];
    if (k == "--blis") blis_path = argv[i + 1];
    if (k == "--shapes") shapes = argv[i + 1];
    if (k == "--clock") clock = argv[i + 1];
  }
  set_num_threads(0);
  const int threads = num_threads();
  std::printf("%s\n%s\n%s\n", cpu_summary().c_str(), kernels_summary().c_str(), threads_summary().c_str());

  struct Side {
    std::string name;
    std::function<void(float*, const float*, const Tensor&, int64_t)> run;
  };
  std::vector<Side> sides;
  sides.push_back(
      {"secateur", [](float* y, const float* x, const Tensor& w, int64_t m) { linear_forward(y, x, w, nullptr, m); }});
  for (const std::string& c : split(cores)) {
    if (!set_openblas_core(c)) {
      std::printf("openblas: core %s not available here, skipped\n", c.c_str());
      continue;
    }
    sides.push_back({"openblas " + c, [c](float* y, const float* x, const Tensor& w, int64_t m) {
                       static std::string current;
                       if (current != c) set_openblas_core(c), current = c;
                       cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, int(m), int(w.dim(0)), int(w.dim(1)), 1.f,
                                   x, int(w.dim(1)), w.f32(), int(w.dim(1)), 0.f, y, int(w.dim(0)));
                     }});
  }
  if (void* h = blis_path.empty() ? nullptr : dlopen(blis_path.c_str(), RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND)) {
    auto sg = reinterpret_cast<Sgemm>(dlsym(h, "cblas_sgemm"));
    auto nt = reinterpret_cast<void (*)(long)>(dlsym(h, "bli_thread_set_num_threads"));
    auto arch_id = reinterpret_cast<int (*)()>(dlsym(h, "bli_arch_query_id"));
    auto arch_str = reinterpret_cast<const char* (*)(int)>(dlsym(h, "bli_arch_string"));
    if (nt) nt(threads);
    const std::string arch = arch_id && arch_str ? arch_str(arch_id()) : "?";
    std::printf("blis: %s, kernels for '%s' (chosen by BLIS from cpuid and the brand string)\n", blis_path.c_str(),
                arch.c_str());
    if (sg)
      sides.push_back({"blis " + arch, [sg](float* y, const float* x, const Tensor& w, int64_t m) {
                         sg(CblasRowMajor, CblasNoTrans, CblasTrans, int(m), int(w.dim(0)), int(w.dim(1)), 1.f, x,
                            int(w.dim(1)), w.f32(), int(w.dim(1)), 0.f, y, int(w.dim(0)));
                       }});
  } else if (!blis_path.empty()) {
    std::printf("blis: %s not found (apt-get install libblis4-openmp), skipped\n", blis_path.c_str());
  }

  std::vector<Tensor> ws;
  std::vector<const Lin*> lins;
  for (size_t j = 0; j < std::size(kLinears); j++) {
    if (shapes == "block" && kPerBlock[j] == 0) continue;
    Rng rng(j);
    Tensor w = Tensor::empty({kLinears[j].O, kLinears[j].I});
    for (int64_t i = 0; i < w.numel(); i++) w.f32()[i] = rng.normal(0.f, 0.02f);
    ws.push_back(w);
    lins.push_back(&kLinears[j]);
  }
  std::vector<float> x(size_t(M) * 5632), y(size_t(M) * 32000);
  Rng rng(99);
  for (auto& v : x) v = rng.normal(0.f, 1.f);
  std::vector<std::vector<double>> best(sides.size(), std::vector<double>(ws.size(), 1e30));
  for (int r = 0; r < repeat + 1; r++)  // round 0 warms up
    for (size_t j = 0; j < ws.size(); j++)
      for (size_t s = 0; s < sides.size(); s++) {
        const double t0 = seconds(clock);
        sides[s].run(y.data(), x.data(), ws[j], M);
        const double t = seconds(clock) - t0;
        if (r) best[s][j] = std::min(best[s][j], t);
      }
  std::printf("%-22s", "GFLOP/s, M tokens");
  for (const Lin* l : lins) std::printf(" %9s", l->name);
  std::printf("  block (4x7 linears)\n");
  for (size_t s = 0; s < sides.size(); s++) {
    std::printf("%-22s", sides[s].name.c_str());
    double block_t = 0, block_f = 0;
    for (size_t j = 0; j < ws.size(); j++) {
      const double flops = 2.0 * double(M) * double(lins[j]->O) * double(lins[j]->I);
      std::printf(" %9.1f", flops / best[s][j] / 1e9);
      const int per = kPerBlock[lins[j] - kLinears];
      block_t += per * best[s][j];
      block_f += per * flops;
    }
    std::printf("  %7.1f  (%.2fx secateur)\n", block_f / block_t / 1e9, [&] {
      double t0 = 0;
      for (size_t j = 0; j < ws.size(); j++) t0 += kPerBlock[lins[j] - kLinears] * best[0][j];
      return t0 / block_t;
    }());
  }
  std::printf("(M = %lld tokens, %d threads, %s clock)\n", (long long)M, threads, clock.c_str());
  return 0;
}
