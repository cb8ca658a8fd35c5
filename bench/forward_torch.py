"""PyTorch counterpart of bench_forward.cpp: the same TinyLlama-shaped random model, float32,
forward over B x T tokens under no_grad (the reference model of tools/reference/llama_ref.py)."""
import argparse
import os
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tools", "reference"))
import llama_ref  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument("--layers", type=int, default=4)
ap.add_argument("--batch", type=int, default=4)
ap.add_argument("--seqlen", type=int, default=512)
ap.add_argument("--repeat", type=int, default=3)
a = ap.parse_args()

torch.set_num_threads(os.cpu_count())
llama_ref.DTYPE = torch.float32
C, V, F, Hq, Hkv, hd = 2048, 32000, 5632, 32, 4, 64
cfg = {"dim": C, "vocab_size": V, "head_dim": hd, "norm_eps": 1e-5, "rope_theta": 10000.0,
       "tied_embeddings": False, "attn_bias": False,
       "blocks": [{"n_heads": Hq, "n_kv_heads": Hkv, "ffn_dim": F}] * a.layers}
g = torch.Generator().manual_seed(0)
def rnd(*shape):
    return torch.randn(*shape, generator=g) * 0.02
w = {"model.embed_tokens.weight": rnd(V, C), "model.norm.weight": torch.ones(C), "lm_head.weight": rnd(V, C)}
for l in range(a.layers):
    p = f"model.layers.{l}."
    w[p + "input_layernorm.weight"] = torch.ones(C)
    w[p + "post_attention_layernorm.weight"] = torch.ones(C)
    w[p + "self_attn.q_proj.weight"] = rnd(Hq * hd, C)
    w[p + "self_attn.k_proj.weight"] = rnd(Hkv * hd, C)
    w[p + "self_attn.v_proj.weight"] = rnd(Hkv * hd, C)
    w[p + "self_attn.o_proj.weight"] = rnd(C, Hq * hd)
    w[p + "mlp.gate_proj.weight"] = rnd(F, C)
    w[p + "mlp.up_proj.weight"] = rnd(F, C)
    w[p + "mlp.down_proj.weight"] = rnd(C, F)
tokens = (torch.arange(a.batch * a.seqlen) * 7919 % V).view(a.batch, a.seqlen)
with torch.no_grad():
    llama_ref.forward(cfg, w, tokens)  # warm-up
    best = 1e30
    for _ in range(a.repeat):
        t0 = time.perf_counter()
        llama_ref.forward(cfg, w, tokens)
        best = min(best, time.perf_counter() - t0)
n = a.batch * a.seqlen
print(f"pytorch  forward: {a.layers} blocks, {a.batch} x {a.seqlen} tokens, threads {torch.get_num_threads()}: "
      f"best {best:.3f} s, {n / best:.1f} tokens/s")
