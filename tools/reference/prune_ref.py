"""PyTorch references of the pruning rules (methods.md §1-4), the oracle of tests/oracle/test_prune_oracle.cpp.

Written from the specification, independent of secateur's C++ code. Exchange format: DIR/meta.json and
raw little-endian float32 arrays.

  prune_ref.py wanda DIR      W.f32 (rows, cols), X.f32 (T, cols), meta {rows, cols, tokens, sparsity, n, m}
                              -> mask_wanda.f32, mask_magnitude.f32 (1 = pruned)
  prune_ref.py sparsegpt DIR  same inputs + meta {percdamp, blocksize} -> W_sparsegpt.f32
  prune_ref.py owl DIR        meta {blocks: [[{rows, cols, w, x}]], M, lambda, sparsity}: W/X offsets into
                              W.f32 / norms.f32 -> owl.json {ratio: [...], sparsity: [...]}

Selection rule shared with secateur: the k lowest scores, ties broken by lower index (stable sort).
SparseGPT unstructured prunes exactly floor(s * rows * count) entries of each column block (the
original `tmp <= sorted[k]` threshold prunes one more per block).
"""
import json
import math
import sys

import numpy as np
import torch


def load(d, name, shape):
    return torch.from_numpy(np.fromfile(f"{d}/{name}", dtype="<f4").reshape(shape).copy())


def save(d, name, t):
    t.detach().to(torch.float32).contiguous().numpy().astype("<f4").tofile(f"{d}/{name}")


def count(ratio, n):
    return min(n, int(math.floor(ratio * n + 1e-9)))


def lowest_mask(score, k, dim=-1):
    """1 where the entry is among the k lowest along dim (stable: lower index first on ties)."""
    mask = torch.zeros_like(score, dtype=torch.bool)
    if k > 0:
        idx = torch.sort(score, dim=dim, stable=True)[1]
        mask.scatter_(dim, idx.narrow(dim, 0, k), True)
    return mask


def nm_mask(score, n, m):
    rows, cols = score.shape
    g = score.reshape(rows, cols // m, m)
    return lowest_mask(g, n, dim=-1).reshape(rows, cols)


def wanda(d):
    meta = json.load(open(f"{d}/meta.json"))
    rows, cols, T = meta["rows"], meta["cols"], meta["tokens"]
    W = load(d, "W.f32", (rows, cols))
    X = load(d, "X.f32", (T, cols))
    # ||X_j||_2 computed in float64, stored as float32 like the C++ side; scores in float32.
    norms = X.double().pow(2).sum(0).sqrt().float()
    S = W.abs() * norms.reshape(1, -1)
    if meta["m"] > 0:
        mw = nm_mask(S, meta["n"], meta["m"])
        mm = nm_mask(W.abs(), meta["n"], meta["m"])
    else:
        mw = lowest_mask(S, count(meta["sparsity"], cols))
        mm = lowest_mask(W.abs().flatten(), count(meta["sparsity"], rows * cols)).reshape(rows, cols)
    save(d, "mask_wanda.f32", mw.float())
    save(d, "mask_magnitude.f32", mm.float())


def sparsegpt(d):
    """The SparseGPT column sweep (fasterprune-style), float64."""
    meta = json.load(open(f"{d}/meta.json"))
    rows, cols, T = meta["rows"], meta["cols"], meta["tokens"]
    n, m, s = meta["n"], meta["m"], meta["sparsity"]
    blocksize, percdamp = meta["blocksize"], meta["percdamp"]
    W = load(d, "W.f32", (rows, cols)).double()
    X = load(d, "X.f32", (T, cols)).double()
    H = 2 * X.T @ X
    dead = torch.diag(H) == 0
    H[dead, dead] = 1
    W[:, dead] = 0
    damp = percdamp * torch.mean(torch.diag(H))
    H += damp * torch.eye(cols, dtype=H.dtype)
    L = torch.linalg.cholesky(H)
    Hinv = torch.linalg.cholesky(torch.cholesky_inverse(L), upper=True)
    for i1 in range(0, cols, blocksize):
        i2 = min(i1 + blocksize, cols)
        cnt = i2 - i1
        W1 = W[:, i1:i2].clone()
        Q1 = torch.zeros_like(W1)
        Err1 = torch.zeros_like(W1)
        Hinv1 = Hinv[i1:i2, i1:i2]
        d1 = torch.diag(Hinv1)
        if m == 0:
            r = W1 ** 2 / d1.reshape(1, -1) ** 2
            mask1 = lowest_mask(r.flatten(), count(s, r.numel())).reshape(r.shape)
        else:
            mask1 = torch.zeros_like(W1, dtype=torch.bool)
        for i in range(cnt):
            w = W1[:, i]
            if m > 0 and i % m == 0:
                r = W1[:, i:i + m] ** 2 / d1[i:i + m].reshape(1, -1) ** 2
                mask1[:, i:i + m] = lowest_mask(r, n)
            q = w.clone()
            q[mask1[:, i]] = 0
            Q1[:, i] = q
            err = (w - q) / Hinv1[i, i]
            W1[:, i:] -= err.unsqueeze(1) @ Hinv1[i, i:].unsqueeze(0)
            Err1[:, i] = err
        W[:, i1:i2] = Q1
        W[:, i2:] -= Err1 @ Hinv[i1:i2, i2:]
    save(d, "W_sparsegpt.f32", W)


def owl(d):
    """OWL: outlier ratio of each block from Wanda scores, then the per-block sparsity."""
    meta = json.load(open(f"{d}/meta.json"))
    Wall = np.fromfile(f"{d}/W.f32", dtype="<f4")
    Nall = np.fromfile(f"{d}/norms.f32", dtype="<f4")
    ratios, params = [], []
    for block in meta["blocks"]:
        scores = []
        for l in block:
            W = torch.from_numpy(Wall[l["w"]: l["w"] + l["rows"] * l["cols"]].reshape(l["rows"], l["cols"]).copy())
            nrm = torch.from_numpy(Nall[l["x"]: l["x"] + l["cols"]].copy())
            scores.append((W.abs() * nrm.reshape(1, -1)).flatten())
        S = torch.cat(scores)
        thr = (S.double().mean() * meta["M"]).float()
        ratios.append(float((S > thr).double().mean()))
        params.append(S.numel())
    D = np.array(ratios)
    lam, s = meta["lambda"], meta["sparsity"]
    if D.max() > D.min():
        Dn = (D - D.min()) / (D.max() - D.min()) * 2 * lam
        p = np.array(params, dtype=np.float64)
        # density = Dn - mean + (1 - s)  (OWL), mean weighted by the blocks' parameter counts
        sp = np.clip(s - (Dn - (Dn * p).sum() / p.sum()), 0, 1)
    else:
        sp = np.full(len(D), s)
    json.dump({"ratio": ratios, "sparsity": sp.tolist()}, open(f"{d}/owl.json", "w"))


if __name__ == "__main__":
    {"wanda": wanda, "sparsegpt": sparsegpt, "owl": owl}[sys.argv[1]](sys.argv[2])
