#!/usr/bin/env python3
"""Reference fixtures for orchmind's Hugging Face loader (engine/model/hf.go).

Builds a small random LlamaForCausalLM with grouped-query attention and an
untied output head, saves it the way transformers saves any model
(save_pretrained, safetensors), runs a fixed token sequence through it on the
CPU in float32, and writes the logits beside the weights. The Go test
TestLoadHFTransformersFixture (engine/model/hf_test.go) loads each folder with
model.LoadHF and compares its logits with these to 1e-4 of the largest logit.

Two folders, about 200 KB each (weights plus logits.json):

  tiny-llama/          BF16 weights in one model.safetensors
  tiny-llama-sharded/  F16 weights in shards + model.safetensors.index.json

The reference forward runs in float32 on the weights rounded to the stored
dtype, so the comparison measures the loader and the forward pass, not the
rounding. Needs torch and transformers (4.40 or later, 5.x included); no GPU.

Usage (from the repository root, or anywhere):

  python3 testdata/hf/make_tiny_llama.py            # writes next to this script
  python3 testdata/hf/make_tiny_llama.py --out DIR

See docs/reference-fixtures.md.
"""

import argparse
import copy
import json
import os
import shutil
import sys

import torch
import transformers
from transformers import LlamaConfig, LlamaForCausalLM

SEED = 20240611
# A fixed token sequence: 16 positions, ids spread over the vocabulary,
# a repeated id (12, 12) and the edges 0 and 95.
TOKENS = [1, 5, 17, 42, 3, 95, 0, 63, 7, 8, 88, 12, 12, 40, 2, 77]

DIMS = dict(
    vocab_size=96,
    hidden_size=64,
    intermediate_size=128,
    num_hidden_layers=2,
    num_attention_heads=4,  # head_dim 16
    num_key_value_heads=2,  # GQA: 2 query heads per key/value head
    max_position_embeddings=128,
    rms_norm_eps=1e-5,
    tie_word_embeddings=False,
    hidden_act="silu",
    attention_bias=False,
    mlp_bias=False,
    bos_token_id=1,
    eos_token_id=2,
)
ROPE_THETA = 10000.0  # LlamaConfig's default in transformers 4 and 5


def rope_theta(cfg):
    """rope_theta of a config: an attribute in transformers 4, in rope_parameters in 5."""
    params = getattr(cfg, "rope_parameters", None)
    if isinstance(params, dict) and "rope_theta" in params:
        return float(params["rope_theta"])
    return float(getattr(cfg, "rope_theta", "nan"))


def version():
    return tuple(int(x) for x in transformers.__version__.split(".")[:2])


def build():
    if version() >= (5, 0):
        cfg = LlamaConfig(rope_parameters={"rope_type": "default", "rope_theta": ROPE_THETA}, **DIMS)
    else:
        cfg = LlamaConfig(rope_theta=ROPE_THETA, **DIMS)
    if rope_theta(cfg) != ROPE_THETA:
        sys.exit(f"config has rope_theta {rope_theta(cfg)}, expected {ROPE_THETA}")
    torch.manual_seed(SEED)
    model = LlamaForCausalLM(cfg).float().eval()
    # Re-initialise every parameter from one seeded generator, in name order,
    # with magnitudes that make attention far from uniform (so a wrong RoPE
    # layout shows in the logits) and norm weights that are not all ones (so
    # a swapped norm shows too).
    gen = torch.Generator().manual_seed(SEED)
    with torch.no_grad():
        for name, p in sorted(model.named_parameters(), key=lambda kv: kv[0]):
            noise = torch.randn(p.shape, generator=gen, dtype=torch.float32)
            if "norm" in name:
                p.copy_(1 + 0.2 * noise)
            elif "embed_tokens" in name:
                p.copy_(noise)
            elif "q_proj" in name or "k_proj" in name:
                p.copy_(0.3 * noise)
            else:
                p.copy_(0.2 * noise)
    return model


def save(model, out, max_shard_size):
    if os.path.exists(out):
        shutil.rmtree(out)
    try:
        model.save_pretrained(out, safe_serialization=True, max_shard_size=max_shard_size)
    except TypeError:  # transformers versions without the argument save safetensors only
        model.save_pretrained(out, max_shard_size=max_shard_size)
    if os.path.exists(os.path.join(out, "pytorch_model.bin")):
        sys.exit(f"{out}: save_pretrained wrote pickle weights, not safetensors")


def logits_of(model):
    with torch.no_grad():
        return model(torch.tensor([TOKENS])).logits[0].float()


def reload(out):
    # transformers 4.56 renamed from_pretrained's torch_dtype to dtype.
    kw = "dtype" if version() >= (4, 56) else "torch_dtype"
    m = LlamaForCausalLM.from_pretrained(out, **{kw: torch.float32})
    return m.float().eval()


def make(model, out, dtype, max_shard_size):
    # Round the weights to the stored dtype but keep the model (and its
    # RoPE inverse frequencies, a buffer that .to(dtype) would round too) in
    # float32.
    ref = copy.deepcopy(model)
    with torch.no_grad():
        for p in ref.parameters():
            p.copy_(p.to(dtype).float())
    want = logits_of(ref)
    save(copy.deepcopy(ref).to(dtype), out, max_shard_size)
    # The saved folder must give the same logits once loaded back.
    got = logits_of(reload(out))
    diff = (got - want).abs().max().item()
    if diff > 1e-5:
        sys.exit(f"{out}: reloaded model's logits differ by {diff}")
    files = sorted(os.listdir(out))
    fixture = {
        "tokens": TOKENS,
        "logits": want.tolist(),
        "weights_dtype": str(dtype).replace("torch.", ""),
        "seed": SEED,
        "transformers": transformers.__version__,
        "torch": torch.__version__,
        "made_by": "testdata/hf/make_tiny_llama.py",
    }
    with open(os.path.join(out, "logits.json"), "w") as f:
        json.dump(fixture, f)
        f.write("\n")
    size = sum(os.path.getsize(os.path.join(out, n)) for n in os.listdir(out))
    print(f"{out}: {files} + logits.json, {size} bytes; max |logit| {want.abs().max().item():.3f}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=os.path.dirname(os.path.abspath(__file__)),
                    help="folder to write tiny-llama/ and tiny-llama-sharded/ into (default: next to this script)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    model = build()
    make(model, os.path.join(args.out, "tiny-llama"), torch.bfloat16, "10GB")
    make(model, os.path.join(args.out, "tiny-llama-sharded"), torch.float16, "100KB")


if __name__ == "__main__":
    main()
