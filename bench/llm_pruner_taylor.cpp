// LLM-Pruner's cost on a TinyLlama-shaped random model (hidden 2048, 32 heads / 4 KV heads, FFN
// 5632, vocab 32000, `layers` blocks): gradients of the mean next-token loss over nsamples x
// seqlen calibration tokens, first-order Taylor scores of every KV group and MLP channel (sum
// aggregation), the block-wise choice (attention ratio 0.25, MLP ratio 0.2) and the surgery that
// builds the smaller model. As in `secateur prune`, only the candidate groups' tensors get gradients
// (not the embedding's or the head's). Run through bench/llm_pruner.sh with its PyTorch counterpart
// (bench/llm_pruner_torch.py), which does the same computation.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "core/threads.h"
#include "model/init.h"
#include "model/surgery.h"
#include "prune/llm_pruner.h"
#include "tinyllama_shapes.h"

int main(int argc, char** argv) {
  int layers = 4, nsamples = 10, seqlen = 64, repeat = 3;
  parse_int_options(argc, argv,
                    {{"--layers", &layers}, {"--nsamples", &nsamples}, {"--seqlen", &seqlen}, {"--repeat", &repeat}});
  sec::set_num_threads(0);
  const sec::Config c = tinyllama_shaped_config(layers);
  const sec::Model m = sec::init_random_model(c, 0);
  sec::CalibSamples s = synthetic_calibration(nsamples, seqlen);
  sec::LlmPrunerOptions o;
  o.attn_ratio = 0.25;
  o.mlp_ratio = 0.2;
  o.micro_batch = nsamples;  // one forward/backward over every window, as the official code does
  int64_t params = 0;
  double grad_s = 1e30, total_s = 1e30;
  for (int r = 0; r < repeat + 1; r++) {  // the first run warms up
    auto t0 = std::chrono::steady_clock::now();
    sec::GroupScores gs = sec::candidate_groups(m, &o);
    sec::GradientStats g = sec::calibration_gradients(m, s, false, o.micro_batch, sec::member_tensors(gs));
    auto t1 = std::chrono::steady_clock::now();
    sec::score_groups(m, &g, o.importance, o.taylor, o.aggregate, 0, gs);
    g = sec::GradientStats();
    // As `secateur prune` does: tensors kept whole (embedding, head, norms) are shared, not copied.
    sec::Model pruned = sec::apply_selection(m, sec::llm_pruner_plan(m, gs, o).selection, true);
    auto t2 = std::chrono::steady_clock::now();
    params = sec::param_count(pruned.config);
    if (r == 0) continue;
    grad_s = std::min(grad_s, std::chrono::duration<double>(t1 - t0).count());
    total_s = std::min(total_s, std::chrono::duration<double>(t2 - t0).count());
  }
  std::printf(
      "secateur llm-pruner taylor: %d blocks, %d x %d tokens, threads %d: gradients %.3f s, total %.3f s, "
      "%lld -> %lld params\n",
      layers, nsamples, seqlen, sec::num_threads(), grad_s, total_s, (long long)sec::param_count(c), (long long)params);
  return 0;
}
