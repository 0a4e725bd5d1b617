//! What crosses process boundaries in seqless, defined once and kept light, so that the
//! Lambda emulator and the function processes agree with the coordinator without building
//! the model kernels or a Redis client:
//!
//! - [`Stage`] and [`StageOp`]: the stage contract the planner builds, and [`StageEvent`]:
//!   one stage of one query ([`QueryId`]) for one model ([`ModelFingerprint`]), sent to a
//!   function; [`StageResult`] comes back. Tensors travel in them only as [`InlineValue`]s,
//!   which the coordinator keeps under Lambda's payload limit; the rest go through the
//!   tensor store.
//! - [`lambda`]: the Lambda Invoke/Runtime API shapes both ends share (function names,
//!   error bodies, the `REPORT` billing line) and [`billed_ms`], Lambda's billing rounding.
//! - [`faults`]: fault injection settings and their seeded draw, shared by the local
//!   platform, the in-process invoker and the function process they instruct.

mod event;
pub mod faults;
mod fingerprint;
mod inline;
pub mod lambda;
mod query;
mod stage;

pub use event::{
    BatchEvent, BatchOutcome, BatchResult, FunctionEvent, InitTimes, InvocationMeta,
    MalformedEvent, Ping, StageEvent, StageResult,
};
pub use fingerprint::ModelFingerprint;
pub use inline::{InlineValue, LAMBDA_PAYLOAD_BYTES, inline_json_bytes};
pub use lambda::billed_ms;
pub use query::QueryId;
pub use stage::{
    EdgeWrite, FilmSource, ResidentLayer, RowSource, Stage, StageKind, StageOp, ValueRead,
};
