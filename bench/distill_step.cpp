// Distillation throughput into a student of another width (Minitron's retraining, issue 9): the
// teacher is TinyLlama-shaped (hidden 2048, 32 / 4 heads, FFN 5632, vocab 32000, `layers` blocks),
// the student narrower (hidden 1536, 24 / 3 heads, FFN 4096, the same depth). One optimizer step =
// the teacher's forward (logits and block outputs) + the student's forward and backward of the logit
// KL plus a cosine loss on every block output through a learned 2048 x 1536 projection (balanced
// to the logit loss) + AdamW over the student and the projections. Run by bench/distill.sh beside
// bench/distill_torch.py, which does the same computation.
#include <cstdio>
#include <cstdlib>
#include <string>

#include "core/log.h"
#include "core/threads.h"
#include "model/init.h"
#include "tinyllama_shapes.h"
#include "train/trainer.h"

int main(int argc, char** argv) {
  int layers = 2, B = 1, T = 256, repeat = 3;
  parse_int_options(argc, argv, {{"--layers", &layers}, {"--batch", &B}, {"--seqlen", &T}, {"--repeat", &repeat}});
  sec::set_num_threads(0);
  sec::set_log_level(sec::LogLevel::Warn);
  const sec::Model teacher = sec::init_random_model(tinyllama_shaped_config(layers), 0);
  sec::Config sc = tinyllama_shaped_config(layers);
  sc.dim = 1536;
  sc.blocks.assign(size_t(layers), sec::BlockDims{24, 3, 4096});
  sec::Model student = sec::init_random_model(sc, 1);
  std::vector<sec::TrainSample> data(static_cast<size_t>(B));
  for (int b = 0; b < B; b++)
    for (int t = 0; t < T; t++) {
      data[size_t(b)].tokens.push_back(synthetic_token(b * T + t));
      data[size_t(b)].targets.push_back(synthetic_token(b * T + t + 1));
    }
  sec::TrainerOptions o;
  o.teacher = &teacher;
  o.hidden = sec::HiddenLoss::Cosine;
  o.hidden_weight = 1.f;
  o.hidden_layers = sec::default_hidden_layers(layers, layers);
  o.batch = B;
  o.micro_batch = B;
  o.lr = 1e-5f;
  o.warmup_steps = 0;
  double best = 0;
  for (int r = 0; r < repeat + 1; r++) {  // the first step warms up
    o.max_steps = 1;
    sec::TrainResult res = sec::train(student, nullptr, data, {}, o);
    if (r > 0) best = std::max(best, res.tokens_per_s);
  }
  std::printf(
      "secateur distill step: %d blocks, teacher hidden 2048 -> student 1536, %d x %d tokens, threads %d: "
      "best %.1f tokens/s\n",
      layers, B, T, sec::num_threads(), best);
  return 0;
}
