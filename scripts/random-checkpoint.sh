#!/usr/bin/env bash
# A random checkpoint in the exact shape of Llama 3.2 1B (lab.steering.bench.RandomCheckpoint: normal(0, 0.02)
# weights, unit norms, bfloat16, 2.5 GB; 5 GB once loaded in float32) with the Llama 3 tokenizer, for the
# matrix-free benchmark at a real model's size (scripts/bench.sh jacobian picks it up). Not committed: written to
#   ${LAB_CHECKPOINT_CACHE:-$HOME/.cache/steering-lab/checkpoints}/llama-3.2-1b-random
# The tokenizer comes from scripts/fetch-tokenizers.sh's cache (fetched first if absent). Idempotent: an existing
# checkpoint is kept (pass --force to write it again). About a minute on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${LAB_CHECKPOINT_CACHE:-$HOME/.cache/steering-lab/checkpoints}/llama-3.2-1b-random
tokenizers=${LAB_TOKENIZER_CACHE:-$HOME/.cache/steering-lab/tokenizers}
if [[ ${1:-} != --force && -s $out/model.safetensors && -s $out/config.json && -s $out/tokenizer.json ]]; then
  echo "$out"
  exit 0
fi
if [[ ! -s $tokenizers/llama3/tokenizer.json ]]; then
  scripts/fetch-tokenizers.sh >&2
fi
if [[ ! -s $tokenizers/llama3/tokenizer.json ]]; then
  echo "random-checkpoint: no Llama 3 tokenizer in $tokenizers/llama3 (scripts/fetch-tokenizers.sh could not fetch it)" >&2
  exit 1
fi
cp=$(tools/classpath.sh bench)
java -Xmx512m -cp "$cp" lab.steering.bench.RandomCheckpoint \
  "$out" "$tokenizers/llama3" >&2
echo "$out"
