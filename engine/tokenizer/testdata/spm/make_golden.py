#!/usr/bin/env python3
"""Golden ids for orchmind's SentencePiece-style tokenizer (engine/tokenizer).

Encodes a fixed list of test texts with Google's reference SentencePiece
library (the `sentencepiece` Python package, protobuf model file) and writes
texts and ids to golden.json beside this script. The Go test
TestSentencePieceGolden loads the same vocabulary from its llama2.c
tokenizer.bin export and must give identical ids.

Only texts and ids are written; the vocabulary itself is not copied.

Usage (needs `sentencepiece`; on Debian: apt-get install python3-sentencepiece):

  python3 engine/tokenizer/testdata/spm/make_golden.py \
      ../shared/models/llama2-tokenizer/tokenizer.model
"""

import json
import os
import sys

import sentencepiece as spm

TEXTS = [
    "Once upon a time",
    "Hello world",
    " Hello world",
    "Hello  world",
    "Hello   world   ",
    "  leading spaces",
    "The quick brown fox jumps over the lazy dog.",
    "A paz é o caminho, não há caminho para a paz.",
    "Ação, coração, informação e pão de queijo!",
    "São Paulo, 25 de janeiro de 1554.",
    "1234567890 + 0.5 = 1234567890.5",
    "def main():\n    print(\"hi\")\n    return 0\n",
    "line one\nline two\n\nline four",
    "tabs\tand\ttabs",
    "emoji: 🙂🚀 and 日本語のテキスト",
    "Ünïcödé ñ ß ø å œ",
    "what's up? I'm fine, they're here, we've gone, you'll see, he'd know",
    "¿Dónde está la biblioteca?",
    "https://example.com/path?query=1&x=y#frag",
    "a",
    " ",
    "\n",
    "Привет, мир! Это тест.",
    "<s> not a special token </s>",
]


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: make_golden.py PATH/TO/tokenizer.model")
    sp = spm.SentencePieceProcessor(model_file=sys.argv[1])
    cases = []
    for t in TEXTS:
        ids = sp.encode(t)
        cases.append({"text": t, "ids": ids, "decoded": sp.decode(ids)})
    out = {
        "generator": "make_golden.py with sentencepiece " + spm.__version__,
        "model": os.path.basename(sys.argv[1]),
        "vocab_size": sp.get_piece_size(),
        "bos": sp.bos_id(),
        "eos": sp.eos_id(),
        "cases": cases,
    }
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "golden.json")
    with open(path, "w", encoding="utf-8") as f:
        # One case per line keeps the file short and its diffs readable.
        head = {k: v for k, v in out.items() if k != "cases"}
        f.write(json.dumps(head, ensure_ascii=False)[:-1] + ', "cases": [\n')
        f.write(",\n".join(json.dumps(c, ensure_ascii=False) for c in cases))
        f.write("\n]}\n")
    print("wrote", path, len(cases), "cases")


if __name__ == "__main__":
    main()
