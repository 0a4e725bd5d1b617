//! The stage contract: what one function invocation reads, computes and writes. The
//! planner builds these; the coordinator sends them; the functions carry them out.

use std::ops::Range;

use serde::{Deserialize, Serialize};

/// The kind of function a stage runs, as traces and billing name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StageKind {
    /// Conv + pool + relu over a row range (fused and paper plans).
    Conv,
    /// Resident plan: one split through every layer, in one invocation.
    Resident,
    /// The serial LSTM of a TFiLM layer.
    Tfilm,
    /// Fused plan: last TFiLM + classifier from block statistics.
    Head,
    /// Paper plan: classifier over the whole last activation.
    Classifier,
}

impl StageKind {
    /// The name used in traces, metrics and function names.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Conv => "conv",
            Self::Resident => "resident",
            Self::Tfilm => "tfilm",
            Self::Head => "head",
            Self::Classifier => "classifier",
        }
    }

    /// Serial stages are the ones whose time adds up along the critical path.
    pub fn is_serial(self) -> bool {
        !matches!(self, Self::Conv | Self::Resident)
    }
}

/// Rows `rows` (local to the tensor under `key`) that hold global input rows starting at
/// `global_start`: how a conv stage gathers its own rows and its neighbours' halos.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RowSource {
    /// Store key name (relative to the query).
    pub key: String,
    /// Row range within that tensor.
    pub rows: Range<usize>,
    /// Global row index of `rows.start`.
    pub global_start: usize,
}

/// The blocks of the previous layer's LSTM output a conv stage needs to modulate its input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FilmSource {
    /// Store key name of `h_{l-1}`, `[B, C]`.
    pub key: String,
    /// Block range to read.
    pub blocks: Range<usize>,
}

/// Rows of a resident split's output that a neighbour reads as its halo, published under
/// `key` right after the split's conv.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EdgeWrite {
    /// Store key name.
    pub key: String,
    /// Rows within the split's own output rows (0 is its first).
    pub rows: Range<usize>,
}

/// One layer of a resident split.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResidentLayer {
    /// `T_{l-1}`, which decides where zero padding goes.
    pub input_rows: usize,
    /// Output rows of this split; the next layer's own input rows.
    pub out_rows: Range<usize>,
    /// Layers after the first: neighbours' rows just before the split's own input rows,
    /// in global order (its left halo), unmodulated, as the neighbours published them.
    pub halo_before: Vec<RowSource>,
    /// Likewise, the rows just after its own (its right halo).
    pub halo_after: Vec<RowSource>,
    /// Layers after the first: the previous layer's LSTM output to modulate the input with.
    pub film: Option<FilmSource>,
    /// The edge rows neighbours need from this split's output, for the next layer.
    pub write_edges: Vec<EdgeWrite>,
    /// Where the block maxima go, for the layer's TFiLM stage (or the head).
    pub write_max: String,
    /// The last layer: where the block minima go, for the head.
    pub write_min: Option<String>,
}

/// What a stage does, with every key it touches.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum StageOp {
    /// Conv + pool + relu for pooled output rows `out_rows`.
    Conv {
        /// Input row pieces in global order; for layer 0 these are token ids.
        input: Vec<RowSource>,
        /// `T_{l-1}`, which decides where zero padding goes.
        input_rows: usize,
        /// Fused plan, layers after the first: the modulation to apply to the input.
        film: Option<FilmSource>,
        /// Output rows of this split.
        out_rows: Range<usize>,
        /// Where to write the activation rows, when a later stage reads them.
        write_activation: Option<String>,
        /// Where to write the block maxima, when a later stage reads them.
        write_max: Option<String>,
        /// Where to write the block minima, when a later stage reads them.
        write_min: Option<String>,
    },
    /// Resident plan: every layer's conv for one split, keeping its rows in memory; only
    /// edge rows and block statistics go to the store, and the split waits (blocking, up
    /// to `wait_ms`) for its neighbours' edges and each layer's LSTM output.
    Resident {
        /// The first layer's input rows (token ids), halos included, in global order.
        input: Vec<RowSource>,
        /// Every layer, in order.
        layers: Vec<ResidentLayer>,
        /// The longest the function waits for any one value, in milliseconds: what is left
        /// of the query's deadline when the coordinator sends the event.
        wait_ms: u64,
    },
    /// Fused and resident plans: the LSTM over all block maxima of a layer.
    Tfilm {
        /// Block maxima of every split, in order.
        block_max: Vec<String>,
        /// Where to write `h`, `[B, C]`.
        write_h: String,
        /// Whether to wake the waiters of `h` (resident splits block until it exists).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        signal: bool,
    },
    /// Fused plan: the last TFiLM and the classifier, from block max and min.
    Head {
        /// Block maxima of every split of the last layer, in order.
        block_max: Vec<String>,
        /// Block minima of every split of the last layer, in order.
        block_min: Vec<String>,
    },
    /// Paper plan: read the whole activation, run TFiLM, write it back modulated.
    PaperTfilm {
        /// Activation pieces of every split, in order.
        activations: Vec<String>,
        /// Where to write the modulated activation, `[T_l, C]`.
        write_x: String,
    },
    /// Paper plan: global max over the whole modulated last activation, then the classifier.
    Classifier {
        /// The modulated last activation.
        activation: String,
    },
}

