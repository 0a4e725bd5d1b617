//! Carrying out a plan: upload, invoke phase by phase, collect, clean up.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use seqless_cost::{Arch, Pricing};
use seqless_functions::{ErrorKind, FunctionError, Invoker, ModelFingerprint, StageEvent};
use seqless_model::InputLenError;
use seqless_model::{ModelConfig, Prediction, tokenizer};
use seqless_plan::{INPUT_KEY, Limits, PlanError, PlanKind, Splits, StageKind, plan};
use seqless_store::{QueryId, StoreError, StoredTensor, TensorStore};
use serde::Serialize;

use crate::trace::{InvocationRecord, Trace};

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
        }
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
    /// A function failed.
    #[error("{stage} function (layer {layer}, split {split}) on {invoker} failed: {cause}")]
    Function {
        /// Stage kind.
        stage: &'static str,
        /// 0-based layer.
        layer: usize,
        /// 0-based split.
        split: usize,
        /// The invoker, as described by itself.
        invoker: String,
        /// The function's error, with its retryability.
        cause: FunctionError,
    },
    /// The final stage returned no logits (a function bug or a foreign function).
    #[error("the {0} stage returned no logits")]
    NoLogits(&'static str),
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
        let outcome = self.run(&plan, query, bytes).await;
        // Delete by name on success and failure alike; the TTL covers a crash here.
        if let Err(err) = self.store.delete(&keys).await {
            tracing::warn!(%query, error = %err, "could not delete the query's keys; they expire with their TTL");
        }
        let (logits, invocations, upload_bytes) = outcome?;
        let prediction = Prediction::from_logits(&self.config.labels, logits, plan.padded_len);
        let splits = plan.layers.iter().map(|l| l.splits.len()).collect();
        let total_ms = started.elapsed().as_secs_f64() * 1e3;
        let trace = Trace::new(
            plan.kind,
            splits,
            invocations,
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
    ) -> Result<(Vec<f32>, Vec<InvocationRecord>, u64), CoordinatorError> {
        let ids = tokenizer::encode(bytes, plan.padded_len);
        let input = StoredTensor::u16(vec![ids.len()], ids).map_err(|e| self.store_error(e))?;
        let upload_bytes = self
            .store
            .put(&query.key(INPUT_KEY), &input, self.options.ttl)
            .await
            .map_err(|e| self.store_error(e))?;
        let mut records = Vec::with_capacity(plan.invocations());
        let mut logits = None;
        for phase in &plan.phases {
            let calls = phase.iter().map(|stage| async move {
                let event = StageEvent {
                    query_id: query,
                    model: self.fingerprint.clone(),
                    stage: stage.clone(),
                };
                let sent = Instant::now();
                let outcome = self.invoker.invoke(&event).await;
                (stage, outcome, sent.elapsed())
            });
            for (stage, outcome, round_trip) in join_all(calls).await {
                let (result, meta) = outcome.map_err(|cause| CoordinatorError::Function {
                    stage: stage.kind.as_str(),
                    layer: stage.layer,
                    split: stage.split,
                    invoker: self.invoker.describe(),
                    cause,
                })?;
                if matches!(stage.kind, StageKind::Head | StageKind::Classifier) {
                    logits = result.logits.clone();
                }
                records.push(InvocationRecord::new(stage, &result, &meta, round_trip));
            }
        }
        let last = plan
            .phases
            .last()
            .and_then(|p| p.first())
            .map_or("final", |s| s.kind.as_str());
        let logits = logits.ok_or(CoordinatorError::NoLogits(last))?;
        Ok((logits, records, upload_bytes))
    }
}
