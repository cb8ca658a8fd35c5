"""PyTorch reference of LLM-Pruner (the test oracle for src/prune/llm_pruner.*), and a reproduction
of the official LLM-Pruner code's procedure for comparison.

Written from docs/pruning.md and src/prune/llm_pruner.h's definitions, independently of the C++
code: the groups are listed here from the architecture (not from secateur's tensor table), the
gradients come from autograd through llama_ref.forward in float64.

Usage:
  llm_pruner_ref.py scores DIR WINDOWS.i32 N T OUT.json
      Group importance of every (importance, taylor, aggregate) combination, for the KV groups,
      query heads, MLP channels and hidden channels of the model dumped in DIR (llama_ref format),
      from N calibration windows of T tokens (the loss: mean next-token CE over the N*(T-1) targets).
  llm_pruner_ref.py official DIR WINDOWS.i32 N T EVAL.i32 SEQLEN ATTN_RATIO MLP_RATIO OUT.json
      The official code's block-wise Taylor pruning (hf_prune.py / llama3.py with --pruner_type
      taylor --taylor param_first --grouping_strategy sum, roots k_proj with consecutive groups of
      head_dim and gate_proj, every block), then the perplexity (papers protocol: non-overlapping
      SEQLEN windows of the EVAL stream, every position after the first scored) of the pruned model.
      What the official code does, reproduced because it cannot be run here:
        * each member's importance is a vector over its channels (sum over the weight vector of
          |w g|); vectors longer than the shortest are folded with view(len/min, min).sum(0), so on a
          GQA model KV group j is credited query heads {j, j + Hkv, j + 2 Hkv, ...};
        * the channel scores are summed over the members and over the head_dim channels of a head;
        * n = C - int(C * (1 - ratio)) channels are removed (C = k_proj rows, or FFN size), as whole
          heads: n // head_dim KV groups;
        * the removal itself follows the dependency graph through repeat_kv: KV group j goes with the
          query heads that really read it (j*r .. (j+1)*r - 1, r = Hq / Hkv), so the pruned model
          is consistent; only the choice of j is affected by the misattributed scores. (This is
          the reading under which the official Llama-3 results are possible; a graph that removed
          heads {j + i Hkv} would scramble the remaining heads' KV assignment.)
"""
import itertools
import json
import math
import sys

import numpy as np
import torch

import llama_ref

IMPORTANCE = [("taylor", "vector"), ("taylor", "first"), ("taylor", "second"), ("taylor", "mix"), ("l1", None), ("l2", None)]
AGGREGATE = ["sum", "mean", "max", "prod", "last"]


def load_windows(path, n, t):
    return torch.from_numpy(np.fromfile(path, dtype="<i4").astype(np.int64)).view(n, t)


def mean_loss(cfg, w, windows):
    logits = llama_ref.forward(cfg, w, windows[:, :-1])
    V = logits.shape[-1]
    return torch.nn.functional.cross_entropy(logits.reshape(-1, V), windows[:, 1:].reshape(-1), reduction="mean")


def gradients(cfg, w, windows, fisher):
    names = list(w.keys())
    for n in names:
        w[n].requires_grad_(True)
    loss = mean_loss(cfg, w, windows)
    grads = torch.autograd.grad(loss, [w[n] for n in names], allow_unused=True)
    g = {n: (x if x is not None else torch.zeros_like(w[n])) for n, x in zip(names, grads)}
    F = {}
    if fisher:
        F = {n: torch.zeros_like(w[n]) for n in names}
        for j in range(windows.shape[0]):
            gj = torch.autograd.grad(mean_loss(cfg, w, windows[j:j + 1]), [w[n] for n in names], allow_unused=True)
            for n, x in zip(names, gj):
                if x is not None:
                    F[n] += x * x / windows.shape[0]
    for n in names:
        w[n] = w[n].detach()
    return g, F


