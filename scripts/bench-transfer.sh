#!/usr/bin/env bash
# Values through the store against values inline in the invocations (`--transfer`), with
# the functions on the local platform and Redis between them: latency, store and inline
# bytes and the function bill per query, against the monolithic forward of the same input
# (docs/results.md, "Inline values").
#
#   scripts/bench-transfer.sh OUT_DIR [RUNS]
#       default: 5 timed runs per configuration (the median is kept)
#
# The shipped models/langid, fused and paper plans, 1, 2 and 4 splits, at 4 KB, 64 KB and
# 1 MB; each configuration runs with --transfer store and then inline, back to back. The
# platform runs 8 functions at once. Writes OUT_DIR/transfer-local-redis.csv. SEQLESS
# names the binary (default target/release/seqless; it needs the `platform` feature).
# Needs redis-server, redis-cli and python3.
set -euo pipefail
cd "$(dirname "$0")/.."

out=${1:?usage: scripts/bench-transfer.sh OUT_DIR [RUNS]}
runs=${2:-5}
bin=${SEQLESS:-target/release/seqless}
source scripts/lib/services.sh
need redis-server redis-cli python3
[[ -x $bin ]] || { echo "error: $bin not found; build it or set SEQLESS" >&2; exit 2; }
mkdir -p "$out"

start_redis
start_platform --concurrency 8 --key-prefix seqless-bench:
"$bin" bench serverless --model models/langid --store "$store" --endpoint "$endpoint" \
    --function-slots 8 --plan fused,paper --splits 1,2,4 --bytes 4096,65536,1048576 \
    --transfer store,inline --runs "$runs" --csv "$out/transfer-local-redis.csv"
kill "$platform_pid"
wait "$platform_pid" 2>/dev/null || true
