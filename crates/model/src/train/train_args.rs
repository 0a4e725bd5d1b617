//! `seqless train` and `seqless init` flags (features `train` and `clap`), checked and
//! turned into the [`TrainOptions`] and model directory they describe. Every check runs
//! before data is read or a worker starts, so a long run never fails late on a flag.

use std::path::{Path, PathBuf};

use clap::Args;

use super::TrainOptions;
use crate::{ArchArgs, CONFIG_FILE, ModelError, Result};

/// `seqless train`'s flags.
#[derive(Debug, Args)]
pub struct TrainArgs {
    /// Training data: JSON lines of {"text", "label"}, or CSV/TSV with a text,label header.
    #[arg(long)]
    pub data: PathBuf,
    /// Directory to write config.json, model.safetensors and train-report.json into. The
    /// model is rewritten after every epoch, so an interrupted run leaves its last one.
    #[arg(long)]
    pub out: PathBuf,
    /// The architecture to train.
    #[command(flatten)]
    pub arch: ArchArgs,
    /// Passes over the data.
    #[arg(long, default_value_t = 8)]
    pub epochs: usize,
    /// Documents per batch.
    #[arg(long, default_value_t = 32)]
    pub batch_size: usize,
    /// Peak learning rate (AdamW, cosine-decayed).
    #[arg(long, default_value_t = 3e-3, allow_negative_numbers = true)]
    pub lr: f64,
    /// AdamW weight decay.
    #[arg(long, default_value_t = 1e-4, allow_negative_numbers = true)]
    pub weight_decay: f64,
    /// Seed for initialisation, the held-out split and batch order.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Fraction of the data held out for per-epoch validation.
    #[arg(long, default_value_t = 0.1)]
    pub valid_fraction: f64,
    /// Compute threads (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Start from this model directory's weights instead of fresh ones: the same
    /// architecture, or a narrower one (fewer channels, a smaller embedding or shorter
    /// kernels; same pools and blocks), widened so training starts from its accuracy.
    #[arg(long)]
    pub init_from: Option<PathBuf>,
}

/// `seqless init`'s flags.
#[derive(Debug, Args)]
pub struct InitArgs {
    /// Directory to write config.json and model.safetensors into.
    #[arg(long)]
    pub out: PathBuf,
    /// Class labels, comma-separated.
    #[arg(long, value_delimiter = ',', required = true)]
    pub labels: Vec<String>,
    /// The architecture.
    #[command(flatten)]
    pub arch: ArchArgs,
    /// Seed of the random weights.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

impl TrainArgs {
    /// The training options the flags describe, with the model written to `--out` after
    /// every epoch; refuses any flag that cannot train.
    pub fn options(&self) -> Result<TrainOptions> {
        let init_from_ok = self
            .init_from
            .as_ref()
            .is_none_or(|dir| dir.join(CONFIG_FILE).is_file());
        let checks = [
            (
                self.lr.is_finite() && self.lr > 0.0,
                format!(
                    "--lr {}: the learning rate must be a finite number above 0",
                    self.lr
                ),
            ),
            (
                self.weight_decay.is_finite() && self.weight_decay >= 0.0,
                format!(
                    "--weight-decay {}: must be a finite number of at least 0",
                    self.weight_decay
                ),
            ),
            (
                self.batch_size > 0,
                "--batch-size 0: a batch needs at least 1 document".into(),
            ),
            (
                self.epochs > 0,
                "--epochs 0: training needs at least 1 epoch".into(),
            ),
            (
                self.valid_fraction > 0.0 && self.valid_fraction < 1.0,
                format!(
                    "--valid-fraction {}: must be above 0 and below 1 (some data to validate \
                     on, some to train on)",
                    self.valid_fraction
                ),
            ),
            (
                init_from_ok,
                format!(
                    "--init-from {}: no {CONFIG_FILE} there; give a model directory",
                    self.init_from.as_deref().unwrap_or(Path::new("")).display()
                ),
            ),
        ];
        if let Some((_, reason)) = checks.into_iter().find(|(ok, _)| !ok) {
            return Err(ModelError::Flags(reason));
        }
        // The architecture flags, with stand-in labels: the real ones come from the data.
        self.arch.config(vec!["a".into(), "b".into()])?;
        if self.threads == Some(0) {
            return Err(ModelError::Flags(
                "--threads 0: give at least 1, or leave it out for all cores".into(),
            ));
        }
        check_out_dir(&self.out)?;
        Ok(TrainOptions {
            epochs: self.epochs,
            batch_size: self.batch_size,
            learning_rate: self.lr,
            weight_decay: self.weight_decay,
            seed: self.seed,
            valid_fraction: self.valid_fraction,
            init_from: self.init_from.clone(),
            checkpoint_dir: Some(self.out.clone()),
            ..TrainOptions::default()
        })
    }
}

/// Refuses an `--out` that cannot become a model directory: an existing file, or a path
/// under one. Checked before anything is read or written, so a refusal leaves no files.
pub fn check_out_dir(out: &Path) -> Result<()> {
    let mut existing = Some(out);
    while let Some(path) = existing {
        if path.as_os_str().is_empty() {
            break;
        }
        if path.exists() {
            if !path.is_dir() {
                return Err(ModelError::Flags(format!(
                    "--out {}: {} is a file, not a directory; give a new or existing directory",
                    out.display(),
                    path.display()
                )));
            }
            break;
        }
        existing = path.parent();
    }
    Ok(())
}
