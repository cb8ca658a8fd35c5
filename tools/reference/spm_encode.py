#!/usr/bin/env python3
"""Oracle for the tokenizer tests: encodes lines with python3-sentencepiece.

usage: spm_encode.py TOKENIZER LINES.txt OUT.txt
TOKENIZER is a SentencePiece tokenizer.model, or a SentencePiece-style (byte_fallback BPE)
tokenizer.json, turned into a SentencePiece BPE model whose piece scores are -rank of the first
merge creating the piece (pieces no merge creates rank below all). LINES.txt holds the lines
separated by '\n' (UTF-8); OUT.txt gets, per input line, its ids (no BOS) separated by spaces.
"""
import json
import struct
import sys

import sentencepiece as spm


def varint(n):
    n &= (1 << 64) - 1
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def field(num, wire, payload):
    key = varint(num << 3 | wire)
    if wire == 0:
        return key + varint(payload)
    if wire == 5:
        return key + struct.pack("<f", payload)
    return key + varint(len(payload)) + payload


def model_from_json(path):
    d = json.load(open(path, encoding="utf-8"))
    vocab = d["model"]["vocab"]
    merges = [m if isinstance(m, str) else " ".join(m) for m in d["model"]["merges"]]
    pieces = {i: p for p, i in vocab.items()}
    special = {}
    for a in d.get("added_tokens", []):
        pieces[a["id"]] = a["content"]
        special[a["id"]] = a.get("special", False)
    first = {}
    for rank, m in enumerate(merges):
        first.setdefault(m.replace(" ", "", 1), rank)
    unk = d["model"].get("unk_token")
    proto = b""
    for i in range(len(pieces)):
        p = pieces[i]
        score = -first[p] if p in first else -(len(merges) + i)
        t = 1
        if p == unk:
            t = 2
        elif special.get(i):
            t = 3
        elif i in special:
            t = 4
        elif len(p) == 6 and p.startswith("<0x") and p.endswith(">"):
            t = 6
        proto += field(1, 2, field(1, 2, p.encode("utf-8")) + field(2, 5, float(score)) + field(3, 0, t))
    trainer = field(3, 0, 2) + field(35, 0, 1) + field(40, 0, 0) + field(41, 0, 1) + field(42, 0, 2)
    normalizer = field(1, 2, b"identity") + field(3, 0, 1) + field(4, 0, 0)
    return proto + field(2, 2, trainer) + field(3, 2, normalizer)


def main():
    tokenizer, lines_path, out_path = sys.argv[1:4]
    if tokenizer.endswith(".json"):
        sp = spm.SentencePieceProcessor(model_proto=model_from_json(tokenizer))
    else:
        sp = spm.SentencePieceProcessor(model_file=tokenizer)
    with open(lines_path, "rb") as f:
        lines = f.read().decode("utf-8").split("\n")
    with open(out_path, "w") as out:
        for line in lines:
            out.write(" ".join(str(i) for i in sp.encode(line)) + "\n")


if __name__ == "__main__":
    main()
