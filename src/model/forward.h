// The model's computation, defined once: one block (forward and backward), the embedding, the head,
// and the whole-model inference forward. The same block_forward serves inference (taps, KV cache),
// layer-wise calibration and training (activations saved for block_backward, LoRA deltas).
//
// A block maps its input x_in (N = B*T rows, width Cin) to its output x_out (width Cout):
//   n1  = RMSNorm_1(x_in)                        (skipped with the attention when Hq = 0)
//   mid = x_in [. S_attn^T] + o_proj(attn(q_proj(n1), k_proj(n1), v_proj(n1)))     (N, Cmid)
//   n2  = RMSNorm_2(mid)                          (skipped with the MLP when F = 0)
//   out = mid [. S_mlp^T] + down_proj(silu(gate_proj(n2)) * up_proj(n2))           (N, Cout)
// with the shortcut matrices S only where the config has them (a rotated/sliced model).
#pragma once
#include <cstdint>
#include <vector>

#include "core/tensor.h"
#include "model/model.h"

namespace sec {

// Observation points inside a block. Each is reported as B sequences x T positions x cols.
enum class TapPoint {
  BlockInput,    // x entering block l                       (N, Cin)
  AttnInput,     // RMSNorm_1(x): input of q/k/v_proj          (N, Cin)
  AttnHeads,     // concatenated head outputs: input of o_proj (N, Hq*hd); head h = cols [h*hd, (h+1)*hd)
  AttnResidual,  // mid = x [S] + o_proj(...)                 (N, Cmid)
  MlpInput,      // RMSNorm_2(mid): input of gate/up_proj       (N, Cmid)
  MlpHidden,     // silu(gate) * up: input of down_proj         (N, F)
  BlockOutput,   // block output                              (N, Cout)
};
const char* tap_point_name(TapPoint p);

// Data at a tap point: row (b * T + t) is position t of sequence b.
struct TapData {
  const float* data;
  int64_t B, T, cols;
  int64_t rows() const { return B * T; }
};

// Subscribers override observe(); `wants` lets the forward pass skip unneeded points.
struct Tap {
  virtual ~Tap() = default;
  virtual bool wants(TapPoint point, int layer) const { return true; }
  virtual void observe(TapPoint point, int layer, const TapData& d) = 0;
  // False when the caller discards the block's output after this pass (a statistics-only pass):
  // block_forward then skips the down projection, which only feeds that output.
  virtual bool needs_block_output() const { return true; }
  // False when only the attention's points are wanted: block_forward stops after AttnResidual.
  virtual bool needs_mlp() const { return true; }
};

// Keys/values of every block for `batch` sequences, positions [0, capacity).
struct KVCache {
  int64_t batch = 0, capacity = 0;
  int64_t pos = 0;           // number of positions filled so far
  std::vector<Tensor> k, v;  // per block: (batch, capacity, Hkv_l, hd)
  static KVCache create(const Config& c, int64_t batch, int64_t capacity);
};

// A trainable extra term on a block linear layer: out += delta(inp). LoRA adapters implement it
// (train/lora.h); the model layer only knows this interface.
struct LinearDelta {
  virtual ~LinearDelta() = default;
  virtual bool applies(TensorKind kind, int layer) const = 0;
  // out (N, O) += delta(inp (N, I)). May keep what its backward needs (called again, identically,
  // when a block is recomputed).
  virtual void forward(TensorKind kind, int layer, float* out, const float* inp, int64_t N, int64_t I, int64_t O) = 0;
  // dinp (N, I) += d(delta)/d(inp)^T dout; accumulates the delta's own parameter gradients.
  virtual void backward(TensorKind kind, int layer, float* dinp, const float* dout, const float* inp, int64_t N,
                        int64_t I, int64_t O) = 0;
};

// One block's intermediate values. Scratch for inference; with BlockPass::save, exactly what
// block_backward needs (reuse one BlockActs across calls to avoid reallocation).
struct BlockActs {
  std::vector<float> x_in;       // (N, Cin) copy of the input (saved only)
  std::vector<float> n1, rstd1;  // (N, Cin), (N)
  std::vector<float> q, k, v;    // (N, Hq*hd) and (N, Hkv*hd), q/k after RoPE
  std::vector<float> att;        // (B, Hq, T, T) probabilities (saved only)
  std::vector<float> att_out;    // (N, Hq*hd)
  std::vector<float> mid;        // (N, Cmid)
  std::vector<float> n2, rstd2;  // (N, Cmid), (N)
  std::vector<float> gate, up;   // (N, F)
  std::vector<float> hidden;     // (N, F)
  std::vector<float> proj;       // (N, max(Cmid, Cout)) scratch
};

// What one block_forward call does besides computing the output.
struct BlockPass {
  Tap* tap = nullptr;            // observation points
  KVCache* cache = nullptr;      // append keys/values at cache->pos, attend over the whole cache
  LinearDelta* delta = nullptr;  // additions to the block linears (LoRA)
  bool save = false;             // keep what block_backward needs (training; no cache)
};

// x_out (N, Cout) from x_in (N, Cin), N = B*T. x_out may be x_in itself. Without a cache, positions
// are 0..T-1; with one, cache->pos.. (the caller advances cache->pos after all blocks ran).
void block_forward(const Model& m, int layer, const float* x_in, float* x_out, int64_t B, int64_t T, BlockActs& acts,
                   const BlockPass& pass = {});

// Backward of a saved block_forward: dx_in (N, Cin) += d/dx_in from dx_out (N, Cout). Parameter
// gradients accumulate into grads->blocks[layer] when grads is not null (frozen weights otherwise);
// delta (the same one as in the forward) gets its own gradients.
void block_backward(const Model& m, int layer, const float* dx_out, float* dx_in, int64_t B, int64_t T,
                    const BlockActs& acts, Weights* grads, LinearDelta* delta = nullptr);

// x (N, C0) = embedding rows of tokens; throws Error if a token id is outside the vocabulary.
void embed_tokens(const Model& m, const int32_t* tokens, int64_t N, float* x);

// Final RMSNorm + LM head: logits (N, V) from x (N, C2L). x is not modified.
void head_forward(const Model& m, const float* x, int64_t N, float* logits);

// Hidden states after the last block (N, C2L) for B sequences of T tokens (no head).
std::vector<float> final_hidden(const Model& m, const int32_t* tokens, int64_t B, int64_t T, Tap* tap = nullptr,
                                LinearDelta* delta = nullptr);

// Whole model: tokens (B, T) -> logits (B, T, V). With a cache, positions continue at cache->pos
// and the cache advances by T.
void model_forward(const Model& m, const int32_t* tokens, int64_t B, int64_t T, float* logits, KVCache* cache = nullptr,
                   Tap* tap = nullptr, LinearDelta* delta = nullptr);
Tensor model_forward(const Model& m, const std::vector<int32_t>& tokens, int64_t B, int64_t T,
                     LinearDelta* delta = nullptr);

}  // namespace sec
