//! The master node: runs one query as a serverless pipeline.
//!
//! [`Coordinator::classify`] tokenizes the query, plans it ([`seqless_plan::plan`]),
//! uploads the token ids, invokes every stage of a phase in parallel on a
//! [`Invoker`](seqless_functions::Invoker) as soon as the previous phase has finished,
//! and returns the prediction with a [`Trace`] of every invocation (cold or warm,
//! durations, bytes, billing). It deletes every key of the query by name, on success and
//! on failure; the keys' TTL covers a crash of the coordinator itself.

mod coordinator;
mod trace;

pub use coordinator::{Coordinator, CoordinatorError, CoordinatorOptions, ServerlessPrediction};
pub use trace::{InvocationRecord, Trace, TraceReadError};
