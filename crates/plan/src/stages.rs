//! Building the stage graph: which stage computes which rows from which keys.

use std::ops::Range;

use seqless_model::ModelConfig;
use seqless_model::kernels::conv_input_span;

use crate::geometry::{LayerGeometry, split_blocks};
use crate::resident;
use crate::traffic::{conv_value_bytes, f32_bytes};
use crate::{
    FilmSource, INPUT_KEY, Limits, Plan, PlanError, PlanKind, RowSource, Splits, Stage, StageKind,
    StageOp,
};

fn activation_key(layer: usize, split: usize) -> String {
    format!("act/{layer}/{split}")
}

pub(crate) fn mb(bytes: u64) -> u64 {
    bytes.div_ceil(1 << 20)
}

/// Builds the stage graph of `kind` for a query of `input_len` bytes.
///
/// Splits are clamped to each layer's number of blocks, so any request yields a correct
/// plan. With [`Splits::Auto`], a layer whose stages would not fit in
/// [`Limits::function_memory_mb`] gets more splits; with a fixed count it is refused.
pub fn plan(
    config: &ModelConfig,
    input_len: usize,
    kind: PlanKind,
    splits: Splits,
    limits: &Limits,
) -> Result<Plan, PlanError> {
    config.check_input_len(input_len)?;
    if limits.max_splits == 0 || limits.min_rows_per_split == 0 || limits.function_memory_mb == 0 {
        return Err(PlanError::Limits(
            "max_splits, min_rows_per_split and function_memory_mb must all be at least 1".into(),
        ));
    }
    let padded_len = config.padded_len(input_len);
    if kind == PlanKind::Resident {
        let layers = resident::geometry(config, padded_len, splits, limits)?;
        check_serial_values(kind, &layers, limits.max_value_bytes)?;
        return Ok(Plan {
            kind,
            input_len,
            padded_len,
            phases: resident::phases(config, &layers, padded_len),
            layers,
        });
    }
    let limit_bytes = u64::from(limits.function_memory_mb) << 20;
    let mut layers = Vec::with_capacity(config.layers.len());
    let mut input_rows = padded_len;
    for (l, cfg) in config.layers.iter().enumerate() {
        let rows = input_rows / cfg.pool;
        let blocks = rows / cfg.block_len;
        let mut count = splits.wanted(input_rows, limits).clamp(1, blocks);
        let ranges = loop {
            let ranges: Vec<Range<usize>> = split_blocks(blocks, count)
                .into_iter()
                .map(|r| r.start * cfg.block_len..r.end * cfg.block_len)
                .collect();
            let widest = ranges.iter().map(|r| r.len()).max().unwrap_or(0);
            let need = config.conv_stage_peak_bytes(l, widest);
            // The largest value a split stores: its activation rows where a later stage
            // reads them, else only its block statistics.
            let stored_rows = if stores_activation(kind, l, config.layers.len()) {
                widest
            } else {
                widest / cfg.block_len
            };
            let value = f32_bytes(stored_rows, cfg.channels);
            let value_fits = limits.max_value_bytes.is_none_or(|max| value <= max);
            if need <= limit_bytes && value_fits {
                break ranges;
            }
            let can_grow = splits == Splits::Auto && count < blocks && count < limits.max_splits;
            if !can_grow {
                let split = ranges.iter().position(|r| r.len() == widest).unwrap_or(0);
                return Err(match limits.max_value_bytes {
                    Some(limit) if !value_fits => PlanError::Value {
                        layer: l,
                        stage: format!("conv (split {split})"),
                        bytes: value,
                        limit,
                        advice: "use more splits",
                    },
                    _ => PlanError::Memory {
                        layer: l,
                        split,
                        needed_mb: mb(need),
                        limit_mb: limits.function_memory_mb,
                    },
                });
            }
            count = (count * 2).min(blocks).min(limits.max_splits);
        };
        layers.push(LayerGeometry {
            input_rows,
            rows,
            channels: cfg.channels,
            block_len: cfg.block_len,
            blocks,
            splits: ranges,
        });
        input_rows = rows;
    }
    let phases = match kind {
        PlanKind::Fused => fused_phases(config, &layers, padded_len),
        PlanKind::Paper => paper_phases(config, &layers, padded_len, limit_bytes)?,
        PlanKind::Resident => unreachable!("planned above"),
    };
    check_serial_values(kind, &layers, limits.max_value_bytes)?;
    Ok(Plan {
        kind,
        input_len,
        padded_len,
        layers,
        phases,
    })
}

