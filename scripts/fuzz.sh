#!/usr/bin/env bash
# Runs every cargo-fuzz target for a bounded time, one after the other, starting from the
# committed corpus (fuzz/corpus/<target>/):
#
#   ./scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]   default: 60 s, every target
#   FUZZ_MERGE=1 ./scripts/fuzz.sh 600                   then minimize the committed corpus
#                                                       with what the run found
#
# Needs a nightly toolchain and cargo-fuzz (`rustup toolchain install nightly`,
# `cargo install cargo-fuzz`). One process at a time: plain in-process libFuzzer (no -jobs/-fork).
# Built without a sanitizer (the crate forbids `unsafe`; ASan would halve the throughput; set
# FUZZ_SANITIZER=address to use it) and with debug assertions, so integer overflow panics.
#
# Prints executions per target and a summary table; exits 1 when a target crashed (the input
# is under fuzz/artifacts/<target>/: fix the bug, then copy the input to
# fuzz/regressions/<target>/ and add a named regression test next to the code).
set -euo pipefail
cd "$(dirname "$0")/../fuzz"

SECONDS_PER_TARGET="${1:-60}"
shift || true
ALL=(jsonl_scan bot_json config_toml broker_json timestamps)
TARGETS=("$@")
[ ${#TARGETS[@]} -eq 0 ] && TARGETS=("${ALL[@]}")
SANITIZER="${FUZZ_SANITIZER:-none}"
FLAGS=(--sanitizer "$SANITIZER" --debug-assertions)

# Build once, then run the binaries directly (`cargo fuzz run` would rebuild before each).
cargo +nightly fuzz build "${FLAGS[@]}"
BIN="target/x86_64-unknown-linux-gnu/release"

status=0
summary=()
for t in "${TARGETS[@]}"; do
    new="target/corpus-new/$t"
    mkdir -p "$new" "corpus/$t" "artifacts/$t"
    log="target/fuzz-$t.log"
    echo "== $t: ${SECONDS_PER_TARGET}s, corpus $(find "corpus/$t" -type f | wc -l) files"
    if "$BIN/$t" "$new" "corpus/$t" -artifact_prefix="artifacts/$t/" \
        -max_total_time="$SECONDS_PER_TARGET" -timeout=10 \
        -print_final_stats=1 >"$log" 2>&1; then
        result=ok
    else
        result=CRASH
        status=1
        grep -E "panicked at|ERROR: libFuzzer|Test unit written to|SUMMARY" "$log" | head -8 || true
    fi
    execs=$(grep -oE "stat::number_of_executed_units: *[0-9]+" "$log" | grep -oE "[0-9]+$" | tail -1 || true)
    secs=$(grep -oE "Done [0-9]+ runs in [0-9]+ second" "$log" | grep -oE "in [0-9]+" | grep -oE "[0-9]+" | tail -1 || true)
    cov=$(grep -oE "cov: [0-9]+" "$log" | tail -1 | grep -oE "[0-9]+" || true)
    echo "   $result: ${execs:-?} executions in ${secs:-?}s, coverage ${cov:-?} edges"
    summary+=("$(printf '%-12s %-5s %12s execs %6ss  cov %s' "$t" "$result" "${execs:-?}" "${secs:-?}" "${cov:-?}")")
    if [ "${FUZZ_MERGE:-0}" = 1 ] && [ "$result" = ok ]; then
        # Minimize the committed corpus and the new inputs together into a fresh folder,
        # keeping what adds an edge (hit counts ignored, so the committed corpus stays small).
        min="target/corpus-min/$t"
        rm -rf "$min" && mkdir -p "$min"
        "$BIN/$t" -set_cover_merge=1 -use_counters=0 "$min" "corpus/$t" "$new" >"target/merge-$t.log" 2>&1
        rm -rf "corpus/$t" && mv "$min" "corpus/$t" && rm -rf "$new"
        echo "   merged: corpus $(find "corpus/$t" -type f | wc -l) files, $(du -sb "corpus/$t" | cut -f1) bytes"
    fi
done

echo
echo "target       result   executions    time  coverage"
printf '%s\n' "${summary[@]}"
echo "corpus: $(du -sb corpus | cut -f1) bytes in $(find corpus -type f | wc -l) files"
exit "$status"
