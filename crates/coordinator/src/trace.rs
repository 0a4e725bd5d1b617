//! What a serverless query did and cost.

use seqless_cost::{
    Arch, BilledInvocation, CostBreakdown, MeteredInvocation, Pricing, QueryUsage, query_cost,
};
use seqless_functions::{FunctionError, InvocationMeta, StageResult};
use seqless_plan::{PlanKind, Stage, StageKind};
use serde::{Deserialize, Serialize};

/// One function invocation as the trace reports it. Every field but `wait_ms` (which only
/// resident splits have) and `cpu_ms` (which only function processes measure) is required
/// when a trace is read back, so a renamed field fails to parse rather than reading as
/// zero.
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
    /// How many queries' stages ran in the invocation (a cross-query batch; 1 alone); the
    /// query pays this share of its request and billed time.
    #[serde(default = "one")]
    pub batch: u32,
    /// Kernel time inside the handler.
    pub compute_ms: f64,
    /// Time the handler was blocked waiting for other functions' values, billed like the
    /// rest of its duration.
    #[serde(default)]
    pub wait_ms: f64,
    /// CPU time of the invocation in its function's process, every thread included; on
    /// one core per function it can exceed `compute_ms` by the kernels' other threads and
    /// the I/O's own CPU. Absent on the in-process pool, which cannot tell invocations'
    /// CPU apart.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_ms: Option<f64>,
    /// Bytes read from the store.
    pub bytes_in: u64,
    /// Bytes written to the store.
    pub bytes_out: u64,
    /// Bytes of the values its event carried inline, instead of the store.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub inline_in: u64,
    /// Bytes of the values it returned inline, instead of the store.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub inline_out: u64,
    /// The invocation as the coordinator saw it, from sending the event to having the
    /// result: the handler's time plus what the platform adds (cold start, the Invoke
    /// API round trip, queueing).
    pub round_trip_ms: f64,
}

fn is_zero(bytes: &u64) -> bool {
    *bytes == 0
}

fn one() -> u32 {
    1
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
            batch: meta.shared_by,
            compute_ms: result.compute_ms,
            wait_ms: result.wait_ms,
            cpu_ms: result.cpu_ms,
            bytes_in: result.bytes_in,
            bytes_out: result.bytes_out,
            inline_in: 0,
            inline_out: 0,
            round_trip_ms: round_trip.as_secs_f64() * 1e3,
        }
    }

    /// What the bill counts of it.
    pub fn metered(&self) -> MeteredInvocation {
        let (memory_mb, billed_ms, cold) = (self.memory_mb, self.billed_ms, self.cold);
        MeteredInvocation {
            stage: self.stage.as_str().to_owned(),
            memory_mb,
            billed_ms,
            cold,
            init_ms: self.init_ms,
            shared_by: self.batch,
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
    /// What the platform billed for the failed attempt.
    #[serde(flatten)]
    pub bill: Bill,
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
        Self {
            stage: stage.kind,
            layer: stage.layer,
            split: stage.split,
            error: error.to_string(),
            bill: Bill::of(error.billing()),
            round_trip_ms: round_trip.as_secs_f64() * 1e3,
            backoff_ms: backoff.as_secs_f64() * 1e3,
        }
    }

    /// What the bill counts of it; nothing when it never ran.
    pub fn metered(&self) -> Option<MeteredInvocation> {
        self.bill.metered(self.stage)
    }
}

/// A stage whose invocation straggled and got a duplicate (`CoordinatorOptions::hedge`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HedgeRecord {
    /// `conv`, `tfilm`, `head` or `classifier`.
    pub stage: StageKind,
    /// 0-based layer.
    pub layer: usize,
    /// 0-based split (0 for serial stages).
    pub split: usize,
    /// How long the original invocation had run when the duplicate was sent.
    pub after_ms: f64,
    /// Whose answer the stage used.
    pub winner: HedgeWinner,
    /// What became of the invocation whose answer was not used.
    pub loser: LoserFate,
    /// What the platform billed for the loser; nothing when it failed before the winner
    /// answered, as its failure is in `retries` instead.
    #[serde(flatten)]
    pub bill: Bill,
}

/// Whose answer a hedged stage used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HedgeWinner {
    /// The first invocation answered first after all.
    Original,
    /// The duplicate answered first.
    Duplicate,
    /// Both failed, and the stage was tried again.
    Neither,
}

impl HedgeWinner {
    /// The name the trace and the metrics use.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Original => "original",
            Self::Duplicate => "duplicate",
            Self::Neither => "neither",
        }
    }
}

