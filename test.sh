#!/usr/bin/env bash
# Same set-up as ./run.sh (build tools, PostgreSQL), plus Chromium for the browser
# tests, then the whole test suite: ./mvnw -B -f tools/pom.xml verify [extra Maven arguments] (the app and the tools).
set -euo pipefail
cd "$(dirname "$0")"
# OpenMP threads of PyTorch sleep instead of spinning while waiting (much faster on a shared or busy machine).
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}

./scripts/ensure-build-tools.sh
./db/ensure-postgres.sh
# The real tokenizers (Llama 3, Qwen 3, Gemma 3) that RealTokenizerTest checks; offline it warns and they skip.
./scripts/fetch-tokenizers.sh

if [[ ! -x /usr/bin/chromium || ! -x /usr/bin/chromedriver ]]; then
  [[ $(id -u) -eq 0 ]] || { echo "test.sh: ERROR: /usr/bin/chromium or /usr/bin/chromedriver missing; run as root to install them" >&2; exit 1; }
  echo "test.sh: installing chromium and chromium-driver (apt-get)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null
  apt-get install -y -q chromium chromium-driver >/dev/null
fi

# The app and the tools (tools/train, tools/bench) in one Maven reactor: tools/pom.xml aggregates all three.
exec ./mvnw -B -f tools/pom.xml verify "$@"
