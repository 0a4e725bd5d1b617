//! The server's Prometheus metrics: queries by outcome, latency, in-flight queries, and what
//! serverless queries did (invocations, cold starts, retries and hedges by stage, bytes
//! moved, GB-s, cost).

use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use seqless_coordinator::{BatchObserver, Trace};

/// The content type of [`Metrics::render`]'s output.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// How a query ended, the label of `seqless_queries_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// Answered.
    Ok,
    /// Refused as input to fix (4xx).
    Invalid,
    /// Refused at the in-flight bound.
    Overloaded,
    /// A dependency (store, platform) was down.
    Unavailable,
    /// Past the deadline.
    Timeout,
    /// A fault of the system.
    Failed,
}

impl Outcome {
    fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Invalid => "invalid",
            Self::Overloaded => "overloaded",
            Self::Unavailable => "unavailable",
            Self::Timeout => "timeout",
            Self::Failed => "failed",
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabel {
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StageLabel {
    stage: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HedgeLabel {
    stage: &'static str,
    winner: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResponseLabel {
    status: u16,
}

/// Every metric the server exports, registered once; cheap to update from any task.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    queries: Family<OutcomeLabel, Counter>,
    latency: Histogram,
    in_flight: Gauge,
    responses: Family<ResponseLabel, Counter>,
    invocations: Family<StageLabel, Counter>,
    cold_starts: Family<StageLabel, Counter>,
    bytes_moved: Counter,
    inline_bytes: Counter,
    billed_gb_s: Counter<f64, AtomicU64>,
    cost_usd: Counter<f64, AtomicU64>,
    retries: Family<StageLabel, Counter>,
    hedges: Family<HedgeLabel, Counter>,
    batch_size: Histogram,
    stage_batch_size: Histogram,
    requests_per_query: Histogram,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Registers every metric under the `seqless` prefix.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("seqless");
        let queries = Family::<OutcomeLabel, Counter>::default();
        // 1 ms .. ~65 s: a short monolithic query up to a long serverless one.
        let latency = Histogram::new(exponential_buckets(0.001, 2.0, 17));
        let in_flight = Gauge::default();
        let responses = Family::<ResponseLabel, Counter>::default();
        let invocations = Family::<StageLabel, Counter>::default();
        let cold_starts = Family::<StageLabel, Counter>::default();
        let bytes_moved = Counter::default();
        let inline_bytes = Counter::default();
        let billed_gb_s = Counter::<f64, AtomicU64>::default();
        let cost_usd = Counter::<f64, AtomicU64>::default();
        let retries = Family::<StageLabel, Counter>::default();
        let hedges = Family::<HedgeLabel, Counter>::default();
        let batch_size = Histogram::new(exponential_buckets(1.0, 2.0, 9));
        // 1 .. 64 stages, the most one invocation carries.
        let stage_batch_size = Histogram::new(exponential_buckets(1.0, 2.0, 7));
        // 1/8 .. 512 requests: a short query batched eight ways up to a long one's splits.
        let requests_per_query = Histogram::new(exponential_buckets(0.125, 2.0, 13));
        registry.register(
            "queries",
            "Queries (texts) by outcome: ok, invalid, overloaded, unavailable, timeout, failed",
            queries.clone(),
        );
        registry.register(
            "query_duration_seconds",
            "Time from admission to answer of answered queries",
            latency.clone(),
        );
        registry.register(
            "queries_in_flight",
            "Queries admitted and not yet finished (deadline-expired ones until they stop)",
            in_flight.clone(),
        );
        registry.register(
            "http_responses",
            "HTTP responses by status code",
            responses.clone(),
        );
        registry.register(
            "function_invocations",
            "Serverless stage runs by stage (stages of several queries that shared one invocation count once each)",
            invocations.clone(),
        );
        registry.register(
            "function_cold_starts",
            "Serverless invocations that started a cold instance, by stage",
            cold_starts.clone(),
        );
        registry.register(
            "store_bytes",
            "Bytes moved through the tensor store (upload, reads and writes)",
            bytes_moved.clone(),
        );
        registry.register(
            "inline_bytes",
            "Bytes carried inside invocations instead of the store (--transfer inline)",
            inline_bytes.clone(),
        );
        registry.register(
            "billed_gb_seconds",
            "Billed function memory x duration, GB-s",
            billed_gb_s.clone(),
        );
        registry.register(
            "estimated_cost_usd",
            "Estimated function cost of the answered queries, USD",
            cost_usd.clone(),
        );
        registry.register(
            "function_retries",
            "Failed serverless invocations that were tried again, by stage",
            retries.clone(),
        );
        registry.register(
            "function_hedges",
            "Straggling serverless invocations that got a duplicate, by stage and by whose answer was used (original, duplicate, neither)",
            hedges.clone(),
        );
        registry.register(
            "batch_size",
            "Queries per monolithic forward job under dynamic batching",
            batch_size.clone(),
        );
        registry.register(
            "function_stage_batch_size",
            "Stages per serverless invocation under cross-query batching (1: a stage that found no company)",
            stage_batch_size.clone(),
        );
        registry.register(
            "function_requests_per_query",
            "Function requests an answered serverless query paid for, its share of invocations it shared with other queries included",
            requests_per_query.clone(),
        );
        Self {
            registry,
            queries,
            latency,
            in_flight,
            responses,
            invocations,
            cold_starts,
            bytes_moved,
            inline_bytes,
            billed_gb_s,
            cost_usd,
            retries,
            hedges,
            batch_size,
            stage_batch_size,
            requests_per_query,
        }
    }

    /// Counts `n` queries that ended with `outcome`.
    pub fn queries(&self, outcome: Outcome, n: usize) {
        self.queries
            .get_or_create(&OutcomeLabel {
                outcome: outcome.as_str(),
            })
            .inc_by(n as u64);
    }

    /// Records an answered query's latency.
    pub fn latency(&self, seconds: f64) {
        self.latency.observe(seconds);
    }

    /// The gauge of admitted queries, moved by the admission permits.
    pub fn in_flight(&self) -> &Gauge {
        &self.in_flight
    }

    /// Counts one HTTP response.
    pub fn response(&self, status: u16) {
        self.responses
            .get_or_create(&ResponseLabel { status })
            .inc();
    }

    /// The histogram of dynamic batch sizes, fed by the batcher.
    pub fn batch_size(&self) -> &Histogram {
        &self.batch_size
    }

    /// What a coordinator that batches stages across queries tells the size of each
    /// invocation it sends.
    pub fn stage_batch_observer(&self) -> BatchObserver {
        let sizes = self.stage_batch_size.clone();
        Arc::new(move |n| sizes.observe(n as f64))
    }

    /// Adds what a serverless query did and cost.
    pub fn trace(&self, trace: &Trace) {
        self.requests_per_query.observe(trace.requests);
        for invocation in &trace.invocations {
            let label = StageLabel {
                stage: invocation.stage.as_str(),
            };
            self.invocations.get_or_create(&label).inc();
            if invocation.cold {
                self.cold_starts.get_or_create(&label).inc();
            }
        }
        for retry in &trace.retries {
            let label = StageLabel {
                stage: retry.stage.as_str(),
            };
            self.retries.get_or_create(&label).inc();
        }
        for hedge in &trace.hedges {
            let label = HedgeLabel {
                stage: hedge.stage.as_str(),
                winner: hedge.winner.as_str(),
            };
            self.hedges.get_or_create(&label).inc();
        }
        self.bytes_moved.inc_by(trace.bytes_moved);
        self.inline_bytes.inc_by(trace.inline_bytes);
        self.billed_gb_s.inc_by(trace.billed_gb_s);
        self.cost_usd.inc_by(trace.cost_usd);
    }

    /// The OpenMetrics text exposition ([`CONTENT_TYPE`]).
    pub fn render(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        out
    }
}
