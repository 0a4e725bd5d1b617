//! Stateless stage functions and the platforms that run them.
//!
//! - [`StageEvent`] / [`StageResult`]: the small JSON messages a function takes and returns.
//!   Tensors never travel in them: a function reads and writes the [`TensorStore`].
//! - [`handle`]: the one handler for every stage kind of both plans. It calls the model
//!   crate's stage kernels, so there is no second copy of the maths. Its
//!   [`FunctionContext`] (model and store) is built once per function instance: that is
//!   the instance's cold start.
//! - [`Platform`]: where functions run. [`InprocPlatform`] is the embedded default, a pool
//!   of instances inside the master's process with a concurrency limit, lazy cold starts,
//!   warm reuse and idle reaping, recording Lambda-style billing for every invocation.
//!   `LocalPlatform` (feature `local`) and `LambdaPlatform` (feature `aws`) invoke the same
//!   handler in function processes through the Lambda Invoke API; [`lambda_api`] holds the
//!   wire shapes both ends of that API share (error bodies, the REPORT billing line).
//! - `runtime` (feature `runtime`): the function process's entry point on the Lambda
//!   Runtime API, the same binary on AWS Lambda and on the local platform; `store_secret`
//!   reads the store's password from AWS Secrets Manager at init.
//!
//! [`TensorStore`]: seqless_store::TensorStore

mod error;
mod event;
mod handler;
pub mod lambda_api;
pub mod platform;
#[cfg(feature = "runtime")]
pub mod runtime;
#[cfg(feature = "runtime")]
pub mod store_secret;

pub use error::{ErrorKind, FunctionError};
pub use event::{FunctionEvent, InitTimes, InvocationMeta, Ping, StageEvent, StageResult};
pub use handler::{FunctionContext, handle};
#[cfg(feature = "aws")]
pub use platform::LambdaPlatform;
#[cfg(feature = "local")]
pub use platform::LocalPlatform;
pub use platform::{InprocOptions, InprocPlatform, InvokeOptions, Platform};
