"""PyTorch counterpart of train_tokens.cpp: the same TinyLlama-shaped random model in float32
(tools/reference/llama_ref.py's forward), one training step = forward + mean cross-entropy +
backward + torch.optim.AdamW step over every parameter."""
import argparse
import os
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tools", "reference"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import llama_ref  # noqa: E402
import tinyllama_torch  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument("--layers", type=int, default=2)
ap.add_argument("--batch", type=int, default=1)
ap.add_argument("--seqlen", type=int, default=256)
ap.add_argument("--repeat", type=int, default=3)
ap.add_argument("--recompute", type=int, default=0)  # accepted for symmetry; PyTorch keeps activations
a = ap.parse_args()

torch.set_num_threads(os.cpu_count())
llama_ref.DTYPE = torch.float32
cfg, w = tinyllama_torch.make_model(a.layers)
V = tinyllama_torch.V
for t in w.values():
    t.requires_grad_(True)
opt = torch.optim.AdamW(list(w.values()), lr=1e-5, weight_decay=0.0)
n = a.batch * a.seqlen
tokens = (torch.arange(n) * 7919 % V).view(a.batch, a.seqlen)
targets = ((torch.arange(n) + 1) * 7919 % V)

def step():
    opt.zero_grad(set_to_none=False)
    logits = llama_ref.forward(cfg, w, tokens).view(n, V)
    loss = torch.nn.functional.cross_entropy(logits, targets)
    loss.backward()
    opt.step()

step()  # warm-up
best = 1e30
for _ in range(a.repeat):
    t0 = time.perf_counter()
    step()
    best = min(best, time.perf_counter() - t0)
print(f"pytorch  train step: {a.layers} blocks, {a.batch} x {a.seqlen} tokens, threads {torch.get_num_threads()}: "
      f"best {best:.3f} s, {n / best:.1f} tokens/s")
