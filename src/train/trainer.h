// The training loop shared by LoRA recovery, full fine-tuning and distillation: AdamW, warmup +
// cosine schedule, global-norm clipping, gradient accumulation over micro-batches, periodic eval
// loss, resumable checkpoints, progress with tokens/s and ETA.
//
// Data order is a pure function of (seed, step): step s uses samples [s*batch, (s+1)*batch) of the
// stream "epoch 0 shuffled, epoch 1 shuffled, ..." (each epoch a Fisher-Yates permutation seeded by
// seed and the epoch), and LoRA dropout masks are seeded by (seed, step, micro-batch). A checkpoint
// therefore only needs the trainable tensors, the AdamW moments and the step to resume exactly.
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "model/model.h"
#include "model/train_forward.h"
#include "train/data.h"
#include "train/lora.h"
#include "train/optimizer.h"

namespace sec {

struct TrainerOptions {
  std::string label = "train";  // progress label
  float lr = 1e-4f, min_lr = 0.f;
  int64_t warmup_steps = -1;  // < 0: min(100, total/10)
  AdamWOptions adam;
  float grad_clip = 1.f;  // <= 0: no clipping
  int epochs = 2;
  int64_t max_steps = -1;  // > 0: cap on optimizer steps
  int batch = 64, micro_batch = 4;
  uint64_t seed = 0;
  bool recompute = false;
  int64_t eval_every = 0;     // > 0: eval loss every N steps (and always before and after)
  int64_t eval_samples = 64;  // eval on the first N eval samples
  std::string checkpoint;     // checkpoint file (.safetensors); empty: none
  int64_t checkpoint_every = 0;
  bool resume = false;      // continue from `checkpoint` if it exists
  int64_t stop_after = -1;  // stop after this many steps of this run (an "interruption", for tests)
  // Distillation: the student learns the teacher's logits (KL, temperature kd_temp) instead of CE.
  const Model* teacher = nullptr;
  float kd_temp = 1.f;
  HiddenLoss hidden = HiddenLoss::None;
  float hidden_weight = 0.f;
  std::vector<int> hidden_layers;  // per student block: the teacher block whose output it matches, or -1
  bool hidden_balance = true;      // rescale the hidden term to the logit loss's magnitude every batch
  // Where the student's block width differs from its teacher block's, a learned linear projection
  // (Ct, Cs) maps the student's state onto the teacher's (trained with the student, not saved in
  // the model; it is part of checkpoints). Initialised uniform(+-1/sqrt(Cs)) from the seed.
};

struct TrainResult {
  int64_t total_steps = 0, start_step = 0, steps_done = 0;
  std::vector<double> losses;                     // per optimizer step (from step 0 when resumed)
  std::vector<std::pair<int64_t, double>> evals;  // (step, eval loss)
  double tokens_per_s = 0;
  int64_t tokens = 0;
};

// Full fine-tuning when lora is null (pruned zeros of the linear weights stay zero), else LoRA with
// the base weights frozen. Updates m (full) or *lora in place.
TrainResult train(Model& m, LoraAdapters* lora, const std::vector<TrainSample>& train_data,
                  const std::vector<TrainSample>& eval_data, const TrainerOptions& opts);

// Mean loss (CE, or KD when opts.teacher is set; no hidden-state term) over the first
// opts.eval_samples samples.
double eval_loss(const Model& m, LoraAdapters* lora, const std::vector<TrainSample>& data, const TrainerOptions& opts);

// Student block -> teacher block for hidden-state distillation: when the student lost blocks,
// student block i matches teacher block round((i + 1) * Lt / Ls) - 1 (the last blocks always pair).
std::vector<int> default_hidden_layers(int student_layers, int teacher_layers);
// "0:1,2:5" -> per student block its teacher block (-1 for blocks not listed); throws Error.
std::vector<int> parse_hidden_layers(const std::string& pairs, int student_layers, int teacher_layers);

}  // namespace sec
