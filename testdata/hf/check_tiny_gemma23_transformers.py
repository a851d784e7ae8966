#!/usr/bin/env python3
"""Checks the Gemma 2 / Gemma 3 fixtures with transformers itself.

make_tiny_gemma23_torch.py computes the committed logits with a PyTorch
transcription of transformers' forward passes (the machine that built them
had no transformers). Where transformers is installed (4.50 or later for
Gemma 3; 5.x fine), this script loads each fixture folder with the real
classes, runs the fixture's tokens in float32 with eager attention (the
implementation that applies soft-capping and the sliding window exactly),
and compares with logits.json:

  tiny-gemma3-torch     AutoModelForCausalLM -> Gemma3ForCausalLM
  tiny-gemma3-mm-torch  Gemma3ForConditionalGeneration (text only: input_ids)
  tiny-gemma2-torch     AutoModelForCausalLM -> Gemma2ForCausalLM

It exits 1 if any logit differs by more than 2e-5 of the largest one, and
prints the differences either way.

Usage: python3 testdata/hf/check_tiny_gemma23_transformers.py [--dir testdata/hf]
"""
import argparse
import json
import os
import sys

import torch
import transformers
from transformers import AutoModelForCausalLM


def load(path):
    cfg = json.load(open(os.path.join(path, "config.json")))
    if cfg.get("model_type") == "gemma3":
        from transformers import Gemma3ForConditionalGeneration
        return Gemma3ForConditionalGeneration.from_pretrained(path, torch_dtype=torch.float32, attn_implementation="eager")
    return AutoModelForCausalLM.from_pretrained(path, torch_dtype=torch.float32, attn_implementation="eager")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dir", default=os.path.dirname(os.path.abspath(__file__)))
    args = ap.parse_args()
    torch.set_num_threads(1)
    bad = False
    for name in ("tiny-gemma3-torch", "tiny-gemma3-mm-torch", "tiny-gemma2-torch"):
        path = os.path.join(args.dir, name)
        fx = json.load(open(os.path.join(path, "logits.json")))
        model = load(path).eval()
        with torch.no_grad():
            out = model(input_ids=torch.tensor([fx["tokens"]]), use_cache=False).logits[0].float()
        want = torch.tensor(fx["logits"], dtype=torch.float32)
        diff = (out - want).abs().max().item()
        scale = want.abs().max().item()
        ok = diff <= 2e-5 * scale
        bad = bad or not ok
        print(f"{name}: transformers {transformers.__version__}: max |Δlogit| {diff:.3g} over logits up to {scale:.3g} "
              f"({diff / scale:.2g} relative) {'ok' if ok else 'MISMATCH'}")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
