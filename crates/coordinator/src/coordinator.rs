//! Carrying out a plan: upload, invoke phase by phase, collect, clean up.

use std::pin::pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use futures_util::future::{BoxFuture, Either, select};
use futures_util::stream::FuturesUnordered;
use seqless_cost::{Arch, Pricing};
use seqless_functions::{
    ErrorKind, FunctionError, InvocationMeta, Invoker, ModelFingerprint, StageEvent, StageResult,
};
use seqless_model::InputLenError;
use seqless_model::{ModelConfig, Prediction, tokenizer};
pub use seqless_plan::DEFAULT_INLINE_MAX_BYTES;
use seqless_plan::{
    INPUT_KEY, InlineValue, LAMBDA_PAYLOAD_BYTES, Limits, PAYLOAD_RESERVE_BYTES, Plan, PlanChooser,
    PlanError, PlanKind, Splits, Stage, StageKind, StageOp, Transfer, plan,
};
use seqless_store::{QueryId, StoreError, StoredTensor, TensorStore};
use serde::Serialize;

use crate::batch::{BatchObserver, BatchPolicy, Joining, StageBatcher};
use crate::hedge::{Hedge, HedgeBudget, HedgePolicy, PhaseClock, ResidentProgress};
use crate::inline::{InlineValues, blob_bytes};
use crate::retry::RetryPolicy;
use crate::trace::{Calls, HedgeRecord, HedgeWinner, InvocationRecord, RetryRecord, Trace};

/// How queries are planned and billed.
#[derive(Debug, Clone)]
pub struct CoordinatorOptions {
    /// `fused` (default) or `paper`.
    pub plan: PlanKind,
    /// Conv functions per layer.
    pub splits: Splits,
    /// Function memory and split bounds.
    pub limits: Limits,
    /// Expiry of the query's keys, so a crashed coordinator leaves nothing behind for long.
    pub ttl: Duration,
    /// Prices for the trace's cost estimate.
    pub pricing: Pricing,
    /// Function architecture, which sets the GB-s price.
    pub arch: Arch,
    /// How a stage that failed with a retryable error is tried again.
    pub retry: RetryPolicy,
    /// The query's time budget from its start: no retry starts after it (a first attempt
    /// always runs, and an attempt in flight is awaited, since a stage on a remote platform
    /// cannot be called back and must not write after the query's keys are deleted).
    pub deadline: Duration,
    /// When a straggling stage gets a duplicate invocation.
    pub hedge: HedgePolicy,
    /// How many functions may run at once for this coordinator (the platform's
    /// concurrency limit), or `None` for what the invoker knows of its own
    /// ([`Invoker::concurrency`]: an in-process pool's size; no bound otherwise). The
    /// resident plan needs all S of a query's splits running at once, plus one serial
    /// stage, or it waits on itself until its deadline: with a bound, a resident query
    /// starts only when S + 1 slots are free (S + 2 when hedging, for a straggler's
    /// duplicate), and S is capped so that they fit. The other plans never need it.
    pub function_slots: Option<usize>,
    /// How values move between functions: through the store, or inline in the
    /// invocations where they fit under `payload_limit`.
    pub transfer: Transfer,
    /// The largest request or response an invocation may have, JSON included: Lambda's
    /// 6 MB for a synchronous invocation.
    pub payload_limit: u64,
    /// The largest value sent inline; larger ones go through the store, which moves them
    /// faster than JSON does (docs/results.md, "Inline values").
    pub inline_max_bytes: u64,
    /// Chooses each query's plan kind and split count from its length, in place of `plan`
    /// and `splits`.
    pub chooser: Option<Arc<dyn PlanChooser>>,
    /// Whether stages of different queries share invocations (cross-query batching).
    pub batch: BatchPolicy,
    /// The latency queries should meet, from their start: no stage waits in a batch past
    /// it. `None` leaves `deadline` as the only bound.
    pub slo: Option<Duration>,
}

