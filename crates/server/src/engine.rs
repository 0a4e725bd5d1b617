//! The execution modes a server can sit behind: one forward pass in this process (optionally
//! batched), or the serverless pipeline of a [`Coordinator`] with any store and platform.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use seqless_coordinator::{Coordinator, Trace};
use seqless_model::{ModelConfig, Prediction, TfilmModel};

use crate::batcher::{Batcher, Batching};
use crate::error::ApiError;
use crate::metrics::Metrics;

/// What the serverless master holds for a query besides its input: the plan, the futures of
/// a phase's invocations, their replies, the trace and the logits.
const MASTER_OVERHEAD_BYTES: u64 = 1 << 20;

/// How long a readiness check may wait on the store or the platform.
const READY_TIMEOUT: Duration = Duration::from_secs(3);

/// Runs one readiness probe within [`READY_TIMEOUT`]: the dependency's name when it answers,
/// a 503 naming it when it does not.
async fn probe<E: std::fmt::Display>(
    what: &str,
    name: String,
    check: impl std::future::Future<Output = Result<(), E>>,
) -> Result<String, ApiError> {
    let why = match tokio::time::timeout(READY_TIMEOUT, check).await {
        Ok(Ok(())) => return Ok(name),
        Ok(Err(e)) => e.to_string(),
        Err(_) => format!("no answer within {READY_TIMEOUT:?}"),
    };
    Err(ApiError::unavailable(
        "not_ready",
        format!("{what} {name} is not reachable: {why}"),
        1,
    ))
}

/// A prediction, and the trace of the functions that computed it (serverless only).
#[derive(Debug, Clone)]
pub struct Classified {
    /// Label, logits, probabilities.
    pub prediction: Prediction,
    /// Invocations, bytes and cost; `None` in monolithic mode.
    pub trace: Option<Trace>,
}

/// Where the server's queries run.
#[derive(Clone)]
pub enum Engine {
    /// The whole model in this process.
    Monolithic {
        /// The loaded model.
        model: Arc<TfilmModel>,
        /// Dynamic batching, when enabled.
        batcher: Option<Batcher>,
    },
    /// The serverless pipeline.
    Serverless(Box<Coordinator>),
}

impl Engine {
    /// Monolithic mode; with `batching`, starts the batching worker (so call it inside the
    /// tokio runtime that will serve).
    pub fn monolithic(model: TfilmModel, batching: Option<Batching>, metrics: &Metrics) -> Self {
        let model = Arc::new(model);
        let batcher = batching
            .filter(|b| b.max > 1)
            .map(|b| Batcher::start(model.clone(), b, metrics.batch_size().clone()));
        Self::Monolithic { model, batcher }
    }

    /// `monolithic` or `serverless`, as replies and metrics name the mode.
    pub fn mode(&self) -> &'static str {
        match self {
            Self::Monolithic { .. } => "monolithic",
            Self::Serverless(_) => "serverless",
        }
    }

    /// The served model's config.
    pub fn config(&self) -> &ModelConfig {
        match self {
            Self::Monolithic { model, .. } => &model.config,
            Self::Serverless(c) => c.config(),
        }
    }

    /// An upper bound on the memory this process holds for one query of `len` bytes at its
    /// peak, what the server admits it by: the request as parsed and decoded (`2 len`),
    /// and then
    ///
    /// - monolithic: the forward's buffers, [`ModelConfig::forward_peak_bytes`];
    /// - serverless: what the master holds, not the functions: the token ids (`2 T`), the
    ///   input blob as the store writes it (another `2 T`), and
    ///   1 MiB for the plan, the trace and the logits. With the
    ///   in-process platform or the memory store, the functions' buffers and the stored
    ///   activations also live in this process and are not counted here.
    pub fn query_memory_bytes(&self, len: usize) -> u64 {
        let request = 2 * len as u64;
        match self {
            Self::Monolithic { model, .. } => request + model.config.forward_peak_bytes(len),
            Self::Serverless(c) => {
                let ids = 2 * c.config().padded_len(len) as u64;
                request + 2 * ids + MASTER_OVERHEAD_BYTES
            }
        }
    }

    /// Classifies one query (its length already checked).
    pub async fn classify(&self, bytes: Vec<u8>) -> Result<Classified, ApiError> {
        match self {
            Self::Monolithic {
                batcher: Some(batcher),
                ..
            } => Ok(Classified {
                prediction: batcher.classify(bytes).await?,
                trace: None,
            }),
            Self::Monolithic { model, .. } => {
                let model = model.clone();
                let prediction = tokio::task::spawn_blocking(move || model.forward(&bytes))
                    .await
                    .map_err(|e| ApiError::internal(format!("the forward pass failed: {e}")))??;
                Ok(Classified {
                    prediction,
                    trace: None,
                })
            }
            Self::Serverless(coordinator) => {
                let result = coordinator.classify(&bytes).await?;
                Ok(Classified {
                    prediction: result.prediction,
                    trace: Some(result.trace),
                })
            }
        }
    }

    /// Checks what queries depend on: nothing beyond the loaded model in monolithic mode; the
    /// store (`ping`) and the platform (`ready`) in serverless mode. Returns each check's
    /// state, or a 503 naming the first dependency that does not answer.
    pub async fn ready(&self) -> Result<BTreeMap<String, String>, ApiError> {
        let mut checks = BTreeMap::from([("model".to_owned(), "loaded".to_owned())]);
        let Self::Serverless(coordinator) = self else {
            return Ok(checks);
        };
        let (store, invoker) = (coordinator.store(), coordinator.invoker());
        let store_state = probe("store", store.describe(), store.ping()).await?;
        checks.insert("store".into(), store_state);
        let platform_state = probe("platform", invoker.describe(), invoker.ready()).await?;
        checks.insert("platform".into(), platform_state);
        Ok(checks)
    }

    /// Serverless only: the plan defaults, store and platform, for `GET /v1/models`.
    pub fn plan_info(&self) -> Option<serde_json::Value> {
        let Self::Serverless(coordinator) = self else {
            return None;
        };
        let options = coordinator.options();
        Some(serde_json::json!({
            "plan": options.plan,
            "splits": options.splits,
            "function_memory_mb": options.limits.function_memory_mb,
            "max_splits": options.limits.max_splits,
            "min_rows_per_split": options.limits.min_rows_per_split,
            "ttl_secs": options.ttl.as_secs(),
            "arch": options.arch,
            "store": coordinator.store().describe(),
            "platform": coordinator.invoker().describe(),
        }))
    }
}
