#!/usr/bin/env bash
# Regenerates every simulated result docs/results.md cites, from the measured files beside
# it, with one command:
#
#   scripts/reproduce.sh           rewrites docs/results/sim-*/ (full sizes)
#   scripts/reproduce.sh --quick   small runs into a temporary directory, checking that
#                                  every output is there and complete (the test suite's
#                                  check; docs/results is not touched)
#
# The binary is $SEQLESS if set, else target/release/seqless, else it is built
# (cargo build --release -p seqless).
#
# What it regenerates (each directory holds report.json, timeline.csv, queries.csv and
# plots, plus sweep.* or size_sweep.* for sweeps):
#   sim-langid               load sweep, models/langid at 4 KB, against the GPU roofline
#   sim-langid-cpu           the same against the measured CPU instance
#   sim-langid-sizes         size sweep, models/langid, 1 KB to 1 MB at 10 q/s
#   sim-seed-scale           load sweep, the seed scale at 80,000 bytes
#   sim-seed-scale-resident  the same with the resident plan
#   sim-seed-scale-low       one run of the seed scale at 0.1 q/s for 600 s
#   sim-seed-scale-sizes     size sweep, the seed scale, 1 KB to 128 KB at 0.1 q/s
#
# What it does not regenerate: the measurements the simulations start from, which need
# the machine quiet and take minutes to hours. They are rerun by the commands
# docs/results.md and docs/serve.md give for them: calibration-*.json (bench calibrate),
# load-*.csv (bench load), forward-*-1thread.jsonl (bench forward), serverless-*.csv
# (bench serverless) and store-redis.csv (bench store).
set -euo pipefail
cd "$(dirname "$0")/.."

quick=false
case "${1:-}" in
  --quick) quick=true ;;
  "") ;;
  *) echo "usage: scripts/reproduce.sh [--quick]" >&2; exit 2 ;;
esac

bin="${SEQLESS:-target/release/seqless}"
if [[ ! -x "$bin" ]]; then
  if [[ -n "${SEQLESS:-}" ]]; then
    echo "error: SEQLESS=$SEQLESS is not an executable" >&2
    exit 2
  fi
  cargo build --release -p seqless
fi

scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
if $quick; then
  out="$scratch/results"
  duration=3 low_duration=20 drain=30
  langid_rates=10,1000 seed_rates=1,10
  langid_sizes=1024,65536 seed_sizes=1024,80000
else
  out=docs/results
  duration=60 low_duration=600 drain=60
  langid_rates=10,30,100,300,1000,3000,10000 seed_rates=0.1,0.3,1,3,10,100,1000
  langid_sizes=1024,4096,16384,65536,262144,1048576 seed_sizes=1024,4096,16384,65536,131072
fi
mkdir -p "$out"

# The seed code's scale: 3 x Conv1d(256->256, k = 3) with TFiLM, random weights (only
# its config.json is read; a fixed path, since reports and titles name it).
seed=target/seed-scale
rm -rf "$seed"
"$bin" init --out "$seed" --labels neg,pos --embed-dim 256 \
  --layers 256:3:1:32,256:3:1:32,256:3:1:32 --max-len 131072 >/dev/null

langid=(--model models/langid --calibration docs/results/calibration-langid-local-redis.json)
seedm=(--model "$seed" --calibration docs/results/calibration-seed-scale.json --splits 4)
common=(--duration-s "$duration" --drain-s "$drain")

run() {
  local name="$1"; shift
  echo "== $name" >&2
  rm -rf "${out:?}/$name"
  "$bin" simulate "$@" --out "$out/$name" >"$scratch/$name.txt"
}

run sim-langid "${langid[@]}" "${common[@]}" --length-bytes 4096 --sweep "$langid_rates"
run sim-langid-cpu "${langid[@]}" "${common[@]}" --length-bytes 4096 --sweep "$langid_rates" \
  --instance cpu-measured
run sim-langid-sizes "${langid[@]}" "${common[@]}" --rate 10 --sweep-bytes "$langid_sizes"
run sim-seed-scale "${seedm[@]}" "${common[@]}" --length-bytes 80000 --sweep "$seed_rates"
run sim-seed-scale-resident "${seedm[@]}" "${common[@]}" --plan resident --length-bytes 80000 \
  --sweep "$seed_rates"
run sim-seed-scale-low "${seedm[@]}" --length-bytes 80000 --rate 0.1 \
  --duration-s "$low_duration" --drain-s "$drain"
run sim-seed-scale-sizes "${seedm[@]}" --rate 0.1 --duration-s "$low_duration" \
  --drain-s "$drain" --sweep-bytes "$seed_sizes"

# Every output there and complete: the files, and one CSV row per level or length.
fail=0
check() {
  local dir="$out/$1" csv="$2" rows="$3"; shift 3
  for f in report.json timeline.csv queries.csv cost_vs_utilisation.svg timeline.svg "$@"; do
    if [[ ! -s "$dir/$f" ]]; then
      echo "missing or empty: $dir/$f" >&2
      fail=1
    fi
  done
  if [[ -n "$csv" ]]; then
    local got=$(($(wc -l <"$dir/$csv") - 1))
    if [[ "$got" -ne "$rows" ]]; then
      echo "$dir/$csv: $got rows, expected $rows" >&2
      fail=1
    fi
  fi
}
count() { tr ',' '\n' <<<"$1" | wc -l; }
load=(sweep.json sweep.csv throughput_vs_load.svg throughput_vs_load.png latency_vs_load.svg)
sizes=(size_sweep.json size_sweep.csv throughput_vs_size.svg throughput_vs_size.png
  latency_vs_size.svg)
check sim-langid sweep.csv "$(count "$langid_rates")" "${load[@]}"
check sim-langid-cpu sweep.csv "$(count "$langid_rates")" "${load[@]}"
check sim-langid-sizes size_sweep.csv "$(count "$langid_sizes")" "${sizes[@]}"
check sim-seed-scale sweep.csv "$(count "$seed_rates")" "${load[@]}"
check sim-seed-scale-resident sweep.csv "$(count "$seed_rates")" "${load[@]}"
check sim-seed-scale-low "" 0
check sim-seed-scale-sizes size_sweep.csv "$(count "$seed_sizes")" "${sizes[@]}"
if [[ "$fail" -ne 0 ]]; then
  echo "reproduce: outputs incomplete" >&2
  exit 1
fi
echo "reproduce: all outputs written to $out" >&2
