//! Store throughput, measured through [`TensorStore`] and compared with
//! `redis-benchmark` on the same server.
//!
//! The question this answers is how much of Redis' raw throughput the stage
//! functions actually get once tensors are encoded, checksummed, sent with an
//! expiry and validated on read. To keep the comparison fair:
//!
//! - **Same payload.** A row of size `S` moves tensors whose payload is `S` bytes
//!   (an f32 tensor of `S / 4` elements, so `S` is rounded down to a multiple of
//!   4); the baseline moves `S`-byte values. MB/s counts those `S` bytes
//!   per operation on both sides (MB = 10^6 bytes); the blob's 48-byte header is
//!   overhead the store pays and the baseline does not.
//! - **Same concurrency.** `parallel` workers each keep one operation in flight,
//!   like `redis-benchmark -c parallel` without pipelining (`-P 1`). The store
//!   spreads its workers over its own connections, as the functions do.
//! - **Same server work.** A put writes a fresh key, so the SET baseline writes
//!   fresh keys too (with an expiry, as puts have); `redis-benchmark`'s usual
//!   one-key SET, which the server serves about twice as fast, is reported beside it
//!   for reference ([`baseline`] explains). A get reads distinct keys, so the GET
//!   baseline reads as many distinct keys of the size, spread over as much memory, and
//!   the one-key GET (served from the server's cache) is reported beside it. Both sides write
//!   [`StoreBenchRow::ops_per_run`] values per run, so the server's memory grows by
//!   the same amount.
//! - **Same server, same moment.** Given the server's endpoint
//!   ([`baseline_endpoint`] reads it from the store URL), every run of the store
//!   is followed at once by a run of [`redis_benchmark_baseline`] with
//!   `clients = parallel`, so on a shared, noisy machine both sides see the same
//!   load; each side's figure is the median over the runs ([`crate::stats`]), and each ratio the
//!   median of the runs' ratios to their own baseline.
//!
//! Each store figure is the median of `runs` runs; each run writes
//! [`StoreBenchRow::ops_per_run`] tensors (puts), reads them all back (gets), and
//! deletes them.

pub mod baseline;

use std::sync::Arc;
use std::time::{Duration, Instant};

use seqless_store::{QueryId, StoredTensor, TensorStore};
use tokio::task::JoinSet;

use crate::BenchError;
use crate::stats::median;

pub use baseline::{Baseline, redis_benchmark_baseline};

/// Bytes each run moves per direction, so small sizes still run long enough.
const BYTES_PER_RUN: usize = 256 * 1024 * 1024;
/// Most operations per run, so tiny sizes stay quick.
const MAX_OPS_PER_RUN: usize = 20_000;
/// Fewest operations per run per client, so large sizes still time several each.
const MIN_OPS_PER_CLIENT: usize = 4;
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
    /// Median `redis-benchmark` throughputs at the same size and concurrency, if measured.
    pub baseline: Option<Baseline>,
    /// Put against `baseline.set_fresh_mb_s`, the same server work: the median over
    /// runs of each run's ratio to the baseline run right after it.
    pub put_ratio: Option<f64>,
    /// Put against `baseline.set_one_key_mb_s` (overwriting one key), for reference;
    /// paired as `put_ratio` is.
    pub put_ratio_one_key: Option<f64>,
    /// Get against `baseline.get_mb_s`, the same server work; paired as `put_ratio` is.
    pub get_ratio: Option<f64>,
    /// Get against `baseline.get_one_key_mb_s` (one key, read over and over), for
    /// reference; paired as `put_ratio` is.
    pub get_ratio_one_key: Option<f64>,
}

/// One timed run of the store, and the baseline run right after it if there is one.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RunSample {
    /// Put throughput of the run, payload MB/s.
    pub put_mb_s: f64,
    /// Get throughput of the run, payload MB/s.
    pub get_mb_s: f64,
    /// `redis-benchmark` right after the run.
    pub baseline: Option<Baseline>,
}

