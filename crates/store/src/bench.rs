//! Store throughput, measured through [`TensorStore`] and compared with
//! `redis-benchmark` on the same server.
//!
//! The question this answers is how much of Redis' raw throughput the stage
//! functions actually get once tensors are encoded, checksummed, sent with an
//! expiry and validated on read. To keep the comparison fair:
//!
//! - **Same payload.** A row of size `S` moves tensors whose payload is `S` bytes
//!   (an f32 tensor of `S / 4` elements, so `S` is rounded down to a multiple of
//!   4); `redis-benchmark -d S` moves `S`-byte values. MB/s counts those `S` bytes
//!   per operation on both sides (MB = 10^6 bytes); the blob's 48-byte header is
//!   overhead the store pays and the baseline does not.
//! - **Same concurrency.** `parallel` workers each keep one operation in flight,
//!   like `redis-benchmark -c parallel` without pipelining (`-P 1`). The store
//!   multiplexes its workers over its shared connection, as the functions do.
//! - **Same server, same moment.** Given the server's endpoint
//!   ([`baseline_endpoint`] reads it from the store URL), every run of the store
//!   is followed at once by a run of [`redis_benchmark_baseline`] with
//!   `clients = parallel`, so on a shared, noisy machine both sides see the same
//!   load; each side's figure is the median over the runs.
//!
//! Each store figure is the median of `runs` runs; each run writes
//! [`StoreBenchRow::ops_per_run`] tensors (puts), reads them all back (gets), and
//! deletes them.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::task::JoinSet;

use crate::error::StoreError;
use crate::tensor::StoredTensor;
use crate::{QueryId, TensorStore};

/// Bytes each run moves per direction, so small sizes still run long enough.
const BYTES_PER_RUN: usize = 64 * 1024 * 1024;
/// Most operations per run, so tiny sizes stay quick.
const MAX_OPS_PER_RUN: usize = 20_000;
/// Expiry of bench keys, in case a run is interrupted before it deletes them.
const BENCH_TTL: Duration = Duration::from_secs(120);

/// One payload size's result.
#[derive(Debug, Clone, PartialEq)]
pub struct StoreBenchRow {
    /// Payload bytes per tensor (a multiple of 4).
    pub size_bytes: usize,
    /// Runs the medians are taken over.
    pub runs: usize,
    /// Operations in flight at once.
    pub parallel: usize,
    /// Puts (and gets) per run.
    pub ops_per_run: usize,
    /// Median put throughput, payload MB/s.
    pub put_mb_s: f64,
    /// Median get throughput, payload MB/s.
    pub get_mb_s: f64,
    /// `redis-benchmark` SET throughput at the same size and concurrency, if measured.
    pub baseline_set_mb_s: Option<f64>,
    /// `redis-benchmark` GET throughput at the same size and concurrency, if measured.
    pub baseline_get_mb_s: Option<f64>,
    /// `put_mb_s / baseline_set_mb_s`.
    pub put_ratio: Option<f64>,
    /// `get_mb_s / baseline_get_mb_s`.
    pub get_ratio: Option<f64>,
}

impl StoreBenchRow {
    /// Attaches the baseline measured for this row's size and fills in the ratios.
    pub fn with_baseline(mut self, set_mb_s: f64, get_mb_s: f64) -> Self {
        self.baseline_set_mb_s = Some(set_mb_s);
        self.baseline_get_mb_s = Some(get_mb_s);
        self.put_ratio = (set_mb_s > 0.0).then(|| self.put_mb_s / set_mb_s);
        self.get_ratio = (get_mb_s > 0.0).then(|| self.get_mb_s / get_mb_s);
        self
    }
}

