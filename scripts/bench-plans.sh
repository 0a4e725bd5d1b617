#!/usr/bin/env bash
# The three plans side by side with their functions on the local platform and Redis between
# them: latency, bytes moved and the function bill per query (waits included), against the
# monolithic forward of the same input (docs/results.md, "Resident splits").
#
#   scripts/bench-plans.sh OUT_DIR [RUNS]
#       default: 5 timed runs per configuration (the median is kept)
#
# Two untrained models (`seqless init`, seed 1), both of three layers:
#   - the seed scale, three 256:3:1:32 layers over a 256-wide embedding, at 80,000 bytes;
#   - a small one, 64:5:2:8,64:3:2:8,64:3:1:8 over a 32-wide embedding, at 4 KB, 64 KB
#     and 1 MB.
# Every plan runs 4 splits; the platform runs 8 functions at once, which the resident
# plan's admission knows (--function-slots). Writes OUT_DIR/plans-seed-local-redis.csv and
# OUT_DIR/plans-small-local-redis.csv. SEQLESS names the binary (default
# target/release/seqless; it needs the `platform` and `train` features, as `full` has).
# Needs redis-server, redis-cli and python3.
set -euo pipefail
cd "$(dirname "$0")/.."

out=${1:?usage: scripts/bench-plans.sh OUT_DIR [RUNS]}
runs=${2:-5}
bin=${SEQLESS:-target/release/seqless}
source scripts/lib/services.sh
need redis-server redis-cli python3
[[ -x $bin ]] || { echo "error: $bin not found; build it or set SEQLESS" >&2; exit 2; }
mkdir -p "$out"

"$bin" init --out "$work/seed" --labels neg,pos --embed-dim 256 --seed 1 \
    --layers 256:3:1:32,256:3:1:32,256:3:1:32 --max-len 1048576 >/dev/null
"$bin" init --out "$work/small" --labels neg,pos --embed-dim 32 --seed 1 \
    --layers 64:5:2:8,64:3:2:8,64:3:1:8 --max-len 1048576 >/dev/null
start_redis
for case in seed:80000 small:4096,65536,1048576; do
    name=${case%%:*}
    model=$work/$name
    start_platform --concurrency 8 --key-prefix seqless-bench:
    echo "== $name model, local platform + Redis"
    "$bin" bench serverless --model "$model" --store "$store" --endpoint "$endpoint" \
        --function-slots 8 --plan fused,paper,resident --splits 4 --bytes "${case#*:}" \
        --runs "$runs" --csv "$out/plans-$name-local-redis.csv"
    kill "$platform_pid"
    wait "$platform_pid" 2>/dev/null || true
done