impl Default for CoordinatorOptions {
    fn default() -> Self {
        Self {
            plan: PlanKind::Fused,
            splits: Splits::Auto,
            limits: Limits::default(),
            ttl: Duration::from_secs(300),
            pricing: Pricing::default(),
            arch: Arch::X86_64,
            retry: RetryPolicy::default(),
            deadline: Duration::from_secs(30),
            hedge: HedgePolicy::default(),
            function_slots: None,
            transfer: Transfer::Store,
            payload_limit: LAMBDA_PAYLOAD_BYTES,
            inline_max_bytes: DEFAULT_INLINE_MAX_BYTES,
            chooser: None,
            batch: BatchPolicy::Off,
            slo: None,
        }
    }
}

impl CoordinatorOptions {
    /// The function slots a resident query holds beside its splits: a serial stage, and a
    /// straggler's duplicate when hedging is on.
    pub fn resident_slots_beside_splits(&self) -> usize {
        1 + usize::from(self.hedge != HedgePolicy::Off)
    }
}

/// Parses a count of function slots ([`CoordinatorOptions::function_slots`]), as a command
/// line gives it: at least a resident split and a serial stage.
pub fn parse_function_slots(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if n >= 2 => Ok(n),
        _ => Err(format!(
            "`{s}` is not a slot count: give at least 2 (a resident split and a serial stage)"
        )),
    }
}

/// Why a query failed.
#[derive(Debug, thiserror::Error)]
pub enum CoordinatorError {
    /// The query itself is unacceptable (empty, too long).
    #[error("invalid input: {0}")]
    Input(InputLenError),
    /// No plan fits the limits.
    #[error("planning failed: {0}")]
    Plan(PlanError),
    /// The store refused or was unreachable.
    #[error("store {store}: {cause}")]
    Store {
        /// The store, as described by itself (passwords masked).
        store: String,
        /// What failed.
        cause: StoreError,
    },
    /// A function failed: permanently, or on every attempt the retry policy and the
    /// deadline allowed.
    #[error(
        "{stage} function (layer {layer}, split {split}) on {invoker} failed{tries}: {cause}",
        tries = attempts_text(*.attempts)
    )]
    Function {
        /// Stage kind.
        stage: &'static str,
        /// 0-based layer.
        layer: usize,
        /// 0-based split.
        split: usize,
        /// The invoker, as described by itself.
        invoker: String,
        /// The function's error (the last one), with its retryability.
        cause: FunctionError,
        /// How many times the stage was invoked.
        attempts: u32,
    },
    /// A resident query could not get the function slots it needs before its deadline.
    #[error(
        "no {needed} function slots came free within the query's deadline ({slots} in all, shared by the queries in flight)"
    )]
    Busy {
        /// Slots the query needed: its splits, one serial stage, and a hedge if hedging.
        needed: usize,
        /// [`CoordinatorOptions::function_slots`].
        slots: usize,
    },
    /// The final stage returned no logits (a function bug or a foreign function).
    #[error("the {0} stage returned no logits")]
    NoLogits(&'static str),
}

fn attempts_text(attempts: u32) -> String {
    match attempts {
        1 => String::new(),
        n => format!(" {n} times"),
    }
}

impl From<PlanError> for CoordinatorError {
    fn from(err: PlanError) -> Self {
        Self::Plan(err)
    }
}

impl CoordinatorError {
    /// Whether the caller can fix this by changing what it gave (the text, the plan's
    /// limits, the store's URL) rather than it being a fault of the store or the functions.
    pub fn caller_can_fix(&self) -> bool {
        match self {
            Self::Input(_) | Self::Plan(_) => true,
            Self::Store { cause, .. } => cause.caller_can_fix(),
            _ => false,
        }
    }

