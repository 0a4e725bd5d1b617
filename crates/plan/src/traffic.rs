//! What a plan moves through the store: the sizes of the values its stages write and the
//! bytes each stage reads, in one place so the planner (its memory and value limits) and
//! the simulator count the same bytes.

use std::collections::HashMap;

use seqless_model::ModelConfig;

use crate::{FilmSource, Plan, ResidentLayer, RowSource, Stage, StageOp};

/// Bytes of one activation element (f32).
pub const F32_BYTES: u64 = 4;
/// Bytes of one stored token id (u16), the first layer's input.
pub const TOKEN_ID_BYTES: u64 = 2;

/// Payload bytes of `rows` rows of `channels` f32s.
pub fn f32_bytes(rows: usize, channels: usize) -> u64 {
    rows as u64 * channels as u64 * F32_BYTES
}

/// Payload bytes of the values a conv stage may write for `out_rows` output rows: its
/// activation rows, and each of its block statistics (maxima or minima).
pub(crate) fn conv_value_bytes(out_rows: usize, block_len: usize, channels: usize) -> (u64, u64) {
    (
        f32_bytes(out_rows, channels),
        f32_bytes(out_rows / block_len, channels),
    )
}

/// The store traffic of one stage, tensor headers left out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StageTraffic {
    /// Bytes read: a conv stage's input rows (halos included) and the FiLM blocks it
    /// applies; a serial stage's whole keys, as large as their writers wrote them.
    pub bytes_in: u64,
    /// Bytes written ([`crate::Stage::write_bytes`]).
    pub bytes_out: u64,
}

impl Plan {
    /// Every stage's traffic, phase by phase in the plan's order. `config` is the model
    /// the plan was made for.
    pub fn traffic(&self, config: &ModelConfig) -> Vec<Vec<StageTraffic>> {
        let sizes = self.value_sizes(config);
        let read = |keys: &[String]| -> u64 {
            keys.iter()
                .map(|k| sizes.get(k.as_str()).map_or(0, |v| v.bytes))
                .sum()
        };
        self.phases
            .iter()
            .map(|stages| {
                stages
                    .iter()
                    .map(|stage| StageTraffic {
                        bytes_in: bytes_read(config, stage, read),
                        bytes_out: stage.write_bytes,
                    })
                    .collect()
            })
            .collect()
    }
}

/// The bytes of row pieces of layer `layer`'s input: token ids for the first layer, else
/// the previous layer's channels.
fn row_bytes(config: &ModelConfig, layer: usize, pieces: &[RowSource]) -> u64 {
    let per_row = match layer {
        0 => TOKEN_ID_BYTES,
        _ => f32_bytes(1, config.in_channels(layer)),
    };
    pieces.iter().map(|s| s.rows.len() as u64).sum::<u64>() * per_row
}

/// The bytes of the modulation blocks a stage of `layer` reads.
fn film_bytes(config: &ModelConfig, layer: usize, film: Option<&FilmSource>) -> u64 {
    film.map_or(0, |f| f32_bytes(f.blocks.len(), config.in_channels(layer)))
}

fn bytes_read(config: &ModelConfig, stage: &Stage, read: impl Fn(&[String]) -> u64) -> u64 {
    match &stage.op {
        StageOp::Conv { input, film, .. } => {
            row_bytes(config, stage.layer, input) + film_bytes(config, stage.layer, film.as_ref())
        }
        StageOp::Resident { input, layers, .. } => resident_traffic(config, input, layers)
            .iter()
            .map(|t| t.bytes_in)
            .sum(),
        StageOp::Tfilm { block_max, .. } => read(block_max),
        StageOp::Head {
            block_max,
            block_min,
        } => read(block_max) + read(block_min),
        StageOp::PaperTfilm { activations, .. } => read(activations),
        StageOp::Classifier { activation } => read(std::slice::from_ref(activation)),
    }
}

/// The size of one value a plan stores.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ValueSize {
    /// Payload bytes of the whole value.
    pub bytes: u64,
    /// Payload bytes of one of its rows (along the first dimension).
    pub row_bytes: u64,
}

impl ValueSize {
    /// Payload bytes of `rows` of the value, or of all of it.
    pub(crate) fn read_bytes(&self, rows: Option<std::ops::Range<usize>>) -> u64 {
        rows.map_or(self.bytes, |r| r.len() as u64 * self.row_bytes)
    }
}

impl Plan {
    /// The size of every value the run stores, the query's token ids included. Every key
    /// is written by one stage, so the sizes are known before any read.
    pub(crate) fn value_sizes(&self, config: &ModelConfig) -> HashMap<&str, ValueSize> {
        let mut sizes = HashMap::from([(
            crate::INPUT_KEY,
            ValueSize {
                bytes: TOKEN_ID_BYTES * self.padded_len as u64,
                row_bytes: TOKEN_ID_BYTES,
            },
        )]);
        for stage in self.phases.iter().flatten() {
            record_writes(config, stage, &mut sizes);
        }
        sizes
    }
}