impl StoreBenchRow {
    /// Medians of `samples` (one per run), and ratios as medians of each run's ratio
    /// to its own baseline: load that drifts over the bench then moves both sides of
    /// a pair alike, so it cancels in the ratio more than in a ratio of medians.
    /// Ratios and baseline are `None` unless every run has a baseline.
    pub fn from_runs(
        size_bytes: usize,
        parallel: usize,
        ops_per_run: usize,
        samples: &[RunSample],
    ) -> Self {
        let of = |field: &dyn Fn(&RunSample) -> Option<f64>| -> Option<f64> {
            median(&samples.iter().map(field).collect::<Option<Vec<f64>>>()?)
        };
        let ratio = |ours: f64, theirs: f64| (theirs > 0.0).then(|| ours / theirs);
        let baseline_of = |field: fn(&Baseline) -> f64| of(&|s| s.baseline.as_ref().map(field));
        let baseline = match (
            baseline_of(|b| b.set_fresh_mb_s),
            baseline_of(|b| b.set_one_key_mb_s),
            baseline_of(|b| b.get_mb_s),
            baseline_of(|b| b.get_one_key_mb_s),
        ) {
            (
                Some(set_fresh_mb_s),
                Some(set_one_key_mb_s),
                Some(get_mb_s),
                Some(get_one_key_mb_s),
            ) => Some(Baseline {
                set_fresh_mb_s,
                set_one_key_mb_s,
                get_mb_s,
                get_one_key_mb_s,
            }),
            _ => None,
        };
        Self {
            size_bytes,
            runs: samples.len(),
            parallel,
            ops_per_run,
            put_mb_s: of(&|s| Some(s.put_mb_s)).unwrap_or(0.0),
            get_mb_s: of(&|s| Some(s.get_mb_s)).unwrap_or(0.0),
            baseline,
            put_ratio: of(&|s| ratio(s.put_mb_s, s.baseline?.set_fresh_mb_s)),
            put_ratio_one_key: of(&|s| ratio(s.put_mb_s, s.baseline?.set_one_key_mb_s)),
            get_ratio: of(&|s| ratio(s.get_mb_s, s.baseline?.get_mb_s)),
            get_ratio_one_key: of(&|s| ratio(s.get_mb_s, s.baseline?.get_one_key_mb_s)),
        }
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
) -> Result<Vec<StoreBenchRow>, BenchError> {
    if runs == 0 || parallel == 0 {
        return Err(BenchError::Invalid(
            "bench needs runs >= 1 and parallel >= 1".into(),
        ));
    }
    let mut rows = Vec::with_capacity(sizes_bytes.len());
    for &size in sizes_bytes {
        let elems = size / 4;
        if elems == 0 {
            return Err(BenchError::Invalid(format!(
                "bench payload size {size} is below 4 bytes (one f32)"
            )));
        }
        let size = elems * 4;
        let tensor = Arc::new(StoredTensor::f32(
            vec![elems],
            (0..elems).map(|i| i as f32).collect(),
        )?);
        let min_ops = MIN_OPS_PER_CLIENT * parallel;
        let ops = (BYTES_PER_RUN / size).clamp(min_ops, MAX_OPS_PER_RUN.max(min_ops));
        let mut samples = Vec::with_capacity(runs);
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
            let put_mb_s = mb_per_s(ops * size, t);
            let t = timed(&store, &keys, parallel, Op::Get(elems)).await;
            store.delete(&keys).await?;
            let get_mb_s = mb_per_s(ops * size, t?);
            let mut sample = RunSample {
                put_mb_s,
                get_mb_s,
                baseline: None,
            };
            if let Some((host, port)) = baseline.clone() {
                let measured = tokio::task::spawn_blocking(move || {
                    redis_benchmark_baseline(&host, port, size, parallel, ops)
                })
                .await
                .map_err(|e| BenchError::Tool {
                    tool: "redis-benchmark".into(),
                    reason: e.to_string(),
                })??;
                sample.baseline = Some(measured);
            }
            samples.push(sample);
        }
        rows.push(StoreBenchRow::from_runs(size, parallel, ops, &samples));
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
) -> Result<Duration, BenchError> {
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
                            return Err(BenchError::ReadBack { key: key.clone() });
                        }
                    }
                }
            }
            Ok::<(), BenchError>(())
        });
    }
    while let Some(done) = workers.join_next().await {
        done.map_err(|e| BenchError::Tool {
            tool: "store bench worker".into(),
            reason: e.to_string(),
        })??;
    }
    Ok(start.elapsed())
}