/// Whether layer `l`'s conv splits store their activation rows for a later stage: every
/// layer in the paper plan (its TFiLM function reads them), all but the last in the fused
/// plan (the next layer's conv reads them).
fn stores_activation(kind: PlanKind, l: usize, n_layers: usize) -> bool {
    match kind {
        PlanKind::Paper => true,
        PlanKind::Fused => l + 1 < n_layers,
        PlanKind::Resident => false,
    }
}

/// Refuses a plan whose serial stages would store a value over `max_value_bytes`: they
/// cannot be split. The fused TFiLM stage stores `h` `[B, C]`; the paper one the whole
/// modulated activation `[T, C]`.
fn check_serial_values(
    kind: PlanKind,
    layers: &[LayerGeometry],
    max_value_bytes: Option<u64>,
) -> Result<(), PlanError> {
    let Some(limit) = max_value_bytes else {
        return Ok(());
    };
    for (l, geometry) in layers.iter().enumerate() {
        let (rows, advice) = match kind {
            PlanKind::Paper => (
                geometry.rows,
                "the paper plan keeps each layer's whole activation in one value; use the fused plan",
            ),
            PlanKind::Fused | PlanKind::Resident if l + 1 < layers.len() => (
                geometry.blocks,
                "the fused and resident plans keep a layer's LSTM output in one value; use a store that takes larger values",
            ),
            PlanKind::Fused | PlanKind::Resident => continue,
        };
        let bytes = f32_bytes(rows, geometry.channels);
        if bytes > limit {
            return Err(PlanError::Value {
                layer: l,
                stage: "tfilm".into(),
                bytes,
                limit,
                advice,
            });
        }
    }
    Ok(())
}

/// The pieces of `sources` (key, global row range) that cover `span`.
pub(crate) fn row_sources(
    sources: &[(String, Range<usize>)],
    span: &Range<usize>,
) -> Vec<RowSource> {
    sources
        .iter()
        .filter_map(|(key, global)| {
            let lo = span.start.max(global.start);
            let hi = span.end.min(global.end);
            (lo < hi).then(|| RowSource {
                key: key.clone(),
                rows: lo - global.start..hi - global.start,
                global_start: lo,
            })
        })
        .collect()
}

/// The conv stages of layer `l`, given where its input rows live.
fn conv_stages(
    config: &ModelConfig,
    layers: &[LayerGeometry],
    l: usize,
    sources: &[(String, Range<usize>)],
    film_key: Option<&str>,
    padded_len: usize,
    writes: impl Fn(usize) -> (Option<String>, Option<String>, Option<String>),
) -> Vec<Stage> {
    let cfg = &config.layers[l];
    let geometry = &layers[l];
    geometry
        .splits
        .iter()
        .enumerate()
        .map(|(i, out_rows)| {
            let span = conv_input_span(
                cfg.pad_left(),
                cfg.pad_right(),
                cfg.pool,
                out_rows,
                geometry.input_rows,
            );
            let film = film_key.map(|key| {
                let prev_block = config.layers[l - 1].block_len;
                FilmSource {
                    key: key.to_string(),
                    blocks: span.start / prev_block..span.end.div_ceil(prev_block),
                }
            });
            let (write_activation, write_max, write_min) = writes(i);
            let (activation, stats) = conv_value_bytes(out_rows.len(), cfg.block_len, cfg.channels);
            let write_bytes = write_activation.as_ref().map_or(0, |_| activation)
                + write_max.as_ref().map_or(0, |_| stats)
                + write_min.as_ref().map_or(0, |_| stats);
            Stage {
                kind: StageKind::Conv,
                layer: l,
                split: i,
                padded_len,
                write_bytes,
                memory_bytes: config.conv_stage_peak_bytes(l, out_rows.len()),
                after: Vec::new(),
                op: StageOp::Conv {
                    input: row_sources(sources, &span),
                    input_rows: geometry.input_rows,
                    film,
                    out_rows: out_rows.clone(),
                    write_activation,
                    write_max,
                    write_min,
                },
            }
        })
        .collect()
}

