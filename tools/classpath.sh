#!/usr/bin/env bash
# Prints the runtime classpath of one of the tools (train or bench): its classes, the app's core classes and the
# jars they need. Builds them first when a source or a pom changed since the last build: one Maven reactor
# (tools/pom.xml: the app, then the tool); the list is cached in target/tools-<tool>-classpath.txt.
#   tools/classpath.sh train|bench     (SKIP_COMPILE=1: use what was built; LAB_TOOLS_MAVEN_ARGS: e.g. -Pgpu)
set -euo pipefail
tool=${1:?usage: tools/classpath.sh train|bench}
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
[[ -f tools/$tool/pom.xml ]] || { echo "tools/classpath.sh: no tool '$tool' (tools/train, tools/bench)" >&2; exit 2; }
# one cached list per set of extra Maven arguments (-Pgpu switches the PyTorch natives)
file=target/tools-$tool${LAB_TOOLS_MAVEN_ARGS:+$(tr -c 'A-Za-z0-9\n' - <<< "$LAB_TOOLS_MAVEN_ARGS")}-classpath.txt
stale() {
  [[ ! -s $file ]] && return 0
  [[ -n "$(find pom.xml tools/*.xml tools/*/pom.xml src/main tools/*/src/main -newer "$file" -print -quit)" ]]
}
if [[ ! -s $file || ( "${SKIP_COMPILE:-0}" != 1 && $(stale && echo y) == y ) ]]; then
  mkdir -p target
  # test-compile, not compile: the tools' tests use the app's test helpers (its test-jar), which Maven resolves
  # inside the reactor only once the app's tests are compiled. The class folders are reactor outputs, not jars.
  # shellcheck disable=SC2086
  ./mvnw -B -q -f tools/pom.xml -pl "$tool" -am test-compile dependency:build-classpath \
    -Dmdep.outputFile="$root/$file" -DincludeScope=runtime ${LAB_TOOLS_MAVEN_ARGS:-} >&2
fi
echo "$root/tools/$tool/target/classes:$(cat "$file")"
