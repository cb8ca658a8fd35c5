"""PyTorch reference of SliceGPT's official procedure (microsoft/TransformerCompression,
slicegpt/rotate.py rotate_and_slice and layernorm_fusion.py fuse_modules), in float64, for the
tests of src/prune/slicegpt.* — written from the official code's steps, not from secateur's C++.

Usage:
  slicegpt_ref.py slice DIR WINDOWS.i32 N T SPARSITY SLICE_HEAD CENTER OUT_DIR [EVAL.i32 SEQLEN OUT.json]
      Slices the model dumped in DIR (llama_ref format) with N calibration windows of T tokens and
      writes the sliced model to OUT_DIR in the same format (shortcut matrices as
      model.layers.N.attn_shortcut.weight / mlp_shortcut.weight in [out, in] layout). SLICE_HEAD 0|1.
      CENTER 1 reproduces the official fusion's subtraction of each embedding row's mean (which
      preserves the function only for LayerNorm models); 0 leaves it out. With EVAL.i32, also the
      papers-protocol perplexity of the sliced model over SEQLEN windows of that stream (OUT.json).
      --final-identity (anywhere): with the head unsliced, the last block's output keeps the
      original basis (what secateur does: the official full rotation there is undone by the head).

The steps: untie the head; (CENTER) embedding rows minus their mean; fold every RMSNorm's weight
into the linears after it (norms become ones, dividing by the original hidden size); Q_0 = PCA of
the embeddings' outputs; per block: rotate + slice the attention inputs (the attention shortcut
starts as Q_prev^T), PCA of the signal between attention and MLP -> rotate + slice o_proj, the MLP
inputs and the shortcuts, run the block for its outputs, PCA -> rotate + slice down_proj and the
MLP shortcut (the last block's output unsliced unless SLICE_HEAD), the next inputs = outputs . Q;
then the head. PCA: eigenvectors of sum x^T x (float64) + 0.01 * mean(diag) I, descending.
"""
import json
import math
import sys

import numpy as np
import torch

import llama_ref

DT = torch.float64


def pca(xs, C):
    H = torch.zeros(C, C, dtype=DT)
    for x in xs:
        x = x.reshape(-1, C).to(DT)
        H += x.T @ x
    damp = 0.01 * torch.mean(torch.diag(H))
    H += damp * torch.eye(C, dtype=DT)
    vals, vecs = torch.linalg.eigh(H)
    order = torch.argsort(vals, descending=True)
    return vecs[:, order]


def write_model(cfg, w, d):
    import os
    os.makedirs(d, exist_ok=True)
    tensors, offset, parts = [], 0, []
    for name, t in w.items():
        a = t.to(torch.float32).numpy().astype("<f4").reshape(-1)
        tensors.append({"name": name, "shape": list(t.shape), "offset": offset})
        parts.append(a)
        offset += a.size
    np.concatenate(parts).tofile(f"{d}/weights.f32")
    with open(f"{d}/manifest.json", "w") as f:
        json.dump({"config": cfg, "tensors": tensors}, f)


def ppl(cfg, w, stream, seqlen):
    n = len(stream) // seqlen
    nll = 0.0
    with torch.no_grad():
        for i in range(n):
            x = torch.tensor(stream[i * seqlen:(i + 1) * seqlen], dtype=torch.int64)[None]
            logp = torch.log_softmax(llama_ref.forward(cfg, w, x)[0], dim=-1)
            nll -= logp[:-1].gather(1, x[0, 1:, None]).sum().item()
    return math.exp(nll / (n * (seqlen - 1))), n


