//! Where stage functions run.

mod inproc;

pub use inproc::{InprocOptions, InprocPlatform};

use async_trait::async_trait;

use crate::error::FunctionError;
use crate::event::{InvocationMeta, StageEvent, StageResult};

/// Runs stage functions and reports what each invocation cost.
///
/// Implementations: the in-process pool ([`InprocPlatform`]); the local Lambda-compatible
/// platform and AWS Lambda speak the same events over the Invoke API.
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
