//! Dynamic batching for the monolithic mode: queries that arrive close together run as one
//! forward job, the way a GPU inference server batches, so a burst pays one dispatch and the
//! queries take the cores in turn instead of competing for them all at once.

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::metrics::histogram::Histogram;
use seqless_model::{Prediction, TfilmModel};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use crate::error::ApiError;

/// When a batch closes: at `max` queries, or `wait` after its first query arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Batching {
    /// Most queries in one job.
    pub max: usize,
    /// Longest a query waits for others to join it.
    pub wait: Duration,
}

type Reply = oneshot::Sender<Result<Prediction, ApiError>>;

/// Queues queries for one worker that collects them into batches and runs each batch as
/// one blocking job. Inside the job the queries run one after another: each forward pass
/// already spreads its convolution over the rayon pool, and a parallel loop over the batch
/// around that would only make the queries compete for the same cores.
#[derive(Debug, Clone)]
pub struct Batcher {
    queue: mpsc::UnboundedSender<(Vec<u8>, Reply)>,
}

impl Batcher {
    /// Starts the worker on the current tokio runtime; it stops when every handle is dropped.
    /// The queue needs no bound of its own: admission bounds the queries in flight.
    pub fn start(model: Arc<TfilmModel>, batching: Batching, sizes: Histogram) -> Self {
        let (queue, jobs) = mpsc::unbounded_channel();
        tokio::spawn(worker(model, batching, sizes, jobs));
        Self { queue }
    }

    /// Classifies one query as part of whatever batch it lands in.
    pub async fn classify(&self, bytes: Vec<u8>) -> Result<Prediction, ApiError> {
        let (reply, answer) = oneshot::channel();
        self.queue
            .send((bytes, reply))
            .map_err(|_| ApiError::internal("the batching worker has stopped"))?;
        answer
            .await
            .map_err(|_| ApiError::internal("the batching worker dropped a query"))?
    }
}

async fn worker(
    model: Arc<TfilmModel>,
    batching: Batching,
    sizes: Histogram,
    mut jobs: mpsc::UnboundedReceiver<(Vec<u8>, Reply)>,
) {
    while let Some(first) = jobs.recv().await {
        let mut batch = vec![first];
        let closes = Instant::now() + batching.wait;
        while batch.len() < batching.max {
            match tokio::time::timeout_at(closes, jobs.recv()).await {
                Ok(Some(job)) => batch.push(job),
                Ok(None) | Err(_) => break,
            }
        }
        sizes.observe(batch.len() as f64);
        let model = model.clone();
        let (inputs, replies): (Vec<_>, Vec<_>) = batch.into_iter().unzip();
        let job = tokio::task::spawn_blocking(move || {
            inputs
                .iter()
                .map(|bytes| model.forward(bytes).map_err(ApiError::from))
                .collect::<Vec<_>>()
        });
        match job.await {
            Ok(results) => {
                for (reply, result) in replies.into_iter().zip(results) {
                    // The caller may have given up (deadline); nothing to do then.
                    let _ = reply.send(result);
                }
            }
            Err(err) => {
                for reply in replies {
                    let _ = reply.send(Err(ApiError::internal(format!(
                        "the forward job failed: {err}"
                    ))));
                }
            }
        }
    }
}
