//! How the coordinator gets a stage run: in this process, or through the Lambda Invoke API.

mod inproc;
#[cfg(feature = "aws")]
mod lambda;
#[cfg(feature = "local")]
mod local;

pub use inproc::{InprocInvoker, InprocOptions};
#[cfg(feature = "aws")]
pub use lambda::LambdaInvoker;
#[cfg(feature = "local")]
pub use local::LocalInvoker;

use std::time::Duration;

use async_trait::async_trait;

use crate::error::FunctionError;
use seqless_wire::{BatchEvent, InvocationMeta, StageEvent, StageKind, StageResult};

/// Runs stage functions and reports what each invocation cost.
///
/// Implementations: the in-process pool ([`InprocInvoker`]), and, over the Lambda Invoke
/// API with the same events, the local Lambda-compatible platform (`LocalInvoker`,
/// feature `local`) and AWS Lambda (`LambdaInvoker`, feature `aws`). Named apart from
/// `seqless-platform`, the Lambda emulator that `LocalInvoker` talks to.
#[async_trait]
pub trait Invoker: Send + Sync {
    /// Runs one stage to completion.
    async fn invoke(
        &self,
        event: &StageEvent,
    ) -> Result<(StageResult, InvocationMeta), FunctionError>;
    /// Runs several queries' stages of one function in one invocation (one request, one
    /// invocation's overhead, one bill for them all), each with its own outcome, in the
    /// batch's order. Only where [`takes_batches`](Self::takes_batches) says so.
    async fn invoke_batch(&self, batch: &BatchEvent) -> Result<BatchAnswer, FunctionError> {
        let _ = batch;
        Err(FunctionError::permanent(format!(
            "{} does not take batches of stages",
            self.describe()
        )))
    }
    /// Whether [`invoke_batch`](Self::invoke_batch) works here.
    fn takes_batches(&self) -> bool {
        false
    }
    /// Whether the functions can take invocations now (for readiness checks).
    async fn ready(&self) -> Result<(), FunctionError>;
    /// A short name for messages and traces.
    fn describe(&self) -> String;
    /// Whether dropping an invocation's future stops it before its next store write. Only
    /// then may a caller abandon an invocation whose answer it no longer needs (a hedged
    /// stage's loser); otherwise it must await it before deleting the query's keys. Through
    /// an Invoke API the function runs on whatever the caller does: Lambda cannot call an
    /// invocation back.
    fn stops_when_dropped(&self) -> bool {
        false
    }
    /// How many invocations can run at once, where the invoker itself knows (an
    /// in-process pool); a platform behind an Invoke API keeps its limit to itself.
    fn concurrency(&self) -> Option<usize> {
        None
    }
}

/// What the Invoke API clients share, whichever endpoint they talk to.
#[derive(Debug, Clone)]
pub struct InvokeOptions {
    /// Prefix of the function names (`seqless-` gives `seqless-conv`, ...).
    pub function_prefix: String,
    /// Memory to bill when a reply carries no REPORT line.
    pub fallback_memory_mb: u32,
    /// Upper bound on one invocation, queueing and cold start included.
    pub timeout: Duration,
}

/// A batch invocation's answer: each stage's outcome, in the batch's order, and what the
/// platform billed for the whole invocation.
pub type BatchAnswer = (Vec<Result<StageResult, FunctionError>>, InvocationMeta);

/// The function a batch goes to, refusing an empty batch or one of mixed stage kinds.
pub(crate) fn batch_kind(batch: &BatchEvent) -> Result<StageKind, FunctionError> {
    batch.kind().ok_or_else(|| {
        FunctionError::permanent("a batch needs at least one stage, all of one stage kind")
    })
}

/// A batch through an Invoke API client's `call` of the batch's function.
#[cfg(any(feature = "local", feature = "aws"))]
pub(crate) async fn invoke_batch_with<F, Fut>(
    batch: &BatchEvent,
    call: F,
) -> Result<BatchAnswer, FunctionError>
where
    F: FnOnce(StageKind) -> Fut,
    Fut: Future<Output = Result<(seqless_wire::BatchResult, InvocationMeta), FunctionError>>,
{
    let (result, meta) = call(batch_kind(batch)?).await?;
    Ok((batch_outcomes(result, batch.batch.len())?, meta))
}

/// Reads a batch's answer, refusing one that does not hold an outcome per stage.
#[cfg(any(feature = "local", feature = "aws"))]
fn batch_outcomes(
    result: seqless_wire::BatchResult,
    sent: usize,
) -> Result<Vec<Result<StageResult, FunctionError>>, FunctionError> {
    if result.batch.len() != sent {
        return Err(FunctionError::permanent(format!(
            "a batch of {sent} stages got {} outcomes back",
            result.batch.len()
        )));
    }
    Ok(result
        .batch
        .into_iter()
        .map(|outcome| match outcome {
            seqless_wire::BatchOutcome::Ok(result) => Ok(result),
            seqless_wire::BatchOutcome::Error(body) => Err(FunctionError::from(body)),
        })
        .collect())
}
