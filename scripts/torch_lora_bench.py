#!/usr/bin/env python3
"""PyTorch reference for `make bench-train` on machines without transformers/PEFT.

../shared/bench/peft_bench.py (HF transformers + PEFT) is the reference the
issue names; it needs packages PyPI serves. This script measures the same
workload with PyTorch alone so that orchmind and PyTorch can be timed side by
side on the same CPU: a Llama model with transformers' structure (RMSNorm,
rotate-half RoPE, grouped-query eager attention, SiLU MLP, fp32), frozen
random weights, PEFT-style LoRA (W x + B(A x)·α/r, r=16, α=32) on all seven
projections, batch 8 × seq 256, shifted causal-LM loss, AdamW (lr 2e-4) over
the LoRA parameters; 1 warm-up step, then N timed steps.

gemma3_270M and gemma3_1B have Gemma 3's structure as transformers'
modeling_gemma3 runs it: embeddings × √width, RMSNorm × (1 + w) before and
after attention and the MLP, per-head q/k norms, heads of 256 (4 query, 1
key/value), query_pre_attn_scalar 256, 5 sliding-window layers (window 512,
RoPE base 10,000) to 1 global (1,000,000), GeGLU with tanh GELU, the tied
262,144-token classifier.

Usage: python3 scripts/torch_lora_bench.py THREADS [stories15M|smollm135M|gemma3_270M|gemma3_1B] [STEPS] [BATCH] [SEQ]
(BATCH and SEQ default to 8 and 256, as orchmind's BenchmarkTrainStep with
ORCHMIND_BENCH_BATCH and ORCHMIND_BENCH_SEQ.)
Prints one JSON line like peft_bench.py: tokens_per_s, step_ms, peak_mib, and
tokens_per_cpu_s (tokens per CPU-second of all threads, which moves less
with the load of a shared machine; BenchmarkTrainStep's tok/cpu-s).
"""
import ctypes
import ctypes.util
import json
import math
import resource
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as Fn

CONFIGS = {
    "stories15M": dict(dim=288, ffn=768, layers=6, heads=6, kv=6, vocab=32000, tied=False),
    "smollm135M": dict(dim=576, ffn=1536, layers=30, heads=9, kv=3, vocab=49152, tied=True),
    "gemma3_270M": dict(dim=640, ffn=2048, layers=18, heads=4, kv=1, vocab=262144, tied=True, gemma3=True),
    "gemma3_1B": dict(dim=1152, ffn=6912, layers=26, heads=4, kv=1, vocab=262144, tied=True, gemma3=True),
}
HEAD_DIM_G3, WINDOW_G3 = 256, 512
R, ALPHA = 16, 32


class LoraLinear(nn.Module):
    def __init__(self, i, o):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(o, i) * 0.02, requires_grad=False)
        self.lora_A = nn.Parameter(torch.empty(R, i))
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))
        self.lora_B = nn.Parameter(torch.zeros(o, R))

    def forward(self, x):
        return Fn.linear(x, self.weight) + Fn.linear(Fn.linear(x, self.lora_A), self.lora_B) * (ALPHA / R)


class RMSNorm(nn.Module):
    def __init__(self, d, gemma=False):
        super().__init__()
        self.gemma = gemma
        self.weight = nn.Parameter(torch.zeros(d) if gemma else torch.ones(d), requires_grad=False)

    def forward(self, x):
        n = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6)
        return n * (1.0 + self.weight) if self.gemma else self.weight * n


