#include "calib/sampling.h"

#include "core/error.h"
#include "core/random.h"

namespace sec {

CalibSamples sample_windows(const std::vector<int32_t>& stream, const SamplingOptions& opts, const std::string& what) {
  SEC_CHECK(opts.nsamples > 0 && opts.seqlen > 0, "calibration: nsamples and seqlen must be positive (got ",
            opts.nsamples, ", ", opts.seqlen, ")");
  const int64_t n = int64_t(stream.size());
  SEC_CHECK(n >= opts.seqlen, what, ": ", n, " tokens is shorter than one calibration window of seqlen ", opts.seqlen,
            " tokens; use a longer corpus or a smaller --seqlen");
  CalibSamples s;
  s.nsamples = opts.nsamples;
  s.seqlen = opts.seqlen;
  s.stream_tokens = n;
  s.seed = opts.seed;
  s.tokens.resize(size_t(opts.nsamples * opts.seqlen));
  Rng rng(opts.seed);
  for (int64_t i = 0; i < opts.nsamples; i++) {
    int64_t start = int64_t(rng.below(uint64_t(n - opts.seqlen + 1)));
    s.starts.push_back(start);
    std::copy(stream.begin() + start, stream.begin() + start + opts.seqlen, s.tokens.begin() + i * opts.seqlen);
  }
  return s;
}

CalibSamples sample_calibration(const Corpus& corpus, const Tokenizer& tok, const SamplingOptions& opts) {
  std::vector<int32_t> stream = tokenize_text(tok, corpus.joined(opts.separator), /*add_bos=*/true);
  CalibSamples s = sample_windows(stream, opts, corpus.path);
  s.source_path = corpus.path;
  s.source_sha256 = corpus.sha256;
  return s;
}

}  // namespace sec
