//! Planning a serverless run (docs/design.md §2): which function computes which rows, reading
//! and writing which store keys, in which order.
//!
//! [`plan`] is a pure function of the model config, the input length and [`Limits`]; the
//! coordinator carries the [`Plan`] out. Two plans exist:
//! - [`PlanKind::Fused`]: per layer, S conv stages over block-aligned row ranges (with
//!   halos), then one tiny TFiLM stage that reads only block maxima and writes the LSTM
//!   output; the next layer's conv stages apply the modulation themselves; a head stage
//!   finishes from block max/min alone. The serial path moves O(B·C) floats per layer.
//! - [`PlanKind::Paper`]: the paper's architecture, where one TFiLM function reads the
//!   whole activation and writes it back modulated, and a classifier function reads the
//!   whole last activation.
//! - [`PlanKind::Resident`]: one function per split for the whole query, every layer on
//!   its rows in memory. After each layer it publishes its edge rows (its neighbours'
//!   halos) and block statistics, and blocks until the layer's TFiLM output and its
//!   neighbours' edges exist; the TFiLM and head stages are the fused plan's.
//!
//! ```
//! use seqless_plan::{Limits, PlanKind, Splits, plan};
//! # let config: seqless_model::ModelConfig = serde_json::from_str(r#"{"format":"seqless-tfilm/1",
//! #   "tokenizer":"bytes","vocab_size":257,"embed_dim":4,"layers":[{"channels":8,"kernel":3,
//! #   "pool":2,"block_len":4}],"modulation":"scale","gate_activation":"sigmoid",
//! #   "labels":["a","b"],"max_len":100000}"#).unwrap();
//! let p = plan(&config, 10_000, PlanKind::Fused, Splits::Fixed(4), &Limits::default()).unwrap();
//! assert_eq!(p.phases.len(), 2); // 4 conv stages, then the head
//! assert_eq!(p.phases[0].len(), 4);
//! ```

mod geometry;
#[cfg(feature = "clap")]
mod plan_args;
mod resident;
mod stages;
mod traffic;
mod transfer;

pub use geometry::{LayerGeometry, split_blocks};
#[cfg(feature = "clap")]
pub use plan_args::PlanArgs;
pub use seqless_wire::{
    EdgeWrite, FilmSource, InlineValue, LAMBDA_PAYLOAD_BYTES, ResidentLayer, RowSource, Stage,
    StageKind, StageOp,
};
pub use stages::plan;
pub use traffic::{F32_BYTES, StageTraffic, TOKEN_ID_BYTES, f32_bytes, resident_traffic};
pub use transfer::{DEFAULT_INLINE_MAX_BYTES, PAYLOAD_RESERVE_BYTES, Transfer, read_windows};

use seqless_model::InputLenError;
use serde::{Deserialize, Serialize};

/// Which stage graph to build.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "snake_case")]
pub enum PlanKind {
    /// Block statistics through the serial stages; modulation applied by consumers.
    #[default]
    Fused,
    /// The paper's plan: whole activations through the TFiLM and classifier functions.
    Paper,
    /// One long-lived function per split runs every layer on its rows; only halos and
    /// block statistics go through the store.
    Resident,
}

impl PlanKind {
    /// The name the CLI, traces and reports use.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Fused => "fused",
            Self::Paper => "paper",
            Self::Resident => "resident",
        }
    }
}

impl std::str::FromStr for PlanKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "fused" => Ok(Self::Fused),
            "paper" => Ok(Self::Paper),
            "resident" => Ok(Self::Resident),
            other => Err(format!(
                "unknown plan {other:?}; expected fused, paper or resident"
            )),
        }
    }
}

/// Chooses how to run each query from its length, instead of one plan and split count for
/// all: a planner that predicts every configuration from a calibration, for one.
pub trait PlanChooser: Send + Sync + std::fmt::Debug {
    /// The plan kind and split count for a query of `input_len` bytes, or why none fits.
    fn choose(&self, input_len: usize) -> Result<(PlanKind, usize), String>;
}

/// How many conv functions per layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Splits {
    /// Exactly this many, clamped to the layer's number of blocks.
    Fixed(usize),
    /// From the input length and [`Limits::min_rows_per_split`], at most [`Limits::max_splits`].
    Auto,
}

impl Splits {
    /// How many splits this asks for over `input_rows` rows, before the plan clamps the
    /// count to what the rows allow.
    pub(crate) fn wanted(self, input_rows: usize, limits: &Limits) -> usize {
        match self {
            Self::Fixed(n) => n,
            Self::Auto => input_rows
                .div_ceil(limits.min_rows_per_split)
                .clamp(1, limits.max_splits),
        }
    }
}

