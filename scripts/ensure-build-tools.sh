#!/usr/bin/env bash
# Make sure the build can run: a JDK >= 17 (javac, jar), and the machine's own Maven (Debian's maven),
# with which the project's wrapper (./mvnw) fetches the Maven version it pins, the first time.
# Idempotent; installs missing Debian packages only when run as root.
# Prints nothing when everything is present.
set -euo pipefail

say() { printf 'ensure-build-tools: %s\n' "$*"; }
die() { printf 'ensure-build-tools: ERROR: %s\n' "$*" >&2; exit 1; }

jdk_major() { # prints the major version of javac on PATH, or nothing
  local v
  v=$(javac -version 2>&1 | awk '/^javac /{print $2; exit}') || true
  v=${v%%[.+-]*}
  [[ $v =~ ^[0-9]+$ ]] && printf '%s' "$v"
  return 0
}

missing=()
major=$(jdk_major)
if [[ -z $major || $major -lt 17 ]]; then
  # Debian 12: OpenJDK 17; later releases: a newer JDK, which builds release 17 as well.
  missing+=(default-jdk-headless)
fi
command -v mvn >/dev/null 2>&1 || missing+=(maven)
((${#missing[@]} == 0)) && exit 0

[[ $(id -u) -eq 0 ]] || die "missing: ${missing[*]} (need a JDK >= 17 and Maven); run as root to install them"
say "installing ${missing[*]} (apt-get)"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q >/dev/null || die "apt-get update failed"
apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null || die "apt-get install ${missing[*]} failed"
hash -r
major=$(jdk_major)
[[ -n $major && $major -ge 17 ]] \
  || die "javac on PATH is still not version 17 or newer ($(command -v javac || echo none)); select one with update-alternatives --config javac"
