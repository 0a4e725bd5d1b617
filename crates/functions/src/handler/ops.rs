//! One function per stage operation. Each reads what its op names, computes with the
//! model's shared steps (the same ones the monolithic forward runs), and writes its outputs.

use std::ops::Range;
use std::sync::Arc;
use std::time::Instant;

use seqless_model::kernels::{self, BlockStats};
use seqless_model::{LayerConfig, LayerInput, LayerSummary, TfilmModel};
use seqless_wire::{FilmSource, ResidentLayer, RowSource};

use super::io::{StageIo, StoredRows};
use crate::error::FunctionError;

/// The model and the (checked) layer a stage works on.
pub(super) struct Layer {
    pub(super) model: Arc<TfilmModel>,
    pub(super) index: usize,
}

impl Layer {
    fn config(&self) -> &LayerConfig {
        &self.model.config.layers[self.index]
    }
}

/// The rows a conv stage reads and computes.
pub(super) struct ConvRows<'a> {
    /// Input row pieces in global order.
    pub(super) input: &'a [RowSource],
    /// `T_{l-1}`.
    pub(super) total: usize,
    /// Pooled output rows to compute.
    pub(super) out: Range<usize>,
}

/// Where a conv stage writes its outputs, each only when a later stage reads it.
pub(super) struct ConvWrites {
    pub(super) activation: Option<String>,
    pub(super) max: Option<String>,
    pub(super) min: Option<String>,
}

/// Conv + pool + relu over a row range, with the previous layer's modulation applied to
/// the input first, writing the activation and block statistics that later stages read.
pub(super) async fn conv(
    io: &mut StageIo<'_>,
    at: Layer,
    rows: ConvRows<'_>,
    film: Option<&FilmSource>,
    writes: ConvWrites,
) -> Result<(), FunctionError> {
    let layer = at.index;
    let start = rows
        .input
        .first()
        .map(|s| s.global_start)
        .ok_or_else(|| FunctionError::permanent("conv stage without input rows"))?;
    let model = &at.model;
    let stored = io
        .read_rows(rows.input, layer == 0, model.config.in_channels(layer))
        .await?;
    // Where block 0 of the film falls in the input rows, and the LSTM output it comes from.
    let film = match (film, layer) {
        (None, _) => None,
        (Some(_), 0) => {
            return Err(FunctionError::permanent(
                "conv stage of layer 0 names a modulation, but the first layer has no previous layer",
            ));
        }
        (Some(f), _) => {
            let prev = &model.config.layers[layer - 1];
            let offset = film_offset(f, prev.block_len, start)?;
            Some((io.read_film(f, prev.channels).await?, offset))
        }
    };
    let channels = at.config().channels;
    let (input_rows, out_rows) = (rows.total, rows.out);
    let (a, stats) = io
        .compute(move || {
            let rows = match stored {
                StoredRows::Tokens(ids) => at.model.embed_ids(&ids),
                StoredRows::Activations(rows) => rows,
            };
            let input = StepInput {
                rows,
                start,
                total: input_rows,
                film,
            };
            step(&at, input, out_rows)
        })
        .await?;
    for (key, data) in [
        (writes.activation, a),
        (writes.max, stats.max),
        (writes.min, stats.min),
    ] {
        if let Some(key) = key {
            io.put_rows(&key, channels, data).await?;
        }
    }
    Ok(())
}

/// Fused and resident plans: the LSTM over a layer's block maxima, writing `h` for the next
/// layer's conv stages to modulate with (and, when `signal`, waking the resident splits
/// that wait for it).
pub(super) async fn tfilm(
    io: &mut StageIo<'_>,
    at: Layer,
    block_max: &[String],
    write_h: &str,
    signal: bool,
) -> Result<(), FunctionError> {
    let channels = at.config().channels;
    let max = io.read_concat(block_max, channels).await?;
    let h = io
        .compute(move || Ok(at.model.lstm_stage(at.index, &max)))
        .await?;
    match signal {
        true => io.put_signalled(write_h, channels, h).await,
        false => io.put_rows(write_h, channels, h).await,
    }
}

