//! The messages between the coordinator and a function.

use serde::{Deserialize, Serialize};

use crate::fingerprint::ModelFingerprint;
use crate::inline::InlineValue;
use crate::lambda::LambdaErrorBody;
use crate::query::QueryId;
use crate::stage::{Stage, StageKind};

/// What a function is asked to do: one stage of one query. Keys and row ranges, plus the
/// inputs the coordinator chose to send inline, which it keeps under Lambda's 6 MB payload
/// limit.
///
/// This is the one definition of the stage contract. A field added later must be optional
/// (`#[serde(default)]`), so that an event without it keeps its meaning.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StageEvent {
    /// Namespaces every key the stage touches.
    pub query_id: QueryId,
    /// The model the coordinator planned with; a function that loaded another refuses.
    pub model: ModelFingerprint,
    /// The stage, with the keys it reads and writes.
    pub stage: Stage,
    /// Inputs carried here instead of the store: the function reads these keys (the rows
    /// each blob holds) from the event.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub inline: Vec<InlineValue>,
    /// Outputs to return in the result instead of writing them to the store.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reply_inline: Vec<String>,
}

impl StageEvent {
    /// An event for `stage` of `query_id` on `model`, with every value through the store.
    pub fn new(query_id: QueryId, model: ModelFingerprint, stage: Stage) -> Self {
        Self {
            query_id,
            model,
            stage,
            inline: Vec::new(),
            reply_inline: Vec::new(),
        }
    }
}

/// What a function reports back.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StageResult {
    /// Time in the kernels, excluding store I/O.
    pub compute_ms: f64,
    /// Time blocked waiting for other functions' values (resident splits); billed.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub wait_ms: f64,
    /// CPU time the function's process spent on the invocation, all threads together:
    /// its kernels' threads, its store I/O and decoding. Only a process that serves one
    /// invocation at a time can tell (a function process on the Runtime API); the
    /// in-process pool leaves it out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_ms: Option<f64>,
    /// Bytes read from the store.
    pub bytes_in: u64,
    /// Bytes written to the store.
    pub bytes_out: u64,
    /// The outputs the event asked for inline ([`StageEvent::reply_inline`]), whole.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub inline: Vec<InlineValue>,
    /// The final logits, from the head or classifier stage only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logits: Option<Vec<f32>>,
    /// How the instance started, on the first result of a function process only: the
    /// Runtime API has no other channel from the function to whoever bills its cold start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init: Option<InitTimes>,
}

fn is_zero(ms: &f64) -> bool {
    *ms == 0.0
}

/// The two parts of a function process's cold start, as the process itself measured them.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct InitTimes {
    /// From the platform spawning the process to its entry point running (exec, dynamic
    /// linking, argument parsing); unknown where the platform did not pass the spawn time
    /// (real AWS Lambda).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub process_start_ms: Option<f64>,
    /// Loading the model and connecting to the store.
    pub model_load_ms: f64,
}

/// A no-op event that runs no stage: it measures the platform's own round trip (warm
/// overhead, cold start) and, with `hold_ms`, keeps a function busy for tests of
/// timeouts, crashes and concurrency limits.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ping {
    /// How long the function waits before answering.
    #[serde(default)]
    pub hold_ms: u64,
    /// Pads the answer to this many bytes of JSON or more (`{"padding": "..."}`), to
    /// measure what moving a payload through the Invoke API costs, and to test the 6 MB
    /// response limit.
    #[serde(default, skip_serializing_if = "is_zero_bytes")]
    pub reply_bytes: usize,
}

fn is_zero_bytes(n: &usize) -> bool {
    *n == 0
}

/// Several queries' stages for one function, run one after another in one invocation
/// (`{"batch": [event, ...]}`): the coordinator's cross-query batching, which pays one
/// request and one invocation's overhead for all of them. Each stage succeeds or fails on
/// its own, so one query's bad stage does not fail the others.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchEvent {
    /// The stages, at most one per query.
    pub batch: Vec<StageEvent>,
}

impl BatchEvent {
    /// The function the batch is for: its stages' kind, which must be one; `None` for an
    /// empty batch or one of mixed kinds.
    pub fn kind(&self) -> Option<StageKind> {
        let kind = self.batch.first()?.stage.kind;
        self.batch
            .iter()
            .all(|e| e.stage.kind == kind)
            .then_some(kind)
    }
}