/// What became of a hedged stage's losing invocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LoserFate {
    /// It failed before the other answered; its failure is in `retries`.
    Failed,
    /// It was stopped when the winner answered: an in-process invocation, which writes
    /// nothing once dropped. Billed for its time until then.
    Cancelled,
    /// It ran to its end and was awaited before the query's keys were deleted, so that it
    /// wrote nothing after them: an invocation on a platform, which cannot be called back.
    Awaited,
}

impl HedgeRecord {
    /// A hedge of `stage`, whose duplicate was sent `after` the original, won by `winner`;
    /// the loser failed until [`with_loser`](Self::with_loser) says otherwise.
    pub fn new(stage: &Stage, after: std::time::Duration, winner: HedgeWinner) -> Self {
        Self {
            stage: stage.kind,
            layer: stage.layer,
            split: stage.split,
            after_ms: after.as_secs_f64() * 1e3,
            winner,
            loser: LoserFate::Failed,
            bill: Bill::default(),
        }
    }

    /// The record with the loser's fate and what the platform billed for it, if anything.
    pub fn with_loser(self, loser: LoserFate, meta: Option<&InvocationMeta>) -> Self {
        Self {
            loser,
            bill: Bill::of(meta),
            ..self
        }
    }

    /// What the bill counts of the loser; nothing when it was not billed here.
    pub fn metered(&self) -> Option<MeteredInvocation> {
        self.bill.metered(self.stage)
    }
}

/// What the platform billed for a run whose answer was not used (a failed attempt, a
/// hedge's loser).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Bill {
    /// Whether the platform billed the run: false when it never ran (throttled, or the
    /// platform was unreachable), and then the fields below are 0.
    pub billed: bool,
    /// Whether the instance had to start for it.
    pub cold: bool,
    /// Start-up time of a cold instance.
    pub init_ms: f64,
    /// Billed time of the run.
    pub billed_ms: u64,
    /// Function memory size.
    pub memory_mb: u32,
    /// How many queries' stages the run served (a cross-query batch; 1 alone).
    #[serde(default = "one")]
    pub shared_by: u32,
}

impl Default for Bill {
    fn default() -> Self {
        Self {
            billed: false,
            cold: false,
            init_ms: 0.0,
            billed_ms: 0,
            memory_mb: 0,
            shared_by: 1,
        }
    }
}

impl Bill {
    /// What `meta` reports; nothing billed without it.
    pub fn of(meta: Option<&InvocationMeta>) -> Self {
        meta.map_or_else(Self::default, |m| Self {
            billed: true,
            cold: m.cold,
            init_ms: m.init_ms,
            billed_ms: m.billed_ms,
            memory_mb: m.memory_mb,
            shared_by: m.shared_by,
        })
    }

    /// What the bill counts of a run of `stage`'s function; nothing when it never ran.
    pub fn metered(&self, stage: StageKind) -> Option<MeteredInvocation> {
        self.billed.then(|| MeteredInvocation {
            stage: stage.as_str().to_owned(),
            memory_mb: self.memory_mb,
            billed_ms: self.billed_ms,
            cold: self.cold,
            init_ms: self.init_ms,
            shared_by: self.shared_by,
        })
    }
}

/// What a query's stages did, for [`Trace::new`] to total and price.
#[derive(Debug, Clone, Default)]
pub struct Calls {
    /// The invocations whose answers were used, in phase order.
    pub invocations: Vec<InvocationRecord>,
    /// Failed attempts that were tried again.
    pub retries: Vec<RetryRecord>,
    /// Stages that got a duplicate invocation.
    pub hedges: Vec<HedgeRecord>,
    /// Bytes of the input upload.
    pub upload_bytes: u64,
}

/// The invocations of one stage kind at one layer ([`Trace::stage_groups`]).
#[derive(Debug, Clone, PartialEq)]
pub struct StageGroup {
    /// The stage kind.
    pub stage: StageKind,
    /// Its layer.
    pub layer: usize,
    /// Invocations whose answers were used.
    pub invocations: usize,
    /// The longest round trip among them, ms.
    pub slowest_ms: f64,
    /// Bytes they read from and wrote to the store.
    pub store_bytes: u64,
    /// Bytes they got and returned inline.
    pub inline_bytes: u64,
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
    /// Stages that straggled and got a duplicate invocation, in phase order (absent in
    /// traces written before hedging existed).
    #[serde(default)]
    pub hedges: Vec<HedgeRecord>,
    /// Wall time of the whole query at the coordinator.
    pub total_ms: f64,
    /// Bytes through the store: the input upload plus every function's reads and writes.
    pub bytes_moved: u64,
    /// Bytes read plus written by the serial (tfilm, head, classifier) stages.
    pub serial_bytes: u64,
    /// Bytes carried inside invocations instead of the store: every function's inline
    /// inputs and outputs.
    #[serde(default)]
    pub inline_bytes: u64,
    /// Requests the query paid for: its invocations, billed failed attempts and hedges'
    /// losers, each at the query's share of it, so fewer than the stages run when stages
    /// shared invocations with other queries' (absent, read as 0, in traces written before
    /// cross-query batching).
    #[serde(default)]
    pub requests: f64,
    /// Sum over invocations, billed failed attempts and hedges' losers of memory (GB) x
    /// billed seconds, each at the query's share of it.
    pub billed_gb_s: f64,
    /// Estimated price of the query (requests + duration + billed init), failed attempts
    /// and hedges' losers included.
    pub cost_usd: f64,
    /// The part of `cost_usd` that the failed attempts cost.
    #[serde(default)]
    pub retry_cost_usd: f64,
    /// The part of `cost_usd` that the hedges' losers cost.
    #[serde(default)]
    pub hedge_cost_usd: f64,
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

