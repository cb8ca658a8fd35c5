"""The PyTorch side's TinyLlama-shaped random model (hidden 2048, 32 heads, 4 KV heads, FFN 5632,
vocab 32000, `layers` blocks), float32, in the format tools/reference/llama_ref.py takes."""
import torch

C, V, F, HQ, HKV, HD = 2048, 32000, 5632, 32, 4, 64


def make_model(layers, seed=0):
    cfg = {"dim": C, "vocab_size": V, "head_dim": HD, "norm_eps": 1e-5, "rope_theta": 10000.0,
           "tied_embeddings": False, "attn_bias": False,
           "blocks": [{"n_heads": HQ, "n_kv_heads": HKV, "ffn_dim": F}] * layers}
    g = torch.Generator().manual_seed(seed)

    def rnd(*shape):
        return torch.randn(*shape, generator=g) * 0.02

    w = {"model.embed_tokens.weight": rnd(V, C), "model.norm.weight": torch.ones(C), "lm_head.weight": rnd(V, C)}
    for l in range(layers):
        p = f"model.layers.{l}."
        w[p + "input_layernorm.weight"] = torch.ones(C)
        w[p + "post_attention_layernorm.weight"] = torch.ones(C)
        w[p + "self_attn.q_proj.weight"] = rnd(HQ * HD, C)
        w[p + "self_attn.k_proj.weight"] = rnd(HKV * HD, C)
        w[p + "self_attn.v_proj.weight"] = rnd(HKV * HD, C)
        w[p + "self_attn.o_proj.weight"] = rnd(C, HQ * HD)
        w[p + "mlp.gate_proj.weight"] = rnd(F, C)
        w[p + "mlp.up_proj.weight"] = rnd(F, C)
        w[p + "mlp.down_proj.weight"] = rnd(C, F)
    return cfg, w
