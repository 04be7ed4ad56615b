#!/usr/bin/env bash
# Added size in the real filter (not part of run.sh: it builds the whole gateway a dozen times,
# ~30 s each with a warm target dir, minutes for the first). Two parts:
#  1. The gateway as it was just before it took a regex engine (the parent of the commit that
#     added regex-automata to core/Cargo.toml; REV= overrides), built as is and then once per
#     engine configuration with this crate linked in (its `count`/`check` exports keep the
#     engine alive): what each engine adds to the real filter.
#  2. The gateway at HEAD with its own regex-automata feature list, and with that list trimmed.
# Sources are exported with `git archive` into target/gateway-size/ (the work tree is not
# touched). GW_TARGET_DIR may point at a warm cargo target dir.
set -euo pipefail
cd "$(dirname "$0")"
HERE=$PWD
ROOT=$(git rev-parse --show-toplevel)
WORK=$HERE/target/gateway-size
TARGET_DIR=${GW_TARGET_DIR:-$WORK/target}
added=$(git -C "$ROOT" log --format=%H -S'regex-automata' -- core/Cargo.toml | tail -1)
REV=${REV:-${added:+$added^}}
REV=${REV:-HEAD}

export_tree() { # export_tree <rev>
  rm -rf "$WORK/src" && mkdir -p "$WORK/src"
  git -C "$ROOT" archive "$1" | tar -x -C "$WORK/src" --exclude=bench
  # git archive stamps files with the commit time, older than the last build: cargo would take
  # a changed source for fresh. Stamp them now so every export is rebuilt from what it holds.
  find "$WORK/src" -type f -exec touch {} +
}
size_of() {
  (cd "$WORK/src" && CARGO_TARGET_DIR=$TARGET_DIR cargo build -q --release --target wasm32-wasip1 -p ai-gateway >&2)
  stat -c %s "$TARGET_DIR/wasm32-wasip1/release/ai_gateway.wasm"
}
kib() { awk -v b="$1" 'BEGIN { printf "%+.1f KiB", b / 1024 }'; }

echo "| gateway | configuration | filter .wasm (bytes) | added |"
echo "|---|---|---:|---:|"
export_tree "$REV"
cp "$WORK/src/Cargo.toml" "$WORK/Cargo.toml.orig"
cp "$WORK/src/src/lib.rs" "$WORK/lib.rs.orig"
short=$(git -C "$ROOT" rev-parse --short "$REV")
base=$(size_of)
echo "| $short | no engine | $base | |"
for cfg in ${CONFIGS:-regex-default regex-slim regex-lean lite ra-hybrid-base ra-hybrid ra-meta-base,ra-unicode ra-meta-base,ra-unicode,ra-backtrack ra-meta ra-meta,ra-backtrack}; do
  cp "$WORK/Cargo.toml.orig" "$WORK/src/Cargo.toml"
  cp "$WORK/lib.rs.orig" "$WORK/src/src/lib.rs"
  feats=$(echo "$cfg" | sed 's/[^,]*/"&"/g')
  sed -i "/^\[dependencies\]/a engine-bench = { path = \"$HERE\", features = [$feats] }" "$WORK/src/Cargo.toml"
  printf '\n#[cfg(target_arch = "wasm32")]\nextern crate engine_bench;\n' >> "$WORK/src/src/lib.rs"
  s=$(size_of)
  echo "| $short | + engine-bench \`$cfg\` | $s | $(kib $((s - base))) |"
done

export_tree HEAD
core=$WORK/src/core/Cargo.toml
grep -q '^regex-automata' "$core" || exit 0
short=$(git -C "$ROOT" rev-parse --short HEAD)
head=$(size_of)
feats=$(sed -n 's/^regex-automata.*features = \[\(.*\)\].*/\1/p' "$core" | tr -d ' ')
echo "| $short | its own regex-automata features: \`$feats\` | $head | |"
without() { # the HEAD feature list minus the named features
  local f=$feats; for x in "$@"; do f=$(echo ",$f," | sed "s/,\"$x\",/,/; s/^,//; s/,$//"); done; echo "$f"
}
for drop in "perf-literal" "perf-literal nfa-backtrack"; do
  trimmed=$(without $drop)
  sed -i "s/^\(regex-automata.*features = \[\).*\(\].*\)/\1$trimmed\2/" "$core"
  s=$(size_of)
  echo "| $short | without $(echo $drop | sed 's/ / and /') | $s | $(kib $((s - head))) |"
  export_tree HEAD
done
