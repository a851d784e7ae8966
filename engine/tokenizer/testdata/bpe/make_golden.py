#!/usr/bin/env python3
"""Writes gpt2_golden.json: GPT-2 token ids of the texts below, computed with
the algorithm of OpenAI's gpt-2 src/encoder.py (byte-to-unicode alphabet,
regex pre-split with the `regex` module, lowest-rank bigram merged
everywhere until none applies), plus the pre-token splits of the GPT-2,
Llama 3, Qwen2 and SmolLM patterns for the same texts.

Usage: python3 make_golden.py DIR > gpt2_golden.json
where DIR holds GPT-2's encoder.json and vocab.bpe (not committed; see
bpe_test.go for where to find them). Needs python3-regex.
"""
import json
import sys

import regex

GPT2 = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
LLAMA3 = r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""
QWEN2 = LLAMA3.replace(r"\p{N}{1,3}", r"\p{N}")

TEXTS = [
    "Hello world",
    "The quick brown fox jumps over the lazy dog.",
    "  leading spaces and trailing spaces   ",
    "Multiple     spaces\tand\ttabs\n\nnew lines\r\nCRLF",
    "I'm sure they've said it's what we'd do, wouldn't you? THEY'RE LOUD'LL",
    "Numbers: 0 7 42 12345 3.14159 1,000,000 and 2024-05-09",
    "Ação, coração, pão e feijão: é o que há! Você já comeu açaí?",
    "Olá, mundo. Não sei se é útil, mas é bonito.",
    "Ünïcödé àccênts ñ ß œ ø å",
    "日本語のテキストと中文文本",
    "Emoji: 👋🏽 🎉🎉 ❤️ 👨‍👩‍👧",
    "def f(x):\n    return x ** 2  # square\n",
    "for (int i = 0; i < n; ++i) { sum += a[i]; }",
    '{"key": "value", "list": [1, 2, 3]}',
    "https://example.com/path?query=1&x=y#frag",
    "!!!???...---___***",
    "\n\n\n",
    " ",
    "a",
    "supercalifragilisticexpialidocious antidisestablishmentarianism",
    "Привет, мир! Γειά σου κόσμε! مرحبا بالعالم",
    "Mixed123numbers456and789letters",
    "tab\there  \n  indented\n\tline",
    "Once upon a time, there was a little girl named Lily. She loved to play outside.",
]


def bytes_to_unicode():
    keep = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAC + 1)) + list(range(0xAE, 0xFF + 1))
    table = {}
    extra = 0
    for b in range(256):
        if b in keep:
            table[b] = chr(b)
        else:
            table[b] = chr(256 + extra)
            extra += 1
    return table


def bpe(word, ranks):
    word = list(word)
    while len(word) > 1:
        pairs = {(word[i], word[i + 1]) for i in range(len(word) - 1)}
        best = min(pairs, key=lambda p: ranks.get(p, float("inf")))
        if best not in ranks:
            break
        merged = []
        i = 0
        while i < len(word):
            if i + 1 < len(word) and (word[i], word[i + 1]) == best:
                merged.append(word[i] + word[i + 1])
                i += 2
            else:
                merged.append(word[i])
                i += 1
        word = merged
    return word


def smollm_split(text):
    out = []
    for part in regex.split(r"(\p{N})", text):
        if part == "":
            continue
        if regex.fullmatch(r"\p{N}", part):
            out.append(part)
        else:
            out.extend(regex.findall(GPT2, part))
    return out


def main():
    d = sys.argv[1]
    with open(d + "/encoder.json", encoding="utf-8") as f:
        encoder = json.load(f)
    with open(d + "/vocab.bpe", encoding="utf-8") as f:
        lines = f.read().split("\n")[1:]
    ranks = {}
    for i, line in enumerate(l for l in lines if l):
        a, b = line.split(" ")
        ranks[(a, b)] = i
    b2u = bytes_to_unicode()
    cases = []
    for text in TEXTS:
        ids = []
        for piece in regex.findall(GPT2, text):
            word = "".join(b2u[b] for b in piece.encode("utf-8"))
            ids.extend(encoder[t] for t in bpe(word, ranks))
        cases.append({
            "text": text,
            "ids": ids,
            "pretokens": {
                "gpt2": regex.findall(GPT2, text),
                "llama-bpe": regex.findall(LLAMA3, text),
                "qwen2": regex.findall(QWEN2, text),
                "smollm": smollm_split(text),
            },
        })
    json.dump({
        "generator": "make_golden.py: encoder.py algorithm, python regex " + regex.__version__,
        "vocab_size": len(encoder),
        "merges": len(ranks),
        "cases": cases,
    }, sys.stdout, ensure_ascii=False, indent=1)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
