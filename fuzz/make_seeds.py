#!/usr/bin/env python3
"""Builds the seed corpora of the fuzz harnesses (scripts/fuzz.sh calls this).

usage: make_seeds.py SECATEUR_CLI SHARED_DIR OUT_DIR

Seeds are small real files: tiny models written by secateur itself (llama / qwen2 with per-block
dims / llama3 RoPE scaling; f32, f16, bf16; with SentencePiece and byte-level tokenizers), the
shared stories260K files and tokenizers (cut to their first bytes where they are large), a sparse-stored
GGUF, a tiny
llama2.c checkpoint, a tiny SentencePiece model trained here, the first lines of the task files and
corpora. Everything is written under OUT_DIR/<harness>/; nothing is written into the repository.
Deterministic, so a CI run starts from the same seeds every time.
"""
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile

cli, shared, out = sys.argv[1], sys.argv[2], sys.argv[3]
work = tempfile.mkdtemp(prefix="secateur-seeds-")
env = dict(os.environ, ASAN_OPTIONS="detect_leaks=0", OMP_NUM_THREADS="1")


def run(*args):
    subprocess.run([cli, "-q", *args], check=True, env=env)


def write(harness, name, data):
    d = os.path.join(out, harness)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


def read(path, limit=None):
    with open(path, "rb") as f:
        return f.read() if limit is None else f.read(limit)


def shared_file(rel):
    p = os.path.join(shared, rel)
    return p if os.path.exists(p) else None


# ---- a byte-level (GPT-2 style) tokenizer.json, small ----
def bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    cs, n = bs[:], 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(bs, cs)}


b2u = bytes_to_unicode()
vocab = {b2u[b]: i for i, b in enumerate(sorted(b2u))}
merges = []
for a, b in [("Ġ", "t"), ("h", "e"), ("Ġt", "he"), ("i", "n"), ("Ġ", "a"), ("o", "n"), ("e", "r"), ("Ġ", "s")]:
    if a + b not in vocab:
        vocab[a + b] = len(vocab)
    merges.append(f"{a} {b}")
byte_level = {
    "version": "1.0",
    "added_tokens": [{"id": len(vocab), "content": "<|endoftext|>", "special": True}],
    "normalizer": None,
    "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True},
    "post_processor": None,
    "decoder": {"type": "ByteLevel"},
    "model": {"type": "BPE", "vocab": vocab, "merges": merges, "byte_fallback": False},
}
bl_path = os.path.join(work, "bytelevel.json")
with open(bl_path, "w") as f:
    json.dump(byte_level, f)

# ---- tiny models written by secateur ----
tok512 = shared_file("models/stories260K/tok512.bin")


def config(**kw):
    c = {"model_type": "llama", "hidden_size": 8, "intermediate_size": 12, "num_hidden_layers": 2,
         "num_attention_heads": 2, "num_key_value_heads": 1, "vocab_size": 512, "max_position_embeddings": 64,
         "rms_norm_eps": 1e-5, "tie_word_embeddings": False}
    c.update(kw)
    return c


models = {
    "llama": (config(), "f32", tok512),
    "qwen2_blocks": (config(model_type="qwen2", vocab_size=360, tie_word_embeddings=True,
                            secateur_layers=[{"num_attention_heads": 2, "num_key_value_heads": 1, "intermediate_size": 12},
                                             {"num_attention_heads": 1, "num_key_value_heads": 1, "intermediate_size": 4}]),
                     "f16", bl_path),
    "llama3": (config(num_hidden_layers=1, head_dim=4, rope_theta=500000.0,
                      rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                                    "high_freq_factor": 4.0, "original_max_position_embeddings": 32}),
               "bf16", None),
}
for name, (cfg, dtype, tok) in models.items():
    cfg_path = os.path.join(work, name + ".json")
    with open(cfg_path, "w") as f:
        json.dump(cfg, f)
    write("hf_config", name + ".json", json.dumps(cfg, indent=1))
    init_dir = os.path.join(work, name + "_init")
    run("init", "--config", cfg_path, "-o", init_dir, "--dtype", dtype, "--seed", "1")
    hf, gguf = os.path.join(work, name + "_hf"), os.path.join(work, name + ".gguf")
    extra = ["--tokenizer", tok] if tok else []
    run("convert", init_dir, "-o", gguf, "--dtype", dtype, *extra)
    run("convert", gguf, "-o", hf, "--dtype", dtype)
    write("gguf", name + ".gguf", read(gguf))
    st = read(os.path.join(hf, "model.safetensors"))
    write("safetensors", name + ".safetensors", st)
    hf_cfg = read(os.path.join(hf, "config.json"))
    write("hf_config", name + "_written.json", hf_cfg)
    combined = hf_cfg + b"\n#safetensors#\n" + st
    tok_json = os.path.join(hf, "tokenizer.json")
    if os.path.exists(tok_json):
        write("tokenizer_json", name + ".json", read(tok_json))
        write("hf_model", name + "_tok", combined + b"\n#tokenizer#\n" + read(tok_json))
    write("hf_model", name, combined)

# A sparse GGUF (F32_SPARSE block linears, docs/formats.md): a 1-block llama pruned to 50% (64 wide:
# smaller matrices are smaller stored dense, so they would stay dense).
with open(os.path.join(work, "sparse.json"), "w") as f:
    json.dump(config(hidden_size=64, intermediate_size=128, num_hidden_layers=1, vocab_size=64), f)