/// What a [`BatchEvent`] answers: one outcome per stage, in the event's order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BatchResult {
    /// The stages' outcomes.
    pub batch: Vec<BatchOutcome>,
    /// How the instance started, as [`StageResult::init`] says, for the invocation as a
    /// whole.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init: Option<InitTimes>,
}

/// One stage's outcome in a batch: its result, or its error as the Invoke API would have
/// returned it alone.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BatchOutcome {
    /// The stage ran.
    Ok(StageResult),
    /// The stage failed.
    Error(LambdaErrorBody),
}

/// Everything a function process accepts: a stage, a batch of stages, or a ping
/// (`{"ping": {"hold_ms": 0}}`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FunctionEvent {
    /// Run one stage (boxed: a stage is large, a ping tiny).
    Stage(Box<StageEvent>),
    /// Run several queries' stages.
    Batch(BatchEvent),
    /// Answer with an empty result.
    Ping(Ping),
}

/// An event that is not JSON of either shape; the serde message names the field.
#[derive(Debug, thiserror::Error)]
#[error("malformed {shape} event: {reason}")]
pub struct MalformedEvent {
    /// `stage`, `batch` or `ping`: the shape the event was read as.
    pub shape: &'static str,
    /// What serde found wrong.
    pub reason: serde_json::Error,
}

impl FunctionEvent {
    /// Reads an event: a ping when it has a `ping` field, a batch when it has a `batch`
    /// field, else a stage.
    pub fn from_json(value: serde_json::Value) -> Result<Self, MalformedEvent> {
        if let Some(ping) = value.get("ping") {
            return serde_json::from_value(ping.clone())
                .map(Self::Ping)
                .map_err(|reason| MalformedEvent {
                    shape: "ping",
                    reason,
                });
        }
        match value.get("batch") {
            Some(_) => serde_json::from_value(value)
                .map(Self::Batch)
                .map_err(|reason| MalformedEvent {
                    shape: "batch",
                    reason,
                }),
            None => serde_json::from_value(value)
                .map(|e| Self::Stage(Box::new(e)))
                .map_err(|reason| MalformedEvent {
                    shape: "stage",
                    reason,
                }),
        }
    }

    /// The JSON of a ping, for callers that have no [`StageEvent`] at hand.
    pub fn ping_json(ping: Ping) -> serde_json::Value {
        serde_json::json!({ "ping": ping })
    }
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
    /// Duration rounded up to the next millisecond, as Lambda bills
    /// ([`billed_ms`](crate::billed_ms)).
    pub billed_ms: u64,
    /// Memory size of the function, which prices each billed millisecond.
    pub memory_mb: u32,
    /// How many queries' stages the invocation ran (a cross-query batch; 1 alone), each
    /// query paying that share of it. The platform does not know; the coordinator that
    /// sent the batch sets it.
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub shared_by: u32,
}

fn one() -> u32 {
    1
}

fn is_one(n: &u32) -> bool {
    *n == 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pings_and_stages_are_told_apart_and_malformed_events_name_the_field() {
        let held = Ping {
            hold_ms: 5,
            ..Ping::default()
        };
        let ping = FunctionEvent::from_json(FunctionEvent::ping_json(held));
        assert_eq!(ping.unwrap(), FunctionEvent::Ping(held));
        let err = FunctionEvent::from_json(serde_json::json!({"query_id": "x"})).unwrap_err();
        assert_eq!(err.shape, "stage");
        assert!(
            err.to_string().starts_with("malformed stage event: "),
            "{err}"
        );
        let err =
            FunctionEvent::from_json(serde_json::json!({"ping": {"hold_ms": "soon"}})).unwrap_err();
        assert_eq!(err.shape, "ping");
        let err = FunctionEvent::from_json(serde_json::json!({"batch": [{"query_id": "x"}]}))
            .unwrap_err();
        assert_eq!(err.shape, "batch");
        let empty = FunctionEvent::from_json(serde_json::json!({"batch": []})).unwrap();
        assert_eq!(
            empty,
            FunctionEvent::Batch(BatchEvent { batch: Vec::new() })
        );
    }
}
