#!/usr/bin/env bash
# Builds and runs the regex-engine measurement (see README.md) and prints one Markdown table.
# Needs cargo with the wasm32-wasip1 target and Node >= 20 (node:wasi runs the wasm in V8).
# First run ~5 min (it compiles each engine's feature set twice, once for size and once for
# speed); later runs reuse target/ and take ~1 min. MIN_MS (default 100) is the least time spent
# timing each cell; the details (check answers, pattern-language differences) go to
# target/engine-bench/details.md.
set -euo pipefail
cd "$(dirname "$0")"
MIN_MS=${MIN_MS:-100}
OUT=target/engine-bench
mkdir -p "$OUT"
RESULTS=$OUT/results.tsv
: > "$RESULTS"
WASM=wasm32-wasip1

# Path of the artifact cargo just built: the `filenames` of the compiler-artifact message
# whose target kind is $1 (cdylib or bin) and whose file ends in .wasm or is an executable.
artifact() {
  node -e '
    const kind = process.argv[1]; let out = "";
    for (const line of require("fs").readFileSync(0, "utf8").split("\n")) {
      if (!line.startsWith("{")) continue;
      const m = JSON.parse(line);
      if (m.reason !== "compiler-artifact" || !m.target.kind.includes(kind)) continue;
      out = kind === "bin" ? (m.executable || out) : (m.filenames.find(f => f.endsWith(".wasm")) || out);
    }
    console.log(out);' "$1"
}

build() { # build <target> <kind> <features> [cargo args...]
  local target=$1 kind=$2 features=$3; shift 3
  cargo build --release --target "$target" --message-format=json-render-diagnostics \
    ${features:+--features "$features"} "$@" | artifact "$kind"
}

echo "== .wasm size of the tiny cdylib per engine ($WASM, the gateway's release profile)" >&2
for cfg in none regex-default regex-slim regex-lean lite ra-meta ra-meta,ra-backtrack \
    ra-meta-base,ra-unicode ra-hybrid ra-hybrid-base regex-slim,ra-hybrid; do
  features=$cfg; [ "$cfg" = none ] && features=
  file=$(build $WASM cdylib "$features" --lib)
  printf 'Z\t%s\t%s\n' "$cfg" "$(stat -c %s "$file")" >> "$RESULTS"
done

echo "== throughput: regex (default), regex-lite, regex-automata (meta, hybrid), natively and in V8" >&2
HOST=$(rustc -vV | sed -n 's/^host: //p')
bin=$(build "$HOST" bin regex-default,lite,ra-meta --bin bench)
"$bin" native "$MIN_MS" >> "$RESULTS"
wasm=$(build $WASM bin regex-default,lite,ra-meta --bin bench)
node --no-warnings run-wasi.mjs "$wasm" v8 "$MIN_MS" >> "$RESULTS"
for variant in regex-slim regex-lean; do
  echo "== throughput: $variant in V8 (pattern sets only)" >&2
  wasm=$(build $WASM bin $variant --bin bench)
  node --no-warnings run-wasi.mjs "$wasm" v8 "$MIN_MS" sets >> "$RESULTS"
done
echo "== throughput: regex-automata meta::Regex without the literal prefilters, in V8" >&2
wasm=$(build $WASM bin ra-meta-base,ra-unicode --bin bench)
node --no-warnings run-wasi.mjs "$wasm" v8 "$MIN_MS" all "meta::Regex" >> "$RESULTS"

node table.mjs "$RESULTS" "$OUT/details.md"