impl std::str::FromStr for Splits {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == "auto" {
            return Ok(Self::Auto);
        }
        match s.parse::<usize>() {
            Ok(n) if n >= 1 => Ok(Self::Fixed(n)),
            _ => Err(format!(
                "splits must be a positive integer or \"auto\", got {s:?}"
            )),
        }
    }
}

/// Bounds a plan must respect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    /// Memory of one function instance; a stage whose buffers would not fit is refused
    /// (fixed splits) or split further (auto).
    pub function_memory_mb: u32,
    /// Upper bound on conv functions per layer.
    pub max_splits: usize,
    /// Under `auto`, the fewest input rows worth a function of its own.
    pub min_rows_per_split: usize,
    /// Largest tensor payload the store takes as one value (Redis: 512 MiB less the blob
    /// header), or `None` for no bound. A layer whose split would store a larger activation
    /// is refused (fixed splits) or split further (auto); a serial stage that would is
    /// refused. The coordinator fills it in from its store.
    #[serde(default)]
    pub max_value_bytes: Option<u64>,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            function_memory_mb: 1024,
            max_splits: 16,
            min_rows_per_split: 65_536,
            max_value_bytes: None,
        }
    }
}

/// What can stop a plan from being made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    /// The input length is outside `1..=max_len`.
    #[error("invalid input: {0}")]
    Input(InputLenError),
    /// A stage would need more memory than a function has.
    #[error(
        "layer {layer} split {split} needs about {needed_mb} MB, over the function memory of {limit_mb} MB; use more splits or larger functions"
    )]
    Memory {
        /// 0-based layer.
        layer: usize,
        /// 0-based split.
        split: usize,
        /// Estimated need.
        needed_mb: u64,
        /// The limit.
        limit_mb: u32,
    },
    /// A stage would store a value larger than the store takes.
    #[error(
        "layer {layer} {stage} stage would store {bytes} bytes in one value, over the store's largest value of {limit} bytes; {advice}"
    )]
    Value {
        /// 0-based layer.
        layer: usize,
        /// Which stage: `conv` (split `n`) or a serial one.
        stage: String,
        /// Payload bytes of the value.
        bytes: u64,
        /// The store's bound.
        limit: u64,
        /// What would make it fit.
        advice: &'static str,
    },
    /// A limit is unusable.
    #[error("invalid limits: {0}")]
    Limits(String),
    /// A command line asked for more conv functions per layer than it capped.
    #[error(
        "--splits {splits} is over --max-splits {max_splits}; lower --splits or raise --max-splits"
    )]
    SplitsOverMax {
        /// `--splits`.
        splits: usize,
        /// `--max-splits`.
        max_splits: usize,
    },
}

impl From<InputLenError> for PlanError {
    fn from(err: InputLenError) -> Self {
        Self::Input(err)
    }
}

/// A whole serverless run of one query.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// Which graph this is.
    pub kind: PlanKind,
    /// Query bytes.
    pub input_len: usize,
    /// `T_0`.
    pub padded_len: usize,
    /// Row geometry of every layer.
    pub layers: Vec<LayerGeometry>,
    /// Stages in dependency order: every stage of a phase may run in parallel, and a phase
    /// starts when the previous one has finished.
    pub phases: Vec<Vec<Stage>>,
}

/// Store key of the query's token ids, written by the coordinator.
pub const INPUT_KEY: &str = "input";

impl Plan {
    /// Every key the run writes (the input included), so the coordinator can delete them
    /// by name, and a shared Redis can be sized.
    pub fn written_keys(&self) -> Vec<String> {
        let mut keys = vec![INPUT_KEY.to_string()];
        for stage in self.phases.iter().flatten() {
            keys.extend(stage.op.written_keys());
        }
        keys
    }

    /// Bytes the store holds at its peak if nothing is deleted before the end: the memory a
    /// shared Redis needs per in-flight query (plus per-key overhead).
    pub fn stored_bytes(&self) -> u64 {
        let input = TOKEN_ID_BYTES * self.padded_len as u64;
        input
            + self
                .phases
                .iter()
                .flatten()
                .map(|s| s.write_bytes)
                .sum::<u64>()
    }

    /// Number of function invocations.
    pub fn invocations(&self) -> usize {
        self.phases.iter().map(Vec::len).sum()
    }
}
