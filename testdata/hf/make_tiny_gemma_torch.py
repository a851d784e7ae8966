#!/usr/bin/env python3
"""PyTorch-only reference fixture for orchmind's Gemma support.

Like make_tiny_llama_torch.py (whose helpers it uses), for machines with
PyTorch but without transformers: it draws a small random Gemma, writes it
in the Hugging Face folder layout (config.json with model_type "gemma" +
BF16 model.safetensors, tied embeddings, no lm_head) and computes logits
with a line-by-line PyTorch transcription of transformers' modeling_gemma
forward in float32:

  GemmaRMSNorm       x * rsqrt(mean(x^2) + eps) * (1 + weight)   (weights as stored)
  embeddings         inputs_embeds * sqrt(hidden_size)
  rotary embedding   rotate-half, as Llama
  attention          softmax(q k^T * head_dim^-0.5 + causal mask) v, repeat_kv
  GemmaMLP           down(gelu_tanh(gate(x)) * up(x)), gelu_pytorch_tanh
  lm_head            tied: the token embedding (unscaled)

The Go test TestLoadHFTransformersFixture loads the folder with model.LoadHF
and compares its logits to 1e-4 of the largest logit: that proves the +1 of
Gemma's norms, the embedding scale, GeGLU and the tied head.

Usage: python3 testdata/hf/make_tiny_gemma_torch.py [--out DIR]
Writes tiny-gemma-torch/ (heads of width/heads = 16) and
tiny-gemma-wide-torch/ (heads of 32: q and the attention output twice the
model's width, as in Gemma 7B) next to this script. Needs only torch (1.13 or later).
"""
import argparse
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_tiny_llama_torch as llama  # noqa: E402

SEED = 20261202
V, D, F, L, H, KV, HD = llama.V, llama.D, llama.F, llama.L, llama.H, llama.KV, llama.HD
EPS, THETA = 1e-6, 10000.0
TOKENS = llama.TOKENS


def shapes(hd=HD):
    s = llama.shapes()
    del s["lm_head.weight"]  # Gemma ties the classifier to the embedding
    for i in range(L):  # q and the attention output are H·hd wide
        p = f"model.layers.{i}.self_attn."
        s[p + "q_proj.weight"] = (H * hd, D)
        s[p + "k_proj.weight"] = (KV * hd, D)
        s[p + "v_proj.weight"] = (KV * hd, D)
        s[p + "o_proj.weight"] = (D, H * hd)
    return s


def build(hd=HD):
    gen = torch.Generator().manual_seed(SEED + hd)
    w = {}
    for name, shape in sorted(shapes(hd).items()):
        noise = torch.randn(shape, generator=gen, dtype=torch.float32)
        if "norm" in name:
            w[name] = 0.2 * noise  # stored as w; the norm scales by 1 + w
        elif "embed_tokens" in name:
            w[name] = 0.3 * noise  # × √64 = 8 on the way in
        elif "q_proj" in name or "k_proj" in name:
            w[name] = 0.3 * noise
        else:
            w[name] = 0.2 * noise
    return w


def rms_norm(x, weight):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + EPS) * (1.0 + weight)


def forward(w, tokens, HD=HD):
    T = len(tokens)
    emb_w = w["model.embed_tokens.weight"]
    x = emb_w[torch.tensor(tokens)] * torch.tensor(D ** 0.5, dtype=torch.float32)
    inv_freq = 1.0 / (THETA ** (torch.arange(0, HD, 2, dtype=torch.int64).float() / HD))
    freqs = torch.outer(torch.arange(T, dtype=torch.float32), inv_freq)
    emb = torch.cat((freqs, freqs), dim=-1)
    cos, sin = emb.cos(), emb.sin()
    mask = torch.full((T, T), float("-inf")).triu(1)
    for i in range(L):
        p = f"model.layers.{i}."
        h = rms_norm(x, w[p + "input_layernorm.weight"])
        q = (h @ w[p + "self_attn.q_proj.weight"].T).view(T, H, HD).transpose(0, 1)
        k = (h @ w[p + "self_attn.k_proj.weight"].T).view(T, KV, HD).transpose(0, 1)
        v = (h @ w[p + "self_attn.v_proj.weight"].T).view(T, KV, HD).transpose(0, 1)
        q = q * cos + llama.rotate_half(q) * sin
        k = k * cos + llama.rotate_half(k) * sin
        k = k.repeat_interleave(H // KV, dim=0)
        v = v.repeat_interleave(H // KV, dim=0)
        att = torch.softmax(q @ k.transpose(1, 2) * HD ** -0.5 + mask, dim=-1)
        o = (att @ v).transpose(0, 1).reshape(T, H * HD)
        x = x + o @ w[p + "self_attn.o_proj.weight"].T
        h = rms_norm(x, w[p + "post_attention_layernorm.weight"])
        g = torch.nn.functional.gelu(h @ w[p + "mlp.gate_proj.weight"].T, approximate="tanh")
        u = h @ w[p + "mlp.up_proj.weight"].T
        x = x + (g * u) @ w[p + "mlp.down_proj.weight"].T
    x = rms_norm(x, w["model.norm.weight"])
    return x @ emb_w.T


def make(out, hd):
    w = build(hd)
    rounded = {k: v.to(torch.bfloat16).float() for k, v in w.items()}
    with torch.no_grad():
        want = forward(rounded, TOKENS, hd)
    cfg = {
        "architectures": ["GemmaForCausalLM"], "model_type": "gemma",
        "vocab_size": V, "hidden_size": D, "intermediate_size": F, "head_dim": hd,
        "num_hidden_layers": L, "num_attention_heads": H, "num_key_value_heads": KV,
        "max_position_embeddings": 128, "rms_norm_eps": EPS, "rope_theta": THETA,
        "hidden_act": "gelu_pytorch_tanh", "hidden_activation": "gelu_pytorch_tanh",
        "tie_word_embeddings": True, "attention_bias": False,
        "bos_token_id": 2, "eos_token_id": 1, "pad_token_id": 0, "torch_dtype": "bfloat16",
    }
    llama.write_fixture(out, w, cfg, want, SEED + hd,
                        "PyTorch transcription of transformers' GemmaForCausalLM forward (no transformers installed)",
                        "testdata/hf/make_tiny_gemma_torch.py")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=os.path.dirname(os.path.abspath(__file__)))
    args = ap.parse_args()
    torch.set_num_threads(1)
    make(os.path.join(args.out, "tiny-gemma-torch"), HD)
    # Gemma 7B's shape: heads wider than width/heads (4 × 32 in a width of 64).
    make(os.path.join(args.out, "tiny-gemma-wide-torch"), 2 * HD)


if __name__ == "__main__":
    main()
