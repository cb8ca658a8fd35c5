// Options and helpers shared by `finetune` and `distill` (each flag declared once, here).
#pragma once
#include <CLI/CLI.hpp>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "calib/dataset.h"
#include "cli/context.h"
#include "core/file.h"
#include "core/log.h"
#include "train/data.h"
#include "train/lora.h"
#include "train/trainer.h"

namespace sec {

struct TrainArgs {
  std::string data, eval_data, format = "text", targets = "q,k,v,o,gate,up,down", checkpoint;
  int rank = 8, epochs = 2, batch = 64, micro_batch = 4, seqlen = 256;
  float alpha = 16.f, dropout = 0.05f, lr = 1e-4f, min_lr = 0.f, weight_decay = 0.f, clip = 1.f;
  int64_t warmup = -1, max_steps = -1, eval_every = 0, eval_samples = 64, checkpoint_every = 0;
  uint64_t seed = 0;
  bool recompute = false, resume = false, json = false, allow_long_context = false;
  const CLI::Option* seqlen_option = nullptr;  // to tell a given --seqlen from the default
};

inline void add_train_options(CLI::App& app, TrainArgs& t) {
  app.add_option("--data", t.data, "Training data file")->required();
  app.add_option("--format", t.format, "Data format: text (plain text / JSONL text) or alpaca")->capture_default_str();
  app.add_option("--eval-data", t.eval_data, "Held-out data for the eval loss (same format)");
  app.add_option("--lora-rank", t.rank, "LoRA rank r")->capture_default_str();
  app.add_option("--lora-alpha", t.alpha, "LoRA alpha (scale = alpha / r)")->capture_default_str();
  app.add_option("--lora-dropout", t.dropout, "Dropout on the LoRA input path")->capture_default_str();
  app.add_option("--lora-targets", t.targets, "Comma-separated projections to adapt")->capture_default_str();
  app.add_option("--lr", t.lr, "Peak learning rate")->capture_default_str();
  app.add_option("--min-lr", t.min_lr, "Learning rate at the end of the cosine decay")->capture_default_str();
  app.add_option("--warmup", t.warmup, "Warmup steps (-1: min(100, steps/10))")->capture_default_str();
  app.add_option("--weight-decay", t.weight_decay, "AdamW decoupled weight decay")->capture_default_str();
  app.add_option("--clip", t.clip, "Global gradient-norm clipping (0: off)")->capture_default_str();
  app.add_option("--epochs", t.epochs, "Passes over the data")->capture_default_str();
  app.add_option("--max-steps", t.max_steps, "Stop after this many optimizer steps (-1: no cap)")
      ->capture_default_str();
  app.add_option("--batch", t.batch, "Sequences per optimizer step")->capture_default_str();
  app.add_option("--micro-batch", t.micro_batch, "Sequences per forward/backward (gradient accumulation)")
      ->capture_default_str();
  t.seqlen_option = app.add_option("--seqlen", t.seqlen,
                                   "Tokens per training sequence (the model's context if shorter than the default)")
                        ->capture_default_str();
  add_long_context_option(app, t.allow_long_context);
  app.add_option("--seed", t.seed, "Seed (data order, LoRA init, dropout)")->capture_default_str();
  app.add_option("--eval-every", t.eval_every, "Eval loss every N steps (0: at start and end only)")
      ->capture_default_str();
  app.add_option("--eval-samples", t.eval_samples, "Eval sequences")->capture_default_str();
  app.add_option("--checkpoint", t.checkpoint, "Checkpoint file (.safetensors), written atomically");
  app.add_option("--checkpoint-every", t.checkpoint_every, "Checkpoint every N steps (always at the end)")
      ->capture_default_str();
  app.add_flag("--resume", t.resume, "Continue from --checkpoint if it exists");
  app.add_flag("--recompute", t.recompute, "Activation recomputation (less memory, ~1/3 more compute)");
  app.add_flag("--json", t.json, "Print the result as JSON");
}

struct TrainData {
  std::vector<TrainSample> train, eval;
  std::string sha256;
};

// The training sequence length, checked against the context of the models trained / read.
inline int resolve_train_seqlen(const TrainArgs& t, const std::vector<const Model*>& models) {
  return int(resolve_seqlen(t.seqlen_option && t.seqlen_option->count() > 0, t.seqlen, t.allow_long_context, models));
}

inline TrainData load_train_data(const TrainArgs& t, const Tokenizer& tok) {
  TrainData d;
  DataFormat f = parse_data_format(t.format);
  d.train = load_train_samples(tok, t.data, f, t.seqlen);
  d.sha256 = sha256_file(t.data);
  if (!t.eval_data.empty()) d.eval = load_train_samples(tok, t.eval_data, f, t.seqlen);
  return d;
}

inline TrainerOptions trainer_options(const TrainArgs& t, const std::string& label) {
  TrainerOptions o;
  o.label = label;
  o.lr = t.lr;
  o.min_lr = t.min_lr;
  o.warmup_steps = t.warmup;
  o.adam.weight_decay = t.weight_decay;
  o.grad_clip = t.clip;
  o.epochs = t.epochs;
  o.max_steps = t.max_steps;
  o.batch = t.batch;
  o.micro_batch = t.micro_batch;
  o.seed = t.seed;
  o.recompute = t.recompute;
  o.eval_every = !t.eval_data.empty() && t.eval_every <= 0 ? (int64_t(1) << 40) : t.eval_every;
  o.eval_samples = t.eval_samples;
  o.checkpoint = t.checkpoint;
  o.checkpoint_every = t.checkpoint_every;
  o.resume = t.resume;
  return o;
}

inline std::unique_ptr<LoraAdapters> make_lora(const TrainArgs& t, const Model& m, bool fill) {
  LoraOptions lo;
  lo.rank = t.rank;
  lo.alpha = t.alpha;
  lo.dropout = t.dropout;
  lo.targets = parse_lora_targets(t.targets);
  lo.keep_sparsity = !fill;
  return std::make_unique<LoraAdapters>(m, lo, t.seed);
}

inline std::string lora_summary(const LoraAdapters& l) {
  const auto& o = l.options();
  std::string targets;
  for (const auto& s : o.targets) targets += (targets.empty() ? "" : ",") + s;
  return cat("LoRA r=", o.rank, " alpha=", o.alpha, " dropout=", o.dropout, " targets=", targets,
             o.keep_sparsity ? " (sparsity-masked)" : "");
}

inline void print_train_result(const TrainArgs& t, const std::string& command, const TrainResult& r,
                               const std::string& out, const std::string& written) {
  nlohmann::ordered_json evals = nlohmann::ordered_json::array();
  for (auto& e : r.evals) evals.push_back({{"step", e.first}, {"loss", e.second}});
  if (t.json) {
    nlohmann::ordered_json j = {{"command", command},
                                {"steps", r.total_steps},
                                {"steps_this_run", r.steps_done},
                                {"tokens_this_run", r.tokens},
                                {"tokens_per_s", r.tokens_per_s},
                                {"first_loss", r.losses.empty() ? 0.0 : r.losses.front()},
                                {"last_loss", r.losses.empty() ? 0.0 : r.losses.back()},
                                {"losses", r.losses},
                                {"eval", evals},
                                {"output", out},
                                {"written", written}};
    std::cout << j.dump(2) << "\n";
    return;
  }
  std::cout << command << ": " << r.total_steps << " steps";
  if (!r.losses.empty()) std::cout << ", loss " << r.losses.front() << " -> " << r.losses.back();
  std::cout << ", " << r.tokens_per_s << " tokens/s\n";
  for (auto& e : r.evals) std::cout << "  eval loss at step " << e.first << ": " << e.second << "\n";
  std::cout << "wrote " << written << " to " << out << "\n";
}

}  // namespace sec
