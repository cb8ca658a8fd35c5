// SliceGPT's cost on a TinyLlama-shaped random model (hidden 2048, 32 / 4 heads, FFN 5632, vocab
// 32000, `layers` blocks): the whole per-block procedure (norm folding, the embedding PCA, per block
// the attention pass, the PCA of the middle signal, the rotations, the block pass, the PCA of its
// output, the projection of the outputs) at 25% over nsamples x seqlen calibration tokens. Run by
// bench/slicegpt.sh beside bench/slicegpt_torch.py (the official procedure in PyTorch).
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "core/log.h"
#include "core/threads.h"
#include "model/init.h"
#include "prune/slicegpt.h"
#include "tinyllama_shapes.h"

int main(int argc, char** argv) {
  int layers = 4, nsamples = 8, seqlen = 512;
  parse_int_options(argc, argv, {{"--layers", &layers}, {"--nsamples", &nsamples}, {"--seqlen", &seqlen}});
  sec::set_num_threads(0);
  sec::set_log_level(sec::LogLevel::Warn);
  sec::Model m = sec::init_random_model(tinyllama_shaped_config(layers), 0);
  sec::CalibSamples s = synthetic_calibration(nsamples, seqlen);
  sec::SliceGptOptions o;
  o.sparsity = 0.25;
  o.batch = 1;
  auto t0 = std::chrono::steady_clock::now();
  sec::slicegpt(m, o, s);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("secateur slicegpt: %d blocks, 25%%, %d x %d tokens, threads %d: %.2f s\n", layers, nsamples, seqlen,
              sec::num_threads(), secs);
  return 0;
}
