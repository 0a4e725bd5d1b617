//! The resident plan's stage graph: one function per split holds its rows across every
//! layer, so only halos and block statistics go through the store.
//!
//! A split's boundaries must fall on block boundaries in every layer, so that the rows it
//! carries from one layer into the next are exactly the next layer's own input rows. The
//! alignment unit `A` (a whole number of blocks in every layer, see
//! [`ModelConfig::alignment`]) is therefore the grain: split `i` owns a run of whole
//! units, which is `A / P_l` output rows of layer `l` per unit, `P_l` being the pool up
//! to and including layer `l`.

use std::ops::Range;

use seqless_model::ModelConfig;
use seqless_model::kernels::conv_input_span;

use crate::geometry::{LayerGeometry, split_blocks};
use crate::stages::{input_sources, max_key, mb, min_key, row_sources, serial_stage};
use crate::traffic::resident_traffic;
use crate::{
    EdgeWrite, FilmSource, Limits, PlanError, ResidentLayer, RowSource, Splits, Stage, StageKind,
    StageOp,
};

fn edge_key(layer: usize, split: usize, side: &str) -> String {
    format!("edge/{layer}/{split}/{side}")
}

/// The row geometry: one split count for every layer, boundaries on alignment units.
pub(crate) fn geometry(
    config: &ModelConfig,
    padded_len: usize,
    splits: Splits,
    limits: &Limits,
) -> Result<Vec<LayerGeometry>, PlanError> {
    let unit = config.alignment();
    let units = padded_len / unit;
    let limit_bytes = u64::from(limits.function_memory_mb) << 20;
    let mut count = splits.wanted(padded_len, limits).clamp(1, units);
    loop {
        let unit_ranges = split_blocks(units, count);
        let layers = layer_geometry(config, padded_len, &unit_ranges);
        // The widest split's largest layer, its carried rows included.
        let need = |g: &LayerGeometry, l: usize| {
            let widest = g.splits.iter().map(|r| r.len()).max().unwrap_or(0);
            config.conv_stage_peak_bytes(l, widest)
        };
        let (layer, needed) = layers
            .iter()
            .enumerate()
            .map(|(l, g)| (l, need(g, l)))
            .max_by_key(|&(_, n)| n)
            .unwrap_or((0, 0));
        if needed <= limit_bytes {
            return Ok(layers);
        }
        if splits != Splits::Auto || count >= units || count >= limits.max_splits {
            return Err(PlanError::Memory {
                layer,
                split: 0,
                needed_mb: mb(needed),
                limit_mb: limits.function_memory_mb,
            });
        }
        count = (count * 2).min(units).min(limits.max_splits);
    }
}

fn layer_geometry(
    config: &ModelConfig,
    padded_len: usize,
    unit_ranges: &[Range<usize>],
) -> Vec<LayerGeometry> {
    let unit = config.alignment();
    let mut input_rows = padded_len;
    let mut pool = 1;
    config
        .layers
        .iter()
        .map(|cfg| {
            pool *= cfg.pool;
            let rows = input_rows / cfg.pool;
            let per_unit = unit / pool;
            let geometry = LayerGeometry {
                input_rows,
                rows,
                channels: cfg.channels,
                block_len: cfg.block_len,
                blocks: rows / cfg.block_len,
                splits: unit_ranges
                    .iter()
                    .map(|u| u.start * per_unit..u.end * per_unit)
                    .collect(),
            };
            input_rows = rows;
            geometry
        })
        .collect()
}

/// The conv input span of every split of layer `l`.
fn spans(config: &ModelConfig, layers: &[LayerGeometry], l: usize) -> Vec<Range<usize>> {
    let cfg = &config.layers[l];
    layers[l]
        .splits
        .iter()
        .map(|out| {
            conv_input_span(
                cfg.pad_left(),
                cfg.pad_right(),
                cfg.pool,
                out,
                layers[l].input_rows,
            )
        })
        .collect()
}

/// How many of its first and last rows each split of a layer publishes: as many as the
/// widest halo any other split reads from it.
fn edge_lengths(owned: &[Range<usize>], next_spans: &[Range<usize>]) -> Vec<(usize, usize)> {
    owned
        .iter()
        .enumerate()
        .map(|(j, rows)| {
            let first = next_spans[..j]
                .iter()
                .map(|s| s.end.min(rows.end).saturating_sub(rows.start))
                .max()
                .unwrap_or(0);
            let last = next_spans[j + 1..]
                .iter()
                .map(|s| rows.end.saturating_sub(s.start.max(rows.start)))
                .max()
                .unwrap_or(0);
            (first, last)
        })
        .collect()
}

