#!/usr/bin/env bash
# Where a serverless query's CPU goes on this machine. It runs `seqless bench load` against
# `seqless serve --mode serverless --platform local` over a real Redis, as
# scripts/validate-sim.sh does, and reads from /proc, around each level, the CPU time of:
# serve (the master), the platform's own process, redis-server, the load client, and the
# function processes with everything else (the machine's busy time less the others).
# It checks, from outside every process, the CPU that validate-sim.sh charges the shared
# cores from the calibration and its own short measurement.
#
#   scripts/host-cpu.sh OUT_CSV [REQUESTS] [SIZES] [CLIENTS]
#       defaults: 500 requests per level, sizes 4096,65536, clients 1,16
#
# Writes one CSV row per size and level: CPU ms per query by process, the machine's busy
# CPU ms per query, and wall ms per query. SEQLESS names the binary (default
# target/release/seqless, with the `platform` feature). Needs redis-server, redis-cli,
# curl and python3, and a machine with nothing else running.
set -euo pipefail
cd "$(dirname "$0")/.."

out=${1:?usage: scripts/host-cpu.sh OUT_CSV [REQUESTS] [SIZES] [CLIENTS]}
requests=${2:-500}
sizes=${3:-4096,65536}
clients=${4:-1,16}
bin=${SEQLESS:-target/release/seqless}
source scripts/lib/services.sh
source scripts/lib/cpu.sh
need redis-server redis-cli curl python3
[[ -x $bin ]] || { echo "error: $bin not found; build it or set SEQLESS" >&2; exit 2; }

start_redis
# As many processes as scripts/validate-sim.sh keeps, so none is evicted for another.
start_platform --concurrency 64 --memory-mb 1024
start_serve --memory-mb 1024
redis_pid=$(redis_server_pid)

# The machine's busy ticks (user, nice, system, irq, softirq) over all cores.
busy() { awk '/^cpu /{print $2 + $3 + $4 + $7 + $8}' /proc/stat; }
snapshot() { echo "$(ticks "$serve_pid") $(ticks "$platform_pid") $(ticks "$redis_pid") $(busy)"; }

echo "bytes,clients,requests,serve_cpu_ms,platform_cpu_ms,redis_cpu_ms,client_cpu_ms,functions_and_rest_cpu_ms,machine_cpu_ms,wall_ms" >"$out"
for size in ${sizes//,/ }; do
    for c in ${clients//,/ }; do
        echo "measuring $size bytes at $c clients" >&2
        load=("$bin" bench load --url "$url" --concurrency "$c" --runs 1 --bytes "$size")
        # A short run first, so every process this level needs is warm.
        "${load[@]}" --requests $((c * 10)) >/dev/null 2>&1
        before=$(snapshot)
        start=$(date +%s.%N)
        client=$(command_cpu "${load[@]}" --requests "$requests")
        end=$(date +%s.%N)
        after=$(snapshot)
        python3 - "$size" "$c" "$requests" "$before" "$after" "$client" "$start" "$end" \
            "$(getconf CLK_TCK)" >>"$out" <<'PY'
import sys
size, c, n, before, after, client, start, end, hz = sys.argv[1:]
n, hz = int(n), float(hz)
b, a = [float(x) for x in before.split()], [float(x) for x in after.split()]
serve, platform, redis, machine = ((a[i] - b[i]) / hz * 1e3 / n for i in range(4))
client = float(client) * 1e3 / n
rest = machine - serve - platform - redis - client
wall = (float(end) - float(start)) * 1e3 / n
print(f"{size},{c},{n},{serve:.2f},{platform:.2f},{redis:.2f},{client:.2f},{rest:.2f},{machine:.2f},{wall:.2f}")
PY
    done
done
column -s, -t "$out"
