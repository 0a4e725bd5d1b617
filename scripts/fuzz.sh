#!/usr/bin/env bash
# Fuzzes seqless's parsers (issue 17 item 7): runs each cargo-fuzz target for SECONDS
# (default 600, the issue's 10 minutes), one process at a time, then minimises its corpus
# with `cargo fuzz cmin`. Exits 1 if any target crashed (panic, sanitizer error, timeout,
# out of memory), naming the crash files under fuzz/artifacts/<target>/, or if a minimised
# corpus is over 2 MB. Not part of scripts/test.sh: it takes minutes per target, and the test
# suite replays the committed corpora instead (crates/server/tests/fuzz_corpus.rs).
#
# Usage: scripts/fuzz.sh [SECONDS] [TARGET...]   (all targets when none is named)
# Needs the nightly toolchain and cargo-fuzz (`cargo install cargo-fuzz`). docs/fuzzing.md.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"

seconds=${1:-600}
shift || true
if [ $# -gt 0 ]; then
    targets=("$@")
else
    mapfile -t targets < <(cargo +nightly fuzz list)
fi
# Per input: a hang longer than this is a crash too (libFuzzer's default is 20 minutes).
per_input_timeout=10
max_corpus_bytes=$((2 * 1024 * 1024))

failed=()
for target in "${targets[@]}"; do
    mkdir -p "corpus/$target" "artifacts/$target"
    log="artifacts/$target.log"
    echo "== $target: fuzzing for ${seconds}s (log: fuzz/$log)"
    if cargo +nightly fuzz run "$target" -- \
        -max_total_time="$seconds" -timeout="$per_input_timeout" -print_final_stats=1 \
        >"$log" 2>&1; then
        grep -E '^Done [0-9]+ runs' "$log" || true
    else
        echo "!! $target crashed; last lines of its log:"
        tail -n 30 "$log"
        failed+=("$target")
    fi
    cargo +nightly fuzz cmin "$target" >"artifacts/$target.cmin.log" 2>&1
    bytes=$(du -sb "corpus/$target" | cut -f1)
    echo "   corpus/$target after cmin: $(find "corpus/$target" -type f | wc -l) files, $bytes bytes"
    if [ "$bytes" -gt "$max_corpus_bytes" ]; then
        echo "!! corpus/$target is over 2 MB after cmin"
        failed+=("$target (corpus size)")
    fi
done

if [ ${#failed[@]} -gt 0 ]; then
    echo "FAILED: ${failed[*]}"
    ls -l artifacts/*/ 2>/dev/null || true
    exit 1
fi
echo "OK: ${targets[*]}: no crash in ${seconds}s each"