    /// Whether retrying the same query may succeed (transient store or platform trouble).
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Store { cause, .. } => cause.is_retryable(),
            Self::Function { cause, .. } => cause.kind() == ErrorKind::Retryable,
            Self::Busy { .. } => true,
            _ => false,
        }
    }
}

/// A prediction with the trace of how it was computed.
#[derive(Debug, Clone, Serialize)]
pub struct ServerlessPrediction {
    /// Label, logits and probabilities, as the monolithic model gives them.
    pub prediction: Prediction,
    /// Invocations, bytes and cost.
    pub trace: Trace,
}

/// The master node: plans queries and drives stage functions through a store.
#[derive(Clone)]
pub struct Coordinator {
    config: Arc<ModelConfig>,
    fingerprint: ModelFingerprint,
    store: Arc<dyn TensorStore>,
    invoker: Arc<dyn Invoker>,
    options: CoordinatorOptions,
    /// How many functions may run at once, and the slots free now, shared by every query
    /// of this coordinator ([`CoordinatorOptions::function_slots`]).
    slots: Option<(usize, Arc<tokio::sync::Semaphore>)>,
    /// The duplicates its queries (and its clones') may still start ([`HedgeBudget`]).
    hedge_budget: Arc<HedgeBudget>,
    /// Gathers its queries' stages into shared invocations, when batching is on and the
    /// invoker takes batches.
    batcher: Option<Arc<StageBatcher>>,
}

impl Coordinator {
    /// A coordinator for a model: its config, and its fingerprint
    /// ([`seqless_model::fingerprint`]), which every stage event carries so that functions
    /// loaded with another model refuse. The weights live in the functions.
    pub fn new(
        config: ModelConfig,
        fingerprint: ModelFingerprint,
        store: Arc<dyn TensorStore>,
        invoker: Arc<dyn Invoker>,
        options: CoordinatorOptions,
    ) -> Self {
        let slots = options
            .function_slots
            .or_else(|| invoker.concurrency())
            .map(|n| (n, Arc::new(tokio::sync::Semaphore::new(n))));
        let payload_budget = options.payload_limit.saturating_sub(PAYLOAD_RESERVE_BYTES);
        Self {
            config: Arc::new(config),
            fingerprint,
            store,
            batcher: StageBatcher::new(options.batch, &invoker, payload_budget),
            invoker,
            hedge_budget: Arc::new(HedgeBudget::new(options.hedge)),
            options,
            slots,
        }
    }

    /// Whether its queries' stages share invocations: batching is on, and the invoker
    /// takes batches.
    pub fn batches(&self) -> bool {
        self.batcher.is_some()
    }

    /// Tells `observer` the number of stages in each invocation that batching sends (1
    /// for a stage that found no company), from now on; nothing when it does not batch.
    pub fn observe_batches(&self, observer: BatchObserver) {
        if let Some(batcher) = &self.batcher {
            batcher.observe(observer);
        }
    }

    /// The model's config.
    pub fn config(&self) -> &ModelConfig {
        &self.config
    }

    /// The store in use.
    pub fn store(&self) -> &Arc<dyn TensorStore> {
        &self.store
    }

    /// Where the stage functions run.
    pub fn invoker(&self) -> &Arc<dyn Invoker> {
        &self.invoker
    }

    /// The options in use.
    pub fn options(&self) -> &CoordinatorOptions {
        &self.options
    }

    fn store_error(&self, cause: StoreError) -> CoordinatorError {
        CoordinatorError::Store {
            store: self.store.describe(),
            cause,
        }
    }

