//! The stage handler: read inputs from the store, run a kernel, write outputs.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::future::try_join_all;
use seqless_model::kernels::{self, BlockStats, InputRows};
use seqless_model::{LayerSummary, TfilmModel};
use seqless_plan::{FilmSource, RowSource, StageOp};
use seqless_store::{Fetched, QueryId, StoredTensor, TensorStore};

use crate::error::FunctionError;
use crate::event::{StageEvent, StageResult};

/// What a function instance keeps between invocations: built once at its cold start.
pub struct FunctionContext {
    /// The model, loaded once.
    pub model: Arc<TfilmModel>,
    /// The shared store.
    pub store: Arc<dyn TensorStore>,
    /// Expiry of every key written, so a crashed query cleans itself up.
    pub ttl: Duration,
}

/// Bytes moved and compute time, accumulated over one invocation.
#[derive(Default)]
struct Io {
    bytes_in: u64,
    bytes_out: u64,
    compute: Duration,
}

impl Io {
    fn read(&mut self, fetched: Fetched) -> StoredTensor {
        self.bytes_in += fetched.bytes;
        fetched.tensor
    }

    async fn put(
        &mut self,
        ctx: &FunctionContext,
        key: String,
        tensor: StoredTensor,
    ) -> Result<(), FunctionError> {
        self.bytes_out += ctx.store.put(&key, &tensor, ctx.ttl).await?;
        Ok(())
    }

    /// Runs CPU-bound kernel work off the async reactor and counts its time.
    async fn compute<T: Send + 'static>(
        &mut self,
        work: impl FnOnce() -> Result<T, FunctionError> + Send + 'static,
    ) -> Result<T, FunctionError> {
        let start = Instant::now();
        let out = tokio::task::spawn_blocking(work)
            .await
            .map_err(|e| FunctionError::permanent(format!("kernel task failed: {e}")))??;
        self.compute += start.elapsed();
        Ok(out)
    }
}

fn f32_rows(key: &str, tensor: StoredTensor, channels: usize) -> Result<Vec<f32>, FunctionError> {
    if tensor.shape().len() != 2 || tensor.shape()[1] != channels {
        return Err(FunctionError::permanent(format!(
            "{key}: expected rows of {channels} channels, found shape {:?}",
            tensor.shape()
        )));
    }
    Ok(tensor.into_f32()?)
}

/// Reads and concatenates the f32 tensors under `keys`, checking their width.
async fn read_concat(
    ctx: &FunctionContext,
    query: &QueryId,
    keys: &[String],
    channels: usize,
    io: &mut Io,
) -> Result<Vec<f32>, FunctionError> {
    let full: Vec<String> = keys.iter().map(|k| query.key(k)).collect();
    let mut out = Vec::new();
    for (key, fetched) in keys.iter().zip(ctx.store.get_many(&full).await?) {
        out.extend(f32_rows(key, io.read(fetched), channels)?);
    }
    Ok(out)
}

/// Gathers a conv stage's input rows (own rows plus neighbours' halos) in global order.
async fn read_rows(
    ctx: &FunctionContext,
    query: &QueryId,
    sources: &[RowSource],
    layer: usize,
    io: &mut Io,
) -> Result<Vec<f32>, FunctionError> {
    let keys: Vec<String> = sources.iter().map(|s| query.key(&s.key)).collect();
    let fetches = sources
        .iter()
        .zip(&keys)
        .map(|(s, key)| ctx.store.get_rows(key, s.rows.clone()));
    let pieces = try_join_all(fetches).await?;
    let model = &ctx.model;
    let mut rows = Vec::new();
    for (source, fetched) in sources.iter().zip(pieces) {
        let tensor = io.read(fetched);
        if layer == 0 {
            let ids = tensor.into_u16()?;
            if let Some(bad) = ids
                .iter()
                .find(|&&id| usize::from(id) >= seqless_model::config::BYTE_VOCAB)
            {
                return Err(FunctionError::permanent(format!(
                    "{}: token id {bad} out of range",
                    source.key
                )));
            }
            rows.extend(model.embed_ids(&ids));
        } else {
            rows.extend(f32_rows(
                &source.key,
                tensor,
                model.config.in_channels(layer),
            )?);
        }
    }
    Ok(rows)
}

async fn read_film(
    ctx: &FunctionContext,
    query: &QueryId,
    film: &FilmSource,
    layer: usize,
    io: &mut Io,
) -> Result<Vec<f32>, FunctionError> {
    let fetched = ctx
        .store
        .get_rows(&query.key(&film.key), film.blocks.clone())
        .await?;
    f32_rows(
        &film.key,
        io.read(fetched),
        ctx.model.config.layers[layer - 1].channels,
    )
}

fn tensor(rows: usize, channels: usize, data: Vec<f32>) -> Result<StoredTensor, FunctionError> {
    Ok(StoredTensor::f32(vec![rows, channels], data)?)
}

