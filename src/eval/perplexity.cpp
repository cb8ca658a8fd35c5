#include "eval/perplexity.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <memory>

#include "core/error.h"
#include "core/log.h"
#include "core/threads.h"
#include "model/forward.h"

namespace sec {

const char* ppl_protocol_name(PplProtocol p) { return p == PplProtocol::Papers ? "papers" : "llama.cpp"; }

PplProtocol parse_ppl_protocol(const std::string& s) {
  if (s == "papers") return PplProtocol::Papers;
  if (s == "llama.cpp" || s == "llamacpp" || s == "llama-cpp") return PplProtocol::LlamaCpp;
  fail("unknown perplexity protocol '", s, "' (expected papers or llama.cpp)");
}

double MeanStat::stderr_of_mean() const {
  if (n < 2) return 0.0;
  double m = mean();
  double var = sum2 / double(n) - m * m;
  return var > 0 ? std::sqrt(var / double(n - 1)) : 0.0;
}

PplWindows make_ppl_windows(PplProtocol protocol, int64_t stream_tokens, int64_t seqlen, int64_t max_windows,
                            int32_t bos_id) {
  PplWindows w;
  w.protocol = protocol;
  w.seqlen = seqlen;
  w.stream_tokens = stream_tokens;
  if (protocol == PplProtocol::Papers) {
    w.first_target = 1;
  } else {
    // llama-perplexity: first = n_ctx/2; logits j in [first, n_ctx-2] predict token j+1.
    w.first_target = seqlen / 2 + 1;
    w.window_bos = bos_id;
  }
  SEC_CHECK(seqlen >= 2 && w.scored_per_window() >= 1, "--seqlen ", seqlen, " is too short for the ",
            ppl_protocol_name(protocol), " protocol (no prediction would be scored)");
  w.windows_available = stream_tokens / seqlen;
  SEC_CHECK(w.windows_available >= 1, "the text has only ", stream_tokens,
            " tokens, fewer than one window of --seqlen ", seqlen, " (use a smaller --seqlen or a longer text)");
  w.windows = max_windows < 0 ? w.windows_available : std::min(w.windows_available, max_windows);
  SEC_CHECK(w.windows >= 1, "--max-windows must be at least 1 (got ", max_windows, ")");
  return w;
}

void PplWindows::window_tokens(const std::vector<int32_t>& stream, int64_t w, int32_t* out) const {
  SEC_ASSERT(w >= 0 && (w + 1) * seqlen <= int64_t(stream.size()));
  std::copy(stream.begin() + w * seqlen, stream.begin() + (w + 1) * seqlen, out);
  if (window_bos >= 0) out[0] = window_bos;
}

int32_t model_bos_id(const Model& m) {
  if (!m.tokenizer) return m.config.bos_token_id;
  return m.tokenizer->data().add_bos ? m.tokenizer->bos_id() : -1;
}

namespace {

struct RowLogSoftmax {
  double lse;  // log sum exp of the row
  int64_t argmax;
};

RowLogSoftmax row_stats(const float* row, int64_t V) {
  int64_t am = 0;
  for (int64_t i = 1; i < V; i++)
    if (row[i] > row[am]) am = i;
  double mx = row[am], s = 0;
  for (int64_t i = 0; i < V; i++) s += std::exp(double(row[i]) - mx);
  return {mx + std::log(s), am};
}

// Per scored position: the model's NLL, and with a reference its NLL, KL(ref || model), top-1
// agreement and |delta p| of the target.
struct RowScores {
  std::vector<double> nll, ref_nll, kl, same_top, abs_dp;
  void resize(size_t n, bool ref) {
    nll.assign(n, 0);
    if (ref) {
      ref_nll.assign(n, 0);
      kl.assign(n, 0);
      same_top.assign(n, 0);
      abs_dp.assign(n, 0);
    }
  }
};

void score_rows(const float* q_logits, const float* p_logits, const int32_t* targets, int64_t S, int64_t V,
                RowScores& out) {
  parallel_ranges(S, double(V), 32768.0, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; r++) {
      const float* q = q_logits + r * V;
      RowLogSoftmax qs = row_stats(q, V);
      const int32_t t = targets[r];
      double logq_t = double(q[t]) - qs.lse;
      out.nll[size_t(r)] = -logq_t;
      if (!p_logits) continue;
      const float* p = p_logits + r * V;
      RowLogSoftmax ps = row_stats(p, V);
      double kl = 0;
      for (int64_t i = 0; i < V; i++) {
        double lp = double(p[i]) - ps.lse, lq = double(q[i]) - qs.lse;
        kl += std::exp(lp) * (lp - lq);
      }
      double logp_t = double(p[t]) - ps.lse;
      out.ref_nll[size_t(r)] = -logp_t;
      out.kl[size_t(r)] = kl;
      out.same_top[size_t(r)] = qs.argmax == ps.argmax ? 1.0 : 0.0;
      out.abs_dp[size_t(r)] = std::fabs(std::exp(logq_t) - std::exp(logp_t));
    }
  });
}

