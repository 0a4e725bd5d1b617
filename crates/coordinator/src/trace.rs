//! What a serverless query did and cost.

use seqless_cost::{
    Arch, BilledInvocation, CostBreakdown, MeteredInvocation, Pricing, QueryUsage, query_cost,
};
use seqless_functions::{FunctionError, InvocationMeta, StageResult};
use seqless_plan::{PlanKind, Stage, StageKind};
use serde::{Deserialize, Serialize};

/// One function invocation as the trace reports it. Every field is required when a trace
/// is read back, so a renamed field fails to parse rather than reading as zero.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InvocationRecord {
    /// `conv`, `tfilm`, `head` or `classifier`.
    pub stage: StageKind,
    /// 0-based layer.
    pub layer: usize,
    /// 0-based split (0 for serial stages).
    pub split: usize,
    /// Whether the instance had to start for it.
    pub cold: bool,
    /// Start-up time of a cold instance.
    pub init_ms: f64,
    /// Handler time.
    pub duration_ms: f64,
    /// Billed time (rounded up to 1 ms).
    pub billed_ms: u64,
    /// Function memory size.
    pub memory_mb: u32,
    /// Kernel time inside the handler.
    pub compute_ms: f64,
    /// Bytes read from the store.
    pub bytes_in: u64,
    /// Bytes written to the store.
    pub bytes_out: u64,
    /// The invocation as the coordinator saw it, from sending the event to having the
    /// result: the handler's time plus what the platform adds (cold start, the Invoke
    /// API round trip, queueing).
    pub round_trip_ms: f64,
}

impl InvocationRecord {
    /// Joins a stage with what the platform and the function reported.
    pub fn new(
        stage: &Stage,
        result: &StageResult,
        meta: &InvocationMeta,
        round_trip: std::time::Duration,
    ) -> Self {
        Self {
            stage: stage.kind,
            layer: stage.layer,
            split: stage.split,
            cold: meta.cold,
            init_ms: meta.init_ms,
            duration_ms: meta.duration_ms,
            billed_ms: meta.billed_ms,
            memory_mb: meta.memory_mb,
            compute_ms: result.compute_ms,
            bytes_in: result.bytes_in,
            bytes_out: result.bytes_out,
            round_trip_ms: round_trip.as_secs_f64() * 1e3,
        }
    }

    /// What the bill counts of it.
    pub fn metered(&self) -> MeteredInvocation {
        MeteredInvocation {
            stage: self.stage.as_str().to_owned(),
            memory_mb: self.memory_mb,
            billed_ms: self.billed_ms,
            cold: self.cold,
            init_ms: self.init_ms,
        }
    }
}

/// A stage attempt that failed and was tried again: what went wrong, and what the failed
/// run cost, since the platform bills a crash or a timeout as it bills a success.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RetryRecord {
    /// `conv`, `tfilm`, `head` or `classifier`.
    pub stage: StageKind,
    /// 0-based layer.
    pub layer: usize,
    /// 0-based split (0 for serial stages).
    pub split: usize,
    /// The failure, as the invoker reported it.
    pub error: String,
    /// Whether the platform billed the failed attempt: false when it never ran (throttled,
    /// or the platform was unreachable), and then the fields below are 0.
    pub billed: bool,
    /// Whether the instance had to start for it.
    pub cold: bool,
    /// Start-up time of a cold instance.
    pub init_ms: f64,
    /// Billed time of the failed run.
    pub billed_ms: u64,
    /// Function memory size.
    pub memory_mb: u32,
    /// From sending the event to having the error.
    pub round_trip_ms: f64,
    /// The wait before the next attempt (exponential backoff with full jitter).
    pub backoff_ms: f64,
}

impl RetryRecord {
    /// A failed attempt of `stage`, tried again after `backoff`.
    pub fn new(
        stage: &Stage,
        error: &FunctionError,
        round_trip: std::time::Duration,
        backoff: std::time::Duration,
    ) -> Self {
        let meta = error.billing();
        Self {
            stage: stage.kind,
            layer: stage.layer,
            split: stage.split,
            error: error.to_string(),
            billed: meta.is_some(),
            cold: meta.is_some_and(|m| m.cold),
            init_ms: meta.map_or(0.0, |m| m.init_ms),
            billed_ms: meta.map_or(0, |m| m.billed_ms),
            memory_mb: meta.map_or(0, |m| m.memory_mb),
            round_trip_ms: round_trip.as_secs_f64() * 1e3,
            backoff_ms: backoff.as_secs_f64() * 1e3,
        }
    }

    /// What the bill counts of it; nothing when it never ran.
    pub fn metered(&self) -> Option<MeteredInvocation> {
        self.billed.then(|| MeteredInvocation {
            stage: self.stage.as_str().to_owned(),
            memory_mb: self.memory_mb,
            billed_ms: self.billed_ms,
            cold: self.cold,
            init_ms: self.init_ms,
        })
    }
}

