#!/usr/bin/env python3
"""Loads folders written by TinyCheckpoint with Hugging Face transformers and compares HF's float32 logits and
greedy ids with ReferenceLlama's (reference-llama.json in each folder) or, for the other families,
ReferenceDecoder's (reference-decoder.json). A development check, not part of the build.

    ./mvnw -o -q test-compile surefire:test@default-test \
        -Dtest='TinyCheckpointTest#writeFoldersForHuggingFaceCrossCheck,FamiliesTest#writeFoldersForHuggingFaceCrossCheck' \
        -Dreference.crosscheck.dir=/tmp/tiny-crosscheck
    /work/venv-ref/bin/python scripts/reference/crosscheck_tiny_checkpoint.py /tmp/tiny-crosscheck

The family folders use the older config spelling (rope_theta, rope_scaling, sliding_window_pattern,
rope_local_base_freq) that hub checkpoints have, so this checks that transformers 5 reads them as the project does
(the committed hf-* folders of HfFamiliesTest cover transformers 5's own spelling).

Versions used: torch 2.13.0+cpu, transformers 5.18.0 (CPU, float32, attn_implementation="eager").
"""
import json
import sys
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM


@torch.no_grad()
def main(root):
    ok = True
    for folder in sorted(p for p in Path(root).iterdir()
                         if (p / "reference-llama.json").exists() or (p / "reference-decoder.json").exists()):
        name = "reference-llama.json" if (folder / "reference-llama.json").exists() else "reference-decoder.json"
        ref = json.loads((folder / name).read_text())
        model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32, attn_implementation="eager").eval()
        ids = torch.tensor([ref["prompt"]])
        hf = model(ids, use_cache=False).logits[0].double().reshape(-1)
        ours = torch.tensor(ref["logits"], dtype=torch.float64)
        diff = float((hf - ours).abs().max())
        scale = max(1.0, float(hf.abs().max()))
        gen = model.generate(ids, do_sample=False, max_new_tokens=len(ref["greedy"]), eos_token_id=None,
                             pad_token_id=0)[0, ids.shape[1]:].tolist()
        same = gen == ref["greedy"]
        ok &= diff / scale < 2e-5 and same
        print(f"{folder.name}: max|diff| {diff:.3e}, relative {diff / scale:.3e}, greedy equal: {same}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