// Advances the progress line after every block of a forward pass, so that one long window (or
// batch) still shows progress: `passes` forwards (the model, and the reference) per batch of
// windows, each block worth an equal share of the batch's tokens.
struct BlockProgress : Tap {
  Progress* progress = nullptr;
  int64_t base = 0, tokens = 0;  // tokens done before this batch, and in it
  int pass = 0, passes = 1, layers = 1;
  bool wants(TapPoint point, int layer) const override { return point == TapPoint::BlockOutput; }
  void observe(TapPoint, int layer, const TapData&) override {
    progress->update(base + tokens * (int64_t(pass) * layers + layer + 1) / (int64_t(passes) * layers));
  }
};

}  // namespace

PplResult evaluate_perplexity(const Model& model, const std::vector<int32_t>& stream, const PplOptions& opts,
                              const Model* reference) {
  PplResult res;
  res.windows =
      make_ppl_windows(opts.protocol, int64_t(stream.size()), opts.seqlen, opts.max_windows, model_bos_id(model));
  const PplWindows& win = res.windows;
  SEC_CHECK(opts.batch >= 1, "--batch must be at least 1 (got ", opts.batch, ")");
  const int64_t V = model.config.vocab_size, T = win.seqlen, S = win.scored_per_window();
  if (reference)
    SEC_CHECK(reference->config.vocab_size == V, "the reference model's vocabulary (", reference->config.vocab_size,
              ") differs from the model's (", V, "): KL needs the same tokenizer");
  // (A window longer than the model's context is refused, or warned about, by the CLI: cli/context.h.)

  MeanStat nll, ref_nll, kl, top1, dp;
  std::vector<float> q_logits(size_t(S * V)), p_logits(reference ? size_t(S * V) : 0);
  std::vector<int32_t> targets(static_cast<size_t>(S));
  RowScores rows;
  rows.resize(size_t(S), reference != nullptr);

  auto t0 = std::chrono::steady_clock::now();
  std::unique_ptr<Progress> progress;
  if (opts.progress) progress = std::make_unique<Progress>("perplexity", win.windows * T, "tok");
  for (int64_t w0 = 0; w0 < win.windows; w0 += opts.batch) {
    const int64_t B = std::min(opts.batch, win.windows - w0);
    std::vector<int32_t> tokens(size_t(B * T));
    for (int64_t b = 0; b < B; b++) win.window_tokens(stream, w0 + b, tokens.data() + b * T);
    BlockProgress bp;
    bp.progress = progress.get();
    bp.base = w0 * T;
    bp.tokens = B * T;
    bp.passes = reference ? 2 : 1;
    bp.layers = model.config.n_layers();
    Tap* tap = progress ? &bp : nullptr;
    std::vector<float> xq = final_hidden(model, tokens.data(), B, T, tap);
    bp.pass = 1;
    bp.layers = reference ? reference->config.n_layers() : 1;
    std::vector<float> xp = reference ? final_hidden(*reference, tokens.data(), B, T, tap) : std::vector<float>{};
    // The LM head only for the scored rows, one window at a time (bounded memory for large V):
    // row r of a window's scored block is position first_target-1+r, predicting position first_target+r.
    for (int64_t b = 0; b < B; b++) {
      const int64_t row0 = b * T + win.first_target - 1;
      head_forward(model, xq.data() + row0 * model.config.final_dim(), S, q_logits.data());
      if (reference) head_forward(*reference, xp.data() + row0 * reference->config.final_dim(), S, p_logits.data());
      // Targets are the stream's own tokens (never the BOS written over position 0).
      const int64_t base = (w0 + b) * T + win.first_target;
      for (int64_t r = 0; r < S; r++) targets[size_t(r)] = stream[size_t(base + r)];
      score_rows(q_logits.data(), reference ? p_logits.data() : nullptr, targets.data(), S, V, rows);
      // Accumulated in a fixed order so batched and unbatched runs agree exactly.
      for (int64_t r = 0; r < S; r++) {
        nll.add(rows.nll[size_t(r)]);
        if (reference) {
          ref_nll.add(rows.ref_nll[size_t(r)]);
          kl.add(rows.kl[size_t(r)]);
          top1.add(rows.same_top[size_t(r)]);
          dp.add(rows.abs_dp[size_t(r)]);
        }
      }
    }
    if (progress) progress->update((w0 + B) * T);
  }
  if (progress) progress->finish();
  res.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  res.tokens_per_second = res.seconds > 0 ? double(win.windows * T) / res.seconds : 0;

  res.scored_tokens = nll.n;
  SEC_ASSERT(res.scored_tokens == win.scored_tokens());
  res.mean_nll = nll.mean();
  res.nll_stderr = nll.stderr_of_mean();
  res.ppl = std::exp(res.mean_nll);
  res.ppl_stderr = res.ppl * res.nll_stderr;
  if (reference) {
    res.has_reference = true;
    res.kl_mean = kl.mean();
    res.kl_stderr = kl.stderr_of_mean();
    res.top1 = top1.mean();
    res.top1_stderr = top1.stderr_of_mean();
    res.abs_dp_mean = dp.mean();
    res.abs_dp_stderr = dp.stderr_of_mean();
    res.ref_ppl = std::exp(ref_nll.mean());
    res.ref_ppl_stderr = res.ref_ppl * ref_nll.stderr_of_mean();
  }
  return res;
}

}  // namespace sec
