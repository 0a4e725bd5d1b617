//! The master node: runs one query as a serverless pipeline.
//!
//! [`Coordinator::classify`] tokenizes the query, plans it ([`seqless_plan::plan`]),
//! uploads the token ids, invokes every stage of a phase in parallel on a
//! [`Invoker`](seqless_functions::Invoker) as soon as the previous phase has finished,
//! and returns the prediction with a [`Trace`] of every invocation (cold or warm,
//! durations, bytes, billing). A stage that fails with a retryable error (throttling, a
//! crashed or timed-out instance, a store hiccup) is tried again under a [`RetryPolicy`]
//! and the query's deadline; the failed attempts and their cost are in the trace. A stage
//! that straggles well behind its siblings gets a duplicate invocation under a
//! [`HedgePolicy`], and the first answer wins; hedges and their cost are in the trace too.
//! Under a [`BatchPolicy`], stages of different queries in flight share invocations, each
//! query paying its share of them. It
//! deletes every key of the query by name, on success and on failure; the keys' TTL covers
//! a crash of the coordinator itself.

mod batch;
mod coordinator;
mod hedge;
#[cfg(feature = "clap")]
mod hedge_args;
mod inline;
mod retry;
mod trace;

pub use batch::{BatchObserver, BatchPolicy, DEFAULT_BATCH_MAX, MOST_BATCHED};
pub use coordinator::{
    Coordinator, CoordinatorError, CoordinatorOptions, DEFAULT_INLINE_MAX_BYTES,
    ServerlessPrediction, parse_function_slots,
};
pub use hedge::{DEFAULT_HEDGE_BUDGET, DEFAULT_HEDGE_FACTOR, DEFAULT_HEDGE_FLOOR, HedgePolicy};
#[cfg(feature = "clap")]
pub use hedge_args::HedgeArgs;
pub use retry::RetryPolicy;
pub use trace::{
    Bill, Calls, HedgeRecord, HedgeWinner, InvocationRecord, LoserFate, RetryRecord, StageGroup,
    Trace, TraceReadError,
};
