#!/usr/bin/env bash
# The simulator against this machine under load. It measures `seqless bench load` against
# `seqless serve --mode serverless --platform local` over a real Redis, at SIZES bytes and
# 1, 2, 4, 8, 16 and 32 concurrent clients, and predicts the same sweep with
# `seqless simulate` from a calibration taken first (`seqless bench calibrate` on the same
# platform). Nothing is fitted to the sweep it predicts. The simulated deployment is this
# machine: the function processes share its cores (`serverless.host_cores`), the platform
# keeps PROCESSES function processes (the simulated account concurrency), and the store
# moves what the calibration measured.
#
# PROCESSES (default 64) must cover a conv and a head process for every client. The local
# platform's --concurrency caps the processes alive over all functions, so at a cap near
# the number of clients a query's head evicts an idle conv process, the next query's conv
# evicts the head, and every query pays two cold starts. Lambda keeps idle environments of
# every function, and the simulator does not evict them either; at a cap of 2, two
# clients get less throughput than one.
#
# The calibration times CAL_RUNS queries per size (default 20). Its first queries find
# function processes that have served little; with 3 runs its per-stage fits came out
# above what the same stages take in a long sweep.
#
# The machine's cores also carry the platform's router, redis-server and the load client.
# Before each size's sweep, OTHER_REQUESTS queries (default 200) from one client measure
# their CPU per query from /proc (`serverless.host_other_cpu_ms_per_query`); the function
# processes' CPU and the master's come from the calibration.
#
#   scripts/validate-sim.sh OUT_DIR [REQUESTS] [RUNS] [SIZES]
#       defaults: 1000 requests per level, 3 runs (the median is kept), sizes 4096,65536
#
# Writes OUT_DIR/calibration.json, OUT_DIR/other-cpu.csv, OUT_DIR/measured-SIZE.csv,
# OUT_DIR/sim-SIZE/, OUT_DIR/validation.csv (measured against predicted, with the
# relative errors) and OUT_DIR/validation.svg (the same as a chart), and prints the table. SEQLESS names the binary (default target/release/seqless); it needs
# the `platform` feature. Needs redis-server, redis-cli, curl and python3.
set -euo pipefail
cd "$(dirname "$0")/.."

out=${1:?usage: scripts/validate-sim.sh OUT_DIR [REQUESTS] [RUNS] [SIZES]}
requests=${2:-1000}
runs=${3:-3}
cal_runs=${CAL_RUNS:-20}
sizes=${4:-4096,65536}
bin=${SEQLESS:-target/release/seqless}
processes=${PROCESSES:-64}
other_requests=${OTHER_REQUESTS:-200}
clients=1,2,4,8,16,32
source scripts/lib/services.sh
source scripts/lib/cpu.sh
need redis-server redis-cli curl python3
[[ -x $bin ]] || { echo "error: $bin not found; build it or set SEQLESS" >&2; exit 2; }
mkdir -p "$out"

start_redis
start_platform --concurrency "$processes" --memory-mb 1024

echo "calibrating on the local platform" >&2
"$bin" bench calibrate --model models/langid --bytes "4096,16384,$sizes" --runs "$cal_runs" \
    --memory-mb 1024 --platform local --endpoint "$endpoint" --store "$store" \
    --out "$out/calibration.json" >&2

start_serve --memory-mb 1024
redis_pid=$(redis_server_pid)