class Gemma3Layer(nn.Module):
    def __init__(self, c, sliding):
        super().__init__()
        d, hd = c["dim"], HEAD_DIM_G3
        self.h, self.kv, self.hd, self.sliding = c["heads"], c["kv"], hd, sliding
        self.q, self.k = LoraLinear(d, self.h * hd), LoraLinear(d, self.kv * hd)
        self.v, self.o = LoraLinear(d, self.kv * hd), LoraLinear(self.h * hd, d)
        self.gate, self.up, self.down = LoraLinear(d, c["ffn"]), LoraLinear(d, c["ffn"]), LoraLinear(c["ffn"], d)
        self.n_in, self.n_post_attn = RMSNorm(d, True), RMSNorm(d, True)
        self.n_pre_ffw, self.n_post_ffw = RMSNorm(d, True), RMSNorm(d, True)
        self.q_norm, self.k_norm = RMSNorm(hd, True), RMSNorm(hd, True)

    def forward(self, x, rope, masks):
        B, S, _ = x.shape
        cos, sin = rope[self.sliding]
        h = self.n_in(x)
        q = self.q_norm(self.q(h).view(B, S, self.h, self.hd)).transpose(1, 2)
        k = self.k_norm(self.k(h).view(B, S, self.kv, self.hd)).transpose(1, 2)
        v = self.v(h).view(B, S, self.kv, self.hd).transpose(1, 2)
        q, k = q * cos + rotate_half(q) * sin, k * cos + rotate_half(k) * sin
        k = k.repeat_interleave(self.h // self.kv, dim=1)
        v = v.repeat_interleave(self.h // self.kv, dim=1)
        att = torch.softmax(q @ k.transpose(-1, -2) * 256 ** -0.5 + masks[self.sliding], dim=-1)
        x = x + self.n_post_attn(self.o((att @ v).transpose(1, 2).reshape(B, S, -1)))
        h = self.n_pre_ffw(x)
        return x + self.n_post_ffw(self.down(Fn.gelu(self.gate(h), approximate="tanh") * self.up(h)))


class Gemma3Model(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c = c
        self.emb = nn.Parameter(torch.randn(c["vocab"], c["dim"]) * 0.02, requires_grad=False)
        self.layers = nn.ModuleList(Gemma3Layer(c, (i + 1) % 6 != 0) for i in range(c["layers"]))
        self.norm = RMSNorm(c["dim"], True)

    def forward(self, ids):
        S, hd = ids.shape[1], HEAD_DIM_G3
        rope = {}
        for sliding, theta in ((True, 10000.0), (False, 1000000.0)):
            inv = 1.0 / (theta ** (torch.arange(0, hd, 2).float() / hd))
            fr = torch.outer(torch.arange(S).float(), inv)
            emb = torch.cat((fr, fr), -1)
            rope[sliding] = (emb.cos(), emb.sin())
        causal = torch.full((S, S), float("-inf")).triu(1)
        qi, ki = torch.arange(S).view(S, 1), torch.arange(S).view(1, S)
        masks = {False: causal, True: causal.masked_fill(ki <= qi - WINDOW_G3, float("-inf"))}
        x = self.emb[ids] * self.c["dim"] ** 0.5
        for layer in self.layers:
            x = layer(x, rope, masks)
        return Fn.linear(self.norm(x), self.emb)


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat((-x[..., h:], x[..., :h]), dim=-1)


class Layer(nn.Module):
    def __init__(self, c):
        super().__init__()
        d, hd = c["dim"], c["dim"] // c["heads"]
        self.h, self.kv, self.hd = c["heads"], c["kv"], hd
        self.q, self.k = LoraLinear(d, self.h * hd), LoraLinear(d, self.kv * hd)
        self.v, self.o = LoraLinear(d, self.kv * hd), LoraLinear(self.h * hd, d)
        self.gate, self.up, self.down = LoraLinear(d, c["ffn"]), LoraLinear(d, c["ffn"]), LoraLinear(c["ffn"], d)
        self.n1, self.n2 = RMSNorm(d), RMSNorm(d)

    def forward(self, x, cos, sin, mask):
        B, S, _ = x.shape
        h = self.n1(x)
        q = self.q(h).view(B, S, self.h, self.hd).transpose(1, 2)
        k = self.k(h).view(B, S, self.kv, self.hd).transpose(1, 2)
        v = self.v(h).view(B, S, self.kv, self.hd).transpose(1, 2)
        q, k = q * cos + rotate_half(q) * sin, k * cos + rotate_half(k) * sin
        if self.h != self.kv:
            k = k.repeat_interleave(self.h // self.kv, dim=1)
            v = v.repeat_interleave(self.h // self.kv, dim=1)
        att = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(self.hd) + mask, dim=-1)
        x = x + self.o((att @ v).transpose(1, 2).reshape(B, S, -1))
        h = self.n2(x)
        return x + self.down(Fn.silu(self.gate(h)) * self.up(h))


class Model(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c = c
        self.emb = nn.Parameter(torch.randn(c["vocab"], c["dim"]) * 0.02, requires_grad=False)
        self.layers = nn.ModuleList(Layer(c) for _ in range(c["layers"]))
        self.norm = RMSNorm(c["dim"])
        self.head = self.emb if c["tied"] else nn.Parameter(torch.randn(c["vocab"], c["dim"]) * 0.02, requires_grad=False)

    def forward(self, ids):
        S, hd = ids.shape[1], self.c["dim"] // self.c["heads"]
        inv = 1.0 / (10000.0 ** (torch.arange(0, hd, 2).float() / hd))
        fr = torch.outer(torch.arange(S).float(), inv)
        emb = torch.cat((fr, fr), -1)
        mask = torch.full((S, S), float("-inf")).triu(1)
        x = self.emb[ids]
        for layer in self.layers:
            x = layer(x, emb.cos(), emb.sin(), mask)
        return Fn.linear(self.norm(x), self.head)


def openblas(threads):
    """Gives OpenBLAS (PyTorch's BLAS on Debian) the same thread count as
    PyTorch's own pool, which torch.set_num_threads does not reach, and
    returns the name of the kernels it runs: Cooperlake or SkylakeX for its
    AVX-512 ones, Haswell for AVX2 (OPENBLAS_CORETYPE=Haswell forces them, as
    `make bench-train` does for the AVX2 column), or "" without OpenBLAS."""
    for name in ("libopenblas.so.0", ctypes.util.find_library("openblas")):
        if not name:
            continue
        try:
            lib = ctypes.CDLL(name)
        except OSError:
            continue
        lib.openblas_set_num_threads(threads)
        lib.openblas_get_corename.restype = ctypes.c_char_p
        return lib.openblas_get_corename().decode()
    return ""


def main():
    threads = int(sys.argv[1]) if len(sys.argv) > 1 else 2
    name = sys.argv[2] if len(sys.argv) > 2 else "stories15M"
    n = int(sys.argv[3]) if len(sys.argv) > 3 else 3
    batch = int(sys.argv[4]) if len(sys.argv) > 4 else 8
    seq = int(sys.argv[5]) if len(sys.argv) > 5 else 256
    torch.set_num_threads(threads)
    blas = openblas(threads)
    torch.manual_seed(0)
    c = CONFIGS[name]
    model = Gemma3Model(c) if c.get("gemma3") else Model(c)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=2e-4)
    x = torch.randint(0, c["vocab"], (batch, seq))

    def step():
        logits = model(x)
        loss = Fn.cross_entropy(logits[:, :-1].reshape(-1, c["vocab"]), x[:, 1:].reshape(-1))
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        return loss

    step()
    t0, c0 = time.perf_counter(), time.process_time()
    for _ in range(n):
        loss = step()
    dt, cpu = time.perf_counter() - t0, time.process_time() - c0
    print(json.dumps(dict(model=name, impl="torch " + torch.__version__ + " eager fp32", blas=blas, threads=threads,
                          trainable=sum(p.numel() for p in params), batch=batch, seq=seq,
                          tokens_per_s=round(n * batch * seq / dt, 1), step_ms=round(1000 * dt / n, 1),
                          tokens_per_cpu_s=round(n * batch * seq / cpu, 1),
                          peak_mib=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
                          loss=float(loss))), flush=True)


if __name__ == "__main__":
    main()
