#!/usr/bin/env bash
# Builds every fuzz target once (release, debug assertions on), then runs each for SECONDS
# (default 60), one after the other, and prints how long it ran and how many inputs it tried.
# New inputs go to a scratch corpus (fuzz/target/corpus/); the committed seeds
# (fuzz/corpus/<target>/) are only read. A crash leaves its input in fuzz/artifacts/<target>/
# and fails the run (after the other targets ran). Usage: fuzz/run.sh [SECONDS [TARGET...]]
# FUZZ_FRESH=1 (the fuzz-smoke step) starts from the seeds alone, with an emptied scratch
# corpus: a grown one would take longer to load than a few seconds of fuzzing.
set -uo pipefail

seconds=${1:-60}
shift || true
cd "$(dirname "$0")/.."
cargo_fuzz=.tools/bin/cargo-fuzz
# cargo-fuzz passes -Z flags to rustc; stable rustc accepts them under RUSTC_BOOTSTRAP. No
# sanitizer: gateway-core has no unsafe code, and without one the build and runs are faster.
export RUSTC_BOOTSTRAP=1
flags=(-O -a -s none)

"$cargo_fuzz" build "${flags[@]}" || exit 1
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    mapfile -t targets < <("$cargo_fuzz" list)
fi
host=$(rustc -vV | sed -n 's/^host: //p')
failed=()
for target in "${targets[@]}"; do
    scratch=fuzz/target/corpus/$target
    if [ "${FUZZ_FRESH:-0}" = 1 ]; then
        scratch=fuzz/target/fresh-corpus/$target
        rm -rf "$scratch"
    fi
    artifacts=fuzz/artifacts/$target
    log=fuzz/target/$target.log
    mkdir -p "$scratch" "$artifacts" "fuzz/corpus/$target"
    start=$(date +%s)
    "fuzz/target/$host/release/$target" -max_total_time="$seconds" -timeout=10 \
        -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$artifacts/" \
        "$scratch" "fuzz/corpus/$target" >"$log" 2>&1
    status=$?
    ran=$(($(date +%s) - start))
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    if [ $status -eq 0 ]; then
        printf '%-18s %4ss %12s execs  ok\n' "$target" "$ran" "${execs:-?}"
    else
        printf '%-18s %4ss %12s execs  FAILED (exit %s), log: %s\n' "$target" "$ran" \
            "${execs:-?}" "$status" "$log"
        grep -E '^(thread|==[0-9]+==|SUMMARY|artifact_prefix|Test unit written)' "$log" | head -n 8
        failed+=("$target")
    fi
done
if [ ${#failed[@]} -gt 0 ]; then
    echo "fuzz: crashes in ${failed[*]} (inputs in fuzz/artifacts/)" >&2
    exit 1
fi
