#!/usr/bin/env bash
# Build Steering Lab if needed, make sure PostgreSQL is up, and start the app.
#   ./run.sh [extra arguments for the app]
# Environment: LAB_PORT (8080), LAB_DB_URL, LAB_DB_USER, LAB_DB_PASSWORD, LAB_MODELS_DIR,
# LAB_DEVICE (auto|cpu|cuda|cuda:N), LAB_LOG_LEVEL are read by the app; JAVA_OPTS is
# passed to the JVM. LAB_DEVICE=cuda* builds with the CUDA natives (./mvnw -Dgpu).
set -euo pipefail
cd "$(dirname "$0")"
# OpenMP and malloc settings for PyTorch's native side (see the script).
source scripts/native-env.sh

JAR=target/quarkus-app/quarkus-run.jar
FLAVOR_STAMP=target/lab-build-flavor
PORT=${LAB_PORT:-8080}
case ${LAB_DEVICE:-auto} in
  cuda*) flavor=gpu; mvn_flavor=(-Dgpu) ;;
  *) flavor=cpu; mvn_flavor=() ;;
esac

needs_build() {
  [[ -f $JAR ]] || return 0
  [[ $(cat "$FLAVOR_STAMP" 2>/dev/null || true) == "$flavor" ]] || return 0
  local inputs=() p
  for p in pom.xml src db .mvn; do [[ -e $p ]] && inputs+=("$p"); done
  [[ -n $(find "${inputs[@]}" -newer "$JAR" -print -quit 2>/dev/null || true) ]]
}

./scripts/ensure-build-tools.sh
if needs_build; then
  echo "run.sh: building ($flavor): ./mvnw -B package -DskipTests${mvn_flavor[*]:+ ${mvn_flavor[*]}}"
  ./mvnw -B -ntp package -DskipTests "${mvn_flavor[@]}"
  [[ -f $JAR ]] || { echo "run.sh: ERROR: build finished but $JAR is missing" >&2; exit 1; }
  echo "$flavor" > "$FLAVOR_STAMP"
fi

./db/ensure-postgres.sh

# The shared real checkpoints (stories260K), when they sit beside the project, are offered too.
if [[ -d ../shared/models ]]; then
  shared_models=$(cd ../shared/models && pwd)
  case ":${LAB_MODELS_DIR:-}:" in
    *":$shared_models:"*) ;;
    *) export LAB_MODELS_DIR="${LAB_MODELS_DIR:+$LAB_MODELS_DIR:}$shared_models" ;;
  esac
fi

# Loaded float32 weights live in direct buffers, and the default model memory budget is the smaller of half the
# memory and 3/4 of the JVM's direct memory limit (docs/models.md): a limit of 2/3 of the memory makes that budget
# half the memory (12 GB on 24 GB: a 3B bfloat16 model, held compact, fits). JAVA_OPTS can set it otherwise.
if [[ "${JAVA_OPTS:-}" != *MaxDirectMemorySize* ]]; then
  mem_kb=$(awk '/^MemTotal:/ { print $2 }' /proc/meminfo 2>/dev/null || echo 0)
  if (( mem_kb > 0 )); then
    JAVA_OPTS="${JAVA_OPTS:-} -XX:MaxDirectMemorySize=$(( mem_kb * 2 / 3 ))k"
  fi
fi

echo "run.sh: starting Steering Lab on http://localhost:$PORT  (Ctrl-C stops it)"
# shellcheck disable=SC2086 # JAVA_OPTS is a list of JVM options
exec java ${JAVA_OPTS:-} -Dquarkus.http.port="$PORT" -jar "$JAR" "$@"
