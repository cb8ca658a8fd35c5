// End-to-end estimate before the model code routes every weight through linear_forward: a
// TinyLlama-1.1B-shaped stack (hidden 2048, 32 heads / 4 KV heads of 64, FFN 5632, vocab 32000) of
// --layers blocks, written with the ops directly (RMSNorm, q/k/v, RoPE, attention with a KV cache,
// o, SwiGLU MLP, residuals, final norm, LM head on the last position only -- as llama.cpp's
// llama-bench times it), with the block linears stored as --format: f32, bf16, f16, sparse (50%
// unstructured, random) or 2:4. The LM head is f32 unless --head-format says otherwise (a pruned
// model keeps it dense; a bf16 model converts it too: --format bf16 implies --head-format bf16).
// Prefill of --prompt tokens, then --gen greedy-shaped decode steps (the token fed back is fixed:
// the cost is the same). Every format given (--formats f32,sparse,2:4,bf16) is built in this
// process and they are run in turn, round after round (so that a change in the machine's load hits
// all alike), best of --repeat rounds; ratios are to the first format.
//   bench/bench_blocks [--layers 4] [--prompt 512] [--gen 32] [--formats f32] [--head-format F] [--repeat 3]
//                      [--spins 0,50,200]  (the pool's spin budgets to alternate, in microseconds)
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
#include "ops/ops.h"

using namespace sec;

namespace {

constexpr int64_t D = 2048, Hq = 32, Hkv = 4, hd = 64, F = 5632, V = 32000, KV = Hkv * hd;

Tensor weight(int64_t O, int64_t I, const std::string& fmt, uint64_t seed) {
  Rng rng(seed);
  Tensor w = Tensor::empty({O, I});
  float* p = w.f32();
  for (int64_t i = 0; i < O * I; i++) p[i] = rng.normal(0.f, 0.02f);
  if (fmt == "sparse")
    for (int64_t i = 0; i < O * I; i++)
      if (rng.uniform() < 0.5) p[i] = 0.f;
  if (fmt == "2:4")
    for (int64_t g = 0; g < O * I; g += 4)
      for (int z = 0; z < 2; z++) {
        int lo = -1;
        for (int j = 0; j < 4; j++)
          if (p[g + j] != 0.f && (lo < 0 || std::fabs(p[g + j]) < std::fabs(p[g + lo]))) lo = j;
        p[g + lo] = 0.f;
      }
  if (fmt == "f32") return w;
  if (fmt == "bf16") return w.to(DType::BF16);
  if (fmt == "f16") return w.to(DType::F16);
  if (fmt == "sparse" || fmt == "2:4") return compress_sparse(w);
  std::fprintf(stderr, "unknown format %s\n", fmt.c_str());
  std::exit(2);
}

struct Block {
  Tensor wq, wk, wv, wo, gate, up, down;
  std::vector<float> n1, n2;
  std::vector<float> kc, vc;  // KV cache (S_cap, KV)
};

struct Stack {
  std::vector<Block> blocks;
  std::vector<float> embed, final_norm, inv_freq;
  Tensor head;
  int64_t S_cap = 0;
  double weight_bytes = 0;
};

// Forward of T tokens at positions pos0.. through every block; logits of the last one into `logits`.
void forward(Stack& s, const int32_t* tokens, int64_t T, int64_t pos0, float* logits) {
  std::vector<float> x(size_t(T * D)), h(size_t(T * D)), q(size_t(T * D)), att(size_t(T * D)), proj(size_t(T * D));
  std::vector<float> g(size_t(T * F)), u(size_t(T * F));
  for (int64_t t = 0; t < T; t++)
    for (int64_t i = 0; i < D; i++) x[size_t(t * D + i)] = s.embed[size_t(int64_t(tokens[t]) * D + i)];
  for (Block& b : s.blocks) {
    rmsnorm_forward(h.data(), nullptr, x.data(), b.n1.data(), T, D, 1e-5f);
    float* kdst = b.kc.data() + pos0 * KV;
    float* vdst = b.vc.data() + pos0 * KV;
    linear_forward(q.data(), h.data(), b.wq, nullptr, T);
    linear_forward(kdst, h.data(), b.wk, nullptr, T);
    linear_forward(vdst, h.data(), b.wv, nullptr, T);
    rope_forward(q.data(), s.inv_freq.data(), 1, T, Hq, hd, pos0);
    rope_forward(kdst, s.inv_freq.data(), 1, T, Hkv, hd, pos0);
    attention_forward(att.data(), nullptr, q.data(), b.kc.data(), b.vc.data(), 1, T, s.S_cap, pos0, Hq, Hkv, hd);
    linear_forward(proj.data(), att.data(), b.wo, nullptr, T);
    add_inplace(x.data(), proj.data(), T * D);
    rmsnorm_forward(h.data(), nullptr, x.data(), b.n2.data(), T, D, 1e-5f);
    linear_forward(g.data(), h.data(), b.gate, nullptr, T);
    linear_forward(u.data(), h.data(), b.up, nullptr, T);
    swiglu_forward(g.data(), g.data(), u.data(), T * F);
    linear_forward(proj.data(), g.data(), b.down, nullptr, T);
    add_inplace(x.data(), proj.data(), T * D);
  }
  rmsnorm_forward(h.data(), nullptr, x.data() + (T - 1) * D, s.final_norm.data(), 1, D, 1e-5f);
  linear_forward(logits, h.data(), s.head, nullptr, 1);
}

double now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

}  // namespace

