//! The training loop: AdamW over batches of equal padded length, with a held-out split.

use std::collections::BTreeMap;
use std::time::Instant;

use candle_core::{D, Device, Tensor};
use candle_nn::{AdamW, Optimizer, ParamsAdamW};
use rand::{SeedableRng, rngs::StdRng, seq::SliceRandom};
use serde::Serialize;

use super::data::Example;
use super::net::TrainNet;
use crate::config::ModelConfig;
use crate::error::{ModelError, Result};
use crate::model::TfilmModel;
use crate::tokenizer;

/// Knobs of a training run; `Default` is what `seqless train` uses.
#[derive(Debug, Clone, Serialize)]
pub struct TrainOptions {
    /// Passes over the training documents.
    pub epochs: usize,
    /// Documents per batch, for short documents.
    pub batch_size: usize,
    /// Upper bound on padded tokens per batch, so long documents come in small batches.
    pub batch_tokens: usize,
    /// Peak AdamW learning rate (cosine-decayed to a tenth over the run).
    pub learning_rate: f64,
    /// AdamW decoupled weight decay.
    pub weight_decay: f64,
    /// Seeds initialisation, the held-out split and batch order.
    pub seed: u64,
    /// Fraction of documents held out to measure generalisation each epoch.
    pub valid_fraction: f64,
    /// Global gradient-norm clip: the LSTM over many blocks can otherwise blow a step up.
    pub clip_norm: f32,
    /// Start from this model directory instead of a fresh initialisation: the same
    /// architecture, or a narrower one that is widened (see [`super::widen`]).
    pub init_from: Option<std::path::PathBuf>,
    /// Write `config.json` and `model.safetensors` here after every epoch, so a long run
    /// that is interrupted still leaves its last finished epoch's model.
    pub checkpoint_dir: Option<std::path::PathBuf>,
}

impl Default for TrainOptions {
    fn default() -> Self {
        Self {
            epochs: 8,
            batch_size: 32,
            batch_tokens: 16_384,
            learning_rate: 3e-3,
            weight_decay: 1e-4,
            seed: 0,
            valid_fraction: 0.1,
            clip_norm: 1.0,
            init_from: None,
            checkpoint_dir: None,
        }
    }
}

/// One epoch's figures, as written to `train-report.json`.
#[derive(Debug, Clone, Serialize)]
pub struct EpochReport {
    /// 1-based epoch number.
    pub epoch: usize,
    /// Mean cross-entropy over training batches.
    pub train_loss: f64,
    /// Training accuracy during the epoch.
    pub train_accuracy: f64,
    /// Cross-entropy on the held-out documents, after the epoch.
    pub valid_loss: Option<f64>,
    /// Accuracy on the held-out documents, after the epoch.
    pub valid_accuracy: Option<f64>,
    /// Wall time of the epoch.
    pub seconds: f64,
}

/// The whole run, as written to `train-report.json`.
#[derive(Debug, Clone, Serialize)]
pub struct TrainReport {
    /// Options used.
    pub options: TrainOptions,
    /// Training documents (after the held-out split).
    pub n_train: usize,
    /// Held-out documents.
    pub n_valid: usize,
    /// Per-epoch figures.
    pub epochs: Vec<EpochReport>,
}

/// Receives progress so a front end can draw it (the CLI uses an indicatif bar).
pub trait TrainProgress {
    /// An epoch of `batches` batches begins.
    fn start_epoch(&mut self, epoch: usize, batches: usize);
    /// A batch finished with this running mean loss and accuracy.
    fn batch(&mut self, running_loss: f64, running_accuracy: f64);
    /// The epoch finished.
    fn end_epoch(&mut self, report: &EpochReport);
}

/// Ignores progress (tests, libraries).
pub struct Quiet;

impl TrainProgress for Quiet {
    fn start_epoch(&mut self, _: usize, _: usize) {}
    fn batch(&mut self, _: f64, _: f64) {}
    fn end_epoch(&mut self, _: &EpochReport) {}
}

