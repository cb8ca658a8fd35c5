"""PyTorch counterpart of bench/prune_block.cpp: prune one LLaMA-7B-shaped block with Wanda and SparseGPT
the way their reference implementations do (forward hooks on every linear collecting the inputs'
statistics -- Wanda's scaler_row, SparseGPT's H = 2/n X^T X via a matmul -- over a forward of every
sample, then per-linear pruning, then a forward of the pruned block for the next block's inputs).
Samples run one at a time (batch 1), as in those repositories. f32, all cores. Random weights N(0, 0.02)
and random block inputs N(0, 1), like the C++ side. Prints one JSON line per method.
"""
import json
import math
import os
import sys
import time

import torch

torch.set_num_threads(os.cpu_count())
args = dict(zip(sys.argv[1::2], sys.argv[2::2]))
NS, T = int(args.get("--nsamples", 16)), int(args.get("--seqlen", 1024))
C, F, H = int(args.get("--dim", 4096)), int(args.get("--ffn", 11008)), int(args.get("--heads", 32))
METHODS = args.get("--methods", "wanda,sparsegpt")
HD = C // H
EPS = 1e-6


def rms(x, w):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + EPS) * w


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat((-x[..., h:], x[..., :h]), dim=-1)


class Block(torch.nn.Module):
    def __init__(self):
        super().__init__()
        lin = lambda o, i: torch.nn.Linear(i, o, bias=False)
        self.q_proj, self.k_proj, self.v_proj, self.o_proj = lin(C, C), lin(C, C), lin(C, C), lin(C, C)
        self.gate_proj, self.up_proj, self.down_proj = lin(F, C), lin(F, C), lin(C, F)
        for m in self.modules():
            if isinstance(m, torch.nn.Linear):
                torch.nn.init.normal_(m.weight, 0, 0.02)
        self.n1 = torch.ones(C)
        self.n2 = torch.ones(C)
        inv = 1.0 / (10000 ** (torch.arange(0, HD, 2).float() / HD))
        ang = torch.outer(torch.arange(T).float(), inv)
        emb = torch.cat((ang, ang), -1)
        self.cos, self.sin = emb.cos(), emb.sin()
        self.mask = torch.full((T, T), float("-inf")).triu(1)

    def forward(self, x):  # (1, T, C)
        B = x.shape[0]
        n = rms(x, self.n1)
        q = self.q_proj(n).view(B, T, H, HD).transpose(1, 2)
        k = self.k_proj(n).view(B, T, H, HD).transpose(1, 2)
        v = self.v_proj(n).view(B, T, H, HD).transpose(1, 2)
        q = q * self.cos + rotate_half(q) * self.sin
        k = k * self.cos + rotate_half(k) * self.sin
        att = torch.softmax(q @ k.transpose(2, 3) / math.sqrt(HD) + self.mask, dim=-1)
        o = (att @ v).transpose(1, 2).reshape(B, T, C)
        h = x + self.o_proj(o)
        n = rms(h, self.n2)
        return h + self.down_proj(torch.nn.functional.silu(self.gate_proj(n)) * self.up_proj(n))


class WandaStats:  # Wanda's WrappedGPT.add_batch: running mean of ||x_j||^2 per sample
    def __init__(self, layer):
        self.scaler_row = torch.zeros(layer.weight.shape[1])
        self.n = 0

    def add(self, inp):
        inp = inp.reshape(-1, inp.shape[-1]).t().float()
        self.scaler_row *= self.n / (self.n + 1)
        self.n += 1
        self.scaler_row += torch.norm(inp, p=2, dim=1) ** 2 / self.n


class SparseGptStats:  # SparseGPT.add_batch: H = 2/n sum X^T X
    def __init__(self, layer):
        self.H = torch.zeros(layer.weight.shape[1], layer.weight.shape[1])
        self.n = 0

    def add(self, inp):
        inp = inp.reshape(-1, inp.shape[-1]).t().float()
        self.H *= self.n / (self.n + 1)
        self.n += 1
        inp = math.sqrt(2 / self.n) * inp
        self.H += inp.matmul(inp.t())


def wanda_prune(layer, st, s=0.5):
    W = layer.weight.data
    metric = W.abs() * torch.sqrt(st.scaler_row.reshape(1, -1))
    idx = torch.sort(metric, dim=-1, stable=True)[1][:, : int(W.shape[1] * s)]
    mask = torch.zeros_like(W, dtype=torch.bool).scatter_(1, idx, True)
    W[mask] = 0


def sparsegpt_prune(layer, st, s=0.5, blocksize=128, percdamp=0.01):
    W = layer.weight.data.clone().float()
    Hm = st.H
    cols = W.shape[1]
    dead = torch.diag(Hm) == 0
    Hm[dead, dead] = 1
    W[:, dead] = 0
    Hm[torch.arange(cols), torch.arange(cols)] += percdamp * torch.mean(torch.diag(Hm))
    Hm = torch.linalg.cholesky(Hm)
    Hm = torch.cholesky_inverse(Hm)
    Hinv = torch.linalg.cholesky(Hm, upper=True)
    for i1 in range(0, cols, blocksize):
        i2 = min(i1 + blocksize, cols)
        W1 = W[:, i1:i2].clone()
        Q1 = torch.zeros_like(W1)
        Err1 = torch.zeros_like(W1)
        Hinv1 = Hinv[i1:i2, i1:i2]
        tmp = W1 ** 2 / (torch.diag(Hinv1).reshape((1, -1))) ** 2
        thresh = torch.sort(tmp.flatten())[0][int(tmp.numel() * s)]
        mask1 = tmp <= thresh
        for i in range(i2 - i1):
            w = W1[:, i]
            d = Hinv1[i, i]
            q = w.clone()
            q[mask1[:, i]] = 0
            Q1[:, i] = q
            err1 = (w - q) / d
            W1[:, i:] -= err1.unsqueeze(1).matmul(Hinv1[i, i:].unsqueeze(0))
            Err1[:, i] = err1
        W[:, i1:i2] = Q1
        W[:, i2:] -= Err1.matmul(Hinv[i1:i2, i2:])
    layer.weight.data = W


def run(method):
    torch.manual_seed(0)
    block = Block()
    g = torch.Generator().manual_seed(1)
    inps = torch.randn(NS, T, C, generator=g)
    outs = torch.zeros_like(inps)
    t0 = time.time()
    with torch.no_grad():
        linears = {n: m for n, m in block.named_modules() if isinstance(m, torch.nn.Linear)}
        Stats = WandaStats if method == "wanda" else SparseGptStats
        stats = {n: Stats(m) for n, m in linears.items()}
        hooks = [m.register_forward_hook(lambda mod, inp, out, n=n: stats[n].add(inp[0].data)) for n, m in linears.items()]
        for j in range(NS):
            outs[j] = block(inps[j].unsqueeze(0))[0]
        for h in hooks:
            h.remove()
        for n, m in linears.items():
            (wanda_prune if method == "wanda" else sparsegpt_prune)(m, stats[n])
            del stats[n]
        for j in range(NS):
            outs[j] = block(inps[j].unsqueeze(0))[0]
    secs = time.time() - t0
    zeros = sum(int((m.weight == 0).sum()) for m in linears.values())
    total = sum(m.weight.numel() for m in linears.values())
    print(json.dumps({"impl": "pytorch", "method": method, "seconds": round(secs, 3), "sparsity": round(zeros / total, 4),
                      "threads": torch.get_num_threads(), "tokens": NS * T}), flush=True)


for meth in ("wanda", "sparsegpt"):
    if meth in METHODS:
        run(meth)
