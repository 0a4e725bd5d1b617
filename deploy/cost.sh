#!/usr/bin/env bash
# What deploy/template.yaml's stack costs, with `seqless cost` at the template's default
# parameters: idle per hour, and per million queries. Writes docs/results/deploy-cost.txt.
#
#   deploy/cost.sh SEQLESS TRACE
#
# SEQLESS is the seqless binary; TRACE holds `seqless classify --mode serverless --json`
# outputs (JSON lines) of the queries to price, run at the template's function memory.
set -euo pipefail

seqless=${1:?usage: deploy/cost.sh SEQLESS TRACE}
trace=${2:?usage: deploy/cost.sh SEQLESS TRACE}
repo=$(cd "$(dirname "$0")/.." && pwd)
out="$repo/docs/results/deploy-cost.txt"

# The stack at its defaults: MasterInstanceType t2.xlarge, CacheNodeType cache.m5.large
# (one node), the Secrets Manager endpoint in the two private subnets, the master's public
# IPv4 address and 8 GiB root volume, two secrets. Functions in two AZs, the cache in one:
# half the store traffic crosses AZs.
stack=(--master t2.xlarge --cache-node cache.m5.large --cache-nodes 1
    --hourly vpc-interface-endpoint-az:2 --hourly public-ipv4-address
    --hourly ebs-gp3-gib:8 --hourly secretsmanager-secret:2
    --cross-az-fraction 0.5 --arch x86_64 --trace "$trace")

run() {
    echo "\$ seqless cost $*"
    "$seqless" cost "$@"
    echo
}

{
    echo "# deploy/cost.sh $(basename "$seqless") $(realpath --relative-to="$repo" "$trace")"
    echo "# Idle: one hour, no queries."
    run "${stack[@]}" --queries 0 --hours 1
    echo "# Per million queries, warm, without the hourly part (hours 0)."
    run "${stack[@]}" --queries 1000000 --hours 0 --cold-start-fraction 0
    echo "# One million queries spread over a day (11.6 q/s), warm."
    run "${stack[@]}" --queries 1000000 --hours 24 --cold-start-fraction 0
} > "$out"
echo "wrote $(realpath --relative-to="$repo" "$out")"
