#!/usr/bin/env python3
"""PyTorch-only reference fixtures for orchmind's Gemma 2 and Gemma 3 support.

Like make_tiny_gemma_torch.py (and using make_tiny_llama_torch.py's helpers),
for machines with PyTorch but without transformers: it draws small random
Gemma 2 and Gemma 3 models, writes them in the Hugging Face folder layout
(config.json + BF16 model.safetensors) and computes logits with a
line-by-line PyTorch transcription of transformers' modeling_gemma2 and
modeling_gemma3 (text) forward passes in float32:

  RMSNorm            x * rsqrt(mean(x^2) + eps) * (1 + weight), every norm
  embeddings         inputs_embeds * sqrt(hidden_size); tied lm_head
  block              x + post_attention_layernorm(attn(input_layernorm(x)))
                     then + post_feedforward_layernorm(mlp(pre_feedforward_layernorm(x)))
  attention          q·k^T * query_pre_attn_scalar^-0.5, soft-capped
                     tanh(s/c)·c (Gemma 2), causal mask, and on sliding layers
                     only the last sliding_window positions (kv > q - window);
                     repeat_kv; heads of head_dim (wider than width/heads)
  Gemma 3            per-head q_norm/k_norm (1 + w) before rotate-half RoPE;
                     layers (i+1) % sliding_window_pattern != 0 slide and use
                     rope_local_base_freq, the others rope_theta with linear
                     rope_scaling (inv_freq / factor)
  Gemma 2            layers with even index slide; one rope_theta;
                     final_logit_softcapping on the logits
  MLP                down(gelu_tanh(gate(x)) * up(x))

Every feature is on: 24 tokens against a window of 5, local and global
layers with different RoPE bases and scaling, soft-capping with small caps
(so tanh is far from linear), q/k norms, heads of 32 in a width of 64, and a
query_pre_attn_scalar (24) that is not head_dim.

It writes next to this script:
  tiny-gemma3-torch/     Gemma3ForCausalLM (model_type gemma3_text), 7 layers
                         (5 sliding, 1 global, 1 sliding)
  tiny-gemma3-mm-torch/  the same language model as Gemma3ForConditionalGeneration
                         (model_type gemma3, text_config, weights under
                         language_model.model., plus a few vision-tower and
                         projector tensors that the loader must skip)
  tiny-gemma2-torch/     Gemma2ForCausalLM, 3 layers, caps 5 (scores) and 8 (logits)
each with logits.json (tokens, logits). check_tiny_gemma23_transformers.py
checks the same folders with transformers itself where it is installed.

Usage: python3 testdata/hf/make_tiny_gemma23_torch.py [--out DIR]
Needs only torch (1.13 or later).
"""
import argparse
import json
import os
import shutil
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_tiny_llama_torch as llama  # noqa: E402

SEED = 20261203
V, D, F, H, KV, HD = 96, 64, 128, 4, 2, 32
EPS = 1e-6
QPAS = 24.0
WINDOW = 5
TOKENS = [2, 5, 17, 42, 3, 95, 0, 63, 7, 8, 88, 12, 12, 40, 2, 77, 31, 9, 64, 64, 50, 1, 23, 71]

GEMMA3 = dict(layers=7, pattern=6, theta=1000000.0, local=10000.0, scaling=8.0, attn_cap=None, final_cap=None, qk_norm=True)
GEMMA2 = dict(layers=3, pattern=2, theta=10000.0, local=10000.0, scaling=None, attn_cap=5.0, final_cap=8.0, qk_norm=False)


def shapes(cfg, prefix="model."):
    s = {prefix + "embed_tokens.weight": (V, D), prefix + "norm.weight": (D,)}
    for i in range(cfg["layers"]):
        p = f"{prefix}layers.{i}."
        for n in ("input_layernorm", "post_attention_layernorm", "pre_feedforward_layernorm", "post_feedforward_layernorm"):
            s[p + n + ".weight"] = (D,)
        s[p + "self_attn.q_proj.weight"] = (H * HD, D)
        s[p + "self_attn.k_proj.weight"] = (KV * HD, D)
        s[p + "self_attn.v_proj.weight"] = (KV * HD, D)
        s[p + "self_attn.o_proj.weight"] = (D, H * HD)
        if cfg["qk_norm"]:
            s[p + "self_attn.q_norm.weight"] = (HD,)
            s[p + "self_attn.k_norm.weight"] = (HD,)
        s[p + "mlp.gate_proj.weight"] = (F, D)
        s[p + "mlp.up_proj.weight"] = (F, D)
        s[p + "mlp.down_proj.weight"] = (D, F)
    return s


