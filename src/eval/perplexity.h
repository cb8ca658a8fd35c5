// Perplexity over a token stream with an explicit, recorded window protocol, and the distance of a
// model's predictions to a reference (dense) model's over the same windows. See docs/evaluation.md.
//
// Protocols (both start from ONE token stream: the text tokenized once with one BOS at the start):
//  papers    (SparseGPT / Wanda / SliceGPT / LLM-Pruner): non-overlapping windows of seqlen tokens,
//            remainder dropped; window w is stream[w*seqlen, (w+1)*seqlen) as is. Every prediction
//            inside a window is scored: the logits at positions 0..seqlen-2 predict tokens 1..seqlen-1,
//            so seqlen-1 tokens per window are scored and the window's first token is context only.
//  llama.cpp (llama-perplexity): the same windows, but token 0 of every window is overwritten with
//            BOS, and only the logits at positions seqlen/2 .. seqlen-2 are scored (targets
//            seqlen/2+1 .. seqlen-1: seqlen - seqlen/2 - 1 tokens, i.e. seqlen/2 - 1 for even seqlen).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "model/model.h"

namespace sec {

enum class PplProtocol { Papers, LlamaCpp };
const char* ppl_protocol_name(PplProtocol p);          // "papers", "llama.cpp"
PplProtocol parse_ppl_protocol(const std::string& s);  // throws Error on anything else

// Where the windows lie in the stream and which positions are scored.
struct PplWindows {
  PplProtocol protocol = PplProtocol::Papers;
  int64_t seqlen = 0;
  int64_t stream_tokens = 0;      // tokens in the stream (including its one BOS)
  int64_t windows_available = 0;  // stream_tokens / seqlen
  int64_t windows = 0;            // evaluated (min(available, max_windows))
  int64_t first_target = 1;       // first scored target position inside a window
  int32_t window_bos = -1;        // llama.cpp: the id written over token 0 of every window (-1: none)

  int64_t scored_per_window() const { return seqlen - first_target; }
  int64_t scored_tokens() const { return windows * scored_per_window(); }
  // The seqlen model-input tokens of window w.
  void window_tokens(const std::vector<int32_t>& stream, int64_t w, int32_t* out) const;
};

// The BOS id the model's tokenizer adds at the start of a text (and llama.cpp writes over every
// window's first token), or -1 if it adds none (e.g. Qwen2). Without a tokenizer: config.bos_token_id.
int32_t model_bos_id(const Model& m);

// max_windows < 0: all. bos_id: the tokenizer's BOS (llama.cpp protocol; -1 if it has none).
// Throws Error if seqlen < 2 (llama.cpp: < 4) or the stream is shorter than one window.
PplWindows make_ppl_windows(PplProtocol protocol, int64_t stream_tokens, int64_t seqlen, int64_t max_windows,
                            int32_t bos_id);

// Running mean and its standard error sqrt(var / (n-1)), var = E[x^2] - E[x]^2 (llama.cpp's formula).
struct MeanStat {
  double sum = 0, sum2 = 0;
  int64_t n = 0;
  void add(double x) {
    sum += x;
    sum2 += x * x;
    n++;
  }
  double mean() const { return n ? sum / double(n) : 0.0; }
  double stderr_of_mean() const;
};

struct PplOptions {
  PplProtocol protocol = PplProtocol::Papers;
  int64_t seqlen = 2048;
  int64_t max_windows = -1;  // -1: all
  int64_t batch = 1;         // windows per forward pass
  bool progress = true;      // progress line with ETA on stderr
};

struct PplResult {
  PplWindows windows;
  int64_t scored_tokens = 0;
  double mean_nll = 0, nll_stderr = 0;
  double ppl = 0, ppl_stderr = 0;  // exp(mean NLL) and ppl * nll_stderr (delta method)
  // With a reference model (p = reference, q = evaluated model), over the same scored positions:
  bool has_reference = false;
  double kl_mean = 0, kl_stderr = 0;          // KL(p || q) = sum_i p_i (log p_i - log q_i), nats
  double top1 = 0, top1_stderr = 0;           // fraction of positions where argmax p == argmax q
  double abs_dp_mean = 0, abs_dp_stderr = 0;  // |q(correct) - p(correct)|
  double ref_ppl = 0, ref_ppl_stderr = 0;     // the reference model's PPL over the same tokens
  double seconds = 0;                         // wall time of the forward passes and scoring
  double tokens_per_second = 0;               // windows * seqlen / seconds (model input tokens)
};

// Evaluates `model` (and `reference`, when not null) over the windows of `stream`. The reference
// must have the same vocabulary size. Memory: the hidden states of `batch` windows, plus the logits
// of ONE window at a time (two with a reference).
PplResult evaluate_perplexity(const Model& model, const std::vector<int32_t>& stream, const PplOptions& opts,
                              const Model* reference = nullptr);

}  // namespace sec