pub(crate) fn input_sources(padded_len: usize) -> Vec<(String, Range<usize>)> {
    vec![(INPUT_KEY.to_string(), 0..padded_len)]
}

pub(crate) fn max_key(layer: usize, split: usize) -> String {
    format!("max/{layer}/{split}")
}

pub(crate) fn min_key(layer: usize, split: usize) -> String {
    format!("min/{layer}/{split}")
}

/// The serial stage of layer `l` whose `splits` splits wrote block statistics: the LSTM
/// (`tfilm`), or after the last layer the `head`. In the resident plan the coordinator
/// invokes it once those statistics exist, and its `h` wakes the splits waiting for it.
pub(crate) fn serial_stage(
    layers: &[LayerGeometry],
    l: usize,
    splits: usize,
    padded_len: usize,
    resident: bool,
) -> Stage {
    let maxima: Vec<String> = (0..splits).map(|i| max_key(l, i)).collect();
    let geometry = &layers[l];
    let bc = f32_bytes(geometry.blocks, geometry.channels);
    let (kind, write_bytes, memory_bytes, op) = if l + 1 == layers.len() {
        let minima = (0..splits).map(|i| min_key(l, i)).collect();
        let op = StageOp::Head {
            block_max: maxima,
            block_min: minima,
        };
        (StageKind::Head, 0, 4 * bc, op)
    } else {
        let op = StageOp::Tfilm {
            block_max: maxima,
            write_h: format!("h/{l}"),
            signal: resident,
        };
        (StageKind::Tfilm, bc, 3 * bc, op)
    };
    let after = match (&op, resident) {
        (
            StageOp::Head {
                block_max,
                block_min,
            },
            true,
        ) => block_max.iter().chain(block_min).cloned().collect(),
        (StageOp::Tfilm { block_max, .. }, true) => block_max.clone(),
        _ => Vec::new(),
    };
    Stage {
        kind,
        layer: l,
        split: 0,
        padded_len,
        write_bytes,
        memory_bytes,
        after,
        op,
    }
}

fn fused_phases(
    config: &ModelConfig,
    layers: &[LayerGeometry],
    padded_len: usize,
) -> Vec<Vec<Stage>> {
    let last = layers.len() - 1;
    let mut phases = Vec::new();
    let mut sources = input_sources(padded_len);
    for l in 0..layers.len() {
        let film_key = (l > 0).then(|| format!("h/{}", l - 1));
        let is_last = l == last;
        let convs = conv_stages(
            config,
            layers,
            l,
            &sources,
            film_key.as_deref(),
            padded_len,
            |i| {
                (
                    (!is_last).then(|| activation_key(l, i)),
                    Some(max_key(l, i)),
                    is_last.then(|| min_key(l, i)),
                )
            },
        );
        let splits = convs.len();
        phases.push(convs);
        phases.push(vec![serial_stage(layers, l, splits, padded_len, false)]);
        if !is_last {
            let geometry = &layers[l];
            sources = geometry
                .splits
                .iter()
                .enumerate()
                .map(|(i, r)| (activation_key(l, i), r.clone()))
                .collect();
        }
    }
    phases
}