/// The whole query: every invocation, the totals, and the bill. It reads back from the
/// JSON it writes (`seqless cost --trace`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Trace {
    /// The plan that ran.
    pub plan: PlanKind,
    /// Conv functions per layer.
    pub splits: Vec<usize>,
    /// Every invocation that gave a stage its result, in phase order.
    pub invocations: Vec<InvocationRecord>,
    /// Failed attempts that were tried again, in the order they failed (absent in traces
    /// written before retries existed).
    #[serde(default)]
    pub retries: Vec<RetryRecord>,
    /// Wall time of the whole query at the coordinator.
    pub total_ms: f64,
    /// Bytes through the store: the input upload plus every function's reads and writes.
    pub bytes_moved: u64,
    /// Bytes read plus written by the serial (tfilm, head, classifier) stages.
    pub serial_bytes: u64,
    /// Sum over invocations and billed failed attempts of memory (GB) x billed seconds.
    pub billed_gb_s: f64,
    /// Estimated price of the query (requests + duration + billed init), failed attempts
    /// included.
    pub cost_usd: f64,
    /// The part of `cost_usd` that the failed attempts cost.
    #[serde(default)]
    pub retry_cost_usd: f64,
    /// The price, term by term.
    pub cost: CostBreakdown,
}

/// Why a text is not a set of traces.
#[derive(Debug, thiserror::Error)]
pub enum TraceReadError {
    /// The text is not JSON.
    #[error("not valid JSON: {0}")]
    Json(serde_json::Error),
    /// The text holds no document.
    #[error("holds no query; expected the output of `seqless classify --mode serverless --json`")]
    Empty,
    /// A document is not a trace.
    #[error(
        "query {query}: not a seqless trace (expected `trace.invocations` as written by \
         `seqless classify --mode serverless --json`): {cause}"
    )]
    NotATrace {
        /// 1-based position of the document.
        query: usize,
        /// The field that did not parse.
        cause: serde_json::Error,
    },
}

impl Trace {
    /// The traces in a text of one or more JSON documents (JSON lines, documents one after
    /// another, or one array). Each is the output of `seqless classify --mode serverless
    /// --json`, whose trace is under `trace`, or a bare trace.
    pub fn read_many(text: &str) -> Result<Vec<Trace>, TraceReadError> {
        let mut docs = Vec::new();
        for value in serde_json::Deserializer::from_str(text).into_iter::<serde_json::Value>() {
            match value.map_err(TraceReadError::Json)? {
                serde_json::Value::Array(items) => docs.extend(items),
                other => docs.push(other),
            }
        }
        if docs.is_empty() {
            return Err(TraceReadError::Empty);
        }
        docs.iter()
            .enumerate()
            .map(|(n, doc)| {
                Trace::deserialize(doc.get("trace").unwrap_or(doc)).map_err(|cause| {
                    TraceReadError::NotATrace {
                        query: n + 1,
                        cause,
                    }
                })
            })
            .collect()
    }

    /// Totals and prices a finished run's invocations and its failed attempts.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        plan: PlanKind,
        splits: Vec<usize>,
        invocations: Vec<InvocationRecord>,
        retries: Vec<RetryRecord>,
        upload_bytes: u64,
        total_ms: f64,
        pricing: &Pricing,
        arch: Arch,
    ) -> Self {
        let bytes_moved = upload_bytes
            + invocations
                .iter()
                .map(|i| i.bytes_in + i.bytes_out)
                .sum::<u64>();
        let serial_bytes = invocations
            .iter()
            .filter(|i| i.stage.is_serial())
            .map(|i| i.bytes_in + i.bytes_out)
            .sum();
        let succeeded: Vec<MeteredInvocation> =
            invocations.iter().map(InvocationRecord::metered).collect();
        let failed: Vec<MeteredInvocation> =
            retries.iter().filter_map(RetryRecord::metered).collect();
        let billed_gb_s = succeeded
            .iter()
            .chain(&failed)
            .map(|i| seqless_cost::gb_seconds(i.billed_ms, i.memory_mb))
            .sum();
        let price = |metered: &[MeteredInvocation]| {
            let billed: Vec<BilledInvocation> =
                metered.iter().map(MeteredInvocation::billed).collect();
            query_cost(pricing, arch, &billed)
        };
        let all: Vec<MeteredInvocation> = succeeded.into_iter().chain(failed.clone()).collect();
        let cost = price(&all);
        let retry_cost_usd = price(&failed).total_usd;
        Self {
            plan,
            splits,
            invocations,
            retries,
            total_ms,
            bytes_moved,
            serial_bytes,
            billed_gb_s,
            cost_usd: cost.total_usd,
            retry_cost_usd,
            cost,
        }
    }

    /// The query as the cost model's usage summary reads it.
    pub fn usage(&self) -> QueryUsage {
        QueryUsage {
            invocations: self
                .invocations
                .iter()
                .map(InvocationRecord::metered)
                .chain(self.retries.iter().filter_map(RetryRecord::metered))
                .collect(),
            store_bytes: self.bytes_moved,
        }
    }
}
