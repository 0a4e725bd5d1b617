//! The messages between the coordinator and a function.

use seqless_plan::Stage;
use seqless_store::QueryId;
use serde::{Deserialize, Serialize};

/// What a function is asked to do: one stage of one query. Small by design (keys and row
/// ranges, no tensors), well under Lambda's 6 MB payload limit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StageEvent {
    /// Namespaces every key the stage touches.
    pub query_id: QueryId,
    /// The stage, with the keys it reads and writes.
    pub stage: Stage,
}

/// What a function reports back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StageResult {
    /// Time in the kernels, excluding store I/O.
    pub compute_ms: f64,
    /// Bytes read from the store.
    pub bytes_in: u64,
    /// Bytes written to the store.
    pub bytes_out: u64,
    /// The final logits, from the head or classifier stage only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logits: Option<Vec<f32>>,
}

/// How a platform ran an invocation: what Lambda would bill.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InvocationMeta {
    /// Whether a new instance had to start (and load the model) for it.
    pub cold: bool,
    /// The instance's start-up time when cold, else 0.
    pub init_ms: f64,
    /// Handler time, from event to result.
    pub duration_ms: f64,
    /// Duration rounded up to the next millisecond, as Lambda bills.
    pub billed_ms: u64,
    /// Memory size of the function, which prices each billed millisecond.
    pub memory_mb: u32,
}
