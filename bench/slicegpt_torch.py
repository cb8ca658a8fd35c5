"""PyTorch counterpart of slicegpt_slice.cpp: the official SliceGPT procedure (rotate_and_slice of
microsoft/TransformerCompression, as tools/reference/slicegpt_ref.py reproduces it) on the same
TinyLlama-shaped random model as a float32 model — forward passes in float32, PCA and rotations in
float64, as the official code does with a float32 model — at 25% over the same calibration tokens.
--same-steps 1: with secateur's one change of steps (the last block's output keeps its basis when
the head is not sliced, instead of a full rotation that the head undoes)."""
import argparse
import os
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tools", "reference"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import llama_ref  # noqa: E402
import slicegpt_ref  # noqa: E402
import tinyllama_torch as tl  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument("--layers", type=int, default=4)
ap.add_argument("--nsamples", type=int, default=8)
ap.add_argument("--seqlen", type=int, default=512)
ap.add_argument("--same-steps", type=int, default=0)
a = ap.parse_args()

torch.set_num_threads(os.cpu_count())
llama_ref.DTYPE = torch.float32
cfg, w = tl.make_model(a.layers)
windows = (torch.arange(a.nsamples * a.seqlen) * 7919 % tl.V).view(a.nsamples, a.seqlen)
t0 = time.perf_counter()
with torch.no_grad():
    slicegpt_ref.slice_model(cfg, w, windows, 0.25, False, False, dtype=torch.float32, final_identity=bool(a.same_steps))
secs = time.perf_counter() - t0
which = "secateur's steps (last output basis kept)" if a.same_steps else "the official steps"
print(f"pytorch  slicegpt, {which}: {a.layers} blocks, 25%, {a.nsamples} x {a.seqlen} tokens, threads "
      f"{torch.get_num_threads()}: {secs:.2f} s")
