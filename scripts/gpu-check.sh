#!/usr/bin/env bash
# The prepared GPU check. On a machine with an NVIDIA GPU (driver and nvidia-smi visible):
#   scripts/gpu-check.sh              build with -Pgpu, run the @Tag("gpu") tests, then lab.steering.bench.GpuCheck:
#                                     CPU against GPU (logits, Jacobians, steered tokens) on stories260K-text and the
#                                     default model, batched decoding against unbatched on the GPU (plain and steered
#                                     rows of different prompts: batchedTokensMatch of batchedTokens, logprob diff),
#                                     timings at Llama-3.2-3B shapes (random weights, no download).
#   scripts/gpu-check.sh --cpu-smoke  the same steps on the CPU at reduced shapes (no GPU needed; a few minutes).
# Prints one JSON report on stdout (progress goes to stderr) and also writes it to target/gpu-check.json.
# Budget: 8 minutes in all (LAB_GPU_CHECK_SECONDS, default 420 for the Java part).
# The -Pgpu build needs ai.djl.pytorch:pytorch-native-cu124:2.5.1 (2.5 GB) in the Maven repository: a machine
# without network needs ~/.m2 filled beforehand (./mvnw -Pgpu -DskipTests package once online) and LAB_MVN_OFFLINE=1.
# Environment: LAB_GPU_DTYPE (bf16), LAB_THREADS, LAB_MVN_OFFLINE=1 (mvnw -o), JAVA_OPTS (default -Xmx24g on a GPU).
set -euo pipefail
cd "$(dirname "$0")/.."
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}
mode=gpu
case "${1:-}" in
  --cpu-smoke) mode=cpu ;;
  "") ;;
  *) echo "usage: scripts/gpu-check.sh [--cpu-smoke]" >&2; exit 2 ;;
esac
log() { echo "gpu-check: $*" >&2; }
start=$(date +%s)
extra=() # Maven arguments of this mode (also given to tools/classpath.sh)
[[ ${LAB_MVN_OFFLINE:-0} == 1 ]] && extra+=(-o)
if [[ $mode == gpu ]]; then
  if ! command -v nvidia-smi >/dev/null || ! nvidia-smi -L >&2; then
    echo '{"error": "no NVIDIA GPU visible (nvidia-smi -L failed); use --cpu-smoke"}'
    exit 2
  fi
  extra+=(-Pgpu)
  java_args=(${JAVA_OPTS:--Xmx24g})
  check_args=(--dtype "${LAB_GPU_DTYPE:-bf16}")
else
  java_args=(${JAVA_OPTS:--Xmx4g})
  check_args=(--cpu --small --dtype "${LAB_GPU_DTYPE:-bf16}")
fi

# the app and the benchmarks (tools/bench, where GpuCheck and GpuParityTest live): one Maven reactor
mvn=(./mvnw -B -q "${extra[@]}" -f tools/pom.xml -pl bench -am)
log "build ($mode) and gpu-tagged tests: ${mvn[*]} test"
rm -f target/surefire-reports/TEST-*Gpu*.xml tools/bench/target/surefire-reports/TEST-*Gpu*.xml
tests_rc=0
"${mvn[@]}" test -Dgroups=gpu -Dlab.excludedTags=bench -Dsurefire.failIfNoSpecifiedTests=false >&2 || tests_rc=$?
# totals of the gpu-tagged test classes (surefire's XML reports)
tests_json=$(awk 'BEGIN { t = f = e = s = 0 }
  /<testsuite / { for (i = 1; i <= NF; i++) { split($i, kv, "=\""); sub(/".*/, "", kv[2]);
      if (kv[1] == "tests") t += kv[2]; if (kv[1] == "failures") f += kv[2];
      if (kv[1] == "errors") e += kv[2]; if (kv[1] == "skipped") s += kv[2] } }
  END { printf "{\"run\": %d, \"failures\": %d, \"errors\": %d, \"skipped\": %d", t, f, e, s }' \
  target/surefire-reports/TEST-*Gpu*.xml tools/bench/target/surefire-reports/TEST-*Gpu*.xml 2>/dev/null || echo '{"run": 0, "failures": 0, "errors": 0, "skipped": 0')
tests_json="$tests_json, \"mavenExit\": $tests_rc}"

cp=$(SKIP_COMPILE=1 LAB_TOOLS_MAVEN_ARGS="${extra[*]}" tools/classpath.sh bench)
models=(../shared/models/stories260K-text "$(ls -d models/*/ 2>/dev/null | head -n 1)")
used=$(( $(date +%s) - start ))
budget=${LAB_GPU_CHECK_SECONDS:-$(( 450 - used ))}
log "GpuCheck (${budget}s left of its budget) on ${models[*]}"
java "${java_args[@]}" ${LAB_THREADS:+-Dai.djl.pytorch.num_threads=$LAB_THREADS} \
  -Dorg.slf4j.simpleLogger.defaultLogLevel=warn -cp "$cp" \
  lab.steering.bench.GpuCheck "${check_args[@]}" --budget-seconds "$budget" --tests "$tests_json" "${models[@]}" \
  > target/gpu-check.json
cat target/gpu-check.json
log "done in $(( $(date +%s) - start ))s"
