// Training throughput (forward + backward + AdamW step, full-parameter) of a randomly initialised
// model with TinyLlama-1.1B's shapes (hidden 2048, 32 heads, 4 KV heads, FFN 5632, vocab 32000), a
// few blocks, B x T tokens per step. Run through bench/train.sh, which also runs the PyTorch
// counterpart (bench/train_torch.py) and prints the ratio.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "core/threads.h"
#include "model/init.h"
#include "model/train_forward.h"
#include "tinyllama_shapes.h"
#include "train/optimizer.h"

int main(int argc, char** argv) {
  int layers = 2, B = 1, T = 256, repeat = 3, recompute = 0;
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
    else if (k == "--recompute")
      recompute = v;
  }
  sec::set_num_threads(0);
  sec::Config c = tinyllama_shaped_config(layers);
  sec::Model m = sec::init_random_model(c, 0);
  sec::Batch batch;
  batch.B = B;
  batch.T = T;
  for (int64_t i = 0; i < int64_t(B) * T; i++) {
    batch.tokens.push_back(int32_t(i * 7919 % 32000));
    batch.targets.push_back(int32_t((i + 1) * 7919 % 32000));
  }
  sec::Weights grads = sec::allocate_weights(c);
  std::vector<sec::Param> params;
  std::vector<sec::Tensor*> gs;
  sec::for_each_tensor(c, grads, [&](sec::TensorRef& r) { gs.push_back(&r.tensor); });
  size_t k = 0;
  sec::for_each_tensor(c, m.weights, [&](sec::TensorRef& r) {
    params.push_back({r.name, r.tensor, *gs[k++], {}, r.tensor.ndim() > 1});
  });
  sec::AdamW opt(params, {});
  sec::TrainOptions to;
  to.recompute = recompute != 0;
  auto step = [&] {
    sec::zero_grads(params);
    sec::forward_backward(m, batch, sec::LossSpec{}, &grads, nullptr, to);
    opt.step(params, 1e-5f);
  };
  step();  // warm-up
  double best = 1e30;
  for (int r = 0; r < repeat; r++) {
    auto t0 = std::chrono::steady_clock::now();
    step();
    best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  std::printf("secateur train step: %d blocks, %d x %d tokens, threads %d%s: best %.3f s, %.1f tokens/s\n", layers, B,
              T, sec::num_threads(), recompute ? ", recompute" : "", best, B * T / best);
  return 0;
}