    /// Classifies one query through the serverless pipeline.
    pub async fn classify(&self, bytes: &[u8]) -> Result<ServerlessPrediction, CoordinatorError> {
        let started = Instant::now();
        self.config
            .check_input_len(bytes.len())
            .map_err(CoordinatorError::Input)?;
        // The tighter of the configured bound and what the store takes.
        let limits = Limits {
            max_value_bytes: (self.options.limits.max_value_bytes.into_iter())
                .chain(self.store.max_payload_bytes())
                .min(),
            ..self.options.limits
        };
        let deadline = started + self.options.deadline;
        let _in_flight = self.batcher.as_ref().map(StageBatcher::enter);
        let slo_deadline = started + self.options.slo.unwrap_or(self.options.deadline);
        let (plan, _slots) = self.plan_and_admit(bytes.len(), &limits, deadline).await?;
        let query = QueryId::new();
        let keys: Vec<String> = plan.written_keys().iter().map(|k| query.key(k)).collect();
        let inline = InlineValues::new(match self.options.transfer {
            Transfer::Store => Default::default(),
            Transfer::Inline => plan.inline_keys(
                &self.config,
                self.options.payload_limit,
                self.options.inline_max_bytes,
            ),
        });
        let mut hedges = Vec::new();
        let outcome = self
            .run(
                &plan,
                query,
                bytes,
                (deadline, slo_deadline),
                inline,
                &mut hedges,
            )
            .await;
        // A hedged stage's loser that may still write is awaited before the keys go.
        let mut hedged = Vec::with_capacity(hedges.len());
        for hedge in hedges {
            hedged.push(hedge.settle().await);
        }
        // Delete by name on success and failure alike; the TTL covers a crash here.
        if let Err(err) = self.store.delete(&keys).await {
            tracing::warn!(%query, error = %err, "could not delete the query's keys; they expire with their TTL");
        }
        let Ran { logits, mut calls } = outcome?;
        calls.hedges = hedged;
        let prediction = Prediction::from_logits(&self.config.labels, logits, plan.padded_len);
        let splits = plan.layers.iter().map(|l| l.splits.len()).collect();
        let total_ms = started.elapsed().as_secs_f64() * 1e3;
        let trace = Trace::new(
            plan.kind,
            splits,
            calls,
            total_ms,
            &self.options.pricing,
            self.options.arch,
        );
        Ok(ServerlessPrediction { prediction, trace })
    }

    /// Plans the query and, for a resident plan under [`CoordinatorOptions::function_slots`],
    /// holds S + 1 slots for the query (S + 2 when hedging, for a straggler's duplicate),
    /// capping S so that they fit.
    async fn plan_and_admit(
        &self,
        len: usize,
        limits: &Limits,
        deadline: Instant,
    ) -> Result<(Plan, Option<tokio::sync::OwnedSemaphorePermit>), CoordinatorError> {
        let (kind, splits) = match &self.options.chooser {
            None => (self.options.plan, self.options.splits),
            Some(chooser) => {
                let (kind, splits) = chooser.choose(len).map_err(PlanError::Limits)?;
                (kind, Splits::Fixed(splits))
            }
        };
        let planned = plan(&self.config, len, kind, splits, limits)?;
        let (Some((total, slots)), PlanKind::Resident) = (&self.slots, kind) else {
            return Ok((planned, None));
        };
        let total = *total;
        let others = self.options.resident_slots_beside_splits();
        let splits = planned.layers[0].splits.len();
        let planned = match total.checked_sub(others) {
            Some(most) if most >= 1 && splits > most => {
                tracing::debug!(splits, most, "resident splits capped by the function slots");
                plan(&self.config, len, kind, Splits::Fixed(most), limits)?
            }
            Some(most) if most >= 1 => planned,
            _ => {
                return Err(CoordinatorError::Plan(PlanError::Limits(format!(
                    "the resident plan needs at least {} function slots (a split, a serial stage{}), and {total} are allowed",
                    others + 1,
                    if others > 1 { " and a hedge" } else { "" }
                ))));
            }
        };
        let needed = planned.layers[0].splits.len() + others;
        let permits = u32::try_from(needed).unwrap_or(u32::MAX);
        let acquire = slots.clone().acquire_many_owned(permits);
        match tokio::time::timeout_at(deadline.into(), acquire).await {
            Ok(Ok(permit)) => Ok((planned, Some(permit))),
            _ => Err(CoordinatorError::Busy {
                needed,
                slots: total,
            }),
        }
    }

