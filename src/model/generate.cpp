#include "model/generate.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "core/error.h"
#include "core/random.h"
#include "model/forward.h"

namespace sec {

int sample_token(const float* logits, int64_t V, float temperature, float top_p, double coin) {
  if (temperature <= 0.f) return int(std::max_element(logits, logits + V) - logits);
  std::vector<double> p(static_cast<size_t>(V));
  double mx = *std::max_element(logits, logits + V), sum = 0;
  for (int64_t i = 0; i < V; i++) sum += (p[i] = std::exp((logits[i] - mx) / temperature));
  for (auto& x : p) x /= sum;
  std::vector<int> order(static_cast<size_t>(V));
  std::iota(order.begin(), order.end(), 0);
  int64_t keep = V;
  if (top_p > 0.f && top_p < 1.f) {
    // Nucleus: the smallest set of most likely tokens whose probability reaches top_p.
    std::sort(order.begin(), order.end(), [&](int a, int b) { return p[a] > p[b] || (p[a] == p[b] && a < b); });
    double cum = 0;
    for (keep = 0; keep < V;) {
      cum += p[order[keep++]];
      if (cum >= top_p) break;
    }
    sum = cum;
  } else {
    sum = 1.0;
  }
  double r = coin * sum, acc = 0;
  for (int64_t i = 0; i < keep; i++) {
    acc += p[order[i]];
    if (r < acc) return order[i];
  }
  return order[keep - 1];
}

std::vector<int32_t> generate(const Model& m, const std::vector<int32_t>& prompt, const GenerateOptions& opts,
                              const std::function<void(int32_t)>& on_token) {
  SEC_CHECK(!prompt.empty(), "generate: the prompt is empty (it needs at least a BOS token)");
  const int64_t V = m.config.vocab_size;
  const int64_t total = int64_t(prompt.size()) + opts.max_new_tokens;
  SEC_CHECK(total <= m.config.max_seq_len || m.config.max_seq_len <= 0, "generate: ", total,
            " tokens exceed the model's context length ", m.config.max_seq_len);
  KVCache cache = KVCache::create(m.config, 1, total);
  Rng rng(opts.seed);
  std::vector<float> logits(static_cast<size_t>(int64_t(prompt.size()) * V));
  model_forward(m, prompt.data(), 1, int64_t(prompt.size()), logits.data(), &cache);
  const float* last = logits.data() + (int64_t(prompt.size()) - 1) * V;
  std::vector<int32_t> out;
  std::vector<float> step(static_cast<size_t>(V));
  for (int i = 0; i < opts.max_new_tokens; i++) {
    int32_t next = sample_token(last, V, opts.temperature, opts.top_p, rng.uniform());
    if (opts.stop_at_eos && next == m.config.eos_token_id) break;
    out.push_back(next);
    if (on_token) on_token(next);
    if (i + 1 == opts.max_new_tokens) break;
    model_forward(m, &next, 1, 1, step.data(), &cache);
    last = step.data();
  }
  return out;
}

}  // namespace sec
