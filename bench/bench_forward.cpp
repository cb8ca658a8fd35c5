// Forward-pass throughput of a randomly initialised model with TinyLlama-1.1B's shapes
// (hidden 2048, 32 heads, 4 KV heads, FFN 5632, vocab 32000), a few blocks, B x T tokens.
// Run through bench/forward.sh, which also runs the PyTorch counterpart (bench/forward_torch.py).
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "core/threads.h"
#include "model/forward.h"
#include "model/init.h"
#include "tinyllama_shapes.h"

int main(int argc, char** argv) {
  int layers = 4, B = 4, T = 512, repeat = 3;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string k = argv[i];
    int v = std::atoi(argv[i + 1]);
    if (k == "--layers")
      layers = v;
    else if (k == "--batch")
      B = v;
    else if (k == "--seqlen")
      T = v;
    else if (k == "--repeat")
      repeat = v;
  }
  sec::set_num_threads(0);
  sec::Config c = tinyllama_shaped_config(layers);
  sec::Model m = sec::init_random_model(c, 0);
  std::vector<int32_t> tokens(size_t(B) * T);
  for (size_t i = 0; i < tokens.size(); i++) tokens[i] = int32_t(i * 7919 % 32000);
  std::vector<float> logits(size_t(B) * T * c.vocab_size);
  sec::model_forward(m, tokens.data(), B, T, logits.data());  // warm-up
  double best = 1e30;
  for (int r = 0; r < repeat; r++) {
    auto t0 = std::chrono::steady_clock::now();
    sec::model_forward(m, tokens.data(), B, T, logits.data());
    best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  std::printf("secateur forward: %d blocks, %d x %d tokens, threads %d: best %.3f s, %.1f tokens/s\n", layers, B, T,
              sec::num_threads(), best, B * T / best);
  return 0;
}