def slice_model(cfg, w, windows, sparsity, slice_head, center, dtype=DT, final_identity=False):
    """dtype: of the weights and the forward passes (float64 for the reference; float32 is what the
    official code does with a float32 model). PCA and rotations are float64 either way.
    final_identity: with the head unsliced, keep the last block's output in the original basis
    instead of the official code's full PCA rotation there, which the head undoes (an exact
    invariance). secateur does this; with it, its sliced weights are comparable tensor by tensor."""
    C = cfg["dim"]
    rot = lambda a, b: (a.to(DT) @ b.to(DT)).to(dtype)  # noqa: E731
    D = int((1 - sparsity) * C) // 8 * 8
    L = len(cfg["blocks"])
    w = dict(w)
    # fuse_modules: untie the head, centre the embeddings (CENTER), fold the norms.
    w["lm_head.weight"] = (w["model.embed_tokens.weight"] if cfg["tied_embeddings"] else w["lm_head.weight"]).clone()
    cfg = dict(cfg, tied_embeddings=False, norm_mean_dim=C)
    if center:
        E = w["model.embed_tokens.weight"]
        w["model.embed_tokens.weight"] = E - E.mean(dim=-1, keepdim=True)
    for l in range(L):
        p = f"model.layers.{l}."
        a1, a2 = w[p + "input_layernorm.weight"], w[p + "post_attention_layernorm.weight"]
        for n in ("q_proj", "k_proj", "v_proj"):
            w[p + f"self_attn.{n}.weight"] = w[p + f"self_attn.{n}.weight"] * a1
        for n in ("gate_proj", "up_proj"):
            w[p + f"mlp.{n}.weight"] = w[p + f"mlp.{n}.weight"] * a2
        w[p + "input_layernorm.weight"] = torch.ones(C, dtype=dtype)
        w[p + "post_attention_layernorm.weight"] = torch.ones(C, dtype=dtype)
    w["lm_head.weight"] = w["lm_head.weight"] * w["model.norm.weight"]
    w["model.norm.weight"] = torch.ones(C, dtype=dtype)

    cos, sin = llama_ref.rope_tables(cfg, windows.shape[1])
    inps = [w["model.embed_tokens.weight"][windows]]  # (N, T, C)
    Q = pca(inps, C)
    w["model.embed_tokens.weight"] = rot(w["model.embed_tokens.weight"], Q)[:, :D]
    inps = [rot(x, Q)[:, :, :D] for x in inps]
    widths = [D]
    for l in range(L):
        p = f"model.layers.{l}."
        attn_sc = Q.T[:D, :]  # (D_in, C): x @ attn_sc
        for n in ("q_proj", "k_proj", "v_proj"):
            w[p + f"self_attn.{n}.weight"] = rot(w[p + f"self_attn.{n}.weight"], Q)[:, :D]
        w[p + "input_layernorm.weight"] = torch.ones(D, dtype=dtype)
        # The signal between attention and MLP: the block run up to its MLP norm's input.
        lcfg = dict(cfg, blocks=[dict(cfg["blocks"][l], ffn_dim=0)])
        lw = {k.replace(p, "model.layers.0."): v for k, v in w.items() if k.startswith(p)}
        lw["model.layers.0.attn_shortcut.weight"] = attn_sc.T.to(dtype)
        mids = [llama_ref.block(lcfg, lw, 0, x, cos, sin) for x in inps]
        Q = pca(mids, C)
        attn_sc = (attn_sc @ Q)[:, :D]
        w[p + "self_attn.o_proj.weight"] = rot(Q.T, w[p + "self_attn.o_proj.weight"])[:D, :]
        mlp_sc = Q.T[:D, :]
        for n in ("gate_proj", "up_proj"):
            w[p + f"mlp.{n}.weight"] = rot(w[p + f"mlp.{n}.weight"], Q)[:, :D]
        w[p + "post_attention_layernorm.weight"] = torch.ones(D, dtype=dtype)
        w[p + "attn_shortcut.weight"] = attn_sc.T.to(dtype)  # [out = mid, in]
        # The block's outputs with the middle sliced (down_proj and the MLP shortcut not rotated yet).
        lcfg = dict(cfg, blocks=[cfg["blocks"][l]])
        lw = {k.replace(p, "model.layers.0."): v for k, v in w.items() if k.startswith(p)}
        lw["model.layers.0.mlp_shortcut.weight"] = mlp_sc.T.to(dtype)
        outs = [llama_ref.block(lcfg, lw, 0, x, cos, sin) for x in inps]
        dim = C if l == L - 1 and not slice_head else D
        Q = torch.eye(C, dtype=DT) if dim == C and final_identity else pca(outs, C)
        mlp_sc = (mlp_sc @ Q)[:, :dim]
        w[p + "mlp.down_proj.weight"] = rot(Q.T, w[p + "mlp.down_proj.weight"])[:dim, :]
        w[p + "mlp_shortcut.weight"] = mlp_sc.T.to(dtype)
        inps = [rot(x, Q)[:, :, :dim] for x in outs]
        widths += [D, dim]
    w["lm_head.weight"] = rot(w["lm_head.weight"], Q)[:, :widths[-1]]
    w["model.norm.weight"] = torch.ones(widths[-1], dtype=dtype)
    cfg["resid_dims"] = widths
    # The writer's tensor order (for the manifest): embedding, blocks, final norm, head.
    ordered = {"model.embed_tokens.weight": w["model.embed_tokens.weight"]}
    for l in range(L):
        p = f"model.layers.{l}."
        for k in sorted(k for k in w if k.startswith(p)):
            ordered[k] = w[k]
    ordered["model.norm.weight"] = w["model.norm.weight"]
    ordered["lm_head.weight"] = w["lm_head.weight"]
    return cfg, ordered


def main(argv):
    final_identity = "--final-identity" in argv
    argv = [a for a in argv if a != "--final-identity"]
    if argv and argv[0] == "slice" and len(argv) in (9, 12):
        d, win, n, t = argv[1], argv[2], int(argv[3]), int(argv[4])
        sparsity, slice_head, center, out = float(argv[5]), argv[6] == "1", argv[7] == "1", argv[8]
        cfg, w = llama_ref.load_model(d)
        windows = torch.from_numpy(np.fromfile(win, dtype="<i4").astype(np.int64)).view(n, t)
        with torch.no_grad():
            cfg, w = slice_model(cfg, w, windows, sparsity, slice_head, center, final_identity=final_identity)
        write_model(cfg, w, out)
        if len(argv) == 12:
            stream = np.fromfile(argv[9], dtype="<i4").tolist()
            value, windows_n = ppl(cfg, w, stream, int(argv[10]))
            with open(argv[11], "w") as f:
                json.dump({"ppl": value, "windows": windows_n, "params": sum(x.numel() for x in w.values())}, f)
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
