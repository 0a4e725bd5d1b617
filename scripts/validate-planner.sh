#!/usr/bin/env bash
# The planner's picks against measurement on this machine. It calibrates the local
# platform over Redis (`seqless bench calibrate`, one split per core), measures the fused and resident plans at
# 1, 2, 4 and 8 splits and three sizes (`seqless bench serverless --endpoint`), predicts
# the same configurations with `seqless plan --host-cores $(nproc)` from the calibration
# alone (the resident plan at 1, 2, 4 and 6 splits, what 8 slots allow), and compares, per size and objective, the measured latency and bill of the
# planner's pick with the measured best.
#
#   scripts/validate-planner.sh OUT_DIR [RUNS]
#       default: 3 timed runs per configuration (the median is kept)
#
# The model is untrained (`seqless init`, seed 1): 64:5:2:8, 64:3:2:8, 64:3:1:8 over a
# 32-wide embedding, at 4 KB, 64 KB and 1 MB. The platform runs 8 functions at once, at
# 1,769 MB each. Writes OUT_DIR/planner-calibration.json, planner-measured.csv,
# planner-predicted-SIZE.json and planner-validation.csv, and prints the comparison.
# SEQLESS names the binary (default target/release/seqless; it needs the `platform` and
# `train` features, as `full` has). Needs redis-server, redis-cli and python3.
set -euo pipefail
cd "$(dirname "$0")/.."

out=${1:?usage: scripts/validate-planner.sh OUT_DIR [RUNS]}
runs=${2:-3}
bin=${SEQLESS:-target/release/seqless}
sizes=4096,65536,1048576
source scripts/lib/services.sh
need redis-server redis-cli python3
[[ -x $bin ]] || { echo "error: $bin not found; build it or set SEQLESS" >&2; exit 2; }
mkdir -p "$out"

model=$work/small
"$bin" init --out "$model" --labels neg,pos --embed-dim 32 --seed 1 \
    --layers 64:5:2:8,64:3:2:8,64:3:1:8 --max-len 1048576 >/dev/null
start_redis
start_platform --concurrency 8 --memory-mb 1769 --key-prefix seqless-bench:

echo "calibrating" >&2
"$bin" bench calibrate --model "$model" --bytes "$sizes" --runs "$runs" --splits "$(nproc)" \
    --memory-mb 1769 --platform local --endpoint "$endpoint" --store "$store" \
    --key-prefix seqless-bench: --function-slots 8 --out "$out/planner-calibration.json" >&2
# A resident query holds its splits, a serial stage and a hedge: 6 splits fill 8 slots.
echo "measuring" >&2
for plan_splits in fused:1,2,4,8 resident:1,2,4,6; do
    plan=${plan_splits%%:*}
    splits=${plan_splits#*:}
    "$bin" bench serverless --model "$model" --store "$store" --endpoint "$endpoint" \
        --function-slots 8 --plan "$plan" --splits "$splits" --bytes "$sizes" \
        --runs "$runs" --csv "$work/measured-$plan.csv" >&2
    for size in ${sizes//,/ }; do
        "$bin" plan --model "$model" --bytes "$size" --plans "$plan" --splits "$splits" \
            --calibration "$out/planner-calibration.json" --memory-mb 1769 \
            --host-cores "$(nproc)" --json >"$work/predicted-$plan-$size.json"
    done
done
{ cat "$work/measured-fused.csv"; tail -n +2 "$work/measured-resident.csv"; } \
    >"$out/planner-measured.csv"
for size in ${sizes//,/ }; do
    python3 -c 'import json, sys; print(json.dumps({"candidates": sum((json.load(open(p))["candidates"] for p in sys.argv[1:]), [])}, indent=1))' \
        "$work/predicted-fused-$size.json" "$work/predicted-resident-$size.json" \
        >"$out/planner-predicted-$size.json"
done

python3 - "$out" "$sizes" <<'PY'
import csv, json, sys
out, sizes = sys.argv[1], sys.argv[2].split(",")
measured = {}
for row in csv.DictReader(open(f"{out}/planner-measured.csv")):
    if row["error"]:
        continue
    key = (row["bytes"], row["plan"], int(row["splits"]))
    measured[key] = (float(row["median_ms"]), float(row["cost_usd"]))
rows = []
for size in sizes:
    predicted = json.load(open(f"{out}/planner-predicted-{size}.json"))
    points = [c for c in predicted["candidates"] if c["refused"] is None]
    for objective, index in (("latency", 0), ("cost", 1)):
        def predicted_key(c):
            return (c["latency_ms"], c["cost_usd"]) if index == 0 else (c["cost_usd"], c["latency_ms"])
        pick = min(points, key=predicted_key)
        key = (size, pick["plan"], pick["splits_used"])
        here = {k: v for k, v in measured.items() if k[0] == size}
        best_key = min(here, key=lambda k: here[k][index])
        got, best = measured[key][index], here[best_key][index]
        rows.append({
            "bytes": size, "objective": objective,
            "pick": f"{pick['plan']} x{pick['splits_used']}",
            "predicted": f"{(pick['latency_ms'], pick['cost_usd'])[index]:.9g}",
            "measured_pick": f"{got:.9g}",
            "measured_best": f"{best:.9g}",
            "best": f"{best_key[1]} x{best_key[2]}",
            "ratio": f"{got / best:.3f}",
        })
with open(f"{out}/planner-validation.csv", "w", newline="") as f:
    w = csv.DictWriter(f, fieldnames=list(rows[0]))
    w.writeheader()
    w.writerows(rows)
for r in rows:
    print(" ".join(f"{k}={v}" for k, v in r.items()))
PY
