#!/usr/bin/env bash
# Runs one main class of lab.steering.train (the Maven project tools/train) without the Quarkus launcher.
#   tools/train/java.sh CorpusBuilder --raw target/corpus/raw --out target/corpus
# Builds first when sources changed (tools/classpath.sh; SKIP_COMPILE=1 uses what was built).
# JAVA_OPTS (default -Xmx4g) is passed to the JVM.
set -euo pipefail
cd "$(dirname "$0")/../.."
main="$1"; shift
cp=$(tools/classpath.sh train)
# shellcheck disable=SC2086
exec java ${JAVA_OPTS:--Xmx4g} -Dai.djl.offline=true -cp "$cp" "lab.steering.train.$main" "$@"
