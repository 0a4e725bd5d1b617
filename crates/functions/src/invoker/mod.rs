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
use seqless_wire::{InvocationMeta, StageEvent, StageResult};

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
