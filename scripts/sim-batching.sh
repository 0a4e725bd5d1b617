#!/usr/bin/env bash
# The cost and latency of cross-query batching and inline values at the paper's operating
# point, simulated: the shipped models/langid at 4,096 bytes, Poisson arrivals at 500 q/s
# (a GPU's 1,000 q/s at 50%), the fused plan with one split, from the local platform's
# calibration (docs/results/calibration-langid-local-redis.json); and the seed scale at
# 80,000 bytes and 0.1 q/s (its store-bound load with one cache node) from its
# calibration. Every row is one `seqless simulate` run: 60 s of arrivals for langid, 600 s
# for the seed scale (docs/results.md, "Cross-query batching, simulated at the paper's
# operating point").
#
#   scripts/sim-batching.sh OUT_CSV
#
# Rows: the "before" (values through the store, no batching; one cache node, the paper's,
# and enough nodes for the load), then inline with no cache node and no batching, then
# inline with --batch-max 2, 3, 4 and 8 and --batch-wait-ms 1, 2 and 5, at 1,024 and
# 1,769 MB. SEQLESS names the binary (default target/release/seqless). Needs python3.
set -euo pipefail
cd "$(dirname "$0")/.."

out=${1:?usage: scripts/sim-batching.sh OUT_CSV}
bin=${SEQLESS:-target/release/seqless}
[[ -x $bin ]] || { echo "error: $bin not found; build it or set SEQLESS" >&2; exit 2; }
command -v python3 >/dev/null || { echo "error: python3 is not installed" >&2; exit 2; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$(dirname "$out")"

seed=$work/seed-scale
"$bin" init --out "$seed" --labels neg,pos --embed-dim 256 \
  --layers 256:3:1:32,256:3:1:32,256:3:1:32 --max-len 131072 >/dev/null

echo "model,bytes,rate_qps,transfer,cache_nodes,memory_mb,batch_max,batch_wait_ms,throughput_qps,p50_ms,p99_ms,requests_per_query,gb_s_per_query,store_bytes_per_query,cost_per_million_usd,gpu_bound_capacity_qps,break_even_utilisation,saturated" >"$out"

# sim MODEL_NAME MODEL_DIR CALIBRATION BYTES RATE SECONDS TRANSFER NODES MB MAX WAIT [FLAGS...]
sim() {
  local name=$1 dir=$2 calibration=$3 bytes=$4 rate=$5 seconds=$6 transfer=$7 nodes=$8
  local mb=$9 max=${10} wait=${11}
  shift 11
  rm -rf "$work/run"
  "$bin" simulate --model "$dir" --calibration "$calibration" --length-bytes "$bytes" \
    --rate "$rate" --duration-s "$seconds" --drain-s 60 --transfer "$transfer" \
    --cache-nodes "$nodes" --memory-mb "$mb" --batch-max "$max" --batch-wait-ms "$wait" \
    "$@" --out "$work/run" >/dev/null
  python3 - "$work/run/report.json" "$name" "$bytes" "$rate" "$transfer" "$nodes" "$mb" \
    "$max" "$wait" >>"$out" <<'PY'
import json, sys
report, *fields = sys.argv[1:]
r = json.load(open(report))
s = r["serverless"]
n = s["completed"]
cost = s["cost"]
print(",".join(fields + [
    f"{s['throughput_qps']:.2f}", f"{s['latency']['p50_ms']:.2f}",
    f"{s['latency']['p99_ms']:.2f}", f"{s['invocations'] / n:.4f}",
    f"{cost['gb_seconds'] / n:.6f}", f"{s['store_bytes'] / n:.0f}",
    f"{cost['total_usd'] / n * 1e6:.4f}", f"{r['instances']['capacity_qps']:.1f}",
    f"{r['break_even_utilisation'] or 0:.4f}",
    s["saturated"] or "",
]))
PY
}

langid=(langid models/langid docs/results/calibration-langid-local-redis.json 4096 500 60)
for nodes in 1 4; do
  sim "${langid[@]}" store "$nodes" 1769 1 2 --plan fused --splits 1
done
for mb in 1024 1769; do
  sim "${langid[@]}" inline 0 "$mb" 1 2 --plan fused --splits 1
  for max in 2 3 4 8; do
    for wait in 1 2 5; do
      sim "${langid[@]}" inline 0 "$mb" "$max" "$wait" --plan fused --splits 1
    done
  done
done
seedm=(seed-scale "$seed" docs/results/calibration-seed-scale.json 80000 0.1 600)
for transfer in store inline; do
  for max in 1 8; do
    sim "${seedm[@]}" "$transfer" 1 1769 "$max" 5 --splits 4
  done
done
column -s, -t "$out"