    async fn run(
        &self,
        plan: &seqless_plan::Plan,
        query: QueryId,
        bytes: &[u8],
        (deadline, slo_deadline): (Instant, Instant),
        mut inline: InlineValues,
        hedges: &mut Vec<Hedge>,
    ) -> Result<Ran, CoordinatorError> {
        let ids = tokenizer::encode(bytes, plan.padded_len);
        let input = StoredTensor::u16(vec![ids.len()], ids).map_err(|e| self.store_error(e))?;
        let upload_bytes = if inline.carries(INPUT_KEY) {
            inline.put(INPUT_KEY, &input);
            0
        } else {
            self.upload(&query.key(INPUT_KEY), &input, deadline).await?
        };
        let mut invocations = Vec::with_capacity(plan.invocations());
        let mut retries = Vec::new();
        let mut logits = None;
        for phase in &plan.phases {
            // Stages that wait for keys start at different times, so each is timed alone
            // (and never hedged); the others are siblings.
            let siblings = PhaseClock::new(
                phase.iter().filter(|s| s.after.is_empty()).count(),
                deadline,
            );
            let alone: Vec<PhaseClock> =
                phase.iter().map(|_| PhaseClock::new(1, deadline)).collect();
            let residents = phase
                .iter()
                .filter(|s| s.kind == StageKind::Resident)
                .count();
            let progress = ResidentProgress::new(plan.layers.len(), residents, deadline);
            let mut calls: FuturesUnordered<_> = phase
                .iter()
                .zip(&alone)
                .map(|(stage, alone)| {
                    let clock = if stage.after.is_empty() {
                        &siblings
                    } else {
                        alone
                    };
                    let clocks = Clocks {
                        phase: clock,
                        resident: &progress,
                    };
                    let batching = Batching {
                        reply_bytes: match &self.batcher {
                            Some(_) => plan.inline_reply_bytes(&self.config, stage, inline.keys()),
                            None => 0,
                        },
                        slo_deadline,
                    };
                    self.run_stage(query, stage, deadline, clocks, &inline, batching)
                })
                .collect();
            // A phase whose stages wait for each other fails at its first failure: the
            // others would only wait, until the deadline, for what will never come.
            let wait_for_each_other = phase.iter().any(|s| !s.after.is_empty());
            let mut failure = None;
            let mut returned = Vec::new();
            while let Some(run) = calls.next().await {
                retries.extend(run.retries);
                hedges.extend(run.hedge);
                match run.outcome {
                    Ok((mut result, meta, round_trip)) => {
                        if matches!(run.stage.kind, StageKind::Head | StageKind::Classifier) {
                            logits = result.logits.clone();
                        }
                        let values = std::mem::take(&mut result.inline);
                        let mut record =
                            InvocationRecord::new(run.stage, &result, &meta, round_trip);
                        record.inline_in = run.inline_in;
                        record.inline_out = blob_bytes(&values);
                        invocations.push(record);
                        returned.push((run.stage, values));
                    }
                    Err((cause, attempts)) => {
                        failure.get_or_insert(self.failed(run.stage, cause, attempts));
                        if wait_for_each_other {
                            break;
                        }
                    }
                }
            }
            drop(calls);
            if let Some(err) = failure {
                return Err(err);
            }
            for (stage, values) in returned {
                inline
                    .accept(stage, values)
                    .map_err(|cause| self.failed(stage, cause, 1))?;
            }
        }
        let last = plan
            .phases
            .last()
            .and_then(|p| p.first())
            .map_or("final", |s| s.kind.as_str());
        let logits = logits.ok_or(CoordinatorError::NoLogits(last))?;
        Ok(Ran {
            logits,
            calls: Calls {
                invocations,
                retries,
                hedges: Vec::new(),
                upload_bytes,
            },
        })
    }

