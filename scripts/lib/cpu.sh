# Shared by the scripts that read where CPU goes (host-cpu.sh, validate-sim.sh); sourced
# after services.sh, not run.

# utime + stime of a process, in clock ticks.
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# The pid of the redis-server that start_redis started.
redis_server_pid() { redis-cli -p "$redis_port" info server | tr -d '\r' | sed -n 's/^process_id://p'; }

# Runs a command, its output discarded, and prints its CPU seconds (user + system).
command_cpu() {
    python3 - "$@" <<'PY'
import resource, subprocess, sys
subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
r = resource.getrusage(resource.RUSAGE_CHILDREN)
print(r.ru_utime + r.ru_stime)
PY
}
