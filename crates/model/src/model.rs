//! A loaded model and its monolithic forward pass.

use std::ops::Range;
use std::path::Path;
use std::time::{Duration, Instant};

use seqless_wire::ModelFingerprint;
use serde::Serialize;

use crate::config::ModelConfig;
use crate::error::{ModelError, Result};
use crate::kernels::{self, BlockStats, Film, InputRows};
use crate::tokenizer;
use crate::weights::Weights;

/// File names inside a model directory.
pub const CONFIG_FILE: &str = "config.json";
/// See [`CONFIG_FILE`].
pub const WEIGHTS_FILE: &str = "model.safetensors";

/// A TFiLM-CNN classifier ready to run: validated config plus kernel-layout weights.
///
/// Loading is the expensive part (a function instance's cold start); every forward pass and
/// stage afterwards only borrows it.
#[derive(Debug, Clone)]
pub struct TfilmModel {
    /// The architecture.
    pub config: ModelConfig,
    /// The parameters.
    pub weights: Weights,
}

/// What a forward pass answers.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Prediction {
    /// The arg-max label.
    pub label: String,
    /// Its index in the config's labels.
    pub label_index: usize,
    /// One per label, in the config's order.
    pub logits: Vec<f32>,
    /// `softmax(logits)`.
    pub probabilities: Vec<f32>,
    /// `T_0`, the length after padding to the alignment unit.
    pub padded_len: usize,
}

impl Prediction {
    /// Label, softmax and arg-max from logits in `labels` order: how a coordinator that only
    /// received logits from a head function finishes.
    pub fn from_logits(labels: &[String], logits: Vec<f32>, padded_len: usize) -> Self {
        let probabilities = kernels::softmax(&logits);
        let label_index = argmax(&logits);
        Self {
            label: labels.get(label_index).cloned().unwrap_or_default(),
            label_index,
            logits,
            probabilities,
            padded_len,
        }
    }
}

/// One layer's outputs as the serial TFiLM stage sees them.
#[derive(Debug, Clone)]
pub struct LayerSummary {
    /// Block max and min of the pooled activation.
    pub stats: BlockStats,
    /// The modulation the LSTM produced.
    pub film: Film,
}

/// Where a layer step's input rows come from and how to modulate them.
pub struct LayerInput<'a> {
    /// Input rows of the layer in global order (token embeddings for the first layer),
    /// modulated in place when `film` is given.
    pub rows: &'a mut [f32],
    /// Global index of the first of `rows`.
    pub start: usize,
    /// `T_{l-1}`, which decides where zero padding goes.
    pub total_rows: usize,
    /// The previous layer's modulation, and the index of the row of `rows` at which its
    /// block 0 starts (0 when the film covers the whole sequence).
    pub film: Option<(&'a Film, usize)>,
}

/// The two files of a model directory, as bytes.
struct ModelFiles {
    config: Vec<u8>,
    weights: Vec<u8>,
}

impl ModelFiles {
    fn read(dir: &Path) -> Result<Self> {
        let read = |name: &str| {
            let path = dir.join(name);
            std::fs::read(&path).map_err(|e| ModelError::io(path, e))
        };
        Ok(Self {
            config: read(CONFIG_FILE)?,
            weights: read(WEIGHTS_FILE)?,
        })
    }

    fn fingerprint(&self) -> ModelFingerprint {
        ModelFingerprint::of_files(&self.config, &self.weights)
    }
}

/// The fingerprint of the model in `dir`, for a coordinator that needs only its config:
/// every stage event carries it, and a function that loaded another model refuses.
pub fn fingerprint(dir: &Path) -> Result<ModelFingerprint> {
    Ok(ModelFiles::read(dir)?.fingerprint())
}

impl TfilmModel {
    /// Loads `config.json` and `model.safetensors` from a model directory.
    pub fn load(dir: &Path) -> Result<Self> {
        Self::from_files(dir, &ModelFiles::read(dir)?)
    }

    /// [`Self::load`], with the directory's [`fingerprint`] from the same bytes: what a
    /// function instance loads at its cold start.
    pub fn load_fingerprinted(dir: &Path) -> Result<(Self, ModelFingerprint)> {
        let files = ModelFiles::read(dir)?;
        Ok((Self::from_files(dir, &files)?, files.fingerprint()))
    }

    fn from_files(dir: &Path, files: &ModelFiles) -> Result<Self> {
        let config = ModelConfig::from_json(&files.config, &dir.join(CONFIG_FILE))?;
        let weights = Weights::from_safetensors(&files.weights, &dir.join(WEIGHTS_FILE), &config)?;
        Ok(Self { config, weights })
    }

    /// Step 1 and 2: the embedded, padded query `[T_0, E]`.
    pub fn embed(&self, bytes: &[u8]) -> Result<Vec<f32>> {
        self.config.check_input_len(bytes.len())?;
        let ids = tokenizer::encode(bytes, self.config.padded_len(bytes.len()));
        Ok(self.embed_ids(&ids))
    }

    /// Step 2 on token ids already padded to `T_0`.
    pub fn embed_ids(&self, ids: &[u16]) -> Vec<f32> {
        kernels::embed(&self.weights.embedding, self.config.embed_dim, ids)
    }

    /// Conv stage of layer `layer` (0-based) for pooled output rows `out_rows`.
    pub fn conv_stage(
        &self,
        layer: usize,
        input: InputRows<'_>,
        out_rows: std::ops::Range<usize>,
    ) -> Result<Vec<f32>> {
        let pool = self.config.layers[layer].pool;
        kernels::conv_pool_relu(&self.weights.layers[layer].conv, pool, input, out_rows)
    }

