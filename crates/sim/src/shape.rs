//! What one query asks of the functions, described independently of the real
//! planner so the simulator can run before (and without) a trained model.

use seqless_plan::F32_BYTES as F32;
use serde::{Deserialize, Serialize};

/// One function invocation: which stage kind runs, over how many rows, moving
/// how many bytes through the store, at what memory size.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Invocation {
    /// Stage kind; must have a [`crate::StageCalibration`].
    pub kind: String,
    /// Rows of work (sequence positions for conv, blocks for tfilm/head).
    pub rows: usize,
    /// Bytes read from the store.
    pub bytes_in: u64,
    /// Bytes written to the store.
    pub bytes_out: u64,
    /// The function's configured memory.
    pub memory_mb: u32,
    /// Invocations of a query with the same chain run on one function instance, one after
    /// another (the resident plan's split, one invocation per layer): the first is invoked
    /// as any other, each later one starts on that instance when its phase starts, and the
    /// instance stays busy and billed from the first's start to the last's end, its waits
    /// included. One request for the chain; no invoke overhead or cold start after the
    /// first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chain: Option<usize>,
}

/// Invocations that run in parallel; the master waits for all of them before
/// the next phase, as it does between layers.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Phase {
    /// The parallel invocations.
    pub invocations: Vec<Invocation>,
}

/// A query as a sequence of phases.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueryShape {
    /// Phases, run one after another.
    pub phases: Vec<Phase>,
}

impl QueryShape {
    /// The phase of each chain's last invocation, by chain: where its instance is released
    /// and its bill ends.
    pub fn chain_ends(&self) -> std::collections::BTreeMap<usize, usize> {
        let mut ends = std::collections::BTreeMap::new();
        for (p, phase) in self.phases.iter().enumerate() {
            for c in phase.invocations.iter().filter_map(|i| i.chain) {
                ends.insert(c, p);
            }
        }
        ends
    }
}

/// Why a shape model could not describe a query (e.g. the input is longer than
/// the model accepts), kept as text because it crosses crate boundaries.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ShapeError(pub String);

/// Maps an input length in bytes to the query's shape. A trait, so that a
/// simulation can run the real planner ([`PlanShape`](crate::PlanShape)) while
/// tests and studies use a closure or [`SyntheticShape`].
pub trait ShapeModel {
    /// The shape of a query of `input_len` bytes.
    fn shape(&self, input_len: usize) -> Result<QueryShape, ShapeError>;
}

/// Any `Fn(usize) -> QueryShape` is a shape model, for fixed or hand-made shapes.
impl<F: Fn(usize) -> QueryShape> ShapeModel for F {
    fn shape(&self, input_len: usize) -> Result<QueryShape, ShapeError> {
        Ok(self(input_len))
    }
}

/// One TFiLM layer as far as the shape is concerned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyntheticLayer {
    /// Output channels.
    pub channels: u32,
    /// Max-pool size (rows shrink by this factor).
    pub pool: usize,
    /// Rows per TFiLM block.
    pub block_len: usize,
}

/// A stand-in for the `fused` plan of docs/design.md §2: per layer, a conv phase
/// split across functions, then one tfilm function (the head for the last
/// layer). It lets the simulator run with realistic shapes before the real
/// planner is wired in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SyntheticShape {
    /// Embedding width.
    pub embed_dim: u32,
    /// The layers.
    pub layers: Vec<SyntheticLayer>,
    /// Target input rows per conv function.
    pub rows_per_split: usize,
    /// Most conv functions per layer.
    pub max_splits: usize,
    /// Number of labels (the head's output).
    pub labels: u32,
    /// Memory of conv functions.
    pub conv_memory_mb: u32,
    /// Memory of tfilm and head functions.
    pub small_memory_mb: u32,
}

impl Default for SyntheticShape {
    /// Three 64-channel layers pooling by 2 with 32-row blocks, 16,384 rows per
    /// split up to 64 splits, conv functions at one vCPU (1,769 MB).
    fn default() -> Self {
        let layer = SyntheticLayer {
            channels: 64,
            pool: 2,
            block_len: 32,
        };
        SyntheticShape {
            embed_dim: 16,
            layers: vec![layer; 3],
            rows_per_split: 16_384,
            max_splits: 64,
            labels: 4,
            conv_memory_mb: 1769,
            small_memory_mb: 512,
        }
    }
}

