//! The `redis-benchmark` side of the store bench: what the server does with the same
//! payload, the same concurrency and the same kind of key, driven by Redis' own client.
//!
//! A store put always writes a **fresh key** (every stage output of every query has
//! its own name), and on the server that costs more than overwriting one key: the value
//! needs new memory rather than the allocation the old value just gave back, so
//! `redis-benchmark`'s default SET workload (one key, overwritten) runs faster than the
//! same SETs spread over fresh keys with `-r` (docs/results.md, store-redis.csv). So the
//! baseline a put is compared with writes fresh keys too (`-r`), with an expiry as the
//! store's puts carry; the one-key rate is measured beside it and reported, for reference.
//!
//! Likewise a store get reads **distinct keys**, as many values as the run wrote, spread
//! over that much server memory; a GET of one key serves the same value from the
//! server's CPU cache every time, which runs faster. So the GET
//! baseline first writes `requests` keys named as `redis-benchmark -r requests` names
//! them (`__rand_int__` is a 12-digit, zero-padded number below `requests`) and then
//! reads them at random; every read finds its value. The one-key GET is reported beside
//! it.
//!
//! Every key the baseline writes carries a per-call prefix and a TTL, and is deleted
//! (by a SCAN of that prefix) before the call returns, whether or not it succeeded, so
//! a bench against a shared server leaves nothing behind.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::BenchError;

/// Expiry of baseline keys, in case cleanup cannot reach the server.
const BASELINE_TTL_SECS: &str = "120";
/// Key space for fresh keys: `-r` draws from this many names, so collisions (which
/// would turn a fresh-key SET into an overwrite) are rare at bench sizes.
const FRESH_KEY_SPACE: &str = "1000000000";
/// Bound on connecting to the server, and on each call that fills or cleans it up.
const SETUP_TIMEOUT: Duration = Duration::from_secs(10);
/// Most value bytes per pipeline when filling the GET baseline's keys.
const FILL_BATCH_BYTES: usize = 32 * 1024 * 1024;

/// `redis-benchmark` on one server at one payload size, payload MB/s (10^6 bytes).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Baseline {
    /// SETEX of a fresh key per request: the server work of a store put.
    pub set_fresh_mb_s: f64,
    /// SETEX overwriting one key, `redis-benchmark`'s usual SET workload: for reference.
    pub set_one_key_mb_s: f64,
    /// GET of distinct existing keys, as many as the store's run reads: the server
    /// work of store gets.
    pub get_mb_s: f64,
    /// GET of one key, over and over: for reference.
    pub get_one_key_mb_s: f64,
}

/// Runs `redis-benchmark -h host -p port -c clients -n requests -P 1` four times at
/// `size_bytes`: SETEX of fresh keys, SETEX of one key, GET of that key, GET of
/// `requests` distinct keys it writes first (see the module docs), then deletes every
/// key it wrote. The server must not require a password. Blocks while it runs; call it
/// from `spawn_blocking` or outside the async runtime.
pub fn redis_benchmark_baseline(
    host: &str,
    port: u16,
    size_bytes: usize,
    clients: usize,
    requests: usize,
) -> Result<Baseline, BenchError> {
    let prefix = format!("seqless-bench:baseline:{}:", uuid::Uuid::new_v4());
    let bench = RedisBenchmark {
        host,
        port,
        clients: clients.max(1),
        requests: requests.max(1),
    };
    let value = vec![b'x'; size_bytes];
    let fresh_key = format!("{prefix}fresh:__rand_int__");
    let one_key = format!("{prefix}one");
    let measured = (|| -> Result<Baseline, BenchError> {
        let fresh = bench.rps(
            &[
                "-r",
                FRESH_KEY_SPACE,
                "-x",
                "SETEX",
                &fresh_key,
                BASELINE_TTL_SECS,
            ],
            Some(&value),
        )?;
        let one = bench.rps(&["-x", "SETEX", &one_key, BASELINE_TTL_SECS], Some(&value))?;
        let get_one = bench.rps(&["GET", &one_key], None)?;
        let get_prefix = format!("{prefix}get:");
        fill_keys(host, port, &get_prefix, bench.requests, &value)?;
        let get = bench.rps(
            &[
                "-r",
                &bench.requests.to_string(),
                "GET",
                &format!("{get_prefix}__rand_int__"),
            ],
            None,
        )?;
        let mb = |rps: f64| rps * size_bytes as f64 / 1e6;
        Ok(Baseline {
            set_fresh_mb_s: mb(fresh),
            set_one_key_mb_s: mb(one),
            get_mb_s: mb(get),
            get_one_key_mb_s: mb(get_one),
        })
    })();
    let cleaned = delete_prefixed(host, port, &prefix);
    let baseline = measured?;
    cleaned?;
    Ok(baseline)
}

/// One server and load shape, for several `redis-benchmark` runs.
struct RedisBenchmark<'a> {
    host: &'a str,
    port: u16,
    clients: usize,
    requests: usize,
}

