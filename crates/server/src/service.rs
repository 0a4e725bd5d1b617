//! The query path shared by the classify endpoints: check the texts, admit them by count and
//! by estimated memory, run them under the deadline, and account for every outcome in the
//! metrics.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use futures_util::future::join_all;

use crate::admission::{Admission, MemoryLimits};
use crate::api::ClassifyResponse;
use crate::auth::ApiToken;
use crate::engine::{Classified, Engine};
use crate::error::ApiError;
use crate::metrics::{Metrics, Outcome};

/// The limits a server enforces on requests and queries.
#[derive(Debug, Clone)]
pub struct ServiceLimits {
    /// Largest request body, bytes (413 above it).
    pub body_limit: usize,
    /// Queries admitted at once (503 + `Retry-After` above it).
    pub max_in_flight: usize,
    /// The memory budget the queries' estimated peaks share, and the queue in front of it.
    pub memory: MemoryLimits,
    /// Time a request may take from admission to answer (504 after it).
    pub deadline: Duration,
    /// Most texts in one batch request (422 above it).
    pub max_batch: usize,
}

impl Default for ServiceLimits {
    fn default() -> Self {
        Self {
            body_limit: 4 << 20,
            max_in_flight: 64,
            memory: MemoryLimits::default(),
            deadline: Duration::from_secs(30),
            max_batch: 64,
        }
    }
}

/// Everything a request handler needs, shared by all of them.
pub struct Service {
    /// Where queries run.
    pub engine: Arc<Engine>,
    /// Name of the served model (its directory's name).
    pub model_name: String,
    /// The enforced limits.
    pub limits: ServiceLimits,
    /// The exported metrics.
    pub metrics: Arc<Metrics>,
    /// The in-flight and memory bounds.
    pub admission: Admission,
    /// The bearer token every endpoint but `/healthz` requires; `None`: no auth.
    pub token: Option<ApiToken>,
}

/// Which metric outcome an error is.
fn outcome(err: &ApiError) -> Outcome {
    match (err.status, err.code) {
        (_, "overloaded") => Outcome::Overloaded,
        (StatusCode::GATEWAY_TIMEOUT, _) => Outcome::Timeout,
        (StatusCode::SERVICE_UNAVAILABLE, _) => Outcome::Unavailable,
        (s, _) if s.is_client_error() => Outcome::Invalid,
        _ => Outcome::Failed,
    }
}

impl Service {
    /// A service over `engine` with `limits`, exporting to `metrics`, requiring `token` if set.
    pub fn new(
        engine: Engine,
        model_name: String,
        limits: ServiceLimits,
        metrics: Arc<Metrics>,
        token: Option<ApiToken>,
    ) -> Self {
        let admission = Admission::new(
            limits.max_in_flight,
            limits.memory,
            metrics.in_flight().clone(),
        );
        Self {
            engine: Arc::new(engine),
            model_name,
            limits,
            metrics,
            admission,
            token,
        }
    }

    /// Classifies `texts` concurrently, answering in order; `batch` names texts by index in
    /// messages. Any text's failure fails the request (its index named in the message).
    pub async fn classify(
        &self,
        texts: Vec<Vec<u8>>,
        trace: bool,
        batch: bool,
    ) -> Result<Vec<ClassifyResponse>, ApiError> {
        let n = texts.len().max(1);
        let result = self.run(texts, trace, batch).await;
        match &result {
            Ok(answers) => {
                self.metrics.queries(Outcome::Ok, answers.len());
                for a in answers {
                    self.metrics.latency(a.latency_ms / 1e3);
                }
            }
            Err(err) => self.metrics.queries(outcome(err), n),
        }
        result
    }

