// Speed and size of a model on this machine: prefill and decode tokens/s with the KV cache, peak
// resident memory, parameter count, weight bytes and the FLOPs one token costs.
//
// FLOPs per token (forward pass, multiply-add = 2 FLOPs), at a context of `ctx` earlier positions:
//   2 * linear_params  +  4 * ctx * sum_l (n_heads_l * head_dim)
// linear_params = every matrix a token is multiplied by: q, k, v, o, gate, up, down of every block
// and the LM head (the embedding is a lookup, norms and biases are negligible). The attention term
// counts q.k^T and att.v (2 * head_dim * ctx multiply-adds per query head). Reported at
// ctx = prompt_tokens (what the last prefill token and the first decoded token attend to).
#pragma once
#include <cstdint>

#include "model/model.h"

namespace sec {

struct BenchOptions {
  int64_t prompt_tokens = 128;
  int64_t gen_tokens = 32;
  uint64_t seed = 0;  // the prompt is seeded random tokens (no tokenizer needed)
};

struct BenchResult {
  int64_t prompt_tokens = 0, gen_tokens = 0;
  double prefill_seconds = 0, prefill_tokens_per_second = 0;
  double decode_seconds = 0, decode_tokens_per_second = 0;
  int64_t peak_rss_bytes = 0;         // getrusage ru_maxrss of the whole process (includes loading)
  int64_t params = 0;                 // distinct parameters (tied head counted once)
  int64_t linear_params = 0;          // see the formula above
  int64_t weight_bytes = 0;           // in memory (f32, sparse-stored block linears compressed)
  int64_t file_weight_bytes = 0;      // as stored in the source file(s) (params * dtype size when unknown)
  double flops_per_token = 0;         // at ctx = prompt_tokens
  double flops_per_token_linear = 0;  // 2 * linear_params (context-independent part)
};

// FLOPs per token at a context of ctx positions (linear_param_count from model/weights.h).
double flops_per_token(const Config& c, int64_t ctx);
int64_t peak_rss_bytes();

BenchResult run_bench(const Model& m, const BenchOptions& opts);

}  // namespace sec
