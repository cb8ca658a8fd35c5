"""PyTorch counterpart of llm_pruner_taylor.cpp: the same TinyLlama-shaped random model in float32
(tools/reference/llama_ref.py's forward), gradients of the mean next-token loss by autograd (of every
tensor, as the official code does with requires_grad on every parameter; --same-tensors 1: only the
block linears, the tensors secateur differentiates), the
official code's first-order Taylor saliences (sum over each weight vector of |w g|, summed over a
group's members and a head's channels), the lowest KV groups (ratio 0.25) and MLP channels
(F - int(F * 0.8)) per block, and the surgery (index_select of every tensor into a new model)."""
import argparse
import os
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tools", "reference"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import llama_ref  # noqa: E402
import tinyllama_torch as tl  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument("--layers", type=int, default=4)
ap.add_argument("--nsamples", type=int, default=10)
ap.add_argument("--seqlen", type=int, default=64)
ap.add_argument("--repeat", type=int, default=3)
ap.add_argument("--same-tensors", type=int, default=0)
a = ap.parse_args()

torch.set_num_threads(os.cpu_count())
llama_ref.DTYPE = torch.float32
cfg, w = tl.make_model(a.layers)
n = a.nsamples * a.seqlen
windows = (torch.arange(n) * 7919 % tl.V).view(a.nsamples, a.seqlen)


def run():
    for k, t in w.items():
        t.requires_grad_(not a.same_tensors or "_proj." in k)
        t.grad = None
    logits = llama_ref.forward(cfg, w, windows[:, :-1])
    loss = torch.nn.functional.cross_entropy(logits.reshape(-1, tl.V), windows[:, 1:].reshape(-1))
    loss.backward()
    t_grad = time.perf_counter()
    with torch.no_grad():
        # Saliences of the groups' members only (the block linears), as the official importance
        # visits a group's members: the embedding's and head's gradients are computed but unused.
        sal = {k: (v * v.grad).abs() for k, v in w.items() if "_proj." in k}
        new = {}
        # Tensors kept whole are shared, not copied: the official code prunes its modules in place, and
        # secateur's surgery shares them too.
        for name in ("model.embed_tokens.weight", "model.norm.weight", "lm_head.weight"):
            new[name] = w[name].detach()
        hd, kvd = tl.HD, tl.HKV * tl.HD
        r = tl.HQ // tl.HKV
        for l in range(a.layers):
            p = f"model.layers.{l}."
            q, k, v, o = (sal[p + f"self_attn.{x}_proj.weight"] for x in "qkvo")
            kv = (k.sum(1) + v.sum(1)).view(tl.HKV, hd).sum(1) + (q.sum(1) + o.sum(0)).view(tl.HKV, r * hd).sum(1)
            drop = torch.argsort(kv)[: int(0.25 * tl.HKV)]
            keep_kv = torch.tensor(sorted(set(range(tl.HKV)) - set(drop.tolist())))
            kv_rows = (keep_kv[:, None] * hd + torch.arange(hd)).reshape(-1)
            q_rows = (keep_kv[:, None] * (r * hd) + torch.arange(r * hd)).reshape(-1)
            g, u, d = sal[p + "mlp.gate_proj.weight"], sal[p + "mlp.up_proj.weight"], sal[p + "mlp.down_proj.weight"]
            ffn = g.sum(1) + u.sum(1) + d.sum(0)
            F = ffn.numel()
            keep_f = torch.sort(torch.argsort(ffn)[F - int(F * 0.8):]).values
            new[p + "self_attn.q_proj.weight"] = w[p + "self_attn.q_proj.weight"].detach().index_select(0, q_rows)
            new[p + "self_attn.k_proj.weight"] = w[p + "self_attn.k_proj.weight"].detach().index_select(0, kv_rows)
            new[p + "self_attn.v_proj.weight"] = w[p + "self_attn.v_proj.weight"].detach().index_select(0, kv_rows)
            new[p + "self_attn.o_proj.weight"] = w[p + "self_attn.o_proj.weight"].detach().index_select(1, q_rows)
            new[p + "mlp.gate_proj.weight"] = w[p + "mlp.gate_proj.weight"].detach().index_select(0, keep_f)
            new[p + "mlp.up_proj.weight"] = w[p + "mlp.up_proj.weight"].detach().index_select(0, keep_f)
            new[p + "mlp.down_proj.weight"] = w[p + "mlp.down_proj.weight"].detach().index_select(1, keep_f)
            for x in ("input_layernorm.weight", "post_attention_layernorm.weight"):
                new[p + x] = w[p + x].detach()
    return t_grad, sum(t.numel() for t in new.values())


best_grad, best = 1e30, 1e30
for i in range(a.repeat + 1):  # the first run warms up
    t0 = time.perf_counter()
    t_grad, params = run()
    t1 = time.perf_counter()
    if i:
        best_grad, best = min(best_grad, t_grad - t0), min(best, t1 - t0)
total = sum(t.numel() for t in w.values())
which = "block linears" if a.same_tensors else "every tensor"
print(f"pytorch  llm-pruner taylor: {a.layers} blocks, {a.nsamples} x {a.seqlen} tokens, threads "
      f"{torch.get_num_threads()}, gradients of {which}: gradients {best_grad:.3f} s, total {best:.3f} s, "
      f"{total} -> {params} params")
