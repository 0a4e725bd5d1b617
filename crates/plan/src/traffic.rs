//! What a plan moves through the store: the sizes of the values its stages write and the
//! bytes each stage reads, in one place so the planner (its memory and value limits) and
//! the simulator count the same bytes.

use std::collections::HashMap;

use seqless_model::ModelConfig;

use crate::{Plan, StageOp};

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
        let mut key_bytes: HashMap<&str, u64> = HashMap::new();
        let mut phases = Vec::with_capacity(self.phases.len());
        for stages in &self.phases {
            let read = |keys: &[String]| -> u64 {
                keys.iter()
                    .map(|k| key_bytes.get(k.as_str()).copied().unwrap_or(0))
                    .sum()
            };
            let traffic = stages
                .iter()
                .map(|stage| {
                    let bytes_in = match &stage.op {
                        StageOp::Conv { input, film, .. } => {
                            let in_channels = config.in_channels(stage.layer);
                            let row_bytes = if stage.layer == 0 {
                                TOKEN_ID_BYTES
                            } else {
                                f32_bytes(1, in_channels)
                            };
                            let rows_read: usize = input.iter().map(|s| s.rows.len()).sum();
                            let film_bytes = film
                                .as_ref()
                                .map_or(0, |f| f32_bytes(f.blocks.len(), in_channels));
                            rows_read as u64 * row_bytes + film_bytes
                        }
                        StageOp::Tfilm { block_max, .. } => read(block_max),
                        StageOp::Head {
                            block_max,
                            block_min,
                        } => read(block_max) + read(block_min),
                        StageOp::PaperTfilm { activations, .. } => read(activations),
                        StageOp::Classifier { activation } => {
                            read(std::slice::from_ref(activation))
                        }
                    };
                    StageTraffic {
                        bytes_in,
                        bytes_out: stage.write_bytes,
                    }
                })
                .collect();
            phases.push(traffic);
            // Record what this phase wrote, for the phases that read it.
            for stage in stages {
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
                            key_bytes.insert(k, activation);
                        }
                        for k in [write_max, write_min].into_iter().flatten() {
                            key_bytes.insert(k, stats);
                        }
                    }
                    StageOp::Tfilm { write_h: k, .. } | StageOp::PaperTfilm { write_x: k, .. } => {
                        key_bytes.insert(k, stage.write_bytes);
                    }
                    StageOp::Head { .. } | StageOp::Classifier { .. } => {}
                }
            }
        }
        phases
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Limits, PlanKind, Splits, StageKind, plan};

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
        for kind in [PlanKind::Fused, PlanKind::Paper] {
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
                .filter(|(s, _)| s.kind != StageKind::Conv)
                .map(|(_, t)| t.bytes_in)
                .sum();
            assert!(
                read_by_serial > 0 && read_by_serial <= written,
                "{read_by_serial} {written}"
            );
        }
    }
}