/// One function invocation of a plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stage {
    /// Function kind.
    pub kind: StageKind,
    /// 0-based layer.
    pub layer: usize,
    /// 0-based split within the layer (0 for serial stages).
    pub split: usize,
    /// `T_0` of the query, for the final prediction.
    pub padded_len: usize,
    /// Bytes of tensor payload this stage writes (headers excluded).
    pub write_bytes: u64,
    /// Estimated peak working memory, for sizing functions.
    pub memory_bytes: u64,
    /// Keys that must exist before the stage is invoked: the coordinator waits for them
    /// while earlier stages of the same phase still run (the resident plan's TFiLM and
    /// head stages, which start when every split has published its block statistics).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub after: Vec<String>,
    /// The work.
    pub op: StageOp,
}

/// One value a stage reads: a key, and the rows of it when not all of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValueRead<'a> {
    /// Store key name.
    pub key: &'a str,
    /// Rows (along the first dimension), or `None` for the whole value.
    pub rows: Option<Range<usize>>,
}

impl<'a> ValueRead<'a> {
    fn whole(key: &'a str) -> Self {
        Self { key, rows: None }
    }

    fn rows(source: &'a RowSource) -> Self {
        Self {
            key: &source.key,
            rows: Some(source.rows.clone()),
        }
    }

    fn film(film: &'a FilmSource) -> Self {
        Self {
            key: &film.key,
            rows: Some(film.blocks.clone()),
        }
    }
}

fn whole(keys: &[String]) -> Vec<ValueRead<'_>> {
    keys.iter().map(|k| ValueRead::whole(k)).collect()
}

impl StageOp {
    /// Every value this stage reads, in the order it reads them.
    pub fn reads(&self) -> Vec<ValueRead<'_>> {
        match self {
            Self::Conv { input, film, .. } => input
                .iter()
                .map(ValueRead::rows)
                .chain(film.iter().map(ValueRead::film))
                .collect(),
            Self::Resident { input, layers, .. } => {
                let later = layers.iter().flat_map(|l| {
                    let halos = l.halo_before.iter().chain(&l.halo_after);
                    halos
                        .map(ValueRead::rows)
                        .chain(l.film.iter().map(ValueRead::film))
                });
                input.iter().map(ValueRead::rows).chain(later).collect()
            }
            Self::Tfilm { block_max, .. } => whole(block_max),
            Self::Head {
                block_max,
                block_min,
            } => whole(block_max)
                .into_iter()
                .chain(whole(block_min))
                .collect(),
            Self::PaperTfilm { activations, .. } => whole(activations),
            Self::Classifier { activation } => vec![ValueRead::whole(activation)],
        }
    }

    /// Whether other functions wait for this stage's outputs while it runs (a resident
    /// split's edges and statistics, a signalled LSTM output): those can only go through
    /// the store, never inline through the coordinator.
    pub fn is_awaited(&self) -> bool {
        matches!(
            self,
            Self::Resident { .. } | Self::Tfilm { signal: true, .. }
        )
    }

    /// Keys written by this stage (their total size is [`Stage::write_bytes`]).
    pub fn written_keys(&self) -> Vec<String> {
        match self {
            Self::Conv {
                write_activation,
                write_max,
                write_min,
                ..
            } => [write_activation, write_max, write_min]
                .into_iter()
                .flatten()
                .cloned()
                .collect(),
            Self::Resident { layers, .. } => layers
                .iter()
                .flat_map(|l| {
                    let edges = l.write_edges.iter().map(|e| e.key.clone());
                    edges.chain(
                        [Some(l.write_max.clone()), l.write_min.clone()]
                            .into_iter()
                            .flatten(),
                    )
                })
                .collect(),
            Self::Tfilm { write_h, .. } => vec![write_h.clone()],
            Self::PaperTfilm { write_x, .. } => vec![write_x.clone()],
            Self::Head { .. } | Self::Classifier { .. } => Vec::new(),
        }
    }
}
