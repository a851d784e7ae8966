#!/usr/bin/env python3
"""Do HF PEFT and orchmind agree on an adapter orchmind wrote?

trainer/lora/testdata/peft/interop/ holds PEFT files written by orchmind's
WritePEFT (adapter/: adapter_config.json + adapter_model.safetensors, r=4,
alpha=8, all seven projections, non-zero B) for the Hugging Face fixture
model testdata/hf/tiny-llama-torch, and orchmind_logits.json: the logits
orchmind computes with that adapter plugged in at 16 positions
(TestPEFTInteropFixture keeps both true).

With transformers and peft installed this script loads the base with
LlamaForCausalLM.from_pretrained (float32), the adapter with
PeftModel.from_pretrained, runs the same tokens and compares the logits:
the check the trainer issue asks for. With only PyTorch (Debian's
python3-torch) it reads both safetensors files itself, adds
(lora_alpha / r) * B @ A to each weight named by PEFT's keys
(base_model.model.<module>.lora_A/lora_B.weight, Hugging Face layout) and
runs testdata/hf/make_tiny_llama_torch.py's transcription of transformers'
Llama forward: it checks the file layout and the q/k row order, not PEFT's
own loader.

Passes when every logit is within 1e-4 of the largest reference logit.

Usage: python3 scripts/check_peft_interop.py [--torch-only]
"""
import json
import os
import struct
import sys

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIX = os.path.join(ROOT, "trainer", "lora", "testdata", "peft", "interop")


def read_safetensors(path):
    """name -> float32 tensor, for F32/F16/BF16 tensors."""
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        a, b = info["data_offsets"]
        raw = bytearray(data[a:b])
        shape = info["shape"]
        if info["dtype"] == "F32":
            t = torch.frombuffer(raw, dtype=torch.float32)
        elif info["dtype"] == "F16":
            t = torch.frombuffer(raw, dtype=torch.float16).float()
        elif info["dtype"] == "BF16":
            t = torch.frombuffer(raw, dtype=torch.bfloat16).float()
        else:
            raise SystemExit(f"{path}: {name}: dtype {info['dtype']} not handled")
        out[name] = t.reshape(shape).clone()
    return out


def with_peft(base, adapter, tokens):
    from peft import PeftModel
    from transformers import LlamaForCausalLM

    model = LlamaForCausalLM.from_pretrained(base, torch_dtype=torch.float32)
    model = PeftModel.from_pretrained(model, adapter)
    model.eval()
    with torch.no_grad():
        return model(torch.tensor([tokens])).logits[0], "transformers + PEFT PeftModel.from_pretrained"


def with_torch(base, adapter, tokens):
    sys.path.insert(0, os.path.join(ROOT, "testdata", "hf"))
    import make_tiny_llama_torch as ref

    w = read_safetensors(os.path.join(base, "model.safetensors"))
    with torch.no_grad():
        plain = ref.forward(w, tokens)
    cfg = json.load(open(os.path.join(adapter, "adapter_config.json")))
    lora = read_safetensors(os.path.join(adapter, "adapter_model.safetensors"))
    scale = cfg["lora_alpha"] / cfg["r"]
    merged = 0
    for key, a in lora.items():
        if not key.endswith(".lora_A.weight"):
            continue
        module = key[len("base_model.model."):-len(".lora_A.weight")]
        b = lora[key.replace("lora_A", "lora_B")]
        w[module + ".weight"] = w[module + ".weight"] + scale * (b @ a)
        merged += 1
    if merged == 0:
        raise SystemExit("no lora_A/lora_B pairs under PEFT key names in the adapter")
    with torch.no_grad():
        got = ref.forward(w, tokens)
    # The adapter must matter, or agreement would prove nothing.
    if (got - plain).abs().max() < 0.1 * got.abs().max():
        raise SystemExit("the adapter barely changes the logits: the fixture tests nothing")
    return got, f"PyTorch transcription, {merged} projections merged by PEFT key names"


def main():
    fx = json.load(open(os.path.join(FIX, "orchmind_logits.json")))
    base = os.path.join(ROOT, fx["base"])
    adapter = os.path.join(FIX, "adapter")
    want = torch.tensor(fx["logits"])
    torch_only = "--torch-only" in sys.argv
    if not torch_only:
        try:
            import peft  # noqa: F401
            import transformers  # noqa: F401
        except ImportError:
            print("transformers/peft not installed: falling back to --torch-only")
            torch_only = True
    got, how = (with_torch if torch_only else with_peft)(base, adapter, fx["tokens"])
    worst = (got - want).abs().max().item()
    top = want.abs().max().item()
    print(f"{how}: max |reference - orchmind| = {worst:.3g} over {len(fx['tokens'])} positions (largest logit {top:.3g}), torch {torch.__version__}")
    if worst > 1e-4 * top:
        raise SystemExit("MISMATCH: orchmind's PEFT files do not give orchmind's logits")
    print("ok")


if __name__ == "__main__":
    main()