impl RedisBenchmark<'_> {
    /// Requests per second of the single test `command` names, with `stdin` fed to
    /// `-x` (the value) when given.
    fn rps(&self, command: &[&str], stdin: Option<&[u8]>) -> Result<f64, BenchError> {
        let mut child = Command::new("redis-benchmark")
            .args(["-h", self.host, "-p", &self.port.to_string()])
            .args(["-c", &self.clients.to_string()])
            .args(["-n", &self.requests.to_string()])
            .args(["-P", "1", "--csv"])
            .args(command)
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| tool(format!("cannot run it (is redis-tools installed?): {e}")))?;
        if let (Some(value), Some(mut pipe)) = (stdin, child.stdin.take()) {
            // redis-benchmark reads all of stdin before it starts; a failed write shows
            // up as its own error below.
            let _ = pipe.write_all(value);
        }
        let out = child
            .wait_with_output()
            .map_err(|e| tool(format!("waiting for it: {e}")))?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        if !out.status.success() {
            return Err(tool(format!(
                "`{}` exited with {}: {}{}",
                command.join(" "),
                out.status,
                stdout,
                String::from_utf8_lossy(&out.stderr)
            )));
        }
        parse_single_rps(&stdout).map_err(tool)
    }
}

/// Requests per second of the one test in `redis-benchmark --csv` output.
fn parse_single_rps(csv: &str) -> Result<f64, String> {
    let row = csv
        .lines()
        .map(|line| {
            line.split(',')
                .map(|f| f.trim().trim_matches('"'))
                .collect::<Vec<_>>()
        })
        .find(|fields| fields.len() >= 2 && fields[0] != "test")
        .ok_or_else(|| format!("no result row in its output: {csv}"))?;
    let rps = row[1];
    rps.parse::<f64>()
        .map_err(|e| format!("bad rps `{rps}` for `{}`: {e}", row[0]))
}

/// The name `redis-benchmark -r` gives `__rand_int__` for `n`: 12 digits, zero-padded.
fn rand_int_name(prefix: &str, n: usize) -> String {
    format!("{prefix}{n:012}")
}

/// Writes `count` keys `prefix` + [`rand_int_name`] (0 to `count - 1`) holding `value`,
/// with the baseline's expiry, in pipelines of at most [`FILL_BATCH_BYTES`] of values.
fn fill_keys(
    host: &str,
    port: u16,
    prefix: &str,
    count: usize,
    value: &[u8],
) -> Result<(), BenchError> {
    let failed = |e: redis::RedisError| {
        tool(format!(
            "writing the GET baseline's keys under `{prefix}` on {host}:{port}: {e}"
        ))
    };
    let mut conn = connect(host, port).map_err(failed)?;
    let per_batch = (FILL_BATCH_BYTES / value.len().max(1)).max(1);
    for first in (0..count).step_by(per_batch) {
        let mut pipe = redis::pipe();
        for n in first..count.min(first + per_batch) {
            pipe.cmd("SETEX")
                .arg(rand_int_name(prefix, n))
                .arg(BASELINE_TTL_SECS)
                .arg(value)
                .ignore();
        }
        pipe.exec(&mut conn).map_err(failed)?;
    }
    Ok(())
}

/// A blocking connection whose every call is bounded by [`SETUP_TIMEOUT`].
fn connect(host: &str, port: u16) -> redis::RedisResult<redis::Connection> {
    let client = redis::Client::open((host, port))?;
    let conn = client.get_connection_with_timeout(SETUP_TIMEOUT)?;
    conn.set_read_timeout(Some(SETUP_TIMEOUT))?;
    conn.set_write_timeout(Some(SETUP_TIMEOUT))?;
    Ok(conn)
}

/// Deletes every key under `prefix` (SCAN, then UNLINK), so the baseline leaves
/// nothing on the server.
fn delete_prefixed(host: &str, port: u16, prefix: &str) -> Result<(), BenchError> {
    let cleanup = |e: redis::RedisError| {
        tool(format!(
            "cleaning up its keys under `{prefix}` on {host}:{port}: {e}"
        ))
    };
    let mut conn = connect(host, port).map_err(cleanup)?;
    let pattern = format!("{prefix}*");
    let mut cursor = 0u64;
    loop {
        let (next, keys): (u64, Vec<String>) = crate::scan_page(cursor, &pattern)
            .query(&mut conn)
            .map_err(cleanup)?;
        if !keys.is_empty() {
            redis::cmd("UNLINK")
                .arg(&keys)
                .exec(&mut conn)
                .map_err(cleanup)?;
        }
        if next == 0 {
            return Ok(());
        }
        cursor = next;
    }
}

fn tool(reason: String) -> BenchError {
    BenchError::Tool {
        tool: "redis-benchmark".into(),
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_keys_as_redis_benchmark_names_rand_int() {
        // redis-benchmark writes `__rand_int__` as `%012llu` of a number below `-r`.
        assert_eq!(rand_int_name("p:get:", 0), "p:get:000000000000");
        assert_eq!(rand_int_name("p:get:", 4095), "p:get:000000004095");
    }

    #[test]
    fn parses_redis_benchmark_csv() {
        let csv = "\"test\",\"rps\",\"avg_latency_ms\"\n\
                   \"SETEX seqless-bench:b:fresh:__rand_int__ 120\",\"11299.43\",\"0.271\"\n";
        assert_eq!(parse_single_rps(csv).unwrap(), 11299.43);
        assert!(parse_single_rps("\"test\",\"rps\"\n").is_err());
        assert!(parse_single_rps("\"GET k\",\"x\"\n").is_err());
    }
}
