#!/usr/bin/env bash
# The leak soak: QUERIES queries through `seqless serve --mode serverless --platform local`
# over a real Redis, with faults injected in the platform (errors, crashes, throttles,
# stragglers), then:
#   - the keys left in Redis once no query is in flight (the TTL is 300 s, so a leak
#     cannot hide behind expiry during the run);
#   - the server's resident memory at query 1,000 and at the last query.
# It fails if a key is left or the RSS grew by 10% or more between the two.
#
#   scripts/soak.sh [QUERIES] [CONCURRENCY]       (defaults: 10000 and 8)
#
# SEQLESS names the binary (default target/release/seqless, built with
# `cargo build --release -p seqless --features full`); it needs the `platform` feature.
# Needs redis-server, redis-cli, curl and python3. Everything listens on 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."

queries=${1:-10000}
concurrency=${2:-8}
bin=${SEQLESS:-target/release/seqless}
faults=${SEQLESS_SOAK_FAULTS:-seed=7,error=0.1,crash=0.02,throttle=0.05,delay=0.05,delay-factor=10}
source scripts/lib/services.sh
need redis-server redis-cli curl python3
[[ -x $bin ]] || { echo "error: $bin not found; build it or set SEQLESS" >&2; exit 2; }
if ((queries < 1000)); then
    echo "error: QUERIES must be at least 1000 (the first RSS sample is at query 1,000)" >&2
    exit 2
fi

start_redis
start_platform --ttl-secs 300 --concurrency 4 --faults "$faults"
start_serve --ttl-secs 300

answered() {
    curl -s "$url/metrics" | awk '/^seqless_queries_total\{/ { n += $2 } END { print n + 0 }'
}
rss_kb() { awk '/^VmRSS/ { print $2 }' "/proc/$serve_pid/status"; }

start=$(date +%s)
"$bin" bench load --url "$url" --concurrency "$concurrency" --requests "$queries" --runs 1 \
    --bytes 4096 --csv "$work/load.csv" >"$work/load.log" 2>&1 &
load_pid=$!
pids+=("$load_pid")
while (($(answered) < 1000)); do sleep 0.2; done
rss_1000=$(rss_kb)
wait "$load_pid"
rss_end=$(rss_kb)
seconds=$(($(date +%s) - start))
keys=$(redis-cli -p "$redis_port" dbsize)

echo "soak: $queries queries at concurrency $concurrency in $seconds s, faults $faults"
echo "outcomes (seqless_queries_total):"
curl -s "$url/metrics" | grep '^seqless_queries_total{' | sed 's/^/  /'
echo "faults injected (seqless_platform_faults_injected_total):"
curl -s "http://127.0.0.1:$platform_port/metrics" \
    | grep '^seqless_platform_faults_injected_total{' | sed 's/^/  /' || true
echo "keys left in Redis: $keys"
growth=$(python3 -c "print(f'{($rss_end - $rss_1000) / $rss_1000 * 100:.1f}')")
echo "serve RSS: ${rss_1000} kB at query 1,000, ${rss_end} kB at the end (${growth}%)"
status=0
[[ $keys == 0 ]] || { echo "FAIL: keys were left" >&2; status=1; }
python3 -c "import sys; sys.exit(0 if $rss_end < 1.1 * $rss_1000 else 1)" \
    || { echo "FAIL: RSS grew by 10% or more" >&2; status=1; }
exit "$status"