def build(cfg, seed):
    gen = torch.Generator().manual_seed(seed)
    w = {}
    for name, shape in sorted(shapes(cfg).items()):
        noise = torch.randn(shape, generator=gen, dtype=torch.float32)
        if "norm" in name:
            w[name] = 0.2 * noise  # stored as w; the norm scales by 1 + w
        elif "embed_tokens" in name:
            w[name] = 0.3 * noise
        elif "q_proj" in name or "k_proj" in name:
            w[name] = 0.3 * noise
        else:
            w[name] = 0.2 * noise
    return w


def rms_norm(x, weight):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + EPS) * (1.0 + weight)


def rope_tables(T, theta, scaling):
    inv_freq = 1.0 / (theta ** (torch.arange(0, HD, 2, dtype=torch.int64).float() / HD))
    if scaling is not None:
        inv_freq = inv_freq / scaling  # transformers' "linear" rope type
    freqs = torch.outer(torch.arange(T, dtype=torch.float32), inv_freq)
    emb = torch.cat((freqs, freqs), dim=-1)
    return emb.cos(), emb.sin()


def sliding(cfg, i):
    return (i + 1) % cfg["pattern"] != 0


def forward(cfg, w, tokens):
    T = len(tokens)
    emb_w = w["model.embed_tokens.weight"]
    x = emb_w[torch.tensor(tokens)] * torch.tensor(D ** 0.5, dtype=torch.float32)
    glob = rope_tables(T, cfg["theta"], cfg["scaling"])
    loc = rope_tables(T, cfg["local"], None)
    qi = torch.arange(T).view(T, 1)
    ki = torch.arange(T).view(1, T)
    causal = torch.zeros(T, T).masked_fill(ki > qi, float("-inf"))
    window = causal.masked_fill(ki <= qi - WINDOW, float("-inf"))
    for i in range(cfg["layers"]):
        p = f"model.layers.{i}."
        cos, sin = loc if sliding(cfg, i) else glob
        mask = window if sliding(cfg, i) else causal
        res = x
        h = rms_norm(x, w[p + "input_layernorm.weight"])
        q = (h @ w[p + "self_attn.q_proj.weight"].T).view(T, H, HD).transpose(0, 1)
        k = (h @ w[p + "self_attn.k_proj.weight"].T).view(T, KV, HD).transpose(0, 1)
        v = (h @ w[p + "self_attn.v_proj.weight"].T).view(T, KV, HD).transpose(0, 1)
        if cfg["qk_norm"]:
            q = rms_norm(q, w[p + "self_attn.q_norm.weight"])
            k = rms_norm(k, w[p + "self_attn.k_norm.weight"])
        q = q * cos + llama.rotate_half(q) * sin
        k = k * cos + llama.rotate_half(k) * sin
        k = k.repeat_interleave(H // KV, dim=0)
        v = v.repeat_interleave(H // KV, dim=0)
        s = q @ k.transpose(1, 2) * QPAS ** -0.5
        if cfg["attn_cap"] is not None:
            s = torch.tanh(s / cfg["attn_cap"]) * cfg["attn_cap"]
        att = torch.softmax(s + mask, dim=-1)
        o = (att @ v).transpose(0, 1).reshape(T, H * HD)
        o = o @ w[p + "self_attn.o_proj.weight"].T
        x = res + rms_norm(o, w[p + "post_attention_layernorm.weight"])
        res = x
        h = rms_norm(x, w[p + "pre_feedforward_layernorm.weight"])
        g = torch.nn.functional.gelu(h @ w[p + "mlp.gate_proj.weight"].T, approximate="tanh")
        u = h @ w[p + "mlp.up_proj.weight"].T
        m = (g * u) @ w[p + "mlp.down_proj.weight"].T
        x = res + rms_norm(m, w[p + "post_feedforward_layernorm.weight"])
    x = rms_norm(x, w["model.norm.weight"])
    logits = x @ emb_w.T
    if cfg["final_cap"] is not None:
        logits = torch.tanh(logits / cfg["final_cap"]) * cfg["final_cap"]
    return logits


def text_config(cfg, gemma3):
    c = {
        "vocab_size": V, "hidden_size": D, "intermediate_size": F, "head_dim": HD,
        "num_hidden_layers": cfg["layers"], "num_attention_heads": H, "num_key_value_heads": KV,
        "max_position_embeddings": 256, "rms_norm_eps": EPS, "rope_theta": cfg["theta"],
        "hidden_activation": "gelu_pytorch_tanh", "query_pre_attn_scalar": QPAS,
        "sliding_window": WINDOW, "attn_logit_softcapping": cfg["attn_cap"],
        "final_logit_softcapping": cfg["final_cap"], "tie_word_embeddings": True,
        "attention_bias": False, "attention_dropout": 0.0,
        "bos_token_id": 2, "eos_token_id": 1, "pad_token_id": 0, "torch_dtype": "bfloat16",
    }
    if gemma3:
        c.update({"model_type": "gemma3_text", "rope_local_base_freq": cfg["local"],
                  "sliding_window_pattern": cfg["pattern"],
                  "rope_scaling": {"rope_type": "linear", "factor": cfg["scaling"]}})
    else:
        c.update({"model_type": "gemma2", "hidden_act": "gelu_pytorch_tanh", "cache_implementation": "hybrid"})
    c["layer_types"] = ["sliding_attention" if sliding(cfg, i) else "full_attention" for i in range(cfg["layers"])]
    return c


def write(out, tensors, cfg_json, want, seed, what):
    if os.path.exists(out):
        shutil.rmtree(out)
    os.makedirs(out)
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(cfg_json, f, indent=2)
    with open(os.path.join(out, "model.safetensors"), "wb") as f:
        f.write(llama.safetensors_bytes(tensors, torch.bfloat16))
    fixture = {
        "tokens": TOKENS, "logits": want.tolist(), "weights_dtype": "bfloat16", "seed": seed,
        "reference": f"PyTorch transcription of transformers' {what} forward (no transformers installed)",
        "torch": torch.__version__, "made_by": "testdata/hf/make_tiny_gemma23_torch.py",
    }
    with open(os.path.join(out, "logits.json"), "w") as f:
        json.dump(fixture, f)
        f.write("\n")
    print(f"{out}: max |logit| {want.abs().max().item():.3f}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=os.path.dirname(os.path.abspath(__file__)))
    args = ap.parse_args()
    torch.set_num_threads(1)
    for name, cfg, seed, gemma3 in (("gemma3", GEMMA3, SEED, True), ("gemma2", GEMMA2, SEED + 2, False)):
        w = build(cfg, seed)
        rounded = {k: v.to(torch.bfloat16).float() for k, v in w.items()}
        with torch.no_grad():
            want = forward(cfg, rounded, TOKENS)
        tc = text_config(cfg, gemma3)
        arch = "Gemma3ForCausalLM" if gemma3 else "Gemma2ForCausalLM"
        write(os.path.join(args.out, f"tiny-{name}-torch"), w, dict(architectures=[arch], **tc), want, seed, arch)
        if gemma3:
            # The multimodal checkpoint layout (transformers < 4.52 names):
            # the language model under language_model.model., a vision tower
            # and projector beside it (a few small random tensors).
            mm = {"language_model." + k: v for k, v in w.items()}
            gen = torch.Generator().manual_seed(seed + 1)
            for n, shape in (("vision_tower.vision_model.embeddings.patch_embedding.weight", (8, 3, 2, 2)),
                             ("vision_tower.vision_model.post_layernorm.weight", (8,)),
                             ("multi_modal_projector.mm_input_projection_weight", (8, D)),
                             ("multi_modal_projector.mm_soft_emb_norm.weight", (8,))):
                mm[n] = torch.randn(shape, generator=gen)
            cfg_json = {
                "architectures": ["Gemma3ForConditionalGeneration"], "model_type": "gemma3",
                "text_config": tc,
                "vision_config": {"model_type": "siglip_vision_model", "hidden_size": 8, "intermediate_size": 16,
                                  "num_hidden_layers": 0, "num_attention_heads": 2, "image_size": 4, "patch_size": 2},
                "mm_tokens_per_image": 4, "boi_token_index": 90, "eoi_token_index": 91, "image_token_index": 92,
                "torch_dtype": "bfloat16",
            }
            write(os.path.join(args.out, "tiny-gemma3-mm-torch"), mm, cfg_json, want, seed,
                  "Gemma3ForConditionalGeneration (text)")


if __name__ == "__main__":
    main()
