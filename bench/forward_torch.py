"""PyTorch counterpart of bench_forward.cpp: the same TinyLlama-shaped random model, float32,
forward over B x T tokens under no_grad (the reference model of tools/reference/llama_ref.py)."""
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
ap.add_argument("--layers", type=int, default=4)
ap.add_argument("--batch", type=int, default=4)
ap.add_argument("--seqlen", type=int, default=512)
ap.add_argument("--repeat", type=int, default=3)
a = ap.parse_args()

torch.set_num_threads(os.cpu_count())
llama_ref.DTYPE = torch.float32
cfg, w = tinyllama_torch.make_model(a.layers)
V = tinyllama_torch.V
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