fn gcd(a: usize, b: usize) -> usize {
    if b == 0 { a } else { gcd(b, a % b) }
}

impl ShapeModel for SyntheticShape {
    fn shape(&self, input_len: usize) -> Result<QueryShape, ShapeError> {
        if self.layers.is_empty() || self.layers.iter().any(|l| l.pool == 0 || l.block_len == 0) {
            return Err(ShapeError(
                "the synthetic model needs at least one layer, each with pool and block_len >= 1"
                    .into(),
            ));
        }
        // Pad to a multiple of every layer's (cumulative pool × block_len), as
        // the real model does (docs/design.md §1 step 1).
        let mut cumulative_pool = 1;
        let mut align = 1;
        for l in &self.layers {
            cumulative_pool *= l.pool;
            let unit = cumulative_pool * l.block_len;
            align = align / gcd(align, unit) * unit;
        }
        let mut rows_in = input_len.max(1).div_ceil(align) * align;
        let mut channels_in = u64::from(self.embed_dim);
        let mut phases = Vec::new();
        for (i, l) in self.layers.iter().enumerate() {
            let channels = u64::from(l.channels);
            let rows_out = rows_in / l.pool;
            let blocks = rows_out / l.block_len;
            let splits = rows_in
                .div_ceil(self.rows_per_split.max(1))
                .clamp(1, self.max_splits.max(1))
                .min(blocks);
            let split_rows = rows_in.div_ceil(splits);
            let split_blocks = blocks.div_ceil(splits) as u64;
            // Layer 1 reads the raw bytes; later layers read activations plus
            // the previous layer's gamma and beta for their blocks.
            let bytes_in = if i == 0 {
                split_rows as u64
            } else {
                split_rows as u64 * channels_in * F32 + 2 * split_blocks * channels_in * F32
            };
            let bytes_out =
                (split_rows / l.pool) as u64 * channels * F32 + 2 * split_blocks * channels * F32;
            let conv = Invocation {
                kind: "conv".into(),
                rows: split_rows,
                bytes_in,
                bytes_out,
                memory_mb: self.conv_memory_mb,
                chain: None,
            };
            phases.push(Phase {
                invocations: vec![conv; splits],
            });
            let blocks = blocks as u64;
            let last = i + 1 == self.layers.len();
            let serial = if last {
                Invocation {
                    kind: "head".into(),
                    rows: blocks as usize,
                    bytes_in: 2 * blocks * channels * F32,
                    bytes_out: u64::from(self.labels) * F32,
                    memory_mb: self.small_memory_mb,
                    chain: None,
                }
            } else {
                Invocation {
                    kind: "tfilm".into(),
                    rows: blocks as usize,
                    bytes_in: blocks * channels * F32,
                    bytes_out: 2 * blocks * channels * F32,
                    memory_mb: self.small_memory_mb,
                    chain: None,
                }
            };
            phases.push(Phase {
                invocations: vec![serial],
            });
            rows_in = rows_out;
            channels_in = channels;
        }
        Ok(QueryShape { phases })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn synthetic_shape_splits_long_inputs_and_keeps_short_ones_whole() {
        let model = SyntheticShape::default();
        let short = model.shape(100).unwrap();
        assert_eq!(short.phases.len(), 6);
        assert!(short.phases.iter().all(|p| p.invocations.len() == 1));
        assert_eq!(short.phases[5].invocations[0].kind, "head");
        let long = model.shape(1 << 20).unwrap();
        assert_eq!(long.phases[0].invocations.len(), 64);
        assert_eq!(long.phases[1].invocations[0].kind, "tfilm");
        let total_rows: usize = long.phases[0].invocations.iter().map(|i| i.rows).sum();
        assert_eq!(total_rows, 1 << 20);
        // Later layers have fewer rows, so fewer splits.
        assert!(long.phases[2].invocations.len() <= 64);
    }

    #[test]
    fn closures_are_shape_models() {
        let fixed = |_len: usize| QueryShape::default();
        assert_eq!(fixed.shape(5).unwrap(), QueryShape::default());
        let broken = SyntheticShape {
            layers: vec![],
            ..SyntheticShape::default()
        };
        assert!(broken.shape(5).is_err());
    }
}
