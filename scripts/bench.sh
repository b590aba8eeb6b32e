#!/usr/bin/env bash
# Benchmarks, separate from the tests. Usage:
#   scripts/bench.sh generation [model folder ...]   (default: the default model and ../shared/models/stories260K)
#   scripts/bench.sh jacobian [model folder ...]     (same default, plus the random Llama 3.2 1B-shaped checkpoint of
#                                                    scripts/random-checkpoint.sh when it exists: matrix-free only;
#                                                    LAB_BENCH_FULL_LARGE=1 also runs its full Jacobian, ~6 min)
#   scripts/bench.sh steering [model folder] [concept prompt]   (default: models/steering-lab-base)
#   scripts/bench.sh steering-eval [--model DIR] [--concepts N] [--prompts N] [--json OUT] ...   (SteeringEvaluation)
#   scripts/bench.sh operator-specificity [--model DIR] [--concepts 10] [--prompts 5] [--layer L]   (OperatorSpecificity)
#   scripts/bench.sh batching [model folder] [--rows 32] [--repeats 2]   (BatchingBench: batched vs one by one)
#   scripts/bench.sh steering-benchmark [--model DIR] [--concepts N] [--prompts N] [--strengths 1,2,4] [--json OUT] ...
#                                                    (issue 14's benchmark, SteeringBenchmarkRun; docs/evaluation.md)
#   scripts/bench.sh ops                             (one decoding step's ops on the engine's threads and on one)
#   scripts/bench.sh memory <model folder> compact|float32 [k]   (MemoryBench: resident size, tokens/s, top-k time)
# Builds the benchmarks (the Maven project tools/bench, on the app's core classes) when their sources changed, then
# runs the benchmark's main class on the CPU.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/native-env.sh # as run.sh: the benchmarks measure the app as it runs
what=${1:-generation}
shift || true
cp=$(tools/classpath.sh bench)
case "$what" in
  generation)
    if [ $# -eq 0 ]; then
      set -- $(ls -d models/*/ 2>/dev/null | head -n 1) ../shared/models/stories260K
    fi
    exec java -Xmx4g ${LAB_THREADS:+-Dai.djl.pytorch.num_threads=$LAB_THREADS} -cp "$cp" lab.steering.bench.GenerationBench "$@" ;;
  jacobian)
    if [ $# -eq 0 ]; then
      big=${LAB_CHECKPOINT_CACHE:-$HOME/.cache/steering-lab/checkpoints}/llama-3.2-1b-random
      set -- $(ls -d models/*/ 2>/dev/null | head -n 1) ../shared/models/stories260K
      if [ -s "$big/model.safetensors" ]; then set -- "$@" "$big"; fi
    fi
    exec java -Xmx8g ${LAB_THREADS:+-Dai.djl.pytorch.num_threads=$LAB_THREADS} \
      ${LAB_BENCH_FULL_LARGE:+-Dbench.fullLarge=true} -cp "$cp" lab.steering.bench.JacobianBench "$@" ;;
  steering)
    exec java -Xmx4g ${LAB_THREADS:+-Dai.djl.pytorch.num_threads=$LAB_THREADS} -cp "$cp" lab.steering.bench.SteeringBench "$@" ;;
  steering-eval)
    exec java -Xmx4g ${LAB_THREADS:+-Dai.djl.pytorch.num_threads=$LAB_THREADS} -cp "$cp" lab.steering.bench.SteeringEvaluation "$@" ;;
  batching)
    exec java -Xmx4g ${LAB_THREADS:+-Dai.djl.pytorch.num_threads=$LAB_THREADS} -cp "$cp" lab.steering.bench.BatchingBench "$@" ;;
  operator-specificity)
    exec java -Xmx4g ${LAB_THREADS:+-Dai.djl.pytorch.num_threads=$LAB_THREADS} -cp "$cp" lab.steering.bench.OperatorSpecificity "$@" ;;
  steering-benchmark)
    exec java -Xmx4g ${LAB_THREADS:+-Dai.djl.pytorch.num_threads=$LAB_THREADS} -cp "$cp" lab.steering.bench.SteeringBenchmarkRun "$@" ;;
  memory)
    exec java -Xmx1g -XX:MaxDirectMemorySize=16g ${LAB_THREADS:+-Dai.djl.pytorch.num_threads=$LAB_THREADS} -cp "$cp" lab.steering.bench.MemoryBench "$@" ;;
  ops)
    exec java -Xmx1g ${LAB_THREADS:+-Dai.djl.pytorch.num_threads=$LAB_THREADS} -cp "$cp" lab.steering.bench.OpBench "$@" ;;
  *) echo "unknown benchmark '$what' (known: generation, jacobian, steering, steering-eval, operator-specificity, batching, steering-benchmark, ops, memory)" >&2; exit 2 ;;
esac
