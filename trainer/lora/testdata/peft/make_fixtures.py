#!/usr/bin/env python3
"""Reference fixtures for orchmind's LoRA trainer, from PyTorch + HF PEFT.

Run where torch, transformers, peft and safetensors are installed (the lent
GPU machine; CPU is enough):

    python3 make_fixtures.py OUTDIR

It builds a small random-init LlamaForCausalLM with grouped-query attention,
wraps it in a PEFT LoRA (r=4, alpha=8, all seven projections, B set to
non-zero values so every gradient is exercised), runs one masked batch and
writes into OUTDIR:

  base.bin                 the base model as a llama2.c checkpoint (q/k rows
                           permuted from HF rotate-half to interleaved, as
                           llama2.c's export.py does)
  adapter/                 PEFT save_pretrained output (adapter_config.json,
                           adapter_model.safetensors)
  grads.safetensors        d loss / d lora_A and lora_B, PEFT key names
  batch.json               token ids, labels (-100 = not in the loss), the
                           loss, and the logits of sequence 0

trainer/lora/peft_ref_test.go compares orchmind's loss and gradients with
these to 1e-4 (relative to the largest gradient). Copy OUTDIR to
trainer/lora/testdata/peft/fixtures/.
"""
import json
import struct
import sys

import torch
from peft import LoraConfig, get_peft_model
from safetensors.torch import save_file
from transformers import LlamaConfig, LlamaForCausalLM

out = sys.argv[1] if len(sys.argv) > 1 else "fixtures"
torch.manual_seed(1234)
V, D, F, L, H, KV, T = 96, 64, 128, 2, 4, 2, 24
cfg = LlamaConfig(vocab_size=V, hidden_size=D, intermediate_size=F, num_hidden_layers=L,
                  num_attention_heads=H, num_key_value_heads=KV, max_position_embeddings=64,
                  rms_norm_eps=1e-5, rope_theta=10000.0, tie_word_embeddings=False,
                  attention_bias=False, mlp_bias=False, torch_dtype=torch.float32)
base = LlamaForCausalLM(cfg).float().eval()
with torch.no_grad():
    for n, p in base.named_parameters():
        if "norm" in n:
            p.add_(0.1 * torch.randn_like(p))
        else:
            p.normal_(0, 0.1)

# llama2.c checkpoint of the base (legacy v0 format, untied classifier).
def perm(w, heads):
    d1, d2 = w.shape
    return w.view(heads, 2, d1 // heads // 2, d2).transpose(1, 2).reshape(d1, d2)

sd = base.state_dict()
layers = range(L)
with open(f"{out}/base.bin", "wb") as f:
    f.write(struct.pack("7i", D, F, L, H, KV, -V, 64))
    def w(t):
        f.write(t.detach().float().contiguous().numpy().tobytes())
    w(sd["model.embed_tokens.weight"])
    for i in layers: w(sd[f"model.layers.{i}.input_layernorm.weight"])
    for i in layers: w(perm(sd[f"model.layers.{i}.self_attn.q_proj.weight"], H))
    for i in layers: w(perm(sd[f"model.layers.{i}.self_attn.k_proj.weight"], KV))
    for i in layers: w(sd[f"model.layers.{i}.self_attn.v_proj.weight"])
    for i in layers: w(sd[f"model.layers.{i}.self_attn.o_proj.weight"])
    for i in layers: w(sd[f"model.layers.{i}.post_attention_layernorm.weight"])
    for i in layers: w(sd[f"model.layers.{i}.mlp.gate_proj.weight"])
    for i in layers: w(sd[f"model.layers.{i}.mlp.down_proj.weight"])
    for i in layers: w(sd[f"model.layers.{i}.mlp.up_proj.weight"])
    w(sd["model.norm.weight"])
    w(torch.zeros(64 * (D // H)))  # freq_cis_real, freq_cis_imag (unused)
    w(sd["lm_head.weight"])

lcfg = LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0, bias="none", task_type="CAUSAL_LM",
                  target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"])
model = get_peft_model(base, lcfg)
with torch.no_grad():
    for n, p in model.named_parameters():
        if "lora_B" in n:
            p.normal_(0, 0.2)
model.train()  # dropout is 0: train and eval agree
g = torch.Generator().manual_seed(7)
ids = torch.randint(3, V, (2, T), generator=g)
labels = ids.clone()
labels[:, :9] = -100  # the "prompt" is not in the loss
res = model(input_ids=ids, labels=labels)
res.loss.backward()
model.save_pretrained(f"{out}/adapter", safe_serialization=True)
grads = {}
for n, p in model.named_parameters():
    if "lora_" in n:
        grads[n.replace(".default", "")] = p.grad.detach().float().contiguous()
save_file(grads, f"{out}/grads.safetensors")
with open(f"{out}/batch.json", "w") as f:
    json.dump({"ids": ids.tolist(), "labels": labels.tolist(), "loss": res.loss.item(),
               "logits0": res.logits[0].detach().float().tolist()}, f)
print("loss", res.loss.item())