    /// The error of a stage that failed after `attempts`.
    fn failed(&self, stage: &Stage, cause: FunctionError, attempts: u32) -> CoordinatorError {
        CoordinatorError::Function {
            stage: stage.kind.as_str(),
            layer: stage.layer,
            split: stage.split,
            invoker: self.invoker.describe(),
            cause,
            attempts,
        }
    }

    /// Writes the query's input, trying again while the store's failure is transient.
    async fn upload(
        &self,
        key: &str,
        input: &StoredTensor,
        deadline: Instant,
    ) -> Result<u64, CoordinatorError> {
        let mut attempt = 1;
        loop {
            match self.store.put(key, input, self.options.ttl).await {
                Ok(bytes) => return Ok(bytes),
                Err(err) => {
                    let backoff = self.options.retry.backoff(attempt);
                    if !self.worth_retrying(err.is_retryable(), attempt, backoff, deadline) {
                        return Err(self.store_error(err));
                    }
                    tracing::debug!(key, attempt, error = %err, ?backoff, "retrying the input upload");
                    tokio::time::sleep(backoff).await;
                    attempt += 1;
                }
            }
        }
    }

    /// Whether a failed attempt is tried again: a transient failure, attempts left, and
    /// the backoff over before the deadline.
    fn worth_retrying(
        &self,
        retryable: bool,
        attempt: u32,
        backoff: Duration,
        deadline: Instant,
    ) -> bool {
        retryable
            && attempt < self.options.retry.max_attempts
            && Instant::now() + backoff < deadline
    }

    /// The event of one attempt at `stage`, with the values it gets and returns inline: a
    /// resident split may wait for its neighbours as long as the query has left.
    fn event(
        &self,
        query: QueryId,
        stage: &Stage,
        deadline: Instant,
        (inline, reply_inline): &(Vec<InlineValue>, Vec<String>),
    ) -> Arc<StageEvent> {
        let mut stage = stage.clone();
        if let StageOp::Resident { wait_ms, .. } = &mut stage.op {
            let left = deadline.saturating_duration_since(Instant::now());
            *wait_ms = u64::try_from(left.as_millis()).unwrap_or(u64::MAX);
        }
        Arc::new(StageEvent {
            inline: inline.clone(),
            reply_inline: reply_inline.clone(),
            ..StageEvent::new(query, self.fingerprint.clone(), stage)
        })
    }

