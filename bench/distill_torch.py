"""PyTorch counterpart of distill_step.cpp: the same TinyLlama-shaped teacher and narrower student
(hidden 1536, 24 / 3 heads, FFN 4096), float32 (tools/reference/llama_ref.py's blocks), one step =
teacher forward (no grad) + student forward / backward of the logit KL + cosine loss of every block
output through a learned nn.Linear projection (1536 -> 2048), balanced to the logit loss, + AdamW."""
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
ap.add_argument("--layers", type=int, default=2)
ap.add_argument("--batch", type=int, default=1)
ap.add_argument("--seqlen", type=int, default=256)
ap.add_argument("--repeat", type=int, default=3)
a = ap.parse_args()

torch.set_num_threads(os.cpu_count())
llama_ref.DTYPE = torch.float32
tcfg, tw = tl.make_model(a.layers, seed=0)
g = torch.Generator().manual_seed(1)
C, F, HQ, HKV, HD, V = 1536, 4096, 24, 3, 64, tl.V
scfg = dict(tcfg, dim=C, blocks=[{"n_heads": HQ, "n_kv_heads": HKV, "ffn_dim": F}] * a.layers)
rnd = lambda *s: (torch.randn(*s, generator=g) * 0.02).requires_grad_(True)
sw = {"model.embed_tokens.weight": rnd(V, C), "model.norm.weight": torch.ones(C, requires_grad=True),
      "lm_head.weight": rnd(V, C)}
for l in range(a.layers):
    p = f"model.layers.{l}."
    sw[p + "input_layernorm.weight"] = torch.ones(C, requires_grad=True)
    sw[p + "post_attention_layernorm.weight"] = torch.ones(C, requires_grad=True)
    sw[p + "self_attn.q_proj.weight"] = rnd(HQ * HD, C)
    sw[p + "self_attn.k_proj.weight"] = rnd(HKV * HD, C)
    sw[p + "self_attn.v_proj.weight"] = rnd(HKV * HD, C)
    sw[p + "self_attn.o_proj.weight"] = rnd(C, HQ * HD)
    sw[p + "mlp.gate_proj.weight"] = rnd(F, C)
    sw[p + "mlp.up_proj.weight"] = rnd(F, C)
    sw[p + "mlp.down_proj.weight"] = rnd(C, F)
proj = [torch.nn.Linear(C, tl.C, bias=False) for _ in range(a.layers)]
opt = torch.optim.AdamW(list(sw.values()) + [q for pr in proj for q in pr.parameters()], lr=1e-5, weight_decay=0.0)
n = a.batch * a.seqlen
tokens = (torch.arange(n) * 7919 % V).view(a.batch, a.seqlen)


def hidden_and_logits(cfg, w, x_tokens):
    cos, sin = llama_ref.rope_tables(cfg, a.seqlen)
    x = w["model.embed_tokens.weight"][x_tokens]
    hs = []
    for l in range(a.layers):
        x = llama_ref.block(cfg, w, l, x, cos, sin)
        hs.append(x)
    x = llama_ref.rms_norm(x, w["model.norm.weight"], cfg["norm_eps"])
    return hs, x @ w["lm_head.weight"].T


def step():
    opt.zero_grad(set_to_none=False)
    with torch.no_grad():
        th, tlog = hidden_and_logits(tcfg, tw, tokens)
    sh, slog = hidden_and_logits(scfg, sw, tokens)
    kl = torch.nn.functional.kl_div(torch.log_softmax(slog.view(n, V), -1), torch.log_softmax(tlog.view(n, V), -1),
                                    reduction="sum", log_target=True) / n
    hid = sum((1 - torch.nn.functional.cosine_similarity(pr(s).view(n, -1), t.view(n, -1), dim=-1)).sum() / n
              for pr, s, t in zip(proj, sh, th))
    loss = kl + hid * (kl.detach() / hid.detach())
    loss.backward()
    opt.step()


step()  # warm-up
best = 1e30
for _ in range(a.repeat):
    t0 = time.perf_counter()
    step()
    best = min(best, time.perf_counter() - t0)
print(f"pytorch  distill step: {a.layers} blocks, teacher hidden 2048 -> student 1536, {a.batch} x {a.seqlen} tokens, "
      f"threads {torch.get_num_threads()}: best {n / best:.1f} tokens/s")
