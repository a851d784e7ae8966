#!/usr/bin/env python3
"""PyTorch-autograd reference fixtures for orchmind's LoRA trainer.

make_fixtures.py is the authoritative script (transformers + PEFT). This one
needs PyTorch only (Debian's python3-torch 1.13 is enough) for machines where
transformers and PEFT cannot be installed. It computes the same quantities
with PyTorch autograd over a line-by-line transcription of transformers'
LlamaForCausalLM forward with PEFT's LoRA layer math:

  lora Linear   y = W x + (B (A x)) * (alpha / r)     PEFT LoraLayer, dropout 0
  A init        kaiming_uniform_(A, a=sqrt(5))          PEFT's default init
  loss          HF causal-LM loss: cross-entropy of logits[:, :-1] against
                labels[:, 1:], ignore_index -100, mean over counted tokens

and writes into OUTDIR (default: fixtures-torch/ next to this script), in the
layout TestMatchesPEFT reads:

  base.bin             the base model as a llama2.c checkpoint (q/k rows
                       permuted from HF rotate-half to interleaved, as
                       llama2.c's export.py does)
  adapter/             adapter_config.json + adapter_model.safetensors with
                       PEFT key names (lora_A [r, in], lora_B [out, r], HF layout)
  grads.safetensors    d loss / d lora_A and lora_B, PEFT key names
  batch.json           token ids, labels (-100 = not in the loss), the loss,
                       and the logits of sequence 0

The gradients come from torch.autograd, independent of orchmind's hand-written
backward pass. Usage: python3 make_fixtures_torch.py [OUTDIR]
"""
import json
import math
import os
import struct
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "fixtures-torch")
V, D, F, L, H, KV, T = 96, 64, 128, 2, 4, 2, 24
HD = D // H
EPS, THETA = 1e-5, 10000.0
R, ALPHA = 4, 8
SCALE = ALPHA / R
TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]

torch.manual_seed(1234)
torch.set_num_threads(1)
gen = torch.Generator().manual_seed(1234)


def shapes():
    s = {"model.embed_tokens.weight": (V, D), "model.norm.weight": (D,), "lm_head.weight": (V, D)}
    for i in range(L):
        p = f"model.layers.{i}."
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


# The frozen base, as make_fixtures.py sets it: norms 1 + 0.1·N, the rest 0.1·N.
W = {}
for name, shape in sorted(shapes().items()):
    n = torch.randn(shape, generator=gen)
    W[name] = 1 + 0.1 * n if "norm" in name else 0.1 * n

# LoRA pairs in PEFT's layout; B non-zero so every gradient is exercised.
LORA = {}
for i in range(L):
    for t in TARGETS:
        mod = "self_attn" if t in ("q_proj", "k_proj", "v_proj", "o_proj") else "mlp"
        key = f"model.layers.{i}.{mod}.{t}"
        out_f, in_f = W[key + ".weight"].shape
        a = torch.empty(R, in_f)
        torch.nn.init.kaiming_uniform_(a, a=math.sqrt(5))  # global RNG, seeded above
        b = 0.2 * torch.randn(out_f, R, generator=gen)
        LORA[key] = (a.requires_grad_(), b.requires_grad_())


def linear(x, key):
    y = x @ W[key + ".weight"].T
    if key in LORA:
        a, b = LORA[key]
        y = y + (x @ a.T @ b.T) * SCALE
    return y


def rms_norm(x, w):
    return w * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + EPS))


