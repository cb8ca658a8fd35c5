// Inference forward pass over a batch of token sequences, the per-block pieces that layer-wise
// calibration uses, a KV cache for generation, and taps (named observation points).
#pragma once
#include <cstdint>
#include <vector>

#include "core/tensor.h"
#include "model/model.h"

namespace sec {

// Observation points inside a block. Each is reported as a (rows = B*T, cols) matrix.
enum class TapPoint {
  BlockInput,    // x entering block l                       (N, C)
  AttnInput,     // RMSNorm_1(x): input of q/k/v_proj          (N, C)
  AttnHeads,     // concatenated head outputs: input of o_proj (N, Hq*hd); head h = cols [h*hd, (h+1)*hd)
  AttnResidual,  // h = x + o_proj(...)                       (N, C)
  MlpInput,      // RMSNorm_2(h): input of gate/up_proj         (N, C)
  MlpHidden,     // silu(gate) * up: input of down_proj         (N, F)
  BlockOutput,   // block output                              (N, C)
};
const char* tap_point_name(TapPoint p);

// Subscribers override observe(); `wants` lets the forward pass skip unneeded points.
struct Tap {
  virtual ~Tap() = default;
  virtual bool wants(TapPoint point, int layer) const { return true; }
  virtual void observe(TapPoint point, int layer, const float* data, int64_t rows, int64_t cols) = 0;
  // False when the caller discards the block's output after this pass (a statistics-only pass):
  // block_forward then skips the down projection, which only feeds that output.
  virtual bool needs_block_output() const { return true; }
};

// Keys/values of every block for `batch` sequences, positions [0, capacity).
struct KVCache {
  int64_t batch = 0, capacity = 0;
  int64_t pos = 0;           // number of positions filled so far
  std::vector<Tensor> k, v;  // per block: (batch, capacity, Hkv_l, hd)
  static KVCache create(const Config& c, int64_t batch, int64_t capacity);
};

// Buffers reused across calls (so a generate loop does not reallocate).
struct ForwardScratch {
  std::vector<float> q, k, v, att_out, proj, norm, gate, up, hidden;
};

// x (N, C) = embedding rows of tokens; throws Error if a token id is outside the vocabulary.
void embed_tokens(const Model& m, const int32_t* tokens, int64_t N, float* x);

// One block in place on x (B, T, C). With a cache, the block's keys/values are appended at
// cache->pos (the caller advances cache->pos after all blocks ran); without one, positions are 0..T-1.
void block_forward(const Model& m, int layer, float* x, int64_t B, int64_t T, Tap* tap = nullptr,
                   KVCache* cache = nullptr, ForwardScratch* scratch = nullptr);

// Final RMSNorm + LM head: logits (N, V) from x (N, C). x is not modified.
void head_forward(const Model& m, const float* x, int64_t N, float* logits);

// Whole model: tokens (B, T) -> logits (B, T, V). With a cache, positions continue at cache->pos
// and the cache advances by T.
void model_forward(const Model& m, const int32_t* tokens, int64_t B, int64_t T, float* logits, KVCache* cache = nullptr,
                   Tap* tap = nullptr);
Tensor model_forward(const Model& m, const std::vector<int32_t>& tokens, int64_t B, int64_t T);

}  // namespace sec