int main(int argc, char** argv) {
  int layers = 4, repeat = 3;
  int64_t P = 512, G = 32;
  std::string formats = "f32", head_arg, spins_arg;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string k = argv[i];
    if (k == "--layers") layers = std::atoi(argv[i + 1]);
    if (k == "--prompt") P = std::atol(argv[i + 1]);
    if (k == "--gen") G = std::atol(argv[i + 1]);
    if (k == "--formats" || k == "--format") formats = argv[i + 1];
    if (k == "--head-format") head_arg = argv[i + 1];
    if (k == "--repeat") repeat = std::atoi(argv[i + 1]);
    if (k == "--spins") spins_arg = argv[i + 1];
  }
  auto split = [](const std::string& v) {
    std::vector<std::string> out;
    for (size_t x = 0; x < v.size();) {
      size_t y = v.find(',', x);
      if (y == std::string::npos) y = v.size();
      out.push_back(v.substr(x, y - x));
      x = y + 1;
    }
    return out;
  };
  set_num_threads(0);
  std::fprintf(stderr, "%s\n%s\n%s\n", cpu_summary().c_str(), kernels_summary().c_str(), threads_summary().c_str());
  Rng rng(5);
  std::vector<float> embed(size_t(V * D));
  for (auto& e : embed) e = rng.normal(0.f, 0.02f);
  std::vector<float> inv_freq;
  for (int64_t i = 0; i < hd / 2; i++) inv_freq.push_back(float(std::pow(10000.0, -2.0 * double(i) / double(hd))));
  struct Run {
    std::string fmt, head_fmt;
    Stack s;
    double block_bytes = 0;
  };
  std::vector<Run> runs;
  for (const std::string& fmt : split(formats)) {
    Run run;
    run.fmt = fmt;
    run.head_fmt = !head_arg.empty() ? head_arg : fmt == "bf16" || fmt == "f16" ? fmt : "f32";
    Stack& s = run.s;
    s.S_cap = P + G;
    for (int l = 0; l < layers; l++) {
      Block b;
      const uint64_t seed = uint64_t(l) * 16;
      b.wq = weight(D, D, fmt, seed + 1);
      b.wk = weight(KV, D, fmt, seed + 2);
      b.wv = weight(KV, D, fmt, seed + 3);
      b.wo = weight(D, D, fmt, seed + 4);
      b.gate = weight(F, D, fmt, seed + 5);
      b.up = weight(F, D, fmt, seed + 6);
      b.down = weight(D, F, fmt, seed + 7);
      for (const Tensor* t : {&b.wq, &b.wk, &b.wv, &b.wo, &b.gate, &b.up, &b.down})
        s.weight_bytes += double(t->nbytes());
      b.n1.assign(D, 1.f);
      b.n2.assign(D, 1.f);
      b.kc.assign(size_t(s.S_cap * KV), 0.f);
      b.vc.assign(size_t(s.S_cap * KV), 0.f);
      s.blocks.push_back(std::move(b));
    }
    s.head = weight(V, D, run.head_fmt, 999);
    run.block_bytes = s.weight_bytes;
    s.weight_bytes += double(s.head.nbytes());
    s.embed = embed;
    s.final_norm.assign(D, 1.f);
    s.inv_freq = inv_freq;
    runs.push_back(std::move(run));
  }
  std::vector<int32_t> prompt(static_cast<size_t>(P));
  for (auto& t : prompt) t = int32_t(rng.below(uint64_t(V)));
  std::vector<float> logits(static_cast<size_t>(V));
  std::vector<int> spins;
  for (const std::string& x : split(spins_arg)) spins.push_back(std::atoi(x.c_str()));
  if (spins.empty()) spins.push_back(spin_us());
  const size_t n = runs.size() * spins.size();
  std::vector<double> best_p(n, 1e30), best_d(n, 1e30);
  for (int r = 0; r < repeat; r++)
    for (size_t i = 0; i < n; i++) {
      Stack& s = runs[i / spins.size()].s;
      set_spin_us(spins[i % spins.size()]);
      const double t0 = now();
      forward(s, prompt.data(), P, 0, logits.data());
      const double t1 = now();
      for (int64_t g = 0; g < G; g++) {
        const int32_t tok = int32_t((g * 7919) % V);
        forward(s, &tok, 1, P + g, logits.data());
      }
      const double t2 = now();
      best_p[i] = std::min(best_p[i], t1 - t0);
      if (G > 0) best_d[i] = std::min(best_d[i], t2 - t1);
    }
  for (size_t i = 0; i < n; i++) {
    const Run& run = runs[i / spins.size()];
    const size_t ref = i % spins.size();  // the first format, same spin
    // File size as a GGUF would hold it: block linears + LM head + f32 embedding table.
    const double file = run.s.weight_bytes + double(V * D * 4), file_ref = runs[0].s.weight_bytes + double(V * D * 4);
    std::printf(
        "blocks %d %-6s head %-4s spin %3d us: prefill %lld tok %7.1f tok/s (%.2fx) | decode %lld tok %6.2f tok/s "
        "(%.2fx), %5.1f GB/s of weights | weights %.0f MB (blocks %.0f MB), file ~%.0f MB (%.2fx)\n",
        layers, run.fmt.c_str(), run.head_fmt.c_str(), spins[i % spins.size()], (long long)P, double(P) / best_p[i],
        best_p[ref] / best_p[i], (long long)G, double(G) / best_d[i], best_d[ref] / best_d[i],
        run.s.weight_bytes * double(G) / best_d[i] / 1e9, run.s.weight_bytes / 1e6, run.block_bytes / 1e6, file / 1e6,
        file / file_ref);
  }
  return 0;
}
