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
//!
//! [`TensorStore`]: seqless_store::TensorStore

mod error;
mod event;
mod handler;
pub mod platform;

pub use error::{ErrorKind, FunctionError};
pub use event::{InvocationMeta, StageEvent, StageResult};
pub use handler::{FunctionContext, handle};
pub use platform::{InprocOptions, InprocPlatform, Platform};
