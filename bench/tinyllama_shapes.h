// TinyLlama-1.1B's shapes (configs/tinyllama-1.1b.json) with `layers` blocks, for the benchmarks.
#pragma once
#include <cstdint>
#include <cstdlib>
#include <string>
#include <utility>
#include <vector>

#include "calib/sampling.h"
#include "model/config.h"

inline sec::Config tinyllama_shaped_config(int layers) {
  sec::Config c;
  c.dim = 2048;
  c.vocab_size = 32000;
  c.head_dim = 64;
  c.max_seq_len = 2048;
  c.blocks.assign(layers, sec::BlockDims{32, 4, 5632});
  return c;
}

// "--name value" integer options: each pair whose name is listed sets that int; others are ignored.
inline void parse_int_options(int argc, char** argv, const std::vector<std::pair<const char*, int*>>& options) {
  for (int i = 1; i + 1 < argc; i += 2)
    for (const auto& [name, value] : options)
      if (std::string(argv[i]) == name) *value = std::atoi(argv[i + 1]);
}

// Token i of the benchmarks' synthetic data (ids spread over TinyLlama's vocabulary; the weights are
// random, so only the shapes matter).
inline int32_t synthetic_token(int64_t i) { return int32_t(i * 7919 % 32000); }

inline sec::CalibSamples synthetic_calibration(int nsamples, int seqlen) {
  sec::CalibSamples s;
  s.nsamples = nsamples;
  s.seqlen = seqlen;
  for (int64_t i = 0; i < int64_t(nsamples) * seqlen; i++) s.tokens.push_back(synthetic_token(i));
  return s;
}
