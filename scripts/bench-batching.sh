#!/usr/bin/env bash
# Cross-query batching in the functions, off against on, back to back on the same machine:
# `seqless serve --mode serverless` over the local platform and Redis, driven by
# `seqless bench load` at each concurrency, with the server's /metrics read before and
# after each level for what the queries paid: function requests, GB-s and the estimated
# function cost per query (docs/results.md, "Cross-query batching").
#
#   scripts/bench-batching.sh OUT_CSV [BYTES] [REQUESTS]
#       default: 4096-byte queries, 300 timed requests per run, 3 runs per level (the
#       median run's latency and throughput are kept; the bill is over every query served)
#
# The shipped models/langid, the fused plan with one split, values inline
# (`--transfer inline`), the platform running 8 functions at once; batching on is
# `--batch-max 8 --batch-wait-ms 5`. SEQLESS names the binary (default
# target/release/seqless; it needs the `platform` feature). Needs redis-server, redis-cli,
# curl and python3.
set -euo pipefail
cd "$(dirname "$0")/.."

out=${1:?usage: scripts/bench-batching.sh OUT_CSV [BYTES] [REQUESTS]}
bytes=${2:-4096}
requests=${3:-300}
levels=(1 4 16)
bin=${SEQLESS:-target/release/seqless}
source scripts/lib/services.sh
need redis-server redis-cli curl python3
[[ -x $bin ]] || { echo "error: $bin not found; build it or set SEQLESS" >&2; exit 2; }
mkdir -p "$(dirname "$out")"

# The sum of a /metrics series over its labels (0 when absent).
series() {
    curl -sf "$url/metrics" | awk -v name="$1" '
        $1 == name || index($1, name "{") == 1 { s += $2 } END { printf "%.12g\n", s + 0 }'
}

start_redis
start_platform --concurrency 8 --key-prefix seqless-bench:
echo "batching,concurrency,bytes,qps,p50_ms,p99_ms,queries,requests_per_query,stages_per_query,gb_s_per_query,cost_usd_per_million" >"$out"
for batching in off on; do
    flags=(--transfer inline --plan fused --splits 1 --key-prefix seqless-bench:)
    [[ $batching == on ]] && flags+=(--batch-max 8 --batch-wait-ms 5)
    start_serve "${flags[@]}"
    for level in "${levels[@]}"; do
        before=($(series seqless_function_requests_per_query_count) \
            $(series seqless_function_requests_per_query_sum) \
            $(series seqless_function_invocations_total) \
            $(series seqless_billed_gb_seconds_total) \
            $(series seqless_estimated_cost_usd_total))
        "$bin" bench load --url "$url" --concurrency "$level" --bytes "$bytes" \
            --requests "$requests" --runs 3 --csv "$work/load.csv" >&2
        after=($(series seqless_function_requests_per_query_count) \
            $(series seqless_function_requests_per_query_sum) \
            $(series seqless_function_invocations_total) \
            $(series seqless_billed_gb_seconds_total) \
            $(series seqless_estimated_cost_usd_total))
        python3 - "$batching" "$bytes" "$work/load.csv" "${before[@]}" "${after[@]}" >>"$out" <<'PY'
import csv, sys
batching, size, load = sys.argv[1:4]
before = [float(x) for x in sys.argv[4:9]]
after = [float(x) for x in sys.argv[9:14]]
queries, requests, stages, gb_s, cost = (a - b for a, b in zip(after, before))
row = next(csv.DictReader(open(load)))
print(f"{batching},{row['concurrency']},{size},{row['qps']},{row['p50_ms']},{row['p99_ms']},"
      f"{queries:.0f},{requests / queries:.4f},{stages / queries:.4f},"
      f"{gb_s / queries:.6g},{cost / queries * 1e6:.4f}")
PY
    done
    kill "$serve_pid"
    wait "$serve_pid" 2>/dev/null || true
done
column -s, -t "$out"
