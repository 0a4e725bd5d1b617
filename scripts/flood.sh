#!/usr/bin/env bash
# A flood of concurrent long queries against a monolithic `seqless serve` with a memory
# budget: every query must be answered 200, or 503 with Retry-After, and the server's peak
# resident memory (VmHWM) must stay within the budget plus 10%.
#
#   scripts/flood.sh [QUERIES] [BYTES] [BUDGET_MB] [MODEL]     # defaults: 64 1048576 4096 models/langid
#
# SEQLESS names the binary (default target/debug/seqless: the dev profile builds the model
# crate and every dependency at opt-level 3, so its forward runs as fast as release).
# Extra `seqless serve` flags go in SERVE_FLAGS. Prints a report; exits 1 if a query got
# anything else or the peak is over the bound.
set -euo pipefail

queries=${1:-64}
bytes=${2:-1048576}
budget_mb=${3:-4096}
model=${4:-models/langid}
seqless=${SEQLESS:-target/debug/seqless}
[[ -x $seqless ]] || { echo "error: no binary at $seqless (cargo build -p seqless)" >&2; exit 2; }

work=$(mktemp -d)
server=
cleanup() {
    [[ -n $server ]] && kill "$server" 2>/dev/null && wait "$server" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT

# One JSON body of exactly $bytes bytes of text.
python3 - "$bytes" >"$work/body.json" <<'PY'
import json, sys
n = int(sys.argv[1])
text = ("lorem ipsum dolor sit amet " * (n // 27 + 1))[:n]
json.dump({"text": text}, sys.stdout)
PY

# shellcheck disable=SC2086 # SERVE_FLAGS is a list of words.
"$seqless" serve --model "$model" --listen 127.0.0.1:0 --memory-budget-mb "$budget_mb" \
    ${SERVE_FLAGS:-} >"$work/serve.out" 2>"$work/serve.err" &
server=$!
for _ in $(seq 600); do
    grep -q listening "$work/serve.out" 2>/dev/null && break
    sleep 0.1
done
url=$(grep -o 'http://[^ ]*' "$work/serve.out")
kib() { awk -v f="$1:" '$1 == f { print $2 }' "/proc/$server/status"; }
idle_kib=$(kib VmRSS)

started=$(date +%s.%N)
seq "$queries" | xargs -P "$queries" -I{} sh -c \
    'curl -s -o "$2/reply.{}" -D "$2/headers.{}" -w "%{http_code}\n" \
        -H "content-type: application/json" --data-binary "@$2/body.json" "$1/v1/classify"' \
    _ "$url" "$work" >"$work/statuses"
elapsed=$(echo "$(date +%s.%N) - $started" | bc)
peak_kib=$(kib VmHWM)

ok=$(grep -c '^200$' "$work/statuses" || true)
busy=$(grep -c '^503$' "$work/statuses" || true)
busy_with_retry=0
for h in "$work"/headers.*; do
    if grep -q '^HTTP/[0-9.]* 503' "$h" && grep -qi '^retry-after: *[0-9]' "$h"; then
        busy_with_retry=$((busy_with_retry + 1))
    fi
done
other=$((queries - ok - busy))
budget_kib=$((budget_mb * 1024))
bound_kib=$((budget_kib * 11 / 10))
echo "seqless serve --model $model --memory-budget-mb $budget_mb ${SERVE_FLAGS:-}"
echo "listening line: $(head -1 "$work/serve.out")"
echo "queries: $queries concurrent x $bytes bytes, answered in ${elapsed}s"
echo "200: $ok; 503: $busy ($busy_with_retry with Retry-After); other: $other"
sort "$work/statuses" | uniq -c | sed 's/^/  status /'
echo "server RSS idle: $((idle_kib / 1024)) MiB; peak (VmHWM): $((peak_kib / 1024)) MiB"
echo "budget: $budget_mb MiB; bound (budget + 10%): $((bound_kib / 1024)) MiB"
{ grep -ho '"message":"[^"]*"' "$work"/reply.* || true; } | sort | uniq -c | sed 's/^/  /' | head -5
if ((other > 0 || busy_with_retry != busy || peak_kib > bound_kib)); then
    echo "FAIL"
    exit 1
fi
echo "PASS"