/// The halo of split `i` on one side: the rows of `want` (global, in the previous layer's
/// output) that other splits own, read from the edges they publish.
fn halo(
    layer: usize,
    i: usize,
    want: Range<usize>,
    owned: &[Range<usize>],
    edges: &[(usize, usize)],
) -> Vec<RowSource> {
    owned
        .iter()
        .enumerate()
        .filter(|&(j, _)| j != i)
        .filter_map(|(j, rows)| {
            let (lo, hi) = (want.start.max(rows.start), want.end.min(rows.end));
            if lo >= hi {
                return None;
            }
            Some(if j < i {
                // The split's last rows: its `last` edge starts at `rows.end - last`.
                let edge_start = rows.end - edges[j].1;
                RowSource {
                    key: edge_key(layer, j, "last"),
                    rows: lo - edge_start..hi - edge_start,
                    global_start: lo,
                }
            } else {
                RowSource {
                    key: edge_key(layer, j, "first"),
                    rows: lo - rows.start..hi - rows.start,
                    global_start: lo,
                }
            })
        })
        .collect()
}

/// Every stage of a resident run, as one phase: the S splits, then each layer's TFiLM
/// stage and the head, which the coordinator invokes once the block statistics they read
/// exist ([`Stage::after`]).
pub(crate) fn phases(
    config: &ModelConfig,
    layers: &[LayerGeometry],
    padded_len: usize,
) -> Vec<Vec<Stage>> {
    let last = layers.len() - 1;
    let count = layers[0].splits.len();
    let spans: Vec<Vec<Range<usize>>> = (0..layers.len())
        .map(|l| spans(config, layers, l))
        .collect();
    // Edge lengths of layer l's outputs, for layer l + 1's halos.
    let edges: Vec<Vec<(usize, usize)>> = (0..last)
        .map(|l| edge_lengths(&layers[l].splits, &spans[l + 1]))
        .collect();
    let mut stage_list: Vec<Stage> = (0..count)
        .map(|i| {
            let resident_layers: Vec<ResidentLayer> = (0..layers.len())
                .map(|l| resident_layer(config, layers, &spans, &edges, l, i))
                .collect();
            let first_span = &spans[0][i];
            let input = row_sources(&input_sources(padded_len), first_span);
            let write_bytes = resident_traffic(config, &input, &resident_layers)
                .iter()
                .map(|t| t.bytes_out)
                .sum();
            let memory_bytes = (0..layers.len())
                .map(|l| config.conv_stage_peak_bytes(l, layers[l].splits[i].len()))
                .max()
                .unwrap_or(0);
            Stage {
                kind: StageKind::Resident,
                layer: 0,
                split: i,
                padded_len,
                write_bytes,
                memory_bytes,
                after: Vec::new(),
                op: StageOp::Resident {
                    input,
                    layers: resident_layers,
                    wait_ms: 0,
                },
            }
        })
        .collect();
    for l in 0..layers.len() {
        stage_list.push(serial_stage(layers, l, count, padded_len, true));
    }
    vec![stage_list]
}

/// Split `i`'s work in layer `l`.
fn resident_layer(
    config: &ModelConfig,
    layers: &[LayerGeometry],
    spans: &[Vec<Range<usize>>],
    edges: &[Vec<(usize, usize)>],
    l: usize,
    i: usize,
) -> ResidentLayer {
    let out_rows = layers[l].splits[i].clone();
    let span = &spans[l][i];
    let (halo_before, halo_after, film) = if l == 0 {
        (Vec::new(), Vec::new(), None)
    } else {
        let owned = &layers[l - 1].splits;
        let own = &owned[i];
        let prev_block = config.layers[l - 1].block_len;
        (
            halo(l - 1, i, span.start..own.start, owned, &edges[l - 1]),
            halo(l - 1, i, own.end..span.end, owned, &edges[l - 1]),
            Some(FilmSource {
                key: format!("h/{}", l - 1),
                blocks: span.start / prev_block..span.end.div_ceil(prev_block),
            }),
        )
    };
    let write_edges = edges
        .get(l)
        .map(|edges| {
            let (first, last) = edges[i];
            let len = out_rows.len();
            [("first", 0..first), ("last", len - last..len)]
                .into_iter()
                .filter(|(_, rows)| !rows.is_empty())
                .map(|(side, rows)| EdgeWrite {
                    key: edge_key(l, i, side),
                    rows,
                })
                .collect()
        })
        .unwrap_or_default();
    let is_last = l + 1 == layers.len();
    ResidentLayer {
        input_rows: layers[l].input_rows,
        out_rows,
        halo_before,
        halo_after,
        film,
        write_edges,
        write_max: max_key(l, i),
        write_min: is_last.then(|| min_key(l, i)),
    }
}