/// Measures put and get throughput of `store` for each payload size in
/// `sizes_bytes` (median of `runs` runs, `parallel` operations in flight), and,
/// given the Redis server's `(host, port)`, `redis-benchmark` on it after each run.
/// Fails on the first store or baseline error, or if a size is below 4 bytes or
/// `runs` or `parallel` is zero.
pub async fn run_store_bench(
    store: Arc<dyn TensorStore>,
    sizes_bytes: &[usize],
    runs: usize,
    parallel: usize,
    baseline: Option<(String, u16)>,
) -> Result<Vec<StoreBenchRow>, StoreError> {
    if runs == 0 || parallel == 0 {
        return Err(StoreError::invalid(
            "bench needs runs >= 1 and parallel >= 1",
        ));
    }
    let mut rows = Vec::with_capacity(sizes_bytes.len());
    for &size in sizes_bytes {
        let elems = size / 4;
        if elems == 0 {
            return Err(StoreError::invalid(format!(
                "bench payload size {size} is below 4 bytes (one f32)"
            )));
        }
        let size = elems * 4;
        let tensor = Arc::new(StoredTensor::f32(
            vec![elems],
            (0..elems).map(|i| i as f32).collect(),
        )?);
        let ops = (BYTES_PER_RUN / size).clamp(parallel, MAX_OPS_PER_RUN.max(parallel));
        let mut put = Vec::with_capacity(runs);
        let mut get = Vec::with_capacity(runs);
        let (mut base_set, mut base_get) = (Vec::new(), Vec::new());
        for _ in 0..runs {
            let q = QueryId::new();
            let keys: Vec<String> = (0..ops).map(|i| q.key(&format!("bench/{i}"))).collect();
            let t = timed(&store, &keys, parallel, Op::Put(tensor.clone())).await;
            let t = match t {
                Ok(t) => t,
                Err(e) => {
                    // Best effort: the keys expire anyway.
                    let _ = store.delete(&keys).await;
                    return Err(e);
                }
            };
            put.push(mb_per_s(ops * size, t));
            let t = timed(&store, &keys, parallel, Op::Get(elems)).await;
            store.delete(&keys).await?;
            get.push(mb_per_s(ops * size, t?));
            if let Some((host, port)) = baseline.clone() {
                // About two runs' worth of bytes: enough for a stable rate, bounded so
                // large payloads stay quick.
                let requests = (2 * BYTES_PER_RUN / size).clamp(100, MAX_OPS_PER_RUN);
                let (set, get) = tokio::task::spawn_blocking(move || {
                    redis_benchmark_baseline(&host, port, size, parallel, requests)
                })
                .await
                .map_err(|e| StoreError::Tool {
                    tool: "redis-benchmark".into(),
                    reason: e.to_string(),
                })??;
                base_set.push(set);
                base_get.push(get);
            }
        }
        let row = StoreBenchRow {
            size_bytes: size,
            runs,
            parallel,
            ops_per_run: ops,
            put_mb_s: median(&mut put),
            get_mb_s: median(&mut get),
            baseline_set_mb_s: None,
            baseline_get_mb_s: None,
            put_ratio: None,
            get_ratio: None,
        };
        rows.push(if base_set.is_empty() {
            row
        } else {
            row.with_baseline(median(&mut base_set), median(&mut base_get))
        });
    }
    Ok(rows)
}

#[derive(Clone)]
enum Op {
    Put(Arc<StoredTensor>),
    /// Get, checking the element count.
    Get(usize),
}

/// Runs `op` on every key with `parallel` workers; returns the wall time.
async fn timed(
    store: &Arc<dyn TensorStore>,
    keys: &[String],
    parallel: usize,
    op: Op,
) -> Result<Duration, StoreError> {
    let per_worker = keys.len().div_ceil(parallel);
    let start = Instant::now();
    let mut workers = JoinSet::new();
    for chunk in keys.chunks(per_worker) {
        let (store, chunk, op) = (store.clone(), chunk.to_vec(), op.clone());
        workers.spawn(async move {
            for key in &chunk {
                match &op {
                    Op::Put(t) => {
                        store.put(key, t, BENCH_TTL).await?;
                    }
                    Op::Get(elems) => {
                        let got = store.get(key).await?;
                        if got.tensor.shape() != [*elems] {
                            return Err(StoreError::corrupt(key, "bench read back another shape"));
                        }
                    }
                }
            }
            Ok::<(), StoreError>(())
        });
    }
    while let Some(done) = workers.join_next().await {
        done.map_err(|e| StoreError::Tool {
            tool: "store bench worker".into(),
            reason: e.to_string(),
        })??;
    }
    Ok(start.elapsed())
}

