"""PyTorch reference of secateur's evaluation (the test oracle for src/eval).

Written from the protocol descriptions in docs/evaluation.md, independently of the C++ code; the
forward pass is llama_ref.forward (float64). Models are dumps written by the tests
(tests/testing/reference_io.cpp).

Usage:
  eval_ref.py ppl DIR STREAM.i32 PROTOCOL SEQLEN MAX_WINDOWS BOS OUT.json [REF_DIR]
      Perplexity of the model in DIR over the windows of the token stream (PROTOCOL papers or
      llama.cpp; MAX_WINDOWS -1 = all; BOS = the id llama.cpp writes over each window's first token).
      With REF_DIR also KL(ref || model), top-1 agreement and mean |delta p| over the same positions.
  eval_ref.py loglik DIR SPM_MODEL PAIRS.json OUT.json [BOS]
      PAIRS.json: [[context, continuation], ...] strings. Tokenizes each pair the lm-eval 0.4 way
      with the SentencePiece model (no BOS unless BOS=1) and writes {"context": [[ids]],
      "continuation": [[ids]], "loglik": [summed log p of the continuation]}.
"""
import json
import math
import sys

import numpy as np
import torch

import llama_ref


def mean_stderr(x):
    """Mean and llama.cpp's standard error sqrt((E[x^2] - E[x]^2) / (n - 1))."""
    x = torch.as_tensor(x, dtype=torch.float64)
    n = x.numel()
    m = x.mean().item()
    var = (x * x).mean().item() - m * m
    return m, (math.sqrt(var / (n - 1)) if n > 1 and var > 0 else 0.0)


def windows(stream, protocol, seqlen, max_windows, bos):
    """Yields (input tokens, positions whose logits are scored, their target tokens)."""
    n = len(stream) // seqlen
    if max_windows >= 0:
        n = min(n, max_windows)
    for w in range(n):
        chunk = list(stream[w * seqlen:(w + 1) * seqlen])
        if protocol == "papers":
            pos = list(range(0, seqlen - 1))           # every prediction in the window
        else:
            if bos >= 0:
                chunk[0] = bos                         # llama-perplexity: BOS at every window start
            pos = list(range(seqlen // 2, seqlen - 1))  # only the second half
        targets = [stream[w * seqlen + j + 1] for j in pos]
        yield chunk, pos, targets


def cmd_ppl(argv):
    d, stream_path, protocol, seqlen, max_windows, bos, out = argv[:7]
    seqlen, max_windows, bos = int(seqlen), int(max_windows), int(bos)
    ref_dir = argv[7] if len(argv) > 7 else None
    cfg, w = llama_ref.load_model(d)
    if ref_dir:
        rcfg, rw = llama_ref.load_model(ref_dir)
    stream = np.fromfile(stream_path, dtype="<i4").astype(np.int64).tolist()
    nll, ref_nll, kl, same, dp = [], [], [], [], []
    with torch.no_grad():
        for chunk, pos, targets in windows(stream, protocol, seqlen, max_windows, bos):
            tokens = torch.tensor([chunk], dtype=torch.long)
            lq = torch.log_softmax(llama_ref.forward(cfg, w, tokens)[0], dim=-1)[pos]
            t = torch.tensor(targets, dtype=torch.long)
            lq_t = lq.gather(1, t[:, None])[:, 0]
            nll += (-lq_t).tolist()
            if ref_dir:
                lp = torch.log_softmax(llama_ref.forward(rcfg, rw, tokens)[0], dim=-1)[pos]
                lp_t = lp.gather(1, t[:, None])[:, 0]
                ref_nll += (-lp_t).tolist()
                kl += (lp.exp() * (lp - lq)).sum(-1).tolist()
                same += (lp.argmax(-1) == lq.argmax(-1)).to(torch.float64).tolist()
                dp += (lq_t.exp() - lp_t.exp()).abs().tolist()
    m, se = mean_stderr(nll)
    res = {"scored_tokens": len(nll), "mean_nll": m, "nll_stderr": se, "ppl": math.exp(m), "ppl_stderr": math.exp(m) * se}
    if ref_dir:
        res["kl_mean"], res["kl_stderr"] = mean_stderr(kl)
        res["top1"], res["top1_stderr"] = mean_stderr(same)
        res["abs_dp_mean"], res["abs_dp_stderr"] = mean_stderr(dp)
        res["ref_ppl"] = math.exp(mean_stderr(ref_nll)[0])
    with open(out, "w") as f:
        json.dump(res, f)
    return 0


def encode_pair(sp, context, continuation, bos):
    """lm-eval 0.4 HFLM._encode_pair: trailing context spaces move to the continuation; the
    continuation's tokens are encode(context + continuation)[len(encode(context)):]."""
    n_spaces = len(context) - len(context.rstrip())
    if n_spaces > 0:
        continuation = context[-n_spaces:] + continuation
        context = context[:-n_spaces]
    prefix = [sp.bos_id()] if bos else []
    whole = prefix + sp.encode(context + continuation)
    ctx = prefix + sp.encode(context)
    return ctx, whole[len(ctx):]


def cmd_loglik(argv):
    import sentencepiece as spm
    d, spm_model, pairs_path, out = argv[:4]
    bos = len(argv) > 4 and argv[4] == "1"
    cfg, w = llama_ref.load_model(d)
    sp = spm.SentencePieceProcessor(model_file=spm_model)
    with open(pairs_path) as f:
        pairs = json.load(f)
    res = {"context": [], "continuation": [], "loglik": []}
    with torch.no_grad():
        for context, continuation in pairs:
            ctx, cont = encode_pair(sp, context, continuation, bos)
            inp = (ctx + cont)[:-1]
            lp = torch.log_softmax(llama_ref.forward(cfg, w, torch.tensor([inp], dtype=torch.long))[0], dim=-1)
            rows = lp[len(inp) - len(cont):]
            ll = rows.gather(1, torch.tensor(cont, dtype=torch.long)[:, None]).sum().item()
            res["context"].append(ctx)
            res["continuation"].append(cont)
            res["loglik"].append(ll)
    with open(out, "w") as f:
        json.dump(res, f)
    return 0


def main(argv):
    if argv and argv[0] == "ppl":
        return cmd_ppl(argv[1:])
    if argv and argv[0] == "loglik":
        return cmd_loglik(argv[1:])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