/// Runs one stage. The only place where a function touches the store or the kernels.
pub async fn handle(
    ctx: &FunctionContext,
    event: StageEvent,
) -> Result<StageResult, FunctionError> {
    let query = event.query_id;
    let layer = event.stage.layer;
    let model = ctx.model.clone();
    if layer >= model.config.layers.len() {
        return Err(FunctionError::permanent(format!(
            "stage names layer {layer}, but the model has {} layers",
            model.config.layers.len()
        )));
    }
    let channels = model.config.layers[layer].channels;
    let block_len = model.config.layers[layer].block_len;
    let mut io = Io::default();
    let mut logits = None;
    match event.stage.op {
        StageOp::Conv {
            input,
            input_rows,
            film,
            out_rows,
            write_activation,
            write_max,
            write_min,
        } => {
            let start = input
                .first()
                .map(|s| s.global_start)
                .ok_or_else(|| FunctionError::permanent("conv stage without input rows"))?;
            let rows = read_rows(ctx, &query, &input, layer, &mut io).await?;
            let h = match &film {
                Some(f) if layer > 0 => Some((
                    read_film(ctx, &query, f, layer, &mut io).await?,
                    f.blocks.start,
                )),
                _ => None,
            };
            let n_out = out_rows.len();
            let (a, stats) = io
                .compute(move || {
                    let mut rows = rows;
                    if let Some((h, first_block)) = h {
                        let prev = &model.config.layers[layer - 1];
                        let film = model.film_from_lstm(layer - 1, h);
                        // Block 0 of this film is global block `first_block`.
                        let offset =
                            start
                                .checked_sub(first_block * prev.block_len)
                                .ok_or_else(|| {
                                    FunctionError::permanent(
                                        "modulation blocks start after the input rows",
                                    )
                                })?;
                        film.apply(&mut rows, offset)?;
                    }
                    let input = InputRows {
                        rows: &rows,
                        start,
                        total_rows: input_rows,
                    };
                    let a = model.conv_stage(layer, input, out_rows)?;
                    let stats = kernels::block_stats(&a, channels, block_len)?;
                    Ok((a, stats))
                })
                .await?;
            let blocks = stats.blocks();
            if let Some(key) = write_activation {
                io.put(ctx, query.key(&key), tensor(n_out, channels, a)?)
                    .await?;
            }
            if let Some(key) = write_max {
                io.put(ctx, query.key(&key), tensor(blocks, channels, stats.max)?)
                    .await?;
            }
            if let Some(key) = write_min {
                io.put(ctx, query.key(&key), tensor(blocks, channels, stats.min)?)
                    .await?;
            }
        }
        StageOp::Tfilm { block_max, write_h } => {
            let max = read_concat(ctx, &query, &block_max, channels, &mut io).await?;
            let h = io
                .compute(move || Ok(model.lstm_stage(layer, &max)))
                .await?;
            let blocks = h.len() / channels;
            io.put(ctx, query.key(&write_h), tensor(blocks, channels, h)?)
                .await?;
        }
        StageOp::Head {
            block_max,
            block_min,
        } => {
            let max = read_concat(ctx, &query, &block_max, channels, &mut io).await?;
            let min = read_concat(ctx, &query, &block_min, channels, &mut io).await?;
            let padded_len = event.stage.padded_len;
            let prediction = io
                .compute(move || {
                    let film = model.tfilm_stage(layer, &max);
                    let stats = BlockStats { max, min, channels };
                    Ok(model.head(&LayerSummary { stats, film }, padded_len)?)
                })
                .await?;
            logits = Some(prediction.logits);
        }
        StageOp::PaperTfilm {
            activations,
            write_x,
        } => {
            let a = read_concat(ctx, &query, &activations, channels, &mut io).await?;
            let x = io
                .compute(move || {
                    let mut a = a;
                    let stats = kernels::block_stats(&a, channels, block_len)?;
                    model.tfilm_stage(layer, &stats.max).apply(&mut a, 0)?;
                    Ok(a)
                })
                .await?;
            let rows = x.len() / channels;
            io.put(ctx, query.key(&write_x), tensor(rows, channels, x)?)
                .await?;
        }
        StageOp::Classifier { activation } => {
            let x = read_concat(
                ctx,
                &query,
                std::slice::from_ref(&activation),
                channels,
                &mut io,
            )
            .await?;
            let padded_len = event.stage.padded_len;
            let prediction = io
                .compute(move || Ok(model.predict(&kernels::global_max(&x, channels), padded_len)))
                .await?;
            logits = Some(prediction.logits);
        }
    }
    Ok(StageResult {
        compute_ms: io.compute.as_secs_f64() * 1e3,
        bytes_in: io.bytes_in,
        bytes_out: io.bytes_out,
        logits,
        init: None,
    })
}