/// Scales all gradients down together when their global L2 norm exceeds `max_norm`.
fn clip_grad_norm(
    vars: &[candle_core::Var],
    grads: &mut candle_core::backprop::GradStore,
    max_norm: f32,
) -> Result<()> {
    let mut sum_sq = 0.0f32;
    for var in vars {
        if let Some(g) = grads.get(var) {
            sum_sq += g.sqr()?.sum_all()?.to_scalar::<f32>()?;
        }
    }
    let norm = sum_sq.sqrt();
    if norm > max_norm && norm.is_finite() {
        let scale = f64::from(max_norm / norm);
        for var in vars {
            if let Some(g) = grads.get(var) {
                let scaled = g.affine(scale, 0.0)?;
                grads.insert(var, scaled);
            }
        }
    }
    Ok(())
}

struct Encoded {
    ids: Vec<u16>,
    label: u32,
}

/// The index of example `i`'s label among the model's labels.
fn label_index(config: &ModelConfig, i: usize, e: &Example) -> Result<usize> {
    config
        .labels
        .iter()
        .position(|l| *l == e.label)
        .ok_or_else(|| {
            ModelError::Input(format!(
                "example {} has label {:?}, not among the model's labels",
                i + 1,
                e.label
            ))
        })
}

fn encode_all(config: &ModelConfig, examples: &[Example]) -> Result<Vec<Encoded>> {
    examples
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let label = label_index(config, i, e)?;
            config
                .check_input_len(e.text.len())
                .map_err(|err| ModelError::Input(format!("example {}: {err}", i + 1)))?;
            Ok(Encoded {
                ids: tokenizer::encode(&e.text, config.padded_len(e.text.len())),
                label: label as u32,
            })
        })
        .collect()
}

/// Groups documents by padded length (so a batch is exactly what inference would see) and
/// cuts each group into batches within the size and token budgets, in a seeded order.
fn batches(docs: &[Encoded], options: &TrainOptions, rng: &mut StdRng) -> Vec<Vec<usize>> {
    let mut by_len: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for (i, d) in docs.iter().enumerate() {
        by_len.entry(d.ids.len()).or_default().push(i);
    }
    let mut out = Vec::new();
    for (len, mut group) in by_len {
        group.shuffle(rng);
        let size = (options.batch_tokens / len).clamp(1, options.batch_size.max(1));
        out.extend(group.chunks(size).map(<[usize]>::to_vec));
    }
    out.shuffle(rng);
    out
}

fn batch_tensors(docs: &[Encoded], batch: &[usize]) -> Result<(Tensor, Tensor)> {
    let t0 = docs[batch[0]].ids.len();
    let ids: Vec<u32> = batch
        .iter()
        .flat_map(|&i| docs[i].ids.iter().map(|&t| u32::from(t)))
        .collect();
    let labels: Vec<u32> = batch.iter().map(|&i| docs[i].label).collect();
    Ok((
        Tensor::from_vec(ids, (batch.len(), t0), &Device::Cpu)?,
        Tensor::from_vec(labels, batch.len(), &Device::Cpu)?,
    ))
}

/// Cross-entropy and correctness of one document under the inference kernels.
fn score(model: &TfilmModel, example: &Example) -> Result<(f64, bool)> {
    let prediction = model.forward(&example.text)?;
    let label = model
        .config
        .labels
        .iter()
        .position(|l| *l == example.label)
        .unwrap_or(usize::MAX);
    let p = prediction.probabilities.get(label).copied().unwrap_or(0.0);
    Ok((
        -(f64::from(p).max(1e-12)).ln(),
        prediction.label_index == label,
    ))
}

