#!/usr/bin/env python3
"""PyTorch-only reference fixtures for orchmind's Hugging Face loader.

make_tiny_llama.py is the authoritative script: it uses transformers'
LlamaForCausalLM itself. This one is for machines that have PyTorch but not
transformers (Debian ships python3-torch; PyPI may be unreachable): it builds
the SAME random model (same seed, same generator, parameters drawn in the same
name order with the same shapes), writes it in the Hugging Face folder layout
(config.json + safetensors, one file or shards with an index), and computes the
logits with a line-by-line PyTorch transcription of transformers'
modeling_llama forward in float32:

  LlamaRMSNorm       x * rsqrt(mean(x^2) + eps) * weight (in float32)
  rotary embedding   inv_freq = 1 / theta^(arange(0, d, 2) / d),
                     emb = cat(freqs, freqs), x*cos + rotate_half(x)*sin,
                     rotate_half(x) = cat(-x[d/2:], x[:d/2])   (NOT interleaved)
  repeat_kv          query head h reads key/value head h // (heads / kv_heads)
  attention          softmax(q k^T / sqrt(d) + causal mask) v, o_proj
  LlamaMLP           down(silu(gate(x)) * up(x))
  untied lm_head     after the final norm

The Go test TestLoadHFTransformersFixture loads each folder with model.LoadHF
and compares its logits to 1e-4 of the largest logit. Agreement therefore
proves the loader undoes the HF rotate-half q/k layout, reads BF16/F16
safetensors and shards, and runs the same math as PyTorch.

Usage: python3 testdata/hf/make_tiny_llama_torch.py [--out DIR]
Writes tiny-llama-torch/ (BF16, one file), tiny-llama-torch-sharded/
(F16, three shards) and tiny-qwen2-torch/ (Qwen2: q/k/v biases, tied
embeddings, rope_theta 1e6; BF16) next to this script. Needs only torch (1.13 or later).
"""

import argparse
import json
import os
import shutil
import struct
import sys

import torch

SEED = 20240611
TOKENS = [1, 5, 17, 42, 3, 95, 0, 63, 7, 8, 88, 12, 12, 40, 2, 77]
V, D, F, L, H, KV = 96, 64, 128, 2, 4, 2
HD = D // H
EPS = 1e-5
THETA = 10000.0
QWEN2_THETA = 1000000.0  # Qwen2's default; sliding_window is listed but off


def shapes(qwen2=False):
    """Parameter names and shapes exactly as LlamaForCausalLM.named_parameters()
    (Qwen2ForCausalLM with tied embeddings: no lm_head, q/k/v biases)."""
    s = {"model.embed_tokens.weight": (V, D), "model.norm.weight": (D,)}
    if not qwen2:
        s["lm_head.weight"] = (V, D)
    for i in range(L):
        p = f"model.layers.{i}."
        if qwen2:
            s[p + "self_attn.q_proj.bias"] = (H * HD,)
            s[p + "self_attn.k_proj.bias"] = (KV * HD,)
            s[p + "self_attn.v_proj.bias"] = (KV * HD,)
        s[p + "self_attn.q_proj.weight"] = (H * HD, D)
        s[p + "self_attn.k_proj.weight"] = (KV * HD, D)
        s[p + "self_attn.v_proj.weight"] = (KV * HD, D)
        s[p + "self_attn.o_proj.weight"] = (D, H * HD)
        s[p + "mlp.gate_proj.weight"] = (F, D)
        s[p + "mlp.up_proj.weight"] = (F, D)
        s[p + "mlp.down_proj.weight"] = (D, F)
        s[p + "input_layernorm.weight"] = (D,)
        s[p + "post_attention_layernorm.weight"] = (D,)
    return s


