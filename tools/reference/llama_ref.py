"""PyTorch reference of secateur's Llama forward pass (the test oracle).

Independent of secateur's C++ code: weights come from a plain dump written by the tests
(tests/testing/reference_io.cpp): DIR/manifest.json lists the config and each tensor's canonical
(Hugging Face) name, shape and offset into DIR/weights.f32 (little-endian float32). q/k rows are in
HF rotate-half layout. Computation is float64 so that the reference is closer to exact than the
float32 code under test.

Usage as a script:
  llama_ref.py logits DIR TOKENS.i32 B T OUT.f32     logits (B, T, V) as float32
Other reference scripts import load_model() and forward().
"""
import json
import math
import sys

import numpy as np
import torch

DTYPE = torch.float64


def load_model(d):
    with open(f"{d}/manifest.json") as f:
        man = json.load(f)
    raw = np.fromfile(f"{d}/weights.f32", dtype="<f4")
    w = {}
    for t in man["tensors"]:
        n = int(np.prod(t["shape"]))
        w[t["name"]] = torch.from_numpy(raw[t["offset"]: t["offset"] + n].reshape(t["shape"]).copy()).to(DTYPE)
    return man["config"], w


def rope_inv_freq(cfg):
    hd = cfg["head_dim"]
    inv = 1.0 / (cfg["rope_theta"] ** (torch.arange(0, hd, 2, dtype=DTYPE) / hd))
    rs = cfg.get("rope_scaling") or {}
    if rs.get("type") == "linear":
        inv = inv / rs["factor"]
    elif rs.get("type") == "llama3":
        factor, lo, hi, old = rs["factor"], rs["low_freq_factor"], rs["high_freq_factor"], rs["original_max_position"]
        wavelen = 2 * math.pi / inv
        smooth = (old / wavelen - lo) / (hi - lo)
        smoothed = (1 - smooth) * inv / factor + smooth * inv
        inv = torch.where(wavelen > old / lo, inv / factor, torch.where(wavelen < old / hi, inv, smoothed))
    # secateur stores inv_freq as float32; round the same way so both sides rotate by equal angles
    return inv.to(torch.float32).to(DTYPE)


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat((-x[..., h:], x[..., :h]), dim=-1)


def rms_norm(x, w, eps, mean_dim=None):
    """mean_dim: divide the sum of squares by this width instead of x's own (a sliced model)."""
    d = mean_dim or x.shape[-1]
    return x * torch.rsqrt(x.pow(2).sum(-1, keepdim=True) / d + eps) * w


def block(cfg, w, l, x, cos, sin, taps=None):
    """One Llama block on x (B, T, C). taps (dict) receives the block's observation points.
    A rotated / sliced block (SliceGPT) carries shortcut matrices on its residual connections
    (model.layers.N.attn_shortcut.weight (Cmid, Cin), mlp_shortcut.weight (Cout, Cmid)) and its
    norms divide by cfg["norm_mean_dim"] when that is set."""
    B, T, C = x.shape
    hd, eps = cfg["head_dim"], cfg["norm_eps"]
    mean_dim = cfg.get("norm_mean_dim") or None
    dims = cfg["blocks"][l]
    Hq, Hkv, F = dims["n_heads"], dims["n_kv_heads"], dims["ffn_dim"]
    p = f"model.layers.{l}."
    attn_sc, mlp_sc = w.get(p + "attn_shortcut.weight"), w.get(p + "mlp_shortcut.weight")
    residual = x if attn_sc is None else x @ attn_sc.T
    if Hq > 0:
        n1 = rms_norm(x, w[p + "input_layernorm.weight"], eps, mean_dim)
        q = n1 @ w[p + "self_attn.q_proj.weight"].T
        k = n1 @ w[p + "self_attn.k_proj.weight"].T
        v = n1 @ w[p + "self_attn.v_proj.weight"].T
        if cfg["attn_bias"]:
            q = q + w[p + "self_attn.q_proj.bias"]
            k = k + w[p + "self_attn.k_proj.bias"]
            v = v + w[p + "self_attn.v_proj.bias"]
        q = q.view(B, T, Hq, hd).transpose(1, 2)
        k = k.view(B, T, Hkv, hd).transpose(1, 2)
        v = v.view(B, T, Hkv, hd).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        k = k.repeat_interleave(Hq // Hkv, dim=1)
        v = v.repeat_interleave(Hq // Hkv, dim=1)
        scores = q @ k.transpose(-1, -2) / math.sqrt(hd)
        mask = torch.triu(torch.ones(T, T, dtype=torch.bool), diagonal=1)
        scores = scores.masked_fill(mask, float("-inf"))
        heads = (torch.softmax(scores, dim=-1) @ v).transpose(1, 2).reshape(B, T, Hq * hd)
        if taps is not None:
            taps["attn_heads"] = heads
        residual = residual + heads @ w[p + "self_attn.o_proj.weight"].T
    x = residual
    residual = x if mlp_sc is None else x @ mlp_sc.T
    if F > 0:
        n2 = rms_norm(x, w[p + "post_attention_layernorm.weight"], eps, mean_dim)
        g = n2 @ w[p + "mlp.gate_proj.weight"].T
        u = n2 @ w[p + "mlp.up_proj.weight"].T
        hidden = torch.nn.functional.silu(g) * u
        if taps is not None:
            taps["mlp_hidden"] = hidden
        residual = residual + hidden @ w[p + "mlp.down_proj.weight"].T
    return residual


def rope_tables(cfg, T):
    inv = rope_inv_freq(cfg)
    ang = torch.arange(T, dtype=DTYPE)[:, None] * inv[None, :]
    ang = torch.cat((ang, ang), dim=-1)
    return torch.cos(ang), torch.sin(ang)


def forward(cfg, w, tokens):
    """tokens (B, T) int64 -> logits (B, T, V) float64."""
    B, T = tokens.shape
    cos, sin = rope_tables(cfg, T)
    x = w["model.embed_tokens.weight"][tokens]
    for l in range(len(cfg["blocks"])):
        x = block(cfg, w, l, x, cos, sin)
    x = rms_norm(x, w["model.norm.weight"], cfg["norm_eps"], cfg.get("norm_mean_dim") or None)
    head = w["model.embed_tokens.weight"] if cfg["tied_embeddings"] else w["lm_head.weight"]
    return x @ head.T


def main(argv):
    if len(argv) >= 1 and argv[0] == "logits":
        d, tok_path, B, T, out = argv[1], argv[2], int(argv[3]), int(argv[4]), argv[5]
        cfg, w = load_model(d)
        tokens = torch.from_numpy(np.fromfile(tok_path, dtype="<i4").astype(np.int64)).view(B, T)
        with torch.no_grad():
            logits = forward(cfg, w, tokens)
        logits.to(torch.float32).numpy().astype("<f4").tofile(out)
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
