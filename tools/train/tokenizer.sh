#!/usr/bin/env bash
# Trains the byte-level BPE tokenizer on $CORPUS_DIR/train.txt (run tools/train/corpus.sh first), writes
# $CORPUS_DIR/tokenizer/{tokenizer.json,tokenizer_config.json,special_tokens_map.json,training.json}, then checks it
# with DJL's Hugging Face tokenizer (round trip and ids equal to the own encoder on every validation and training
# document) and adds token counts to $CORPUS_DIR/stats.json. Exits non-zero if any check fails.
#   tools/train/tokenizer.sh [--vocab-size 4096] [--model-max-length 1024]
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT="${CORPUS_DIR:-target/corpus}"
[[ -s "$OUT/train.txt" && -s "$OUT/valid.txt" ]] || { echo "no corpus in $OUT: run tools/train/corpus.sh" >&2; exit 1; }

start=$(date +%s)
tools/train/java.sh BpeTrainer --corpus "$OUT/train.txt" --out "$OUT/tokenizer" "$@"
SKIP_COMPILE=1 tools/train/java.sh TokenizerCheck --tokenizer "$OUT/tokenizer" --valid "$OUT/valid.txt" \
  --train "$OUT/train.txt" --stats "$OUT/stats.json" --documents "$OUT/documents.tsv"
echo "[tokenizer] done in $(( $(date +%s) - start )) s: $OUT/tokenizer"