    /// Totals and prices a finished run's calls: `splits` conv functions per layer of a
    /// `plan`, which took `total_ms`, priced at `pricing` for `arch`.
    pub fn new(
        plan: PlanKind,
        splits: Vec<usize>,
        calls: Calls,
        total_ms: f64,
        pricing: &Pricing,
        arch: Arch,
    ) -> Self {
        let Calls {
            invocations,
            retries,
            hedges,
            upload_bytes,
        } = calls;
        let bytes_moved = upload_bytes
            + invocations
                .iter()
                .map(|i| i.bytes_in + i.bytes_out)
                .sum::<u64>();
        let inline_bytes = (invocations.iter())
            .map(|i| i.inline_in + i.inline_out)
            .sum();
        let serial_bytes = invocations
            .iter()
            .filter(|i| i.stage.is_serial())
            .map(|i| i.bytes_in + i.bytes_out)
            .sum();
        let succeeded: Vec<MeteredInvocation> =
            invocations.iter().map(InvocationRecord::metered).collect();
        let failed: Vec<MeteredInvocation> =
            retries.iter().filter_map(RetryRecord::metered).collect();
        let lost: Vec<MeteredInvocation> = hedges.iter().filter_map(HedgeRecord::metered).collect();
        let all: Vec<MeteredInvocation> = succeeded
            .into_iter()
            .chain(failed.iter().cloned())
            .chain(lost.iter().cloned())
            .collect();
        let billed_gb_s = all
            .iter()
            .map(|i| seqless_cost::gb_seconds(i.billed_ms, i.memory_mb) * i.billed().share())
            .sum();
        let requests = all.iter().map(|i| i.billed().share()).sum();
        let price = |metered: &[MeteredInvocation]| {
            let billed: Vec<BilledInvocation> =
                metered.iter().map(MeteredInvocation::billed).collect();
            query_cost(pricing, arch, &billed)
        };
        let cost = price(&all);
        let retry_cost_usd = price(&failed).total_usd;
        let hedge_cost_usd = price(&lost).total_usd;
        Self {
            plan,
            splits,
            invocations,
            retries,
            hedges,
            total_ms,
            bytes_moved,
            serial_bytes,
            inline_bytes,
            requests,
            billed_gb_s,
            cost_usd: cost.total_usd,
            retry_cost_usd,
            hedge_cost_usd,
            cost,
        }
    }

    /// The invocations grouped by stage kind and layer, in the order the groups first
    /// ran: for the fused plan, each layer's conv splits, then its TFiLM stage, and the
    /// head last.
    pub fn stage_groups(&self) -> Vec<StageGroup> {
        let mut groups: Vec<StageGroup> = Vec::new();
        for i in &self.invocations {
            let at = groups
                .iter()
                .position(|g| (g.stage, g.layer) == (i.stage, i.layer));
            let group = match at {
                Some(at) => &mut groups[at],
                None => {
                    groups.push(StageGroup {
                        stage: i.stage,
                        layer: i.layer,
                        invocations: 0,
                        slowest_ms: 0.0,
                        store_bytes: 0,
                        inline_bytes: 0,
                    });
                    groups.last_mut().expect("just pushed")
                }
            };
            group.invocations += 1;
            group.slowest_ms = group.slowest_ms.max(i.round_trip_ms);
            group.store_bytes += i.bytes_in + i.bytes_out;
            group.inline_bytes += i.inline_in + i.inline_out;
        }
        groups
    }

    /// The query as the cost model's usage summary reads it.
    pub fn usage(&self) -> QueryUsage {
        QueryUsage {
            invocations: self
                .invocations
                .iter()
                .map(InvocationRecord::metered)
                .chain(self.retries.iter().filter_map(RetryRecord::metered))
                .chain(self.hedges.iter().filter_map(HedgeRecord::metered))
                .collect(),
            store_bytes: self.bytes_moved,
        }
    }
}