/// Resident plan: one split through every layer. Its rows stay here from layer to layer;
/// after each layer's conv it publishes the edge rows its neighbours need and its block
/// statistics, then blocks until the layer's LSTM output and its own halos exist.
pub(super) async fn resident(
    io: &mut StageIo<'_>,
    model: Arc<TfilmModel>,
    split: usize,
    input: &[RowSource],
    layers: &[ResidentLayer],
    deadline: Instant,
) -> Result<(), FunctionError> {
    if layers.len() != model.config.layers.len() {
        return Err(FunctionError::permanent(format!(
            "resident stage lists {} layers, but the model has {}",
            layers.len(),
            model.config.layers.len()
        )));
    }
    let first = input
        .first()
        .map(|s| s.global_start)
        .ok_or_else(|| FunctionError::permanent("resident stage without input rows"))?;
    let StoredRows::Tokens(ids) = io.read_rows(input, true, 1).await? else {
        unreachable!("token rows were asked for");
    };
    let mut carried = io
        .compute({
            let model = model.clone();
            move || Ok(model.embed_ids(&ids))
        })
        .await?;
    let mut own_start = first;
    for (l, layer) in layers.iter().enumerate() {
        let waiter = format!("resident split {split} at layer {l}");
        let at = Layer {
            model: model.clone(),
            index: l,
        };
        let (rows, start, film) = match l {
            0 => (carried, first, None),
            _ => {
                let in_channels = model.config.in_channels(l);
                let mut rows = io
                    .wait_rows(&layer.halo_before, in_channels, deadline, &waiter)
                    .await?;
                let start = layer
                    .halo_before
                    .first()
                    .map_or(own_start, |s| s.global_start);
                if start + rows.len() / in_channels != own_start {
                    return Err(FunctionError::permanent(format!(
                        "layer {l}: the halo before split {split} does not end where its own rows start (row {own_start})"
                    )));
                }
                rows.extend(carried);
                let after = io
                    .wait_rows(&layer.halo_after, in_channels, deadline, &waiter)
                    .await?;
                rows.extend(after);
                let film = layer.film.as_ref().ok_or_else(|| {
                    FunctionError::permanent(format!(
                        "layer {l} of a resident stage names no modulation"
                    ))
                })?;
                io.wait_for(&film.key, deadline, &waiter).await?;
                let prev_block = model.config.layers[l - 1].block_len;
                let offset = film_offset(film, prev_block, start)?;
                let h = io.read_film(film, in_channels).await?;
                (rows, start, Some((h, offset)))
            }
        };
        let out_rows = layer.out_rows.clone();
        let input = StepInput {
            rows,
            start,
            total: layer.input_rows,
            film,
        };
        let (a, stats) = io.compute(move || step(&at, input, out_rows)).await?;
        let channels = model.config.layers[l].channels;
        for edge in &layer.write_edges {
            let rows = a
                .get(edge.rows.start * channels..edge.rows.end * channels)
                .ok_or_else(|| {
                    FunctionError::permanent(format!(
                        "layer {l}: edge rows {:?} are outside split {split}'s {} rows",
                        edge.rows,
                        a.len() / channels
                    ))
                })?;
            io.put_signalled(&edge.key, channels, rows.to_vec()).await?;
        }
        io.put_signalled(&layer.write_max, channels, stats.max)
            .await?;
        if let Some(key) = &layer.write_min {
            io.put_signalled(key, channels, stats.min).await?;
        }
        own_start = layer.out_rows.start;
        carried = a;
    }
    Ok(())
}

/// A layer's input rows as read: `rows` from global row `start` of `total`, and the
/// previous layer's LSTM output with the row of `rows` where its block 0 falls.
struct StepInput {
    rows: Vec<f32>,
    start: usize,
    total: usize,
    film: Option<(Vec<f32>, usize)>,
}

/// The model's layer step (modulation, conv, pool, ReLU, block statistics) for output
/// rows `out`, as the monolithic forward runs it.
fn step(
    at: &Layer,
    mut input: StepInput,
    out: Range<usize>,
) -> Result<(Vec<f32>, BlockStats), FunctionError> {
    let model = &at.model;
    let film = input
        .film
        .map(|(h, offset)| (model.film_from_lstm(at.index - 1, h), offset));
    let layer_input = LayerInput {
        rows: &mut input.rows,
        start: input.start,
        total_rows: input.total,
        film: film.as_ref().map(|(f, offset)| (f, *offset)),
    };
    Ok(model.layer_step(at.index, layer_input, out)?)
}

/// Where block 0 of the modulation `film` falls in input rows starting at global row
/// `start`.
fn film_offset(film: &FilmSource, prev_block: usize, start: usize) -> Result<usize, FunctionError> {
    start.checked_sub(film.blocks.start * prev_block).ok_or_else(|| {
        FunctionError::permanent(format!(
            "modulation blocks start at block {} (row {}), after the input rows starting at row {start}",
            film.blocks.start,
            film.blocks.start * prev_block
        ))
    })
}

/// Fused plan: the last layer's TFiLM and the classifier, from block max and min alone.
pub(super) async fn head(
    io: &mut StageIo<'_>,
    at: Layer,
    block_max: &[String],
    block_min: &[String],
    padded_len: usize,
) -> Result<Vec<f32>, FunctionError> {
    let channels = at.config().channels;
    let max = io.read_concat(block_max, channels).await?;
    let min = io.read_concat(block_min, channels).await?;
    let prediction = io
        .compute(move || {
            let film = at.model.tfilm_stage(at.index, &max);
            let stats = BlockStats { max, min, channels };
            Ok(at.model.head(&LayerSummary { stats, film }, padded_len)?)
        })
        .await?;
    Ok(prediction.logits)
}

/// Paper plan: the whole activation in, TFiLM, the modulated activation back out.
pub(super) async fn paper_tfilm(
    io: &mut StageIo<'_>,
    at: Layer,
    activations: &[String],
    write_x: &str,
) -> Result<(), FunctionError> {
    map_rows(io, at, activations, write_x, |model, layer, mut a| {
        model.modulate_whole(layer, &mut a)?;
        Ok(a)
    })
    .await
}

/// Reads the layer-wide rows under `read`, computes `step(model, layer, rows)` off the
/// async threads, and writes its layer-wide rows under `write`.
async fn map_rows(
    io: &mut StageIo<'_>,
    at: Layer,
    read: &[String],
    write: &str,
    step: impl FnOnce(&TfilmModel, usize, Vec<f32>) -> Result<Vec<f32>, FunctionError> + Send + 'static,
) -> Result<(), FunctionError> {
    let channels = at.config().channels;
    let rows = io.read_concat(read, channels).await?;
    let out = io.compute(move || step(&at.model, at.index, rows)).await?;
    io.put_rows(write, channels, out).await
}

/// Paper plan: the global max over the whole modulated last activation, then the classifier.
pub(super) async fn classifier(
    io: &mut StageIo<'_>,
    at: Layer,
    activation: String,
    padded_len: usize,
) -> Result<Vec<f32>, FunctionError> {
    let channels = at.config().channels;
    let x = io
        .read_concat(std::slice::from_ref(&activation), channels)
        .await?;
    let prediction = io
        .compute(move || {
            Ok(at
                .model
                .predict(&kernels::global_max(&x, channels), padded_len))
        })
        .await?;
    Ok(prediction.logits)
}