/// A resident split's traffic layer by layer: the first layer reads its token ids, the
/// others their halos and modulation blocks; each writes its edge rows and block
/// statistics.
pub fn resident_traffic(
    config: &ModelConfig,
    input: &[RowSource],
    layers: &[ResidentLayer],
) -> Vec<StageTraffic> {
    layers
        .iter()
        .zip(&config.layers)
        .enumerate()
        .map(|(l, (rl, layer))| {
            let bytes_in = match l {
                0 => row_bytes(config, 0, input),
                _ => {
                    row_bytes(config, l, &rl.halo_before)
                        + row_bytes(config, l, &rl.halo_after)
                        + film_bytes(config, l, rl.film.as_ref())
                }
            };
            let edge_rows: usize = rl.write_edges.iter().map(|e| e.rows.len()).sum();
            let (_, stats) = conv_value_bytes(rl.out_rows.len(), layer.block_len, layer.channels);
            let stats_written = 1 + u64::from(rl.write_min.is_some());
            StageTraffic {
                bytes_in,
                bytes_out: f32_bytes(edge_rows, layer.channels) + stats * stats_written,
            }
        })
        .collect()
}

/// The size of every value `stage` writes: each row is one output row of its layer's
/// channels.
fn record_writes<'p>(
    config: &ModelConfig,
    stage: &'p Stage,
    sizes: &mut HashMap<&'p str, ValueSize>,
) {
    let channels = config.layers[stage.layer].channels;
    let mut record = |key: &'p str, bytes: u64| {
        let row_bytes = f32_bytes(1, channels);
        sizes.insert(key, ValueSize { bytes, row_bytes });
    };
    match &stage.op {
        StageOp::Conv {
            out_rows,
            write_activation,
            write_max,
            write_min,
            ..
        } => {
            let layer = &config.layers[stage.layer];
            let (activation, stats) =
                conv_value_bytes(out_rows.len(), layer.block_len, layer.channels);
            if let Some(k) = write_activation {
                record(k, activation);
            }
            for k in [write_max, write_min].into_iter().flatten() {
                record(k, stats);
            }
        }
        StageOp::Resident { layers, .. } => {
            for (rl, layer) in layers.iter().zip(&config.layers) {
                let row_bytes = f32_bytes(1, layer.channels);
                let (_, stats) =
                    conv_value_bytes(rl.out_rows.len(), layer.block_len, layer.channels);
                for edge in &rl.write_edges {
                    let bytes = f32_bytes(edge.rows.len(), layer.channels);
                    sizes.insert(&edge.key, ValueSize { bytes, row_bytes });
                }
                for k in std::iter::once(&rl.write_max).chain(&rl.write_min) {
                    sizes.insert(
                        k,
                        ValueSize {
                            bytes: stats,
                            row_bytes,
                        },
                    );
                }
            }
        }
        StageOp::Tfilm { write_h: k, .. } | StageOp::PaperTfilm { write_x: k, .. } => {
            record(k, stage.write_bytes);
        }
        StageOp::Head { .. } | StageOp::Classifier { .. } => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Limits, PlanKind, Splits, plan};

    fn config() -> ModelConfig {
        use seqless_model::{GateActivation, Modulation};
        seqless_model::testing::config(
            4,
            "8:3:2:4,6:3:2:4",
            Modulation::Scale,
            GateActivation::Sigmoid,
            2,
        )
    }

    #[test]
    fn stages_read_what_earlier_stages_wrote() {
        let config = config();
        for kind in [PlanKind::Fused, PlanKind::Paper, PlanKind::Resident] {
            let p = plan(&config, 10_000, kind, Splits::Fixed(4), &Limits::default()).unwrap();
            let traffic = p.traffic(&config);
            assert_eq!(traffic.len(), p.phases.len());
            for (stages, traffic) in p.phases.iter().zip(&traffic) {
                assert_eq!(stages.len(), traffic.len());
                for (stage, t) in stages.iter().zip(traffic) {
                    assert_eq!(t.bytes_out, stage.write_bytes);
                    assert!(t.bytes_in > 0, "{kind:?} {stage:?}");
                }
            }
            // Layer 0's convs read every token id at least once (halos add a little).
            let first: u64 = traffic[0].iter().map(|t| t.bytes_in).sum();
            assert!(first >= TOKEN_ID_BYTES * p.padded_len as u64, "{first}");
            // The serial stages read only what was written before them.
            let stages = p.phases.iter().flatten().zip(traffic.iter().flatten());
            let written: u64 = traffic.iter().flatten().map(|t| t.bytes_out).sum();
            let read_by_serial: u64 = stages
                .filter(|(s, _)| s.kind.is_serial())
                .map(|(_, t)| t.bytes_in)
                .sum();
            assert!(
                read_by_serial > 0 && read_by_serial <= written,
                "{read_by_serial} {written}"
            );
        }
    }
}
