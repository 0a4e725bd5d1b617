//! Carrying out a plan: upload, invoke phase by phase, collect, clean up.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use seqless_cost::{Arch, Pricing};
use seqless_functions::{
    ErrorKind, FunctionError, InvocationMeta, Invoker, ModelFingerprint, StageEvent, StageResult,
};
use seqless_model::InputLenError;
use seqless_model::{ModelConfig, Prediction, tokenizer};
use seqless_plan::{INPUT_KEY, Limits, PlanError, PlanKind, Splits, Stage, StageKind, plan};
use seqless_store::{QueryId, StoreError, StoredTensor, TensorStore};
use serde::Serialize;

use crate::trace::{InvocationRecord, RetryRecord, Trace};

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
        }
    }
}

/// Retries of failed stages and store writes: at scale, throttling (429), crashed or
/// timed-out instances and store hiccups are routine, and each would otherwise lose the
/// query. Retrying a stage is safe because stages are idempotent (docs/design.md §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts per stage, the first included; 1 turns retries off.
    pub max_attempts: u32,
    /// The backoff before retry n is drawn uniformly from 0 to
    /// min(`max_backoff`, `base_backoff` · 2^(n−1)) ("full jitter"), so that many stages
    /// throttled at once do not come back at once.
    pub base_backoff: Duration,
    /// The largest backoff.
    pub max_backoff: Duration,
}

/// Six attempts: at 12% of invocations failing (the chaos run: 10% errors, 2%
/// crashes), a stage fails all six about 3 times in a million, so a thousand queries of a
/// dozen stages all succeed; four would lose about one query in 400.
impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 6,
            base_backoff: Duration::from_millis(25),
            max_backoff: Duration::from_secs(1),
        }
    }
}

impl RetryPolicy {
    /// No retries: every failure fails the query.
    pub fn none() -> Self {
        Self {
            max_attempts: 1,
            ..Self::default()
        }
    }

    /// The backoff before retry `retry` (1 for the first), with full jitter.
    pub fn backoff(&self, retry: u32) -> Duration {
        let doubling = 2u32.saturating_pow(retry.saturating_sub(1));
        let cap = self
            .base_backoff
            .saturating_mul(doubling)
            .min(self.max_backoff);
        cap.mul_f64(rand::random::<f64>())
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
    /// Whether retrying the same query may succeed (transient store or platform trouble).
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Store { cause, .. } => cause.is_retryable(),
            Self::Function { cause, .. } => cause.kind() == ErrorKind::Retryable,
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
        Self {
            config: Arc::new(config),
            fingerprint,
            store,
            invoker,
            options,
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
        let plan = plan(
            &self.config,
            bytes.len(),
            self.options.plan,
            self.options.splits,
            &limits,
        )?;
        let query = QueryId::new();
        let keys: Vec<String> = plan.written_keys().iter().map(|k| query.key(k)).collect();
        let deadline = started + self.options.deadline;
        let outcome = self.run(&plan, query, bytes, deadline).await;
        // Delete by name on success and failure alike; the TTL covers a crash here.
        if let Err(err) = self.store.delete(&keys).await {
            tracing::warn!(%query, error = %err, "could not delete the query's keys; they expire with their TTL");
        }
        let Ran {
            logits,
            invocations,
            retries,
            upload_bytes,
        } = outcome?;
        let prediction = Prediction::from_logits(&self.config.labels, logits, plan.padded_len);
        let splits = plan.layers.iter().map(|l| l.splits.len()).collect();
        let total_ms = started.elapsed().as_secs_f64() * 1e3;
        let trace = Trace::new(
            plan.kind,
            splits,
            invocations,
            retries,
            upload_bytes,
            total_ms,
            &self.options.pricing,
            self.options.arch,
        );
        Ok(ServerlessPrediction { prediction, trace })
    }

    async fn run(
        &self,
        plan: &seqless_plan::Plan,
        query: QueryId,
        bytes: &[u8],
        deadline: Instant,
    ) -> Result<Ran, CoordinatorError> {
        let ids = tokenizer::encode(bytes, plan.padded_len);
        let input = StoredTensor::u16(vec![ids.len()], ids).map_err(|e| self.store_error(e))?;
        let upload_bytes = self.upload(&query.key(INPUT_KEY), &input, deadline).await?;
        let mut invocations = Vec::with_capacity(plan.invocations());
        let mut retries = Vec::new();
        let mut logits = None;
        for phase in &plan.phases {
            let calls = phase
                .iter()
                .map(|stage| self.run_stage(query, stage, deadline));
            let mut failure = None;
            for run in join_all(calls).await {
                retries.extend(run.retries);
                match run.outcome {
                    Ok((result, meta, round_trip)) => {
                        if matches!(run.stage.kind, StageKind::Head | StageKind::Classifier) {
                            logits = result.logits.clone();
                        }
                        invocations
                            .push(InvocationRecord::new(run.stage, &result, &meta, round_trip));
                    }
                    Err((cause, attempts)) => {
                        failure.get_or_insert(CoordinatorError::Function {
                            stage: run.stage.kind.as_str(),
                            layer: run.stage.layer,
                            split: run.stage.split,
                            invoker: self.invoker.describe(),
                            cause,
                            attempts,
                        });
                    }
                }
            }
            if let Some(err) = failure {
                return Err(err);
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
            invocations,
            retries,
            upload_bytes,
        })
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

    /// Runs one stage to its result, retrying transient failures.
    async fn run_stage<'p>(
        &self,
        query: QueryId,
        stage: &'p Stage,
        deadline: Instant,
    ) -> StageRun<'p> {
        let event = StageEvent {
            query_id: query,
            model: self.fingerprint.clone(),
            stage: stage.clone(),
        };
        let mut retries = Vec::new();
        let mut attempt = 1;
        let outcome = loop {
            let sent = Instant::now();
            match self.invoker.invoke(&event).await {
                Ok((result, meta)) => break Ok((result, meta, sent.elapsed())),
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
        }
    }
}

/// What a successful run gives [`Coordinator::classify`] to build the trace from.
struct Ran {
    logits: Vec<f32>,
    invocations: Vec<InvocationRecord>,
    retries: Vec<RetryRecord>,
    upload_bytes: u64,
}

/// One stage's result and round trip, or its last error and the attempts made; with the
/// failed attempts that were tried again.
struct StageRun<'p> {
    stage: &'p Stage,
    outcome: Result<(StageResult, InvocationMeta, Duration), (FunctionError, u32)>,
    retries: Vec<RetryRecord>,
}
