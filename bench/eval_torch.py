"""PyTorch counterpart of `secateur eval --ppl` (papers protocol) for bench/eval_ppl.sh.

Reads the same HF model directory (config.json + model.safetensors, float32, parsed with numpy)
and the same token stream (`secateur tokenize --ids` output), runs llama_ref.forward in float32
under no_grad over the same non-overlapping windows, `batch` windows per forward pass, and scores
every prediction (log_softmax + gather). Prints PPL and tokens/s (timing covers the forward passes
and the scoring, as secateur's does).
usage: eval_torch.py MODEL_DIR IDS.txt SEQLEN MAX_WINDOWS BATCH
"""
import json
import math
import os
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tools", "reference"))
import llama_ref  # noqa: E402


def load_safetensors(path):
    with open(path, "rb") as f:
        n = int.from_bytes(f.read(8), "little")
        header = json.loads(f.read(n))
        base = 8 + n
    data = np.memmap(path, dtype=np.uint8, mode="r")
    out = {}
    for name, t in header.items():
        if name == "__metadata__":
            continue
        assert t["dtype"] == "F32", f"{name}: {t['dtype']} (the benchmark writes f32)"
        a, b = t["data_offsets"]
        out[name] = torch.from_numpy(np.frombuffer(data[base + a: base + b], dtype="<f4").reshape(t["shape"]).copy())
    return out


def main():
    model_dir, ids_path, seqlen, max_windows, batch = sys.argv[1], sys.argv[2], *map(int, sys.argv[3:6])
    torch.set_num_threads(os.cpu_count())
    llama_ref.DTYPE = torch.float32
    hf = json.load(open(f"{model_dir}/config.json"))
    C, H = hf["hidden_size"], hf["num_attention_heads"]
    cfg = {"dim": C, "vocab_size": hf["vocab_size"], "head_dim": C // H, "norm_eps": hf["rms_norm_eps"],
           "rope_theta": hf.get("rope_theta", 10000.0), "tied_embeddings": hf.get("tie_word_embeddings", False),
           "attn_bias": hf.get("attention_bias", False),
           "blocks": [{"n_heads": H, "n_kv_heads": hf["num_key_value_heads"], "ffn_dim": hf["intermediate_size"]}]
           * hf["num_hidden_layers"]}
    w = load_safetensors(f"{model_dir}/model.safetensors")
    stream = torch.tensor(json.loads(open(ids_path).read()), dtype=torch.long)
    n_win = len(stream) // seqlen
    if max_windows >= 0:
        n_win = min(n_win, max_windows)
    windows = stream[: n_win * seqlen].view(n_win, seqlen)
    nll_sum, count = 0.0, 0
    with torch.no_grad():
        llama_ref.forward(cfg, w, windows[:1, :16])  # warm-up
        t0 = time.perf_counter()
        for i in range(0, n_win, batch):
            x = windows[i: i + batch]
            lp = torch.log_softmax(llama_ref.forward(cfg, w, x)[:, :-1], dim=-1)
            nll = -lp.gather(2, x[:, 1:, None])[..., 0]
            nll_sum += nll.double().sum().item()
            count += nll.numel()
        seconds = time.perf_counter() - t0
    print(f"pytorch   eval --ppl: {n_win} windows x {seqlen}, batch {batch}, threads {torch.get_num_threads()}: "
          f"PPL {math.exp(nll_sum / count):.4f}, {seconds:.2f} s, {n_win * seqlen / seconds:.1f} tokens/s")


if __name__ == "__main__":
    main()
