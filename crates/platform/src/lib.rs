//! A Lambda-compatible local platform: function processes run as AWS Lambda runs them.
//!
//! - Callers use Lambda's Invoke API (`POST /2015-03-31/functions/{name}/invocations`),
//!   so the same client code (our `local` platform, or the AWS SDK with an endpoint
//!   override) works here and against AWS. Refusals carry Lambda's error shapes;
//!   `X-Amz-Log-Type: Tail` returns the log tail with Lambda's `REPORT` line, from which
//!   callers read the billing, as they do from AWS.
//! - Each function process gets its own Runtime API listener (as each Lambda execution
//!   environment has its own), so the platform knows which process calls.
//! - Processes are spawned on demand up to a concurrency limit shared by all functions,
//!   reused while warm, reaped after an idle timeout, replaced when they crash, and killed
//!   when an invocation runs past its timeout; the invocation then gets Lambda's error.
//! - Faults can be injected, seeded, per invocation (`PlatformServer::start_with_faults`):
//!   throttles, crashes of the real process, function errors and stragglers.
//! - Every invocation is recorded (init split into process start and model load,
//!   duration, billed duration, peak RSS) on `GET /metrics`.

mod api;
mod errors;
mod faults;
mod invoke;
mod logs;
mod metrics;
mod options;
#[cfg(feature = "clap")]
mod platform_args;
mod pool;
mod runtime_api;
mod server;
mod worker;

pub use errors::PlatformError;
pub use options::{FunctionSpec, INIT_TIMEOUT, PlatformOptions, parse_function_memory};
#[cfg(feature = "clap")]
pub use platform_args::PlatformArgs;
pub use pool::WorkerInfo;
pub use seqless_wire::faults::FaultInjection;
pub use server::PlatformServer;