fn mb_per_s(bytes: usize, t: Duration) -> f64 {
    bytes as f64 / t.as_secs_f64().max(1e-9) / 1e6
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

/// Column names of the table and the CSV, in order (see [`row_fields`]).
const COLUMNS: [(&str, &str); 14] = [
    ("size_B", "size_bytes"),
    ("par", "parallel"),
    ("runs", "runs"),
    ("ops", "ops_per_run"),
    ("put_MB/s", "put_mb_s"),
    ("set_MB/s", "baseline_set_fresh_mb_s"),
    ("put/x", "put_ratio"),
    ("set1_MB/s", "baseline_set_one_key_mb_s"),
    ("put/x1", "put_ratio_one_key"),
    ("get_MB/s", "get_mb_s"),
    ("rget_MB/s", "baseline_get_mb_s"),
    ("get/x", "get_ratio"),
    ("rget1_MB/s", "baseline_get_one_key_mb_s"),
    ("get/x1", "get_ratio_one_key"),
];

/// A row's fields in [`COLUMNS`] order: MB/s with `mb_prec` decimals, ratios with
/// `ratio_prec`, and `missing` where no baseline was measured.
fn row_fields(r: &StoreBenchRow, mb_prec: usize, ratio_prec: usize, missing: &str) -> Vec<String> {
    let opt = |x: Option<f64>, prec: usize| {
        x.map_or_else(|| missing.to_owned(), |v| format!("{v:.prec$}"))
    };
    let base = |field: fn(&Baseline) -> f64| opt(r.baseline.as_ref().map(field), mb_prec);
    vec![
        r.size_bytes.to_string(),
        r.parallel.to_string(),
        r.runs.to_string(),
        r.ops_per_run.to_string(),
        format!("{:.mb_prec$}", r.put_mb_s),
        base(|b| b.set_fresh_mb_s),
        opt(r.put_ratio, ratio_prec),
        base(|b| b.set_one_key_mb_s),
        opt(r.put_ratio_one_key, ratio_prec),
        format!("{:.mb_prec$}", r.get_mb_s),
        base(|b| b.get_mb_s),
        opt(r.get_ratio, ratio_prec),
        base(|b| b.get_one_key_mb_s),
        opt(r.get_ratio_one_key, ratio_prec),
    ]
}

/// A plain-text table of the rows, for the terminal: `set` is `redis-benchmark`
/// writing fresh keys (the put's baseline, `put/x`), `set1` overwriting one key
/// (`put/x1`, for reference), `rget` its GET of distinct keys (the get's baseline,
/// `get/x`), `rget1` of one key (`get/x1`, for reference).
pub fn render_table(rows: &[StoreBenchRow]) -> String {
    let line = |fields: Vec<String>| {
        let cells: Vec<String> = fields.iter().map(|f| format!("{f:>9}")).collect();
        cells.join(" ") + "\n"
    };
    let mut out = line(COLUMNS.iter().map(|(name, _)| name.to_string()).collect());
    for r in rows {
        out.push_str(&line(row_fields(r, 1, 2, "-")));
    }
    out
}

/// The rows as CSV with a header line; missing baselines are empty fields.
pub fn to_csv(rows: &[StoreBenchRow]) -> String {
    let header: Vec<&str> = COLUMNS.iter().map(|(_, name)| *name).collect();
    let mut out = header.join(",") + "\n";
    for r in rows {
        out.push_str(&(row_fields(r, 3, 3, "").join(",") + "\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use seqless_store::MemoryStore;

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

    /// Three runs whose paired ratios (0.1, 0.8, 3.0) have another median (0.8) than
    /// the ratio of the medians (20 / 30).
    fn paired_row() -> StoreBenchRow {
        let sample = |put_mb_s, set_fresh_mb_s| RunSample {
            put_mb_s,
            get_mb_s: 5.0,
            baseline: Some(Baseline {
                set_fresh_mb_s,
                set_one_key_mb_s: 40.0,
                get_mb_s: 0.0,
                get_one_key_mb_s: 10.0,
            }),
        };
        let samples = [sample(10.0, 100.0), sample(20.0, 25.0), sample(90.0, 30.0)];
        StoreBenchRow::from_runs(64, 2, 8, &samples)
    }

    #[test]
    fn ratios_are_medians_of_paired_runs() {
        let row = paired_row();
        assert_eq!((row.runs, row.put_mb_s, row.get_mb_s), (3, 20.0, 5.0));
        assert_eq!(row.baseline.unwrap().set_fresh_mb_s, 30.0);
        assert_eq!(row.put_ratio, Some(0.8));
        assert_eq!(row.put_ratio_one_key, Some(0.5));
        assert_eq!(row.get_ratio, None, "a zero baseline has no ratio");
        assert_eq!(row.get_ratio_one_key, Some(0.5));

        let mut unpaired = [RunSample {
            put_mb_s: 1.0,
            get_mb_s: 1.0,
            baseline: None,
        }; 2];
        assert_eq!(StoreBenchRow::from_runs(64, 1, 1, &unpaired).baseline, None);
        unpaired[0].baseline = paired_row().baseline;
        let row = StoreBenchRow::from_runs(64, 1, 1, &unpaired);
        assert_eq!(
            (row.baseline, row.put_ratio),
            (None, None),
            "all runs or none"
        );
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

        let row = paired_row();
        let table = render_table(&[row.clone(), rows[1].clone()]);
        assert_eq!(table.lines().count(), 3);
        assert!(table.lines().nth(1).unwrap().contains(" 0.80 "), "{table}");
        let csv = to_csv(&[row, rows[1].clone()]);
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(lines.iter().all(|l| l.split(',').count() == COLUMNS.len()));
        assert!(lines[1].contains(",0.800,"), "{csv}");
        let empty = lines[2].split(',').filter(|f| f.is_empty()).count();
        assert_eq!(empty, 8, "no baseline, empty fields: {csv}");

        assert!(
            run_store_bench(store.clone(), &[2], 1, 1, None)
                .await
                .is_err()
        );
        assert!(run_store_bench(store, &[8], 0, 1, None).await.is_err());
    }
}
