"""PyTorch autograd reference for secateur's backward pass (the gradient oracle).

Loads the model dump written by tests/testing/reference_io.cpp with llama_ref.load_model, runs
llama_ref.forward in float64 and differentiates

    loss = mean over positions with target >= 0 of cross_entropy(logits, target)

with respect to every tensor of the dump.

Usage:
  grad_ref.py grads DIR TOKENS.i32 TARGETS.i32 B T OUT.f32
OUT.f32 (float32): the loss, then d(loss)/d(param) of every tensor in manifest order, flattened.
"""
import json
import sys

import numpy as np
import torch

from llama_ref import load_model, forward


def main(argv):
    if len(argv) == 7 and argv[0] == "grads":
        d, tok_path, tgt_path, B, T, out = argv[1], argv[2], argv[3], int(argv[4]), int(argv[5]), argv[6]
        cfg, w = load_model(d)
        with open(f"{d}/manifest.json") as f:
            names = [t["name"] for t in json.load(f)["tensors"]]
        for n in names:
            w[n].requires_grad_(True)
        tokens = torch.from_numpy(np.fromfile(tok_path, dtype="<i4").astype(np.int64)).view(B, T)
        targets = torch.from_numpy(np.fromfile(tgt_path, dtype="<i4").astype(np.int64)).view(B * T)
        logits = forward(cfg, w, tokens).view(B * T, -1)
        keep = targets >= 0
        loss = torch.nn.functional.cross_entropy(logits[keep], targets[keep], reduction="mean")
        loss.backward()
        parts = [np.array([loss.item()])]
        for n in names:
            g = w[n].grad
            parts.append((g if g is not None else torch.zeros_like(w[n])).detach().numpy().reshape(-1))
        np.concatenate(parts).astype("<f4").tofile(out)
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
