//! A loaded model and its monolithic forward pass.

use std::path::Path;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::config::ModelConfig;
use crate::error::Result;
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

impl TfilmModel {
    /// Loads `config.json` and `model.safetensors` from a model directory.
    pub fn load(dir: &Path) -> Result<Self> {
        let config = ModelConfig::load(&dir.join(CONFIG_FILE))?;
        let weights = Weights::load(&dir.join(WEIGHTS_FILE), &config)?;
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
            if let Some(prev) = &last {
                prev.film.apply(&mut x, 0)?;
            }
            let out_len = total_rows / cfg.pool;
            let input = InputRows {
                rows: &x,
                start: 0,
                total_rows,
            };
            let conv_started = Instant::now();
            let a = self.conv_stage(l, input, 0..out_len)?;
            let tfilm_started = Instant::now();
            times.conv += tfilm_started - conv_started;
            let stats = kernels::block_stats(&a, cfg.channels, cfg.block_len)?;
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
    /// Convolution, pooling and ReLU: the parallel work that `conv_flops` counts.
    pub conv: Duration,
    /// Block stats, the LSTM and gamma/beta: the serial TFiLM work.
    pub tfilm: Duration,
    /// Embedding, modulating the next layer's input, and the head.
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