def groups(cfg):
    """Every group as a list of (tensor name, dim, begin, count), members in forward order."""
    hd = cfg["head_dim"]
    out = {"kv": [], "heads": [], "ffn": [], "hidden": []}
    for l, b in enumerate(cfg["blocks"]):
        Hq, Hkv, F = b["n_heads"], b["n_kv_heads"], b["ffn_dim"]
        p = f"model.layers.{l}."
        kv, heads, ffn = [], [], []
        if Hq > 0:
            r = Hq // Hkv
            for g in range(Hkv):
                q = (g * r * hd, r * hd)
                m = [(p + "self_attn.q_proj.weight", 0) + q, (p + "self_attn.k_proj.weight", 0, g * hd, hd),
                     (p + "self_attn.v_proj.weight", 0, g * hd, hd)]
                if cfg["attn_bias"]:
                    m += [(p + "self_attn.q_proj.bias", 0) + q, (p + "self_attn.k_proj.bias", 0, g * hd, hd),
                          (p + "self_attn.v_proj.bias", 0, g * hd, hd)]
                m.append((p + "self_attn.o_proj.weight", 1) + q)
                kv.append(m)
            for h in range(Hq):
                m = [(p + "self_attn.q_proj.weight", 0, h * hd, hd)]
                if cfg["attn_bias"]:
                    m.append((p + "self_attn.q_proj.bias", 0, h * hd, hd))
                m.append((p + "self_attn.o_proj.weight", 1, h * hd, hd))
                heads.append(m)
        for c in range(F):
            ffn.append([(p + "mlp.gate_proj.weight", 0, c, 1), (p + "mlp.up_proj.weight", 0, c, 1),
                        (p + "mlp.down_proj.weight", 1, c, 1)])
        out["kv"].append(kv)
        out["heads"].append(heads)
        out["ffn"].append(ffn)
    for c in range(cfg["dim"]):
        m = [("model.embed_tokens.weight", 1, c, 1)]
        for l, b in enumerate(cfg["blocks"]):
            p = f"model.layers.{l}."
            if b["n_heads"] > 0:
                m += [(p + "input_layernorm.weight", 0, c, 1), (p + "self_attn.q_proj.weight", 1, c, 1),
                      (p + "self_attn.k_proj.weight", 1, c, 1), (p + "self_attn.v_proj.weight", 1, c, 1),
                      (p + "self_attn.o_proj.weight", 0, c, 1)]
            if b["ffn_dim"] > 0:
                m += [(p + "post_attention_layernorm.weight", 0, c, 1), (p + "mlp.gate_proj.weight", 1, c, 1),
                      (p + "mlp.up_proj.weight", 1, c, 1), (p + "mlp.down_proj.weight", 0, c, 1)]
        m.append(("model.norm.weight", 0, c, 1))
        if not cfg["tied_embeddings"]:
            m.append(("lm_head.weight", 1, c, 1))
        out["hidden"].append(m)
    return out


def element_values(w, g, F, importance, taylor):
    if importance == "l1":
        return w.abs()
    if importance == "l2":
        return w * w
    if taylor in ("vector", "first"):
        return g * w
    if taylor == "second":
        return 0.5 * w * w * F
    return g * w - 0.5 * w * w * F  # mix


def member_score(e, dim, begin, count, vector):
    s = e.narrow(dim, begin, count)
    if s.dim() == 1:
        return s.abs().sum().item()
    if vector:  # |sum over each weight vector| summed over the slice's vectors
        return s.sum(dim=1 - dim).abs().sum().item()
    return s.abs().sum().item()


def aggregate(scores, how):
    if how == "sum":
        return sum(scores)
    if how == "mean":
        return sum(scores) / len(scores)
    if how == "max":
        return max(scores)
    if how == "prod":
        return math.prod(scores)
    return scores[-1]  # last


def cmd_scores(d, win_path, n, t, out_path):
    cfg, w = llama_ref.load_model(d)
    windows = load_windows(win_path, n, t)
    g, F = gradients(cfg, w, windows, fisher=True)
    gs = groups(cfg)
    result = {}
    for (imp, taylor), agg in itertools.product(IMPORTANCE, AGGREGATE):
        e = {name: element_values(w[name], g[name], F[name], imp, taylor) for name in w}
        vector = taylor == "vector"

        def score(members):
            return aggregate([member_score(e[m[0]], m[1], m[2], m[3], vector) for m in members], agg)

        key = f"{imp}/{taylor or '-'}/{agg}"
        result[key] = {kind: [[score(m) for m in blk] for blk in gs[kind]] for kind in ("kv", "heads", "ffn")}
        result[key]["hidden"] = [score(m) for m in gs["hidden"]]
    with open(out_path, "w") as f:
        json.dump(result, f)
    return 0


