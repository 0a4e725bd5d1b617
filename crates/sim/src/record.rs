//! Measurements common to both deployments: per-query latencies, the timeline
//! and their summaries.

use serde::Serialize;

use crate::stats::rank;

/// Latency summary in milliseconds; the tail percentiles are where cold starts
/// and queueing show.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct LatencyStats {
    /// Queries summarised.
    pub count: u64,
    /// Mean, ms.
    pub mean_ms: f64,
    /// Median, ms.
    pub p50_ms: f64,
    /// 95th percentile, ms.
    pub p95_ms: f64,
    /// 99th percentile, ms.
    pub p99_ms: f64,
    /// Maximum, ms.
    pub max_ms: f64,
}

impl LatencyStats {
    /// Nearest-rank percentiles of latencies in µs (all zero when empty).
    pub(crate) fn from_micros(mut latencies: Vec<u64>) -> LatencyStats {
        if latencies.is_empty() {
            return LatencyStats::default();
        }
        latencies.sort_unstable();
        let n = latencies.len();
        let rank = |q: f64| rank(n, q).map_or(0.0, |i| latencies[i] as f64 / 1000.0);
        LatencyStats {
            count: n as u64,
            mean_ms: latencies.iter().map(|&l| l as f64).sum::<f64>() / n as f64 / 1000.0,
            p50_ms: rank(0.50),
            p95_ms: rank(0.95),
            p99_ms: rank(0.99),
            max_ms: latencies[n - 1] as f64 / 1000.0,
        }
    }
}

/// One bucket of the timeline, to plot throughput and concurrency over time.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TimelinePoint {
    /// Bucket start, seconds.
    pub t_s: f64,
    /// Queries that arrived in the bucket.
    pub arrivals: u64,
    /// Queries that completed in the bucket.
    pub completions: u64,
    /// Completions per second in the bucket.
    pub throughput_qps: f64,
    /// Highest concurrency in the bucket (executions or busy instances).
    pub max_concurrency: u32,
}

/// One query's fate, for the per-query CSV.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QueryRecord {
    /// Arrival order, from 0.
    pub id: usize,
    /// Arrival time, seconds.
    pub arrival_s: f64,
    /// Input length, bytes.
    pub len: usize,
    /// Latency, ms; `None` if still in flight at the end, or refused.
    pub latency_ms: Option<f64>,
    /// Whether any of its invocations started cold.
    pub cold: bool,
    /// Whether it was refused at admission (the master was full).
    pub rejected: bool,
}

/// What both deployments report in the same form, so sweeps and plots treat
/// them alike.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeploymentStats {
    /// Queries that arrived.
    pub arrived: u64,
    /// Queries that completed (within the window or the drain).
    pub completed: u64,
    /// Queries refused at admission, as a full server answers 503 with Retry-After.
    pub rejected: u64,
    /// Queries still queued or running at the end: `arrived − completed − rejected`.
    pub in_flight_at_end: u64,
    /// Queries completed inside the arrival window.
    pub completed_in_window: u64,
    /// `completed_in_window / duration`: the sustained throughput.
    pub throughput_qps: f64,
    /// Latency of all completed queries.
    pub latency: LatencyStats,
    /// Latency of completed queries that met at least one cold start.
    pub latency_cold: LatencyStats,
    /// Latency of the others.
    pub latency_warm: LatencyStats,
    /// Highest concurrency reached (executions or busy instances).
    pub max_concurrency: u32,
    /// What the deployment cost over the window.
    pub cost_usd: f64,
    /// `cost_usd` per completed query.
    pub cost_per_query_usd: f64,
    /// Arrivals, completions and concurrency over time.
    pub timeline: Vec<TimelinePoint>,
    /// Per-query records (kept out of the JSON; see `SimReport::queries_csv`).
    #[serde(skip)]
    pub queries: Vec<QueryRecord>,
}

struct Pending {
    arrival_us: u64,
    len: usize,
    done_us: Option<u64>,
    cold: bool,
    rejected: bool,
}

#[derive(Default, Clone, Copy)]
struct Bucket {
    arrivals: u64,
    completions: u64,
    max_concurrency: u32,
}

/// Collects measurements during one deployment's run.
pub(crate) struct Recorder {
    bucket_us: u64,
    window_us: u64,
    queries: Vec<Pending>,
    buckets: Vec<Bucket>,
    max_concurrency: u32,
}

impl Recorder {
    pub fn new(bucket_us: u64, window_us: u64) -> Self {
        Recorder {
            bucket_us: bucket_us.max(1),
            window_us,
            queries: Vec::new(),
            buckets: Vec::new(),
            max_concurrency: 0,
        }
    }

    fn bucket(&mut self, t: u64) -> &mut Bucket {
        let i = (t / self.bucket_us) as usize;
        if self.buckets.len() <= i {
            self.buckets.resize(i + 1, Bucket::default());
        }
        &mut self.buckets[i]
    }

