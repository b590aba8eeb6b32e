#!/usr/bin/env bash
# Runs one main class of lab.steering.train with the project's runtime classpath, without the Quarkus launcher.
#   train/java.sh CorpusBuilder --raw target/corpus/raw --out target/corpus
# Compiles first (./mvnw -q compile) and caches the dependency classpath in target/cp.txt.
# JAVA_OPTS (default -Xmx4g) is passed to the JVM.
set -euo pipefail
cd "$(dirname "$0")/.."
main="$1"; shift
if [[ "${SKIP_COMPILE:-0}" != 1 ]]; then
  ./mvnw -B -q compile
fi
if [[ ! -s target/cp.txt || pom.xml -nt target/cp.txt ]]; then
  ./mvnw -B -q dependency:build-classpath -Dmdep.outputFile=target/cp.txt
fi
# shellcheck disable=SC2086
exec java ${JAVA_OPTS:--Xmx4g} -Dai.djl.offline=true -cp "target/classes:$(cat target/cp.txt)" \
  "lab.steering.train.$main" "$@"