fn mb_per_s(bytes: usize, t: Duration) -> f64 {
    bytes as f64 / t.as_secs_f64().max(1e-9) / 1e6
}

fn median(xs: &mut [f64]) -> f64 {
    xs.sort_by(f64::total_cmp);
    match xs.len() {
        0 => 0.0,
        n if n % 2 == 1 => xs[n / 2],
        n => (xs[n / 2 - 1] + xs[n / 2]) / 2.0,
    }
}

/// Runs `redis-benchmark -h host -p port -t set,get -d size_bytes -c clients
/// -n requests --csv` (no pipelining) and returns (SET, GET) payload MB/s:
/// requests per second times `size_bytes`. The server must not require a
/// password. Blocks while it runs; call it from `spawn_blocking` or outside the
/// async runtime.
pub fn redis_benchmark_baseline(
    host: &str,
    port: u16,
    size_bytes: usize,
    clients: usize,
    requests: usize,
) -> Result<(f64, f64), StoreError> {
    let tool = |reason: String| StoreError::Tool {
        tool: "redis-benchmark".into(),
        reason,
    };
    let out = std::process::Command::new("redis-benchmark")
        .args(["-h", host, "-p", &port.to_string()])
        .args(["-t", "set,get", "-P", "1", "--csv"])
        .args(["-d", &size_bytes.to_string()])
        .args(["-c", &clients.max(1).to_string()])
        .args(["-n", &requests.max(1).to_string()])
        .output()
        .map_err(|e| tool(format!("cannot run it (is redis-tools installed?): {e}")))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        return Err(tool(format!(
            "exit {}: {}{}",
            out.status,
            stdout,
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    let (set, get) = parse_benchmark_csv(&stdout).map_err(tool)?;
    let mb = |rps: f64| rps * size_bytes as f64 / 1e6;
    Ok((mb(set), mb(get)))
}

/// The `(host, port)` to give [`redis_benchmark_baseline`] for a store URL: only
/// for a plain `redis://` URL without a password (TLS, AUTH and Cluster URLs
/// need options the baseline does not pass), else `None`.
pub fn baseline_endpoint(store_url: &str) -> Option<(String, u16)> {
    let url = url::Url::parse(store_url.trim()).ok()?;
    if url.scheme() != "redis" || url.password().is_some() || !url.username().is_empty() {
        return None;
    }
    let host = url
        .host_str()?
        .trim_start_matches('[')
        .trim_end_matches(']');
    Some((host.to_owned(), url.port().unwrap_or(6379)))
}

/// Requests per second of SET and GET from `redis-benchmark --csv` output.
fn parse_benchmark_csv(csv: &str) -> Result<(f64, f64), String> {
    let mut set = None;
    let mut get = None;
    for line in csv.lines() {
        let fields: Vec<&str> = line
            .split(',')
            .map(|f| f.trim().trim_matches('"'))
            .collect();
        let (Some(test), Some(rps)) = (fields.first(), fields.get(1)) else {
            continue;
        };
        let slot = match *test {
            "SET" => &mut set,
            "GET" => &mut get,
            _ => continue,
        };
        *slot = Some(
            rps.parse::<f64>()
                .map_err(|e| format!("bad rps `{rps}` for {test}: {e}"))?,
        );
    }
    match (set, get) {
        (Some(s), Some(g)) => Ok((s, g)),
        _ => Err(format!("no SET and GET rows in its output: {csv}")),
    }
}

/// A plain-text table of the rows, for the terminal.
pub fn render_table(rows: &[StoreBenchRow]) -> String {
    let opt = |x: Option<f64>, prec: usize| match x {
        Some(v) => format!("{v:.prec$}"),
        None => "-".to_owned(),
    };
    let mut out = format!(
        "{:>10} {:>5} {:>4} {:>6} {:>10} {:>10} {:>10} {:>10} {:>6} {:>6}\n",
        "size_B",
        "par",
        "runs",
        "ops",
        "put_MB/s",
        "set_MB/s",
        "get_MB/s",
        "rget_MB/s",
        "put/x",
        "get/x"
    );
    for r in rows {
        out.push_str(&format!(
            "{:>10} {:>5} {:>4} {:>6} {:>10.1} {:>10} {:>10.1} {:>10} {:>6} {:>6}\n",
            r.size_bytes,
            r.parallel,
            r.runs,
            r.ops_per_run,
            r.put_mb_s,
            opt(r.baseline_set_mb_s, 1),
            r.get_mb_s,
            opt(r.baseline_get_mb_s, 1),
            opt(r.put_ratio, 2),
            opt(r.get_ratio, 2),
        ));
    }
    out
}

/// The rows as CSV with a header line; missing baselines are empty fields.
pub fn to_csv(rows: &[StoreBenchRow]) -> String {
    let opt = |x: Option<f64>| x.map(|v| format!("{v:.3}")).unwrap_or_default();
    let mut out = String::from(
        "size_bytes,parallel,runs,ops_per_run,put_mb_s,get_mb_s,\
         baseline_set_mb_s,baseline_get_mb_s,put_ratio,get_ratio\n",
    );
    for r in rows {
        out.push_str(&format!(
            "{},{},{},{},{:.3},{:.3},{},{},{},{}\n",
            r.size_bytes,
            r.parallel,
            r.runs,
            r.ops_per_run,
            r.put_mb_s,
            r.get_mb_s,
            opt(r.baseline_set_mb_s),
            opt(r.baseline_get_mb_s),
            opt(r.put_ratio),
            opt(r.get_ratio),
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MemoryStore;

    #[test]
    fn parses_redis_benchmark_csv() {
        let csv = "\"test\",\"rps\",\"avg_latency_ms\"\n\
                   \"SET\",\"11299.43\",\"0.271\"\n\
                   \"GET\",\"12987.01\",\"0.162\"\n";
        assert_eq!(parse_benchmark_csv(csv).unwrap(), (11299.43, 12987.01));
        assert!(parse_benchmark_csv("\"SET\",\"1\"\n").is_err());
        assert!(parse_benchmark_csv("\"SET\",\"x\"\n\"GET\",\"1\"\n").is_err());
    }

    #[test]
    fn baseline_endpoints() {
        assert_eq!(
            baseline_endpoint("redis://127.0.0.1:7001/0"),
            Some(("127.0.0.1".to_owned(), 7001))
        );
        assert_eq!(
            baseline_endpoint("redis://cache"),
            Some(("cache".to_owned(), 6379))
        );
        for url in [
            "memory",
            "rediss://h:1",
            "redis://:pw@h:1",
            "redis+cluster://a:1,b:2",
        ] {
            assert_eq!(baseline_endpoint(url), None, "{url}");
        }
    }

    #[test]
    fn medians() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&mut [4.0, 1.0, 2.0, 3.0]), 2.5);
    }

    #[tokio::test]
    async fn benches_the_memory_store_and_renders() {
        let store = Arc::new(MemoryStore::new());
        let rows = run_store_bench(store.clone(), &[8, 67], 2, 2, None)
            .await
            .unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[1].size_bytes, 64);
        assert!(rows.iter().all(|r| r.put_mb_s > 0.0 && r.get_mb_s > 0.0));
        assert!(store.live_keys().is_empty(), "bench must delete its keys");

        let row = rows[0].clone().with_baseline(rows[0].put_mb_s * 2.0, 0.0);
        assert_eq!(row.put_ratio, Some(0.5));
        assert_eq!(row.get_ratio, None);
        let table = render_table(std::slice::from_ref(&row));
        assert_eq!(table.lines().count(), 2);
        let csv = to_csv(&[row]);
        assert_eq!(csv.lines().count(), 2);
        assert_eq!(csv.lines().nth(1).unwrap().split(',').count(), 10);

        assert!(
            run_store_bench(store.clone(), &[2], 1, 1, None)
                .await
                .is_err()
        );
        assert!(run_store_bench(store, &[8], 0, 1, None).await.is_err());
    }
}
