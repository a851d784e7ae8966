#!/usr/bin/env python3
"""PyTorch-only reference fixture for orchmind's Qwen3 support.

Like make_tiny_llama_torch.py (whose helpers it uses), for machines with
PyTorch but without transformers: it draws a small random Qwen3, writes it in
the Hugging Face folder layout (config.json with model_type "qwen3" + BF16
model.safetensors) and computes logits with a line-by-line PyTorch
transcription of transformers' modeling_qwen3 forward in float32:

  Qwen3RMSNorm       weight * x * rsqrt(mean(x^2) + eps)   (as Llama's)
  attention          q = q_norm(q_proj(x) per head), k = k_norm(k_proj(x) per
                     head), each head normalised over its head_dim values
                     with its own weights, BEFORE rotate-half RoPE; then
                     softmax(q k^T / sqrt(head_dim) + causal mask) v,
                     repeat_kv, o_proj from Heads·head_dim back to the width
  heads              head_dim 32 with 4 heads in a width of 64: q and the
                     attention output are twice the model's width (Qwen3's
                     shape: 16 heads of 128 in a width of 1024)
  MLP                down(silu(gate(x)) * up(x)); tied embeddings, no biases

The Go test TestLoadHFTransformersFixture loads the folder with model.LoadHF
and compares its logits to 1e-4 of the largest logit.

Usage: python3 testdata/hf/make_tiny_qwen3_torch.py [--out DIR]
Writes tiny-qwen3-torch/ next to this script. Needs only torch (1.13 or later).
"""
import argparse
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_tiny_llama_torch as llama  # noqa: E402

SEED = 20261203
V, D, F, L, H, KV = llama.V, llama.D, llama.F, llama.L, llama.H, llama.KV
HD = 32
EPS, THETA = 1e-6, 1000000.0
TOKENS = llama.TOKENS


def shapes():
    s = llama.shapes()
    del s["lm_head.weight"]
    for i in range(L):
        p = f"model.layers.{i}.self_attn."
        s[p + "q_proj.weight"] = (H * HD, D)
        s[p + "k_proj.weight"] = (KV * HD, D)
        s[p + "v_proj.weight"] = (KV * HD, D)
        s[p + "o_proj.weight"] = (D, H * HD)
        s[p + "q_norm.weight"] = (HD,)
        s[p + "k_norm.weight"] = (HD,)
    return s


def build():
    gen = torch.Generator().manual_seed(SEED)
    w = {}
    for name, shape in sorted(shapes().items()):
        noise = torch.randn(shape, generator=gen, dtype=torch.float32)
        if "norm" in name:
            w[name] = 1 + 0.3 * noise
        elif "embed_tokens" in name:
            w[name] = noise
        elif "q_proj" in name or "k_proj" in name:
            w[name] = 0.3 * noise
        else:
            w[name] = 0.2 * noise
    return w


def rms_norm(x, weight):
    return weight * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + EPS))


def forward(w, tokens):
    T = len(tokens)
    emb_w = w["model.embed_tokens.weight"]
    x = emb_w[torch.tensor(tokens)]
    inv_freq = 1.0 / (THETA ** (torch.arange(0, HD, 2, dtype=torch.int64).float() / HD))
    freqs = torch.outer(torch.arange(T, dtype=torch.float32), inv_freq)
    emb = torch.cat((freqs, freqs), dim=-1)
    cos, sin = emb.cos(), emb.sin()
    mask = torch.full((T, T), float("-inf")).triu(1)
    for i in range(L):
        p = f"model.layers.{i}."
        h = rms_norm(x, w[p + "input_layernorm.weight"])
        q = (h @ w[p + "self_attn.q_proj.weight"].T).view(T, H, HD)
        k = (h @ w[p + "self_attn.k_proj.weight"].T).view(T, KV, HD)
        v = (h @ w[p + "self_attn.v_proj.weight"].T).view(T, KV, HD).transpose(0, 1)
        q = rms_norm(q, w[p + "self_attn.q_norm.weight"]).transpose(0, 1)
        k = rms_norm(k, w[p + "self_attn.k_norm.weight"]).transpose(0, 1)
        q = q * cos + llama.rotate_half(q) * sin
        k = k * cos + llama.rotate_half(k) * sin
        k = k.repeat_interleave(H // KV, dim=0)
        v = v.repeat_interleave(H // KV, dim=0)
        att = torch.softmax(q @ k.transpose(1, 2) / (HD ** 0.5) + mask, dim=-1)
        o = (att @ v).transpose(0, 1).reshape(T, H * HD)
        x = x + o @ w[p + "self_attn.o_proj.weight"].T
        h = rms_norm(x, w[p + "post_attention_layernorm.weight"])
        g = torch.nn.functional.silu(h @ w[p + "mlp.gate_proj.weight"].T)
        u = h @ w[p + "mlp.up_proj.weight"].T
        x = x + (g * u) @ w[p + "mlp.down_proj.weight"].T
    x = rms_norm(x, w["model.norm.weight"])
    return x @ emb_w.T


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=os.path.dirname(os.path.abspath(__file__)))
    args = ap.parse_args()
    torch.set_num_threads(1)
    out = os.path.join(args.out, "tiny-qwen3-torch")
    w = build()
    rounded = {k: v.to(torch.bfloat16).float() for k, v in w.items()}
    with torch.no_grad():
        want = forward(rounded, TOKENS)
    cfg = {
        "architectures": ["Qwen3ForCausalLM"], "model_type": "qwen3",
        "vocab_size": V, "hidden_size": D, "intermediate_size": F, "head_dim": HD,
        "num_hidden_layers": L, "num_attention_heads": H, "num_key_value_heads": KV,
        "max_position_embeddings": 128, "rms_norm_eps": EPS, "rope_theta": THETA,
        "hidden_act": "silu", "tie_word_embeddings": True, "attention_bias": False,
        "use_sliding_window": False, "sliding_window": None, "max_window_layers": L,
        "bos_token_id": 1, "eos_token_id": 2, "torch_dtype": "bfloat16",
    }
    llama.write_fixture(out, w, cfg, want, SEED,
                        "PyTorch transcription of transformers' Qwen3ForCausalLM forward (no transformers installed)",
                        "testdata/hf/make_tiny_qwen3_torch.py")


if __name__ == "__main__":
    main()
