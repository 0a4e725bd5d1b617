#!/usr/bin/env bash
# Values through the store against values inline in the invocations (`--transfer`), with
# the functions on the local platform and Redis between them: latency, store and inline
# bytes and the function bill per query, against the monolithic forward of the same input
# (docs/results.md, "Inline values").
#
#   scripts/bench-transfer.sh OUT_DIR [RUNS]
#       default: 5 timed runs per configuration (the median is kept)
#
# The shipped models/langid, 1 and 4 splits: the fused plan at 4 KB, 64 KB and 1 MB, the
# paper plan at 4 KB and 64 KB (at 1 MB its whole activation is over Redis's 512 MB
# value); each configuration runs with --transfer store and then inline, back to back,
# inline with values of up to 256 KiB (the default --inline-max-bytes) and then with
# every value that fits in 6 MB. The platform runs 8 functions at once. Writes
# OUT_DIR/transfer-PLAN-CAP-local-redis.csv for PLAN fused and paper and CAP 262144 and
# 6291456. SEQLESS
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
for cap in 262144 6291456; do
    for case in fused:4096,65536,1048576 paper:4096,65536; do
        plan=${case%%:*}
        "$bin" bench serverless --model models/langid --store "$store" --endpoint "$endpoint" \
            --function-slots 8 --plan "$plan" --splits 1,4 --bytes "${case#*:}" \
            --transfer store,inline --inline-max-bytes "$cap" --runs "$runs" \
            --csv "$out/transfer-$plan-$cap-local-redis.csv"
    done
done
kill "$platform_pid"
wait "$platform_pid" 2>/dev/null || true