cores=$(nproc)
# CPU ticks of the platform's router and redis-server together.
others() { echo $(($(ticks "$platform_pid") + $(ticks "$redis_pid"))); }
echo "bytes,requests,platform_and_redis_cpu_ms,client_cpu_ms,other_cpu_ms" >"$out/other-cpu.csv"
for size in ${sizes//,/ }; do
    echo "measuring the other processes' CPU at $size bytes ($other_requests queries)" >&2
    before=$(others)
    client=$(command_cpu "$bin" bench load --url "$url" --concurrency 1 --runs 1 \
        --bytes "$size" --requests "$other_requests")
    python3 - "$size" "$other_requests" "$before" "$(others)" "$client" "$(getconf CLK_TCK)" \
        >>"$out/other-cpu.csv" <<'PY'
import sys
size, n, before, after, client, hz = sys.argv[1:]
n = int(n)
servers = (float(after) - float(before)) / float(hz) * 1e3 / n
client = float(client) * 1e3 / n
print(f"{size},{n},{servers:.3f},{client:.3f},{servers + client:.3f}")
PY
    other_cpu_ms=$(tail -1 "$out/other-cpu.csv" | cut -d, -f5)
    echo "measuring $size bytes at $clients clients" >&2
    "$bin" bench load --url "$url" --concurrency "$clients" --requests "$requests" \
        --runs "$runs" --bytes "$size" --csv "$out/measured-$size.csv" >&2
    # This machine as the simulator sees it; the calibration sets the store's bandwidth.
    python3 - "$out/calibration.json" "$work/sim-$size.json" "$size" "$processes" "$cores" \
        "$other_cpu_ms" <<'PY'
import json, sys
calibration, target, size, processes, cores, other_cpu_ms = sys.argv[1:]
c = json.load(open(calibration))
c["limits"]["account_concurrency"] = int(processes)
# A function process here has a whole core whatever its memory setting.
c["cpu_reference_mb"] = 1024
json.dump(c, open(calibration, "w"))
json.dump({
    "seed": 1, "duration_s": 60.0, "drain_s": 30.0,
    "arrivals": {"kind": "closed_loop", "clients": 1, "think_s": 0.0},
    "lengths": {"kind": "fixed", "bytes": int(size)},
    "serverless": {
        "host_cores": int(cores),
        "host_other_cpu_ms_per_query": float(other_cpu_ms),
        "store_node": {"bandwidth_mb_per_s": c["store"]["bandwidth_mb_per_s"]},
    },
}, open(target, "w"))
PY
    "$bin" simulate --config "$work/sim-$size.json" --calibration "$out/calibration.json" \
        --model models/langid --memory-mb 1024 --sweep-clients "$clients" \
        --out "$out/sim-$size" >/dev/null
done

python3 - "$out" "$sizes" <<'PY'
import csv, sys
out, sizes = sys.argv[1], sys.argv[2].split(",")
rows = []
for size in sizes:
    measured = {int(r["concurrency"]): r for r in csv.DictReader(open(f"{out}/measured-{size}.csv"))}
    for p in csv.DictReader(open(f"{out}/sim-{size}/sweep.csv")):
        c = int(float(p["level"]))
        m = measured[c]
        row = {"bytes": size, "clients": c,
               "measured_qps": float(m["qps"]), "predicted_qps": float(p["serverless_throughput_qps"]),
               "measured_p50_ms": float(m["p50_ms"]), "predicted_p50_ms": float(p["serverless_p50_ms"]),
               "measured_p99_ms": float(m["p99_ms"]), "predicted_p99_ms": float(p["serverless_p99_ms"])}
        for k in ("qps", "p50_ms", "p99_ms"):
            row[f"{k}_error"] = row[f"predicted_{k}"] / row[f"measured_{k}"] - 1
        rows.append(row)
with open(f"{out}/validation.csv", "w", newline="") as f:
    w = csv.DictWriter(f, fieldnames=list(rows[0]))
    w.writeheader()
    w.writerows(rows)
print(f"{'bytes':>6} {'clients':>7} {'q/s meas':>9} {'q/s sim':>8} {'err':>6} "
      f"{'p50 meas':>9} {'p50 sim':>8} {'err':>6} {'p99 meas':>9} {'p99 sim':>8} {'err':>6}")
for r in rows:
    print(f"{r['bytes']:>6} {r['clients']:>7} {r['measured_qps']:>9.2f} {r['predicted_qps']:>8.2f} "
          f"{r['qps_error']:>+6.0%} {r['measured_p50_ms']:>9.1f} {r['predicted_p50_ms']:>8.1f} "
          f"{r['p50_ms_error']:>+6.0%} {r['measured_p99_ms']:>9.1f} {r['predicted_p99_ms']:>8.1f} "
          f"{r['p99_ms_error']:>+6.0%}")
within = all(abs(r["qps_error"]) <= 0.2 and abs(r["p50_ms_error"]) <= 0.2
             and abs(r["p99_ms_error"]) <= 0.3 for r in rows)
print("within 20% (throughput, p50) and 30% (p99) at every level:", "yes" if within else "no")
PY
"$bin" bench validation-chart --table "$out/validation.csv" --plot "$out/validation.svg" >&2