    /// Registers an arrival and returns the query's id.
    pub fn arrive(&mut self, t: u64, len: usize) -> usize {
        self.bucket(t).arrivals += 1;
        self.queries.push(Pending {
            arrival_us: t,
            len,
            done_us: None,
            cold: false,
            rejected: false,
        });
        self.queries.len() - 1
    }

    pub fn len_of(&self, id: usize) -> usize {
        self.queries[id].len
    }

    pub fn mark_cold(&mut self, id: usize) {
        self.queries[id].cold = true;
    }

    pub fn complete(&mut self, id: usize, t: u64) {
        self.bucket(t).completions += 1;
        self.queries[id].done_us = Some(t);
    }

    pub fn reject(&mut self, id: usize) {
        self.queries[id].rejected = true;
    }

    pub fn concurrency(&mut self, t: u64, level: u32) {
        self.max_concurrency = self.max_concurrency.max(level);
        let b = self.bucket(t);
        b.max_concurrency = b.max_concurrency.max(level);
    }

    /// Mean input length of the arrived queries (0 if none).
    pub fn mean_len(&self) -> f64 {
        if self.queries.is_empty() {
            return 0.0;
        }
        self.queries.iter().map(|q| q.len as f64).sum::<f64>() / self.queries.len() as f64
    }

    /// Summarises the run; cost fields are left at zero for the caller to fill.
    pub fn finish(self) -> DeploymentStats {
        let latency = |q: &Pending| q.done_us.map(|d| d - q.arrival_us);
        let collect = |cold: Option<bool>| {
            LatencyStats::from_micros(
                self.queries
                    .iter()
                    .filter(|q| cold.is_none_or(|c| q.cold == c))
                    .filter_map(latency)
                    .collect(),
            )
        };
        let completed = self.queries.iter().filter(|q| q.done_us.is_some()).count() as u64;
        let completed_in_window = self
            .queries
            .iter()
            .filter(|q| q.done_us.is_some_and(|d| d <= self.window_us))
            .count() as u64;
        let rejected = self.queries.iter().filter(|q| q.rejected).count() as u64;
        let bucket_s = self.bucket_us as f64 / 1e6;
        DeploymentStats {
            arrived: self.queries.len() as u64,
            completed,
            rejected,
            in_flight_at_end: self.queries.len() as u64 - completed - rejected,
            completed_in_window,
            throughput_qps: completed_in_window as f64 / (self.window_us as f64 / 1e6),
            latency: collect(None),
            latency_cold: collect(Some(true)),
            latency_warm: collect(Some(false)),
            max_concurrency: self.max_concurrency,
            cost_usd: 0.0,
            cost_per_query_usd: 0.0,
            timeline: self
                .buckets
                .iter()
                .enumerate()
                .map(|(i, b)| TimelinePoint {
                    t_s: i as f64 * bucket_s,
                    arrivals: b.arrivals,
                    completions: b.completions,
                    throughput_qps: b.completions as f64 / bucket_s,
                    max_concurrency: b.max_concurrency,
                })
                .collect(),
            queries: self
                .queries
                .iter()
                .enumerate()
                .map(|(id, q)| QueryRecord {
                    id,
                    arrival_s: q.arrival_us as f64 / 1e6,
                    len: q.len,
                    latency_ms: latency(q).map(|l| l as f64 / 1000.0),
                    cold: q.cold,
                    rejected: q.rejected,
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let s = LatencyStats::from_micros((1..=100).map(|ms| ms * 1000).collect());
        assert_eq!(
            (s.p50_ms, s.p95_ms, s.p99_ms, s.max_ms),
            (50.0, 95.0, 99.0, 100.0)
        );
        assert_eq!(s.mean_ms, 50.5);
        assert_eq!(LatencyStats::from_micros(vec![]), LatencyStats::default());
    }

    #[test]
    fn recorder_counts_in_flight_and_splits_cold() {
        let mut r = Recorder::new(1_000_000, 2_000_000);
        let a = r.arrive(0, 10);
        let b = r.arrive(500_000, 20);
        let _c = r.arrive(1_500_000, 30);
        r.mark_cold(a);
        r.complete(a, 300_000);
        r.complete(b, 2_500_000);
        r.concurrency(0, 3);
        let s = r.finish();
        assert_eq!(
            (
                s.arrived,
                s.completed,
                s.in_flight_at_end,
                s.completed_in_window
            ),
            (3, 2, 1, 1)
        );
        assert_eq!(s.latency_cold.count, 1);
        assert_eq!(s.latency_warm.count, 1);
        assert_eq!(s.latency_warm.max_ms, 2000.0);
        assert_eq!(s.timeline.len(), 3);
        assert_eq!(s.timeline[0].max_concurrency, 3);
        assert_eq!(s.queries[2].latency_ms, None);
    }
}