run("init", "--config", os.path.join(work, "sparse.json"), "-o", os.path.join(work, "sparse_dense.gguf"), "--seed", "1")
sparse = os.path.join(work, "llama_sparse.gguf")
run("prune", os.path.join(work, "sparse_dense.gguf"), "-o", sparse, "--method", "magnitude", "--sparsity", "0.5",
    "--sparse")
write("gguf", "llama_sparse.gguf", read(sparse))

write("tokenizer_json", "bytelevel.json", read(bl_path))
write("tokenizer_json", "bytelevel_config", read(bl_path) + b"\n#tokenizer_config#\n" +
      json.dumps({"bos_token": {"content": "<|endoftext|>"}, "eos_token": "<|endoftext|>", "add_bos_token": True}).encode())
write("safetensors", "index.json", json.dumps(
    {"metadata": {"total_size": 32}, "weight_map": {"a": "model-00001-of-00001.safetensors",
                                                    "b": "model-00001-of-00001.safetensors"}}))
write("safetensors", "index_truncated_shard.json", json.dumps({"weight_map": {"c": "model-00002-of-00002.safetensors"}}))
for p in sorted(os.listdir(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "configs"))):
    if p.endswith(".json"):
        write("hf_config", "repo_" + p, read(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "configs", p)))

# ---- the shared files (large ones cut: the fuzzers mutate headers, not megabytes of weights) ----
if shared_file("models/stories260K/stories260K.gguf"):
    g = read(shared_file("models/stories260K/stories260K.gguf"))
    write("gguf", "stories260K_head16k.gguf", g[:16384])
if tok512:
    write("tokenizer_bin", "tok512.bin", read(tok512))
if shared_file("models/stories260K/stories260K.bin"):
    write("llama2c", "stories260K_head.bin", read(shared_file("models/stories260K/stories260K.bin"), 4096))
if shared_file("tokenizers/llama2/tokenizer.model"):
    write("tokenizer_model", "llama2_head.model", read(shared_file("tokenizers/llama2/tokenizer.model"), 16384))
if shared_file("tokenizers/llama2/tokenizer.json"):
    write("tokenizer_json", "llama2_head.json", read(shared_file("tokenizers/llama2/tokenizer.json"), 16384))

# ---- a tiny llama2.c checkpoint (tied and untied) ----
def llama2c(dim=8, hidden=12, layers=2, heads=2, kv=1, vocab=16, seq=4, tied=True):
    hd = dim // heads
    n = (vocab * dim + layers * dim + layers * dim * dim + 2 * layers * kv * hd * dim + layers * dim * dim +
         layers * dim + 3 * layers * hidden * dim + dim + seq * hd + (0 if tied else vocab * dim))
    header = struct.pack("<7i", dim, hidden, layers, heads, kv, vocab if tied else -vocab, seq)
    return header + struct.pack(f"<{n}f", *[((i * 37) % 19 - 9) / 16.0 for i in range(n)])


write("llama2c", "tiny_tied.bin", llama2c())
write("llama2c", "tiny_untied.bin", llama2c(tied=False, layers=1, heads=1, kv=1))

# ---- a tiny SentencePiece BPE model ----
calib = shared_file("data/tinystories/calib.txt")
try:
    import sentencepiece as spm
    if calib:
        text = os.path.join(work, "spm.txt")
        with open(text, "wb") as f:
            f.write(read(calib, 100000))
        prefix = os.path.join(work, "spm")
        spm.SentencePieceTrainer.train(input=text, model_prefix=prefix, model_type="bpe", vocab_size=360,
                                       byte_fallback=True, normalization_rule_name="identity",
                                       remove_extra_whitespaces=False, minloglevel=2)
        write("tokenizer_model", "tiny_bpe.model", read(prefix + ".model"))
except ImportError:
    print("make_seeds: python3-sentencepiece missing; no trained .model seed", file=sys.stderr)

# ---- task files and corpora: their first lines ----
tasks = ["piqa", "arc_easy", "arc_challenge", "hellaswag", "winogrande", "openbookqa", "siqa"]  # zeroshot order
for i, t in enumerate(tasks):
    p = shared_file(f"data/tasks/{t}.jsonl")
    if p:
        with open(p, "rb") as f:
            lines = b"".join(f.readline() for _ in range(3))
        write("tasks", t, bytes([i]) + lines)
for name, rel, lines in [("tinystories", "data/tinystories/calib.txt", 0), ("c4", "data/c4/c4_validation_2k.jsonl", 3)]:
    p = shared_file(rel)
    if not p:
        continue
    with open(p, "rb") as f:
        data = b"".join(f.readline() for _ in range(lines)) if lines else f.read(2048)
    write("corpus", name, bytes([1 if lines else 0]) + data)
for rel in sorted(os.listdir(os.path.join(shared, "data/wikitext2")) if shared_file("data/wikitext2") else []):
    write("corpus", "wikitext2_" + rel, b"\x00" + read(os.path.join(shared, "data/wikitext2", rel), 2048))
write("corpus", "jsonl_fields", b"\x03" + b'{"text": "a"}\n\n{"text": "b\\u00e9", "x": [1, {"y": null}]}\n')

shutil.rmtree(work)