/// Trains a model of `config` on `examples`, holding out `valid_fraction` of them.
///
/// Returns the network (save it with [`TrainNet::save`]) and the report. Deterministic for
/// a seed on a given machine.
pub fn train(
    config: &ModelConfig,
    examples: &[Example],
    options: &TrainOptions,
    progress: &mut dyn TrainProgress,
) -> Result<(TrainNet, TrainReport)> {
    config.validate()?;
    let mut rng = StdRng::seed_from_u64(options.seed);
    let mut order: Vec<usize> = (0..examples.len()).collect();
    order.shuffle(&mut rng);
    let n_valid =
        ((examples.len() as f64) * options.valid_fraction.clamp(0.0, 0.5)).round() as usize;
    let valid: Vec<Example> = order[..n_valid]
        .iter()
        .map(|&i| examples[i].clone())
        .collect();
    let train_set: Vec<Example> = order[n_valid..]
        .iter()
        .map(|&i| examples[i].clone())
        .collect();
    if train_set.is_empty() {
        return Err(ModelError::Input(
            "no training documents left after the held-out split".into(),
        ));
    }
    let docs = encode_all(config, &train_set)?;
    encode_all(config, &valid)?;

    let net = match &options.init_from {
        Some(dir) => TrainNet::from_model_dir(config, dir, options.seed)?,
        None => TrainNet::init(config, options.seed)?,
    };
    let mut optimizer = AdamW::new(
        net.vars(),
        ParamsAdamW {
            lr: options.learning_rate,
            weight_decay: options.weight_decay,
            ..ParamsAdamW::default()
        },
    )?;
    let total_steps: usize = (0..options.epochs.max(1))
        .map(|_| batches(&docs, options, &mut StdRng::seed_from_u64(0)).len())
        .sum();
    if let Some(dir) = &options.checkpoint_dir {
        // The config never changes during a run: write it once, the weights every epoch.
        std::fs::create_dir_all(dir).map_err(|cause| ModelError::Io {
            path: dir.clone(),
            cause,
        })?;
        config.save(&dir.join(crate::CONFIG_FILE))?;
    }
    let mut step = 0usize;
    let mut report = TrainReport {
        options: options.clone(),
        n_train: train_set.len(),
        n_valid: valid.len(),
        epochs: Vec::new(),
    };
    for epoch in 1..=options.epochs {
        let started = Instant::now();
        let plan = batches(&docs, options, &mut rng);
        progress.start_epoch(epoch, plan.len());
        let (mut loss_sum, mut correct, mut seen) = (0.0, 0usize, 0usize);
        for batch in &plan {
            // Cosine decay to a tenth of the peak rate.
            let progress_frac = step as f64 / total_steps.max(1) as f64;
            let lr = options.learning_rate
                * (0.1 + 0.9 * 0.5 * (1.0 + (std::f64::consts::PI * progress_frac).cos()));
            optimizer.set_learning_rate(lr);
            let (ids, labels) = batch_tensors(&docs, batch)?;
            let logits = net.forward(&ids)?;
            let loss = candle_nn::loss::cross_entropy(&logits, &labels)?;
            let mut grads = loss.backward()?;
            clip_grad_norm(&net.vars(), &mut grads, options.clip_norm)?;
            optimizer.step(&grads)?;
            step += 1;
            let predicted = logits.argmax(D::Minus1)?.to_vec1::<u32>()?;
            let truth = labels.to_vec1::<u32>()?;
            correct += predicted.iter().zip(&truth).filter(|(p, t)| p == t).count();
            loss_sum += f64::from(loss.to_scalar::<f32>()?) * batch.len() as f64;
            seen += batch.len();
            progress.batch(loss_sum / seen as f64, correct as f64 / seen as f64);
        }
        let (valid_loss, valid_accuracy) = if valid.is_empty() {
            (None, None)
        } else {
            let model = TfilmModel {
                config: config.clone(),
                weights: net.to_weights()?,
            };
            let scores: Vec<(f64, bool)> = valid
                .iter()
                .map(|e| score(&model, e))
                .collect::<Result<_>>()?;
            let n = scores.len() as f64;
            (
                Some(scores.iter().map(|s| s.0).sum::<f64>() / n),
                Some(scores.iter().filter(|s| s.1).count() as f64 / n),
            )
        };
        let epoch_report = EpochReport {
            epoch,
            train_loss: loss_sum / seen.max(1) as f64,
            train_accuracy: correct as f64 / seen.max(1) as f64,
            valid_loss,
            valid_accuracy,
            seconds: started.elapsed().as_secs_f64(),
        };
        if let Some(dir) = &options.checkpoint_dir {
            net.save(&dir.join(crate::WEIGHTS_FILE))?;
        }
        progress.end_epoch(&epoch_report);
        report.epochs.push(epoch_report);
    }
    Ok((net, report))
}

/// Scores a model on labelled documents with the inference kernels.
pub fn evaluate(model: &TfilmModel, examples: &[Example]) -> Result<super::metrics::Evaluation> {
    let pairs: Vec<(usize, usize)> = examples
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let truth = label_index(&model.config, i, e)?;
            Ok((truth, model.forward(&e.text)?.label_index))
        })
        .collect::<Result<_>>()?;
    Ok(super::metrics::Evaluation::from_pairs(
        &model.config.labels,
        pairs,
    ))
}