fn paper_phases(
    config: &ModelConfig,
    layers: &[LayerGeometry],
    padded_len: usize,
    limit_bytes: u64,
) -> Result<Vec<Vec<Stage>>, PlanError> {
    let mut phases = Vec::new();
    let mut sources = input_sources(padded_len);
    for (l, geometry) in layers.iter().enumerate() {
        let convs = conv_stages(config, layers, l, &sources, None, padded_len, |i| {
            (Some(activation_key(l, i)), None, None)
        });
        let splits = convs.len();
        phases.push(convs);
        let whole = f32_bytes(geometry.rows, geometry.channels);
        // The TFiLM function holds the pieces it read and the modulated whole.
        let memory = 2 * whole;
        if memory > limit_bytes {
            return Err(PlanError::Memory {
                layer: l,
                split: 0,
                needed_mb: mb(memory),
                limit_mb: (limit_bytes >> 20) as u32,
            });
        }
        phases.push(vec![Stage {
            kind: StageKind::Tfilm,
            layer: l,
            split: 0,
            padded_len,
            write_bytes: whole,
            memory_bytes: memory,
            after: Vec::new(),
            op: StageOp::PaperTfilm {
                activations: (0..splits).map(|i| activation_key(l, i)).collect(),
                write_x: format!("x/{l}"),
            },
        }]);
        sources = vec![(format!("x/{l}"), 0..geometry.rows)];
    }
    let last = layers.len() - 1;
    phases.push(vec![Stage {
        kind: StageKind::Classifier,
        layer: last,
        split: 0,
        padded_len,
        write_bytes: 0,
        memory_bytes: f32_bytes(layers[last].rows, layers[last].channels),
        after: Vec::new(),
        op: StageOp::Classifier {
            activation: format!("x/{last}"),
        },
    }]);
    Ok(phases)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(layers: &str) -> ModelConfig {
        ModelConfig {
            format: seqless_model::config::FORMAT.into(),
            tokenizer: "bytes".into(),
            vocab_size: 257,
            embed_dim: 4,
            layers: seqless_model::config::parse_layers(layers).unwrap(),
            modulation: seqless_model::Modulation::Scale,
            gate_activation: seqless_model::GateActivation::Sigmoid,
            labels: vec!["a".into(), "b".into()],
            max_len: 1 << 24,
        }
    }

    /// The plan for `bytes` with `splits` conv functions per layer and no limits.
    fn fixed(c: &ModelConfig, bytes: usize, kind: PlanKind, splits: usize) -> Plan {
        plan(c, bytes, kind, Splits::Fixed(splits), &Limits::default()).unwrap()
    }

    #[test]
    fn more_splits_than_blocks_is_clamped() {
        let c = config("8:3:2:4");
        // 100 bytes -> T0 = 104, T1 = 52, 13 blocks.
        let p = fixed(&c, 100, PlanKind::Fused, 64);
        assert_eq!(p.layers[0].splits.len(), 13);
        assert!(p.layers[0].splits.iter().all(|r| r.len() == 4));
    }

    #[test]
    fn conv_inputs_cover_the_halo_exactly() {
        let c = config("8:5:2:4,8:4:1:2");
        for kind in [PlanKind::Fused, PlanKind::Paper] {
            let p = fixed(&c, 1000, kind, 3);
            for stage in p.phases.iter().flatten() {
                let StageOp::Conv {
                    input,
                    input_rows,
                    out_rows,
                    ..
                } = &stage.op
                else {
                    continue;
                };
                let cfg = &c.layers[stage.layer];
                let span = conv_input_span(
                    cfg.pad_left(),
                    cfg.pad_right(),
                    cfg.pool,
                    out_rows,
                    *input_rows,
                );
                let mut next = span.start;
                for piece in input {
                    assert_eq!(piece.global_start, next, "{kind:?} {stage:?}");
                    next += piece.rows.len();
                }
                assert_eq!(next, span.end);
            }
        }
    }

    #[test]
    fn auto_splits_follow_length_and_cap() {
        let c = config("8:3:1:16");
        let limits = Limits {
            min_rows_per_split: 1000,
            max_splits: 4,
            ..Limits::default()
        };
        let count = |n| {
            plan(&c, n, PlanKind::Fused, Splits::Auto, &limits)
                .unwrap()
                .layers[0]
                .splits
                .len()
        };
        assert_eq!(count(500), 1);
        assert_eq!(count(2500), 3);
        assert_eq!(count(100_000), 4);
    }

    #[test]
    fn memory_limit_refuses_fixed_and_grows_auto() {
        let c = config("64:3:1:16");
        let limits = Limits {
            function_memory_mb: 16,
            max_splits: 64,
            min_rows_per_split: 1 << 30,
            max_value_bytes: None,
        };
        let err = plan(&c, 1 << 20, PlanKind::Fused, Splits::Fixed(1), &limits).unwrap_err();
        assert!(matches!(err, PlanError::Memory { layer: 0, .. }), "{err}");
        let p = plan(&c, 1 << 20, PlanKind::Fused, Splits::Auto, &limits).unwrap();
        assert!(p.layers[0].splits.len() > 1);
        assert!(p.phases[0].iter().all(|s| s.memory_bytes <= 16 << 20));
    }

    #[test]
    fn value_limit_refuses_fixed_and_grows_auto() {
        // Layer 0 of 8 channels stores its activation for layer 1: 1000 rows x 8 x 4 = 32,000 bytes
        // with one split, so a 16,000-byte value bound needs more splits.
        let c = config("8:3:1:8,4:3:1:8");
        let limits = Limits {
            max_value_bytes: Some(16_000),
            min_rows_per_split: 1 << 30,
            ..Limits::default()
        };
        let err = plan(&c, 1000, PlanKind::Fused, Splits::Fixed(1), &limits).unwrap_err();
        assert!(
            matches!(
                err,
                PlanError::Value {
                    layer: 0,
                    bytes: 32_000,
                    limit: 16_000,
                    ..
                }
            ),
            "{err}"
        );
        assert!(err.to_string().contains("use more splits"), "{err}");
        let p = plan(&c, 1000, PlanKind::Fused, Splits::Auto, &limits).unwrap();
        assert!(p.layers[0].splits.len() >= 3, "{:?}", p.layers[0].splits);
        assert!(
            p.layers[0]
                .splits
                .iter()
                .all(|r| r.len() as u64 * 8 * 4 <= 16_000)
        );
        // No bound, no refusal.
        fixed(&c, 1000, PlanKind::Fused, 1);
    }

    #[test]
    fn value_limit_refuses_a_paper_plan_whose_whole_activation_is_too_large() {
        let c = config("8:3:1:8");
        let limits = Limits {
            max_value_bytes: Some(16_000),
            ..Limits::default()
        };
        // 8 splits keep each conv value small; the paper TFiLM still stores all 1024 rows.
        let err = plan(&c, 1000, PlanKind::Paper, Splits::Fixed(8), &limits).unwrap_err();
        assert!(
            matches!(err, PlanError::Value { layer: 0, ref stage, .. } if stage == "tfilm"),
            "{err}"
        );
        assert!(err.to_string().contains("use the fused plan"), "{err}");
        plan(&c, 1000, PlanKind::Fused, Splits::Fixed(8), &limits).unwrap();
    }

    #[test]
    fn fused_serial_stages_touch_only_block_stats() {
        let c = config("8:3:2:4,6:3:1:2");
        let p = fixed(&c, 5000, PlanKind::Fused, 4);
        let kinds: Vec<Vec<StageKind>> = p
            .phases
            .iter()
            .map(|ph| ph.iter().map(|s| s.kind).collect())
            .collect();
        assert_eq!(kinds[1], vec![StageKind::Tfilm]);
        assert_eq!(kinds[3], vec![StageKind::Head]);
        // The tfilm stage writes B x C floats.
        assert_eq!(
            p.phases[1][0].write_bytes,
            (p.layers[0].blocks * 8 * 4) as u64
        );
        // The last layer's conv stages write no activation.
        assert!(p.phases[2].iter().all(|s| matches!(
            &s.op,
            StageOp::Conv {
                write_activation: None,
                ..
            }
        )));
        assert!(p.written_keys().contains(&"h/0".to_string()));
    }

    #[test]
    fn bad_lengths_are_refused() {
        let c = config("8:3:2:4");
        assert!(plan(&c, 0, PlanKind::Fused, Splits::Auto, &Limits::default()).is_err());
    }
}