    async fn run(
        &self,
        texts: Vec<Vec<u8>>,
        trace: bool,
        batch: bool,
    ) -> Result<Vec<ClassifyResponse>, ApiError> {
        let place = |i: usize| {
            if batch {
                format!("texts[{i}]")
            } else {
                "text".into()
            }
        };
        if batch && texts.is_empty() {
            return Err(ApiError::invalid(
                "invalid_request",
                "the batch has no texts",
            ));
        }
        if texts.len() > self.limits.max_batch {
            return Err(ApiError::invalid(
                "batch_too_large",
                format!(
                    "the batch has {} texts, over this server's limit of {} (--max-batch-texts)",
                    texts.len(),
                    self.limits.max_batch
                ),
            ));
        }
        for (i, text) in texts.iter().enumerate() {
            self.check_len(text.len()).map_err(|e| e.at(&place(i)))?;
        }
        let need: u64 = texts
            .iter()
            .map(|text| self.engine.query_memory_bytes(text.len()))
            .sum();
        let what = if batch {
            format!("the batch of {} texts", texts.len())
        } else {
            format!(
                "the text of {} bytes",
                texts.iter().map(Vec::len).sum::<usize>()
            )
        };
        self.admission.check_memory(need, &what)?;
        let permit = self.admission.admit(texts.len(), need).await?;
        let (engine, metrics) = (self.engine.clone(), self.metrics.clone());
        let admitted = Instant::now();
        // The queries run in their own task, which holds the permit: past the deadline the
        // client is answered 504 while the queries finish (and delete their keys) in the
        // background, still counted against the in-flight bound.
        let task = tokio::spawn(async move {
            let _permit = permit;
            join_all(texts.into_iter().map(|bytes| {
                let (engine, metrics) = (engine.clone(), metrics.clone());
                async move {
                    let classified = engine.classify(bytes).await;
                    // Billed even if the client has gone: count it whatever the deadline.
                    if let Some(trace) = classified.as_ref().ok().and_then(|c| c.trace.as_ref()) {
                        metrics.trace(trace);
                    }
                    (classified, admitted.elapsed())
                }
            }))
            .await
        });
        let deadline = self.limits.deadline;
        let done = tokio::time::timeout(deadline, task).await.map_err(|_| {
            ApiError::new(
                StatusCode::GATEWAY_TIMEOUT,
                "deadline_exceeded",
                format!("the query took longer than this server's deadline of {deadline:?} (--deadline-ms)"),
            )
        })?;
        let results =
            done.map_err(|e| ApiError::internal(format!("the query task failed: {e}")))?;
        results
            .into_iter()
            .enumerate()
            .map(|(i, (classified, took))| {
                let classified = classified.map_err(|e| if batch { e.at(&place(i)) } else { e })?;
                self.answer(classified, took, trace)
            })
            .collect()
    }

    /// Refuses empty texts and texts over the model's `max_len` before they take a slot.
    fn check_len(&self, len: usize) -> Result<(), ApiError> {
        self.engine
            .config()
            .check_input_len(len)
            .map_err(|e| ApiError::invalid(e.code(), e.to_string()))
    }

    /// The reply for one classified text.
    fn answer(
        &self,
        classified: Classified,
        took: Duration,
        with_trace: bool,
    ) -> Result<ClassifyResponse, ApiError> {
        let Classified { prediction, trace } = classified;
        let trace_json = match trace.as_ref().filter(|_| with_trace) {
            Some(t) => Some(
                serde_json::to_value(t)
                    .map_err(|e| ApiError::internal(format!("serialising the trace: {e}")))?,
            ),
            None => None,
        };
        let labels = &self.engine.config().labels;
        Ok(ClassifyResponse {
            label: prediction.label,
            probabilities: labels
                .iter()
                .cloned()
                .zip(prediction.probabilities)
                .collect(),
            latency_ms: took.as_secs_f64() * 1e3,
            invocations: trace.as_ref().map_or(0, |t| t.invocations.len() as u64),
            cost_usd: trace.as_ref().map_or(0.0, |t| t.cost_usd),
            mode: self.engine.mode().to_owned(),
            trace: trace_json,
        })
    }
}
