// Training forward (activations kept) and the full backward pass: parameter gradients for every
// tensor of for_each_tensor, in a Weights-shaped gradient set. Losses: mean cross-entropy over the
// non-ignored targets, or knowledge distillation (KL to a teacher's logits, optionally plus a loss on
// block outputs). Used by the trainer (train/) and by pruning methods that need gradients
// (LLM-Pruner's Taylor importance: compute_gradients, accumulate_squared_gradients).
//
// Memory: activations of every block are kept (about B*T*(8C + 3F + 2*q_dim + 2*kv_dim) floats plus
// B*Hq*T*T attention probabilities per block), or, with TrainOptions::recompute, only each block's
// input: the block is recomputed just before its backward (one extra forward, O(L*B*T*C) memory).
#pragma once
#include <cstdint>
#include <vector>

#include "core/tensor.h"
#include "model/forward.h"
#include "model/model.h"
#include "model/weights.h"

namespace sec {

// B sequences of T tokens. targets[b*T + t] is the token expected after tokens[b*T + t], or < 0 for
// positions that carry no loss (prompt tokens, padding).
struct Batch {
  int64_t B = 0, T = 0;
  std::vector<int32_t> tokens;   // (B, T)
  std::vector<int32_t> targets;  // (B, T)
  int64_t n_targets() const;     // positions with a target >= 0
  // Next-token batch from B windows of T+1 tokens each: tokens = w[0..T), targets = w[1..T].
  static Batch from_windows(const std::vector<int32_t>& windows, int64_t B, int64_t T);
};

enum class HiddenLoss { None, Cosine, Mse };
HiddenLoss parse_hidden_loss(const std::string& s);  // "none", "cosine", "mse"

struct LossSpec {
  // Knowledge distillation when set: loss = temp^2 * sum_n KL(teacher_n || student_n) / denominator
  // over the positions with targets >= 0 (softmax of logits / temp on both sides). Otherwise
  // cross-entropy: sum_n CE_n / denominator.
  const float* teacher_logits = nullptr;  // (B*T, V)
  float kd_temp = 1.f;
  // Hidden-state loss, added with weight hidden_weight: for every student block l with
  // teacher_hidden[l] != null, compare the block's output s (N, Cs), projected to the teacher's
  // width by hidden_proj[l] (a (Ct, Cs) matrix: p = s . P^T) when that is set, with the teacher's
  // state t (N, Ct), over the same positions:
  //   mse:    sum_n sum_c (p - t)^2 / (Ct * denominator)
  //   cosine: sum_n (1 - cos(p_n, t_n)) / denominator
  // With hidden_balance the weight is rescaled every batch to hidden_weight * main / hidden, so the
  // hidden term has the main (logit) loss's magnitude (ModelOpt's loss balancer).
  HiddenLoss hidden = HiddenLoss::None;
  float hidden_weight = 0.f;
  bool hidden_balance = false;
  std::vector<const float*> teacher_hidden;  // per student block, or empty
  std::vector<const Tensor*> hidden_proj;    // per student block, or empty (no projection)
  std::vector<Tensor*> hidden_proj_grad;     // gradients of the projections (+=), same indexing
  // Divide summed per-position losses by this; <= 0: the batch's own n_targets(). Gradient
  // accumulation passes the whole optimizer batch's count so micro-batches add up to the mean.
  double denominator = 0;
};

struct TrainOptions {
  bool recompute = false;  // keep only block inputs; recompute each block during backward
};

struct LossValue {
  double total = 0;   // main + (effective) hidden_weight * hidden
  double main = 0;    // CE or KD part
  double hidden = 0;  // hidden-state part (unweighted)
  int64_t count = 0;  // positions with a target
};

// Forward keeping activations, then backward (block_forward / block_backward of model/forward.h). Gradients ACCUMULATE
// (+=) into `grads` (Weights shaped like the model's, e.g. from allocate_weights; tied embeddings: the head's gradient
// goes to grads->embed). grads == nullptr: base weights are frozen, only `delta` gets gradients; a tensor
// left undefined in grads is frozen too (its weight gradient is not computed).
LossValue forward_backward(const Model& m, const Batch& batch, const LossSpec& loss, Weights* grads,
                           LinearDelta* delta = nullptr, const TrainOptions& opts = {});

// The same loss without backward (evaluation).
LossValue forward_loss(const Model& m, const Batch& batch, const LossSpec& loss, LinearDelta* delta = nullptr);

// d(mean CE over the batch's targets)/d(param) for every tensor (a fresh Weights-shaped set).
Weights compute_gradients(const Model& m, const Batch& batch, const TrainOptions& opts = {});

// Per-sample squared gradients for a Fisher-diagonal term: for every sequence b of the batch on its
// own, g_b = d(mean CE of sequence b)/d(param); adds sum_b g_b^2 (plain squared gradients, NOT
// multiplied by the weights: LLM-Pruner's (g W)^2 is sq_sum * W^2) into sq_sum, and sum_b g_b into
// sum when not null. Both Weights-shaped; callers zero them (allocate_weights); only the tensors
// sq_sum has defined are computed.
void accumulate_squared_gradients(const Model& m, const Batch& batch, Weights& sq_sum, Weights* sum = nullptr,
                                  const TrainOptions& opts = {});

// Block outputs (one (B*T, C) tensor per block, before the final norm) of the inference forward;
// logits (B*T, V) are written too when not null. The teacher side of hidden-state distillation.
std::vector<Tensor> hidden_states(const Model& m, const int32_t* tokens, int64_t B, int64_t T, float* logits);

}  // namespace sec
