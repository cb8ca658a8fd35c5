// Time to prune one LLaMA-7B-shaped block (q/k/v/o 4096x4096, gate/up 11008x4096, down 4096x11008)
// from nsamples x seqlen calibration positions (default 16 x 1024) with Wanda and SparseGPT, through
// the same layer-wise driver `secateur prune` uses: statistics pass (block forward + taps), the
// decision and weight update, and the output pass (forward of the pruned block).
// Block inputs are random hidden states ~ N(0, 1) (no trained 7B weights exist here); weights are
// model/init.h's N(0, 0.02). Prints one JSON line per method.
// Usage: prune_block [--nsamples 16] [--seqlen 1024] [--methods wanda,sparsegpt] [--dim 4096 --ffn 11008 --heads 32]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "core/log.h"
#include "core/random.h"
#include "core/threads.h"
#include "model/init.h"
#include "prune/unstructured_driver.h"

using namespace sec;

int main(int argc, char** argv) {
  int64_t nsamples = 16, seqlen = 1024;
  int dim = 4096, ffn = 11008, heads = 32;
  std::string methods = "wanda,sparsegpt";
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string k = argv[i], v = argv[i + 1];
    if (k == "--nsamples")
      nsamples = std::atoll(v.c_str());
    else if (k == "--seqlen")
      seqlen = std::atoll(v.c_str());
    else if (k == "--methods")
      methods = v;
    else if (k == "--dim")
      dim = std::atoi(v.c_str());
    else if (k == "--ffn")
      ffn = std::atoi(v.c_str());
    else if (k == "--heads")
      heads = std::atoi(v.c_str());
  }
  set_num_threads(0);
  set_log_level(LogLevel::Warn);
  Config c;
  c.dim = dim;
  c.head_dim = dim / heads;
  c.vocab_size = 32;
  c.max_seq_len = int(seqlen);
  c.norm_eps = 1e-6f;
  c.blocks = {{heads, heads, ffn}};
  std::vector<float> hidden(size_t(nsamples * seqlen * dim));
  Rng rng(1);
  for (auto& x : hidden) x = rng.normal();
  for (const char* name : {"wanda", "sparsegpt"}) {
    if (methods.find(name) == std::string::npos) continue;
    Model m = init_random_model(c, 0, 0.02f);
    UnstructuredOptions o;
    o.method = parse_unstructured_method(name);
    o.target.ratio = 0.5;
    auto t0 = std::chrono::steady_clock::now();
    UnstructuredReport r = prune_unstructured_hidden(m, o, hidden, nsamples, seqlen);
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::printf(
        "{\"impl\": \"secateur\", \"method\": \"%s\", \"seconds\": %.3f, \"sparsity\": %.4f, \"threads\": %d, "
        "\"tokens\": %lld}\n",
        name, s, r.overall_sparsity(), num_threads(), (long long)(nsamples * seqlen));
    std::fflush(stdout);
  }
  return 0;
}