    /// Runs one stage to its result once the keys it waits for ([`Stage::after`]) exist,
    /// retrying transient failures and hedging a straggler.
    async fn run_stage<'p>(
        &self,
        query: QueryId,
        stage: &'p Stage,
        deadline: Instant,
        clocks: Clocks<'_>,
        inline: &InlineValues,
        batching: Batching,
    ) -> StageRun<'p> {
        let failed = |cause| StageRun {
            stage,
            outcome: Err((cause, 0)),
            retries: Vec::new(),
            hedge: None,
            inline_in: 0,
        };
        let transfers = match inline.attachments(stage) {
            Ok(attached) => (attached, inline.replies(stage)),
            Err(cause) => return failed(cause),
        };
        let inline_in = blob_bytes(&transfers.0);
        for key in &stage.after {
            let left = deadline.saturating_duration_since(Instant::now());
            if let Err(err) = self.store.wait_for(&query.key(key), left).await {
                return failed(FunctionError::retryable(format!(
                    "the coordinator waited for `{key}` before invoking it: {err}"
                )));
            }
        }
        let mut retries = Vec::new();
        let mut hedge = None;
        let mut attempt = 1;
        let outcome = loop {
            let event = self.event(query, stage, deadline, &transfers);
            let sent = Instant::now();
            // One duplicate per stage at most, which bounds what hedging can cost. A stage
            // that may wait in a batch is not straggling until it has waited its window.
            let hedging = match (self.options.hedge, &hedge) {
                (HedgePolicy::After { factor, floor, .. }, None) => {
                    Some((factor, floor + self.batch_window(&event)))
                }
                _ => None,
            };
            let answer = match hedging {
                None => self.invoke_first(&event, batching).await,
                Some(threshold) => {
                    let first = self.invoke_first(&event, batching);
                    let (answer, hedged) = self
                        .hedged(
                            query,
                            stage,
                            (&event, first),
                            clocks,
                            threshold,
                            &mut retries,
                        )
                        .await;
                    hedge = hedged;
                    answer
                }
            };
            match answer {
                Ok(answer) => {
                    clocks.phase.finished();
                    break Ok(answer);
                }
                Err(err) => {
                    let round_trip = sent.elapsed();
                    let backoff = self.options.retry.backoff(attempt);
                    let retryable = err.kind() == ErrorKind::Retryable;
                    if !self.worth_retrying(retryable, attempt, backoff, deadline) {
                        break Err((err, attempt));
                    }
                    tracing::debug!(
                        %query, stage = stage.kind.as_str(), layer = stage.layer,
                        split = stage.split, attempt, error = %err, ?backoff, "retrying a stage"
                    );
                    retries.push(RetryRecord::new(stage, &err, round_trip, backoff));
                    tokio::time::sleep(backoff).await;
                    attempt += 1;
                }
            }
        };
        StageRun {
            stage,
            outcome,
            retries,
            hedge,
            inline_in,
        }
    }

    /// The first invocation of a stage's attempt: in a batch with other queries' stages
    /// where the batcher takes the stage, else alone.
    fn invoke_first(
        &self,
        event: &Arc<StageEvent>,
        batching: Batching,
    ) -> BoxFuture<'static, Invoked> {
        let Some(batcher) = self.batcher.clone().filter(|_| StageBatcher::takes(event)) else {
            return self.invoke(event);
        };
        let joining = Joining {
            request_bytes: serde_json::to_vec(event.as_ref())
                .map_or(self.options.payload_limit, |json| json.len() as u64),
            reply_bytes: batching.reply_bytes,
            slo_deadline: batching.slo_deadline.into(),
        };
        let event = event.clone();
        Box::pin(async move {
            let sent = Instant::now();
            let (result, meta) = batcher.run(event.as_ref().clone(), joining).await?;
            Ok((result, meta, sent.elapsed()))
        })
    }

    /// The longest `event` may wait in a batch before it is sent.
    fn batch_window(&self, event: &StageEvent) -> Duration {
        match &self.batcher {
            Some(batcher) if StageBatcher::takes(event) => batcher.window(),
            _ => Duration::ZERO,
        }
    }

    /// Whether dropping a stage's invocation stops it: only alone on an invoker whose
    /// invocations stop when dropped, since a batch runs for its other queries whatever
    /// one of them does.
    fn losers_stop(&self) -> bool {
        self.invoker.stops_when_dropped() && self.batcher.is_none()
    }

    /// One invocation, owning what it needs, so that a hedged stage's loser can outlive
    /// the stage.
    fn invoke(&self, event: &Arc<StageEvent>) -> BoxFuture<'static, Invoked> {
        let (invoker, event) = (self.invoker.clone(), event.clone());
        Box::pin(async move {
            let sent = Instant::now();
            let (result, meta) = invoker.invoke(&event).await?;
            Ok((result, meta, sent.elapsed()))
        })
    }

    /// One attempt of a stage that may be hedged: the `first` invocation of `event`, and a
    /// duplicate, alone, once it is due by `clock`; the first answer wins. A failed
    /// invocation of the pair goes into `retries` (the other one is its retry); when both
    /// fail, the last error is returned.
    async fn hedged(
        &self,
        query: QueryId,
        stage: &Stage,
        (event, first): (&Arc<StageEvent>, BoxFuture<'static, Invoked>),
        clocks: Clocks<'_>,
        threshold: (f64, Duration),
        retries: &mut Vec<RetryRecord>,
    ) -> (Invoked, Option<Hedge>) {
        let sent = Instant::now();
        let due = match &stage.op {
            StageOp::Resident { layers, .. } => Either::Left(clocks.resident.due(
                self.store.as_ref(),
                query,
                layers,
                threshold,
            )),
            _ => Either::Right(clocks.phase.hedge_due(sent, threshold.0, threshold.1)),
        };
        let due = pin!(due);
        self.hedge_budget.earn();
        let original = match select(first, due).await {
            Either::Left((answer, _)) => return (answer, None),
            Either::Right(((), original)) => original,
        };
        let after = sent.elapsed();
        let within_budget = self.hedge_budget.try_spend();
        tracing::debug!(
            stage = stage.kind.as_str(),
            layer = stage.layer,
            split = stage.split,
            ?after,
            within_budget,
            "a straggling stage: hedged unless the hedge budget is spent"
        );
        if !within_budget {
            return (original.await, None);
        }
        let duplicate_sent = Instant::now();
        let (first, by_duplicate, other, other_sent) =
            match select(original, self.invoke(event)).await {
                Either::Left((answer, duplicate)) => (answer, false, duplicate, duplicate_sent),
                Either::Right((answer, original)) => (answer, true, original, sent),
            };
        let won_by = |duplicate: bool| {
            if duplicate {
                HedgeWinner::Duplicate
            } else {
                HedgeWinner::Original
            }
        };
        match first {
            Ok(answer) => {
                let memory_mb = answer.1.memory_mb;
                let record = HedgeRecord::new(stage, after, won_by(by_duplicate));
                let hedge = if self.losers_stop() {
                    drop(other);
                    Hedge::Cancelled {
                        record,
                        ran: other_sent.elapsed(),
                        memory_mb,
                    }
                } else {
                    Hedge::Running {
                        record,
                        loser: tokio::spawn(other),
                    }
                };
                (Ok(answer), Some(hedge))
            }
            Err(err) => {
                let first_sent = if by_duplicate { duplicate_sent } else { sent };
                retries.push(RetryRecord::new(
                    stage,
                    &err,
                    first_sent.elapsed(),
                    Duration::ZERO,
                ));
                let second = other.await;
                let winner = match &second {
                    Ok(_) => won_by(!by_duplicate),
                    Err(_) => HedgeWinner::Neither,
                };
                let record = HedgeRecord::new(stage, after, winner);
                (second, Some(Hedge::Done(record)))
            }
        }
    }
}

/// An invocation's answer: the result, what the platform reported, and the round trip.
pub(crate) type Invoked = Result<(StageResult, InvocationMeta, Duration), FunctionError>;

/// What tells a running stage that it straggles: its phase's clock, and for a resident
/// split, its query's progress layer by layer.
#[derive(Clone, Copy)]
struct Clocks<'a> {
    phase: &'a PhaseClock,
    resident: &'a ResidentProgress,
}

/// What a stage needs to join a batch: the inline bytes its result carries back, and when
/// its query's SLO runs out.
#[derive(Clone, Copy)]
struct Batching {
    reply_bytes: u64,
    slo_deadline: Instant,
}

/// What a successful run gives [`Coordinator::classify`] to build the trace from.
struct Ran {
    logits: Vec<f32>,
    calls: Calls,
}

/// One stage's result and round trip, or its last error and the attempts made; with the
/// failed attempts that were tried again, and its hedge if it had one.
struct StageRun<'p> {
    stage: &'p Stage,
    outcome: Result<(StageResult, InvocationMeta, Duration), (FunctionError, u32)>,
    retries: Vec<RetryRecord>,
    hedge: Option<Hedge>,
    /// Payload bytes of the values its event carried inline.
    inline_in: u64,
}