def ppl(cfg, w, stream, seqlen):
    n = len(stream) // seqlen
    nll, count = 0.0, 0
    with torch.no_grad():
        for i in range(n):
            x = torch.tensor(stream[i * seqlen:(i + 1) * seqlen], dtype=torch.int64)[None]
            logp = torch.log_softmax(llama_ref.forward(cfg, w, x)[0], dim=-1)
            nll -= logp[:-1].gather(1, x[0, 1:, None]).sum().item()
            count += seqlen - 1
    return math.exp(nll / count), n, count


def cmd_official(d, win_path, n, t, eval_path, seqlen, attn_ratio, mlp_ratio, out_path):
    cfg, w = llama_ref.load_model(d)
    windows = load_windows(win_path, n, t)
    g, _ = gradients(cfg, w, windows, fisher=False)
    hd = cfg["head_dim"]

    def row_scores(name):  # param_first: sum over each row of |w g|
        return (w[name] * g[name]).abs().sum(1)

    def col_scores(name):
        return (w[name] * g[name]).abs().sum(0)

    removed = []
    for l, b in enumerate(cfg["blocks"]):
        p = f"model.layers.{l}."
        Hq, Hkv, F = b["n_heads"], b["n_kv_heads"], b["ffn_dim"]
        kvd = Hkv * hd
        members = [row_scores(p + "self_attn.k_proj.weight"), row_scores(p + "self_attn.v_proj.weight"),
                   row_scores(p + "self_attn.q_proj.weight"), col_scores(p + "self_attn.o_proj.weight")]
        folded = [m.view(len(m) // kvd, kvd).sum(0) for m in members]  # the official alignment
        kv_score = torch.stack(folded).sum(0).view(Hkv, hd).sum(1)
        n_groups = (kvd - int(kvd * (1 - attn_ratio))) // hd
        drop_kv = sorted(torch.argsort(kv_score)[:n_groups].tolist())
        r = Hq // Hkv
        drop_q = sorted(j * r + i for j in drop_kv for i in range(r))
        keep_kv = [j for j in range(Hkv) if j not in drop_kv]
        keep_q = [h for h in range(Hq) if h not in drop_q]
        rows = lambda heads: [h * hd + i for h in heads for i in range(hd)]
        for name in ("q_proj",):
            w[p + f"self_attn.{name}.weight"] = w[p + f"self_attn.{name}.weight"][rows(keep_q)]
        for name in ("k_proj", "v_proj"):
            w[p + f"self_attn.{name}.weight"] = w[p + f"self_attn.{name}.weight"][rows(keep_kv)]
        w[p + "self_attn.o_proj.weight"] = w[p + "self_attn.o_proj.weight"][:, rows(keep_q)]
        ffn_score = row_scores(p + "mlp.gate_proj.weight") + row_scores(p + "mlp.up_proj.weight") + \
            col_scores(p + "mlp.down_proj.weight")
        n_ffn = F - int(F * (1 - mlp_ratio))
        drop_ffn = sorted(torch.argsort(ffn_score)[:n_ffn].tolist())
        keep_ffn = [c for c in range(F) if c not in drop_ffn]
        w[p + "mlp.gate_proj.weight"] = w[p + "mlp.gate_proj.weight"][keep_ffn]
        w[p + "mlp.up_proj.weight"] = w[p + "mlp.up_proj.weight"][keep_ffn]
        w[p + "mlp.down_proj.weight"] = w[p + "mlp.down_proj.weight"][:, keep_ffn]
        b.update(n_heads=len(keep_q), n_kv_heads=len(keep_kv), ffn_dim=len(keep_ffn))
        removed.append({"kv_groups": drop_kv, "query_heads": drop_q, "ffn": drop_ffn})
    params = sum(x.numel() for x in w.values())
    stream = np.fromfile(eval_path, dtype="<i4").tolist()
    value, n_windows, count = ppl(cfg, w, stream, seqlen)
    with open(out_path, "w") as f:
        json.dump({"ppl": value, "windows": n_windows, "scored": count, "params": params, "removed": removed}, f)
    return 0


def main(argv):
    if len(argv) == 6 and argv[0] == "scores":
        return cmd_scores(argv[1], argv[2], int(argv[3]), int(argv[4]), argv[5])
    if len(argv) == 10 and argv[0] == "official":
        return cmd_official(argv[1], argv[2], int(argv[3]), int(argv[4]), argv[5], int(argv[6]), float(argv[7]),
                            float(argv[8]), argv[9])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
