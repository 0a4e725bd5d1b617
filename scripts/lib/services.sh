# Shared by the scripts that start their own services on 127.0.0.1 (soak.sh,
# validate-sim.sh); sourced, not run. It sets up $work (a scratch directory) and $pids (the
# processes to stop), and stops and removes them on exit.

work=$(mktemp -d)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

# Fails with a message naming the first of the given tools that is not installed.
need() {
    for tool in "$@"; do
        command -v "$tool" >/dev/null || { echo "error: $tool is not installed" >&2; exit 2; }
    done
}

# A free TCP port on 127.0.0.1.
free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Polls until the command succeeds, for at most 60 s.
await() {
    for _ in $(seq 600); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
    echo "error: timed out waiting for: $*" >&2
    exit 1
}

# Starts a throwaway redis-server (nothing saved) and sets $store to its URL.
start_redis() {
    local port
    port=$(free_port)
    redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no \
        --dir "$work" >"$work/redis.log" 2>&1 &
    pids+=($!)
    await redis-cli -p "$port" ping
    redis_port=$port
    store="redis://127.0.0.1:$port"
}

# Starts `$bin platform` of $model (default models/langid) on a free port with the extra
# flags given, and sets $endpoint and $platform_pid.
start_platform() {
    local port
    port=$(free_port)
    "$bin" platform --listen "127.0.0.1:$port" --model "${model:-models/langid}" \
        --store "$store" "$@" >"$work/platform.log" 2>&1 &
    platform_pid=$!
    pids+=("$platform_pid")
    await bash -c "exec 3<>/dev/tcp/127.0.0.1/$port"
    platform_port=$port
    endpoint="http://127.0.0.1:$port"
}

# Starts `$bin serve` in serverless mode against $endpoint on a free port with the extra
# flags given, and sets $url and $serve_pid.
start_serve() {
    local port
    port=$(free_port)
    "$bin" serve --model models/langid --mode serverless --platform local \
        --endpoint "$endpoint" --store "$store" --listen "127.0.0.1:$port" "$@" \
        >"$work/serve.log" 2>&1 &
    serve_pid=$!
    pids+=("$serve_pid")
    url="http://127.0.0.1:$port"
    await curl -sf "$url/readyz"
}
