// Autoregressive generation with a KV cache: greedy (temperature 0) or temperature + top-p sampling.
#pragma once
#include <cstdint>
#include <functional>
#include <vector>

#include "model/model.h"

namespace sec {

struct GenerateOptions {
  int max_new_tokens = 100;
  float temperature = 0.f;  // 0: greedy (argmax, lowest id on ties)
  float top_p = 0.9f;       // nucleus sampling when temperature > 0 (1: plain sampling)
  uint64_t seed = 0;
  bool stop_at_eos = true;
};

// Samples the next token from logits (V). Exposed for tests.
int sample_token(const float* logits, int64_t V, float temperature, float top_p, double coin);

// Returns the generated tokens (without the prompt). on_token is called for each new token as it
// is produced (for streaming output). The prompt must be non-empty.
std::vector<int32_t> generate(const Model& m, const std::vector<int32_t>& prompt, const GenerateOptions& opts,
                              const std::function<void(int32_t)>& on_token = {});

}  // namespace sec
