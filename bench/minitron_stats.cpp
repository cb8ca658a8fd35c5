// Minitron's width statistics (heads, neurons, embedding channels, Block Importance, all through
// taps) against a plain forward pass over the same tokens, on a TinyLlama-shaped random model
// (hidden 2048, 32 / 4 heads, FFN 5632, vocab 32000, `layers` blocks). The plain forward is
// model_forward with logits; the statistics pass needs no LM head and skips it, so the ratio is also
// given against the forward without the head. Best of `repeat`, the two alternated.
// Usage: minitron_stats [--layers 4 --nsamples 8 --seqlen 512 --repeat 3]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "core/log.h"
#include "core/threads.h"
#include "model/forward.h"
#include "model/init.h"
#include "prune/minitron.h"
#include "tinyllama_shapes.h"

int main(int argc, char** argv) {
  int layers = 4, nsamples = 8, seqlen = 512, repeat = 3;
  parse_int_options(argc, argv,
                    {{"--layers", &layers}, {"--nsamples", &nsamples}, {"--seqlen", &seqlen}, {"--repeat", &repeat}});
  sec::set_num_threads(0);
  sec::set_log_level(sec::LogLevel::Warn);
  const sec::Model m = sec::init_random_model(tinyllama_shaped_config(layers), 0);
  sec::CalibSamples s = synthetic_calibration(nsamples, seqlen);
  std::vector<float> logits(size_t(seqlen) * 32000);
  auto secs = [](auto f) {
    auto t0 = std::chrono::steady_clock::now();
    f();
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  };
  double fwd = 1e30, blocks = 1e30, stats = 1e30;
  for (int r = 0; r < repeat + 1; r++) {  // the first round warms up
    const double a = secs([&] {
      for (int i = 0; i < nsamples; i++) sec::model_forward(m, s.sample(i), 1, seqlen, logits.data());
    });
    const double b = secs([&] {
      for (int i = 0; i < nsamples; i++) sec::final_hidden(m, s.sample(i), 1, seqlen);
    });
    const double c = secs([&] { sec::activation_scores(m, s, sec::Reduce::L2, sec::Reduce::Mean, 1, 1); });
    if (r == 0) continue;
    fwd = std::min(fwd, a), blocks = std::min(blocks, b), stats = std::min(stats, c);
  }
  std::printf(
      "minitron statistics: %d blocks, %d x %d tokens, threads %d: forward %.3f s (blocks only %.3f s), "
      "statistics %.3f s: %.3fx the forward, %.3fx the blocks\n",
      layers, nsamples, seqlen, sec::num_threads(), fwd, blocks, stats, stats / fwd, stats / blocks);
  return 0;
}