def rotate_half(x):
    return torch.cat((-x[..., HD // 2:], x[..., : HD // 2]), dim=-1)


def forward(ids):
    B, S = ids.shape
    x = W["model.embed_tokens.weight"][ids]
    inv = 1.0 / (THETA ** (torch.arange(0, HD, 2, dtype=torch.int64).float() / HD))
    fr = torch.outer(torch.arange(S, dtype=torch.float32), inv)
    emb = torch.cat((fr, fr), -1)
    cos, sin = emb.cos(), emb.sin()
    mask = torch.full((S, S), float("-inf")).triu(1)
    for i in range(L):
        p = f"model.layers.{i}."
        h = rms_norm(x, W[p + "input_layernorm.weight"])
        q = linear(h, p + "self_attn.q_proj").view(B, S, H, HD).transpose(1, 2)
        k = linear(h, p + "self_attn.k_proj").view(B, S, KV, HD).transpose(1, 2)
        v = linear(h, p + "self_attn.v_proj").view(B, S, KV, HD).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        k = k.repeat_interleave(H // KV, dim=1)
        v = v.repeat_interleave(H // KV, dim=1)
        att = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(HD) + mask, dim=-1)
        o = (att @ v).transpose(1, 2).reshape(B, S, H * HD)
        x = x + linear(o, p + "self_attn.o_proj")
        h = rms_norm(x, W[p + "post_attention_layernorm.weight"])
        g = torch.nn.functional.silu(linear(h, p + "mlp.gate_proj"))
        x = x + linear(g * linear(h, p + "mlp.up_proj"), p + "mlp.down_proj")
    return rms_norm(x, W["model.norm.weight"]) @ W["lm_head.weight"].T


def safetensors_bytes(tensors):
    header, blobs, off = {"__metadata__": {"format": "pt"}}, [], 0
    for name in sorted(tensors):
        b = tensors[name].detach().float().contiguous().numpy().tobytes()
        header[name] = {"dtype": "F32", "shape": list(tensors[name].shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + b"".join(blobs)


def perm(w, heads):
    d1, d2 = w.shape
    return w.view(heads, 2, d1 // heads // 2, d2).transpose(1, 2).reshape(d1, d2)


os.makedirs(os.path.join(out, "adapter"), exist_ok=True)
with open(os.path.join(out, "base.bin"), "wb") as f:
    f.write(struct.pack("7i", D, F, L, H, KV, -V, 64))

    def w(t):
        f.write(t.detach().float().contiguous().numpy().tobytes())
    w(W["model.embed_tokens.weight"])
    for part in ["input_layernorm", "self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj",
                 "self_attn.o_proj", "post_attention_layernorm", "mlp.gate_proj", "mlp.down_proj", "mlp.up_proj"]:
        for i in range(L):
            t = W[f"model.layers.{i}.{part}.weight"]
            if part == "self_attn.q_proj":
                t = perm(t, H)
            elif part == "self_attn.k_proj":
                t = perm(t, KV)
            w(t)
    w(W["model.norm.weight"])
    w(torch.zeros(64 * HD))  # freq_cis_real, freq_cis_imag (unused)
    w(W["lm_head.weight"])

g = torch.Generator().manual_seed(7)
ids = torch.randint(3, V, (2, T), generator=g)
labels = ids.clone()
labels[:, :9] = -100  # the "prompt" is not in the loss
logits = forward(ids)
loss = torch.nn.functional.cross_entropy(logits[:, :-1].reshape(-1, V), labels[:, 1:].reshape(-1), ignore_index=-100)
loss.backward()

adapter, grads = {}, {}
for key, (a, b) in LORA.items():
    pk = "base_model.model." + key
    adapter[pk + ".lora_A.weight"], adapter[pk + ".lora_B.weight"] = a, b
    grads[pk + ".lora_A.weight"], grads[pk + ".lora_B.weight"] = a.grad, b.grad
with open(os.path.join(out, "adapter", "adapter_model.safetensors"), "wb") as f:
    f.write(safetensors_bytes(adapter))
with open(os.path.join(out, "adapter", "adapter_config.json"), "w") as f:
    json.dump({"peft_type": "LORA", "task_type": "CAUSAL_LM", "r": R, "lora_alpha": ALPHA,
               "lora_dropout": 0.0, "target_modules": TARGETS, "bias": "none",
               "fan_in_fan_out": False, "inference_mode": True, "use_rslora": False,
               "use_dora": False, "init_lora_weights": True,
               "base_model_name_or_path": "tiny-llama (random, make_fixtures_torch.py)"}, f, indent=2)
with open(os.path.join(out, "grads.safetensors"), "wb") as f:
    f.write(safetensors_bytes(grads))
with open(os.path.join(out, "batch.json"), "w") as f:
    json.dump({"ids": ids.tolist(), "labels": labels.tolist(), "loss": loss.item(),
               "logits0": logits[0].detach().float().tolist(),
               "reference": "torch autograd, transformers LlamaForCausalLM + PEFT LoRA math transcribed",
               "torch": torch.__version__, "made_by": "trainer/lora/testdata/peft/make_fixtures_torch.py"}, f)
print(out, "loss", loss.item())
