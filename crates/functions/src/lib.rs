//! Stateless stage functions and the invokers that run them.
//!
//! - [`handle`]: the one handler for every stage kind of both plans. It takes a
//!   [`StageEvent`] and returns a [`StageResult`] (defined in `seqless-wire`, with the rest
//!   of the contract), and calls the model's shared layer steps, so there is no second copy
//!   of the maths. Its [`FunctionContext`] (model, fingerprint and store) is built once per
//!   function instance: that is the instance's cold start.
//! - [`Invoker`]: how the coordinator gets a stage run. [`InprocInvoker`] is the embedded
//!   default, a pool of instances inside the master's process with a concurrency limit,
//!   lazy cold starts, warm reuse and idle reaping, recording Lambda-style billing for every
//!   invocation. `LocalInvoker` (feature `local`) and `LambdaInvoker` (feature `aws`) invoke
//!   the same handler in function processes through the Lambda Invoke API; [`lambda_api`]
//!   reads their replies.
//! - `runtime` (feature `runtime`): the function process's entry point on the Lambda
//!   Runtime API, the same binary on AWS Lambda and on the local platform; `store_secret`
//!   reads the store's password from AWS Secrets Manager at init.

mod error;
mod handler;
mod invoker;
pub mod lambda_api;
#[cfg(feature = "runtime")]
pub mod runtime;
#[cfg(feature = "runtime")]
pub mod store_secret;

pub use error::{ErrorKind, FunctionError};
pub use handler::{FunctionContext, handle};
#[cfg(feature = "aws")]
pub use invoker::LambdaInvoker;
#[cfg(feature = "local")]
pub use invoker::LocalInvoker;
pub use invoker::{BatchAnswer, InprocInvoker, InprocOptions, InvokeOptions, Invoker};
pub use seqless_wire::faults::FaultInjection;
pub use seqless_wire::{
    BatchEvent, BatchOutcome, BatchResult, FunctionEvent, InitTimes, InvocationMeta,
    ModelFingerprint, Ping, StageEvent, StageResult, billed_ms,
};