def build(qwen2=False):
    """The weights make_tiny_llama.py draws: one generator, sorted name order."""
    gen = torch.Generator().manual_seed(SEED)
    w = {}
    for name, shape in sorted(shapes(qwen2).items()):
        noise = torch.randn(shape, generator=gen, dtype=torch.float32)
        if "norm" in name:
            w[name] = 1 + 0.2 * noise
        elif name.endswith(".bias"):
            w[name] = 0.5 * noise  # large enough that a misplaced bias shows
        elif "embed_tokens" in name:
            w[name] = noise
        elif "q_proj" in name or "k_proj" in name:
            w[name] = 0.3 * noise
        else:
            w[name] = 0.2 * noise
    return w


def rms_norm(x, weight):
    var = x.pow(2).mean(-1, keepdim=True)
    return weight * (x * torch.rsqrt(var + EPS))


def rotate_half(x):
    x1, x2 = x[..., : x.shape[-1] // 2], x[..., x.shape[-1] // 2:]
    return torch.cat((-x2, x1), dim=-1)


def proj(w, x, name):
    y = x @ w[name + ".weight"].T
    if name + ".bias" in w:
        y = y + w[name + ".bias"]
    return y


def forward(w, tokens, theta=THETA):
    T = len(tokens)
    x = w["model.embed_tokens.weight"][torch.tensor(tokens)]  # [T, D]
    inv_freq = 1.0 / (theta ** (torch.arange(0, HD, 2, dtype=torch.int64).float() / HD))
    freqs = torch.outer(torch.arange(T, dtype=torch.float32), inv_freq)
    emb = torch.cat((freqs, freqs), dim=-1)
    cos, sin = emb.cos(), emb.sin()  # [T, HD]
    mask = torch.full((T, T), float("-inf")).triu(1)
    for i in range(L):
        p = f"model.layers.{i}."
        h = rms_norm(x, w[p + "input_layernorm.weight"])
        q = proj(w, h, p + "self_attn.q_proj").view(T, H, HD).transpose(0, 1)
        k = proj(w, h, p + "self_attn.k_proj").view(T, KV, HD).transpose(0, 1)
        v = proj(w, h, p + "self_attn.v_proj").view(T, KV, HD).transpose(0, 1)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        k = k.repeat_interleave(H // KV, dim=0)  # repeat_kv
        v = v.repeat_interleave(H // KV, dim=0)
        att = torch.softmax(q @ k.transpose(1, 2) / (HD ** 0.5) + mask, dim=-1)
        o = (att @ v).transpose(0, 1).reshape(T, H * HD)
        x = x + o @ w[p + "self_attn.o_proj.weight"].T
        h = rms_norm(x, w[p + "post_attention_layernorm.weight"])
        g = torch.nn.functional.silu(h @ w[p + "mlp.gate_proj.weight"].T)
        u = h @ w[p + "mlp.up_proj.weight"].T
        x = x + (g * u) @ w[p + "mlp.down_proj.weight"].T
    x = rms_norm(x, w["model.norm.weight"])
    return x @ w.get("lm_head.weight", w["model.embed_tokens.weight"]).T  # [T, V]


DTYPES = {torch.bfloat16: "BF16", torch.float16: "F16"}


def safetensors_bytes(tensors, dtype):
    """The safetensors format: u64 header length, JSON header, raw data."""
    header, blobs, off = {"__metadata__": {"format": "pt"}}, [], 0
    for name in sorted(tensors):
        t = tensors[name].to(dtype).contiguous()
        b = t.view(torch.int16).numpy().tobytes() if dtype == torch.bfloat16 else t.numpy().tobytes()
        header[name] = {"dtype": DTYPES[dtype], "shape": list(t.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + b"".join(blobs)


def config(qwen2=False):
    if qwen2:
        return {
            "architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2",
            "vocab_size": V, "hidden_size": D, "intermediate_size": F,
            "num_hidden_layers": L, "num_attention_heads": H, "num_key_value_heads": KV,
            "max_position_embeddings": 128, "rms_norm_eps": EPS, "rope_theta": QWEN2_THETA,
            "tie_word_embeddings": True, "hidden_act": "silu", "use_sliding_window": False,
            "sliding_window": 32, "max_window_layers": L, "bos_token_id": 1, "eos_token_id": 2,
        }
    return {
        "architectures": ["LlamaForCausalLM"], "model_type": "llama",
        "vocab_size": V, "hidden_size": D, "intermediate_size": F,
        "num_hidden_layers": L, "num_attention_heads": H, "num_key_value_heads": KV,
        "max_position_embeddings": 128, "rms_norm_eps": EPS, "rope_theta": THETA,
        "rope_scaling": None, "tie_word_embeddings": False, "hidden_act": "silu",
        "attention_bias": False, "mlp_bias": False, "bos_token_id": 1, "eos_token_id": 2,
    }


def write_fixture(out, w, cfg, want, seed, reference, made_by):
    """Writes out/ afresh: config.json, w as one BF16 model.safetensors and
    logits.json with the reference logits want (for the other scripts)."""
    if os.path.exists(out):
        shutil.rmtree(out)
    os.makedirs(out)
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    with open(os.path.join(out, "model.safetensors"), "wb") as f:
        f.write(safetensors_bytes(w, torch.bfloat16))
    fixture = {
        "tokens": TOKENS, "logits": want.tolist(), "weights_dtype": "bfloat16", "seed": seed,
        "reference": reference, "torch": torch.__version__, "made_by": made_by,
    }
    with open(os.path.join(out, "logits.json"), "w") as f:
        json.dump(fixture, f)
        f.write("\n")
    print(f"{out}: {sorted(os.listdir(out))}; max |logit| {want.abs().max().item():.3f}")


def make(w, out, dtype, shards, qwen2=False):
    if os.path.exists(out):
        shutil.rmtree(out)
    os.makedirs(out)
    rounded = {k: v.to(dtype).float() for k, v in w.items()}
    with torch.no_grad():
        want = forward(rounded, TOKENS, QWEN2_THETA if qwen2 else THETA)
    cfg = config(qwen2)
    cfg["torch_dtype"] = str(dtype).replace("torch.", "")
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    names = sorted(w)
    if shards == 1:
        with open(os.path.join(out, "model.safetensors"), "wb") as f:
            f.write(safetensors_bytes(w, dtype))
    else:
        weight_map, total = {}, 0
        for s in range(shards):
            part = {n: w[n] for n in names[s::shards]}
            fn = f"model-{s + 1:05d}-of-{shards:05d}.safetensors"
            with open(os.path.join(out, fn), "wb") as f:
                f.write(safetensors_bytes(part, dtype))
            for n in part:
                weight_map[n] = fn
                total += part[n].numel() * 2
        with open(os.path.join(out, "model.safetensors.index.json"), "w") as f:
            json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, f, indent=2)
    fixture = {
        "tokens": TOKENS,
        "logits": want.tolist(),
        "weights_dtype": str(dtype).replace("torch.", ""),
        "seed": SEED,
        "reference": "PyTorch transcription of transformers' LlamaForCausalLM forward (no transformers installed)",
        "torch": torch.__version__,
        "made_by": "testdata/hf/make_tiny_llama_torch.py",
    }
    with open(os.path.join(out, "logits.json"), "w") as f:
        json.dump(fixture, f)
        f.write("\n")
    print(f"{out}: {sorted(os.listdir(out))}; max |logit| {want.abs().max().item():.3f}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=os.path.dirname(os.path.abspath(__file__)))
    args = ap.parse_args()
    torch.set_num_threads(1)
    w = build()
    if sorted(w) != sorted(shapes()):
        sys.exit("internal error: parameter names")
    make(w, os.path.join(args.out, "tiny-llama-torch"), torch.bfloat16, 1)
    make(w, os.path.join(args.out, "tiny-llama-torch-sharded"), torch.float16, 3)
    make(build(qwen2=True), os.path.join(args.out, "tiny-qwen2-torch"), torch.bfloat16, 1, qwen2=True)


if __name__ == "__main__":
    main()
