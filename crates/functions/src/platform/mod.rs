//! Where stage functions run.

mod inproc;
#[cfg(feature = "aws")]
mod lambda;
#[cfg(feature = "local")]
mod local;

pub use inproc::{InprocOptions, InprocPlatform};
#[cfg(feature = "aws")]
pub use lambda::LambdaPlatform;
#[cfg(feature = "local")]
pub use local::LocalPlatform;

use std::time::Duration;

use async_trait::async_trait;

use crate::error::FunctionError;
use crate::event::{InvocationMeta, StageEvent, StageResult};

/// Runs stage functions and reports what each invocation cost.
///
/// Implementations: the in-process pool ([`InprocPlatform`]), and, over the Lambda Invoke
/// API with the same events, the local Lambda-compatible platform (`LocalPlatform`,
/// feature `local`) and AWS Lambda (`LambdaPlatform`, feature `aws`).
#[async_trait]
pub trait Platform: Send + Sync {
    /// Runs one stage to completion.
    async fn invoke(
        &self,
        event: &StageEvent,
    ) -> Result<(StageResult, InvocationMeta), FunctionError>;
    /// Whether the platform can take invocations now (for readiness checks).
    async fn ready(&self) -> Result<(), FunctionError>;
    /// A short name for messages and traces.
    fn describe(&self) -> String;
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