    /// The serial part of TFiLM layer `layer`: the LSTM over all block maxima, `[B, C]`.
    pub fn lstm_stage(&self, layer: usize, block_max: &[f32]) -> Vec<f32> {
        self.weights.layers[layer].lstm.run(block_max)
    }

    /// The local part of TFiLM layer `layer`: gamma/beta from LSTM outputs `h` of any run of
    /// blocks (block 0 of the result is the first block of `h`).
    pub fn film_from_lstm(&self, layer: usize, h: Vec<f32>) -> Film {
        let cfg = &self.config.layers[layer];
        Film::from_lstm(
            h,
            self.weights.layers[layer].affine.as_ref(),
            cfg.channels,
            cfg.block_len,
        )
    }

    /// The whole TFiLM stage of layer `layer`: LSTM, then gamma/beta.
    pub fn tfilm_stage(&self, layer: usize, block_max: &[f32]) -> Film {
        self.film_from_lstm(layer, self.lstm_stage(layer, block_max))
    }

    /// The row-parallel step of layer `layer` for pooled output rows `out_rows`: modulate
    /// the input by the previous layer's TFiLM, conv + pool + relu, then the block
    /// statistics the serial TFiLM stage needs. The monolithic forward runs it over the
    /// whole sequence; a conv stage over its split.
    pub fn layer_step(
        &self,
        layer: usize,
        input: LayerInput<'_>,
        out_rows: Range<usize>,
    ) -> Result<(Vec<f32>, BlockStats)> {
        if let Some((film, first_row)) = input.film {
            film.apply(input.rows, first_row)?;
        }
        let rows = InputRows {
            rows: input.rows,
            start: input.start,
            total_rows: input.total_rows,
        };
        let a = self.conv_stage(layer, rows, out_rows)?;
        let cfg = &self.config.layers[layer];
        let stats = kernels::block_stats(&a, cfg.channels, cfg.block_len)?;
        Ok((a, stats))
    }

    /// The paper plan's TFiLM over a whole activation of layer `layer`: block statistics,
    /// the LSTM, and the modulation applied in place.
    pub fn modulate_whole(&self, layer: usize, activation: &mut [f32]) -> Result<()> {
        let cfg = &self.config.layers[layer];
        let stats = kernels::block_stats(activation, cfg.channels, cfg.block_len)?;
        self.tfilm_stage(layer, &stats.max).apply(activation, 0)
    }

    /// Step 4 and 5 from the last layer's block stats and modulation.
    pub fn head(&self, last: &LayerSummary, padded_len: usize) -> Result<Prediction> {
        let g = last.film.pooled_max(&last.stats)?;
        Ok(self.predict(&g, padded_len))
    }

    /// Step 5 from the pooled features `g`.
    pub fn predict(&self, g: &[f32], padded_len: usize) -> Prediction {
        let logits = kernels::classifier(
            &self.weights.classifier_weight,
            &self.weights.classifier_bias,
            g,
        );
        Prediction::from_logits(&self.config.labels, logits, padded_len)
    }

    /// The whole forward pass in one process: the reference every split run must equal.
    pub fn forward(&self, bytes: &[u8]) -> Result<Prediction> {
        self.forward_profiled(bytes)
            .map(|(prediction, _)| prediction)
    }

    /// [`Self::forward`], also reporting where the time went, so a benchmark can tell the
    /// parallel conv work from the serial TFiLM work.
    pub fn forward_profiled(&self, bytes: &[u8]) -> Result<(Prediction, StageTimes)> {
        let started = Instant::now();
        let mut times = StageTimes::default();
        let padded_len = self.config.padded_len(bytes.len());
        let mut x = self.embed(bytes)?;
        let mut total_rows = padded_len;
        let mut last: Option<LayerSummary> = None;
        for (l, cfg) in self.config.layers.iter().enumerate() {
            let out_len = total_rows / cfg.pool;
            let input = LayerInput {
                rows: &mut x,
                start: 0,
                total_rows,
                film: last.as_ref().map(|prev| (&prev.film, 0)),
            };
            let step_started = Instant::now();
            let (a, stats) = self.layer_step(l, input, 0..out_len)?;
            let tfilm_started = Instant::now();
            times.conv += tfilm_started - step_started;
            let film = self.tfilm_stage(l, &stats.max);
            times.tfilm += tfilm_started.elapsed();
            last = Some(LayerSummary { stats, film });
            x = a;
            total_rows = out_len;
        }
        let last = last.expect("validated configs have at least one layer");
        let prediction = self.head(&last, padded_len)?;
        times.other = started.elapsed().saturating_sub(times.conv + times.tfilm);
        Ok((prediction, times))
    }
}

/// Wall time of one forward pass by kind of stage.
#[derive(Debug, Clone, Copy, Default)]
pub struct StageTimes {
    /// The row-parallel layer steps (modulating the input, convolution, pooling, ReLU and
    /// block statistics): the work conv stages split, dominated by what `conv_flops` counts.
    pub conv: Duration,
    /// The LSTM and gamma/beta: the serial TFiLM work.
    pub tfilm: Duration,
    /// Embedding and the head.
    pub other: Duration,
}

/// Index of the largest value (the first on ties).
pub fn argmax(values: &[f32]) -> usize {
    values
        .iter()
        .enumerate()
        .fold((0, f32::NEG_INFINITY), |(bi, bv), (i, &v)| {
            if v > bv { (i, v) } else { (bi, bv) }
        })
        .0
}
