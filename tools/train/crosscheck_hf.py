#!/usr/bin/env python3
"""Optional cross-check, NOT part of the build (the project needs no Python).

Loads the trained tokenizer with Hugging Face's own libraries and checks, on every validation document, that
`tokenizers` and `transformers.AutoTokenizer` give the same ids (BOS once, first) and decode the text back exactly.
Compare the printed ids of the sample sentence with `tools/train/java.sh TokenizerCheck --show "..."` (DJL).

    python3 -m venv /tmp/hfvenv && /tmp/hfvenv/bin/pip install tokenizers transformers
    /tmp/hfvenv/bin/python tools/train/crosscheck_hf.py [target/corpus]

Last run (see docs/corpus.md): tokenizers 0.23.2, transformers 5.18.0: 297 documents, 0 mismatches.
"""
import sys

import tokenizers
import transformers
from tokenizers import Tokenizer
from transformers import AutoTokenizer

corpus = sys.argv[1] if len(sys.argv) > 1 else "target/corpus"
folder = corpus + "/tokenizer"
tok = Tokenizer.from_file(folder + "/tokenizer.json")
auto = AutoTokenizer.from_pretrained(folder)
with open(corpus + "/valid.txt", encoding="utf-8") as f:
    docs = f.read()[:-1].split("\n\n")

round_trip = auto_diff = bos = 0
for doc in docs:
    ids = tok.encode(doc).ids
    bos += ids[0] != 0 or ids.count(0) != 1
    round_trip += tok.decode(ids, skip_special_tokens=True) != doc
    a = auto(doc)["input_ids"]
    auto_diff += a != ids or auto.decode(a, skip_special_tokens=True) != doc
print("tokenizers", tokenizers.__version__, "transformers", transformers.__version__)
print("documents", len(docs), "round-trip mismatches", round_trip, "AutoTokenizer mismatches", auto_diff,
      "BOS problems", bos)
print("ids:", tok.encode("In the beginning God created the heaven and the earth.").ids)
sys.exit(1 if round_trip or auto_diff or bos else 0)
