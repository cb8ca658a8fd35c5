// LoRA adapters on the block linear layers: W x + scale * B A dropout(x), scale = alpha / r,
// A (r, in) ~ kaiming-uniform (bound 1/sqrt(in), PEFT's default), B (out, r) = 0.
//
// Sparsity: a target weight that contains exact zeros (an unstructured/N:M-pruned layer) gets a
// MASKED adapter when LoraOptions::keep_sparsity is set (the default): its update is
// M * (scale B A) with M = (W != 0), so the adapter never moves a pruned weight and merging (which
// leaves pruned zeros zero) gives exactly the adapter model. Masked layers form the dense (out, in)
// update each step (the cost of a full-weight matmul); dense layers use the cheap low-rank path.
// With keep_sparsity off, adapters are plain LoRA and merging must fill (merge(..., fill=true)).
#pragma once
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "model/model.h"
#include "model/train_forward.h"
#include "train/optimizer.h"

namespace sec {

struct LoraOptions {
  int rank = 8;
  float alpha = 16.f;
  float dropout = 0.05f;
  std::vector<std::string> targets = {"q", "k", "v", "o", "gate", "up", "down"};  // short names
  bool keep_sparsity = true;
};

// "q,k,v" -> {"q","k","v"}; also accepts HF module names (q_proj, gate_proj ...). Throws on unknown.
std::vector<std::string> parse_lora_targets(const std::string& list);

struct LoraLayer {
  TensorKind kind;
  int layer;
  int64_t in = 0, out = 0;
  Tensor A, B;                // (r, in), (out, r)
  Tensor dA, dB;              // gradients
  std::vector<uint8_t> keep;  // (out, in) mask for a masked layer; empty for plain LoRA
  // Saved by forward for backward:
  std::vector<float> h;       // (N, in) dropout(x), only when dropout is active
  std::vector<uint8_t> drop;  // (N, in) 1 = kept
  std::vector<float> u;       // (N, r) h A^T                      (plain)
  std::vector<float> dw;      // (out, in) M * scale B A            (masked)
};

class LoraAdapters : public LinearDelta {
 public:
  LoraAdapters(const Model& m, const LoraOptions& opts, uint64_t seed);
  const LoraOptions& options() const { return opts_; }
  float scale() const { return opts_.alpha / float(opts_.rank); }
  std::vector<LoraLayer>& layers() { return layers_; }
  const std::vector<LoraLayer>& layers() const { return layers_; }

  // Dropout is active only while training; `seed` makes each call's masks reproducible.
  void set_training(bool on, uint64_t seed = 0);

  bool applies(TensorKind kind, int layer) const override;
  void forward(TensorKind kind, int layer, float* out, const float* inp, int64_t N, int64_t I, int64_t O) override;
  void backward(TensorKind kind, int layer, float* dinp, const float* dout, const float* inp, int64_t N, int64_t I,
                int64_t O) override;

  // Trainable tensors (A and B of every layer), sharing the adapter's buffers.
  std::vector<Param> params();

  // W += scale * B A. Weights that are exactly zero stay zero unless fill.
  void merge_into(Model& m, bool fill) const;

  // PEFT layout: DIR/adapter_model.safetensors with
  //   base_model.model.model.layers.N.self_attn.q_proj.lora_A.weight (r, in) / lora_B.weight (out, r)
  // and DIR/adapter_config.json. Written atomically (each file via temp + rename).
  void save_peft(const std::string& dir, const std::string& base_model) const;
  // Loads adapter weights saved by save_peft into this (same config/targets/rank); throws on mismatch.
  void load_peft(const std::string& dir);

  static std::string peft_name(TensorKind kind, int layer, bool a);

 private:
  LoraLayer* find(TensorKind kind, int layer);
  LoraOptions opts_;
  std::vector<LoraLayer> layers_;
  std::map<std::pair<int, int>, size_t> index_;  // (layer, kind) -> layers_ index
  bool training_ = false;
  uint64_t seed_ = 0;
};

}  // namespace sec
