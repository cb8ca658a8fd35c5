#include "eval/bench.h"

#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <vector>

#include "core/error.h"
#include "core/random.h"
#include "model/forward.h"

namespace sec {

double flops_per_token(const Config& c, int64_t ctx) {
  double attn = 0;
  for (int l = 0; l < c.n_layers(); l++) attn += double(c.blocks[l].n_heads) * c.head_dim;
  return 2.0 * double(linear_param_count(c)) + 4.0 * double(ctx) * attn;
}

int64_t peak_rss_bytes() {
  struct rusage ru {};
  getrusage(RUSAGE_SELF, &ru);
  return int64_t(ru.ru_maxrss) * 1024;  // Linux reports kilobytes
}

BenchResult run_bench(const Model& m, const BenchOptions& opts) {
  SEC_CHECK(opts.prompt_tokens >= 1 && opts.gen_tokens >= 0, "bench needs --prompt-tokens >= 1 and --gen-tokens >= 0");
  const Config& c = m.config;
  const int64_t P = opts.prompt_tokens, G = opts.gen_tokens, V = c.vocab_size;
  BenchResult r;
  r.prompt_tokens = P;
  r.gen_tokens = G;
  Rng rng(opts.seed);
  std::vector<int32_t> prompt(static_cast<size_t>(P));
  for (auto& t : prompt) t = int32_t(rng.below(uint64_t(V)));

  KVCache cache = KVCache::create(c, 1, P + G);
  std::vector<float> logits(size_t(P * V));
  auto t0 = std::chrono::steady_clock::now();
  model_forward(m, prompt.data(), 1, P, logits.data(), &cache);
  auto t1 = std::chrono::steady_clock::now();
  // Greedy decoding: each step feeds the argmax of the previous step's last logits.
  const float* last = logits.data() + (P - 1) * V;
  int32_t next = int32_t(std::max_element(last, last + V) - last);
  std::vector<float> step(static_cast<size_t>(V));
  for (int64_t g = 0; g < G; g++) {
    model_forward(m, &next, 1, 1, step.data(), &cache);
    next = int32_t(std::max_element(step.begin(), step.end()) - step.begin());
  }
  auto t2 = std::chrono::steady_clock::now();
  r.prefill_seconds = std::chrono::duration<double>(t1 - t0).count();
  r.decode_seconds = std::chrono::duration<double>(t2 - t1).count();
  r.prefill_tokens_per_second = r.prefill_seconds > 0 ? double(P) / r.prefill_seconds : 0;
  r.decode_tokens_per_second = r.decode_seconds > 0 && G > 0 ? double(G) / r.decode_seconds : 0;
  r.peak_rss_bytes = peak_rss_bytes();
  r.params = param_count(c);
  r.linear_params = linear_param_count(c);
  for_each_tensor(c, m.weights, [&](const TensorRef& t) { r.weight_bytes += int64_t(t.tensor.nbytes()); });
  r.file_weight_bytes = m.source.stored_weight_bytes > 0 ? m.source.stored_weight_bytes
                                                         : r.params * int64_t(dtype_size(m.source.file_dtype));
  r.flops_per_token = flops_per_token(c, P);
  r.flops_per_token_linear = 2.0 * double(r.linear_params);
  return r;
}

}  // namespace sec
