// Calibration windows: `nsamples` sequences of `seqlen` tokens drawn from a corpus with a seed.
//
// The rule (the same for every method; recorded in reports):
//   1. The corpus is joined into one text (JSONL documents joined with `separator`, "\n\n" by
//      default; a plain-text file is used as is) and tokenized ONCE with a single BOS at the start.
//   2. With Rng(seed) (core/random.h), sample i = 0..nsamples-1 starts at
//      start_i = rng.below(n_tokens - seqlen + 1), i.e. uniformly in [0, n_tokens - seqlen];
//      the window is tokens[start_i, start_i + seqlen). Windows may overlap (as in SparseGPT /
//      Wanda's C4 loader, which draws random offsets).
//   3. A corpus shorter than seqlen tokens is an error (no padding, no wrap-around).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "calib/dataset.h"

namespace sec {

struct SamplingOptions {
  int64_t nsamples = 128;
  int64_t seqlen = 2048;
  uint64_t seed = 0;
  std::string separator = "\n\n";  // between JSONL documents
};

struct CalibSamples {
  int64_t nsamples = 0, seqlen = 0;
  std::vector<int32_t> tokens;  // (nsamples, seqlen), row-major
  std::vector<int64_t> starts;  // start offset of each window in the token stream
  int64_t stream_tokens = 0;    // length of the tokenized corpus
  uint64_t seed = 0;
  std::string source_path, source_sha256;
  const int32_t* sample(int64_t i) const { return tokens.data() + i * seqlen; }
};

// Windows from an already tokenized stream (rule steps 2-3). `what` names the data in errors.
CalibSamples sample_windows(const std::vector<int32_t>& stream, const SamplingOptions& opts,
                            const std::string& what = "calibration data");

// The whole rule: join, tokenize once with one BOS, draw windows.
CalibSamples sample_calibration(const Corpus& corpus, const Tokenizer& tok, const SamplingOptions& opts);

}  // namespace sec
