//! The command line, as clap types: every subcommand and flag with its help text.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Serve sequence neural networks the serverless way.
#[derive(Debug, Parser)]
#[command(name = "seqless", version, about, propagate_version = true)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Train a TFiLM classifier on a labelled data file.
    Train(TrainArgs),
    /// Score a model on a labelled data file: accuracy, macro-F1, confusion matrix.
    Eval(EvalArgs),
    /// Classify one text.
    Classify(ClassifyArgs),
    /// Measure speed.
    #[command(subcommand)]
    Bench(BenchCommand),
    /// Build data sets.
    #[command(subcommand)]
    Data(DataCommand),
}

/// `seqless train`.
#[derive(Debug, Args)]
pub struct TrainArgs {
    /// Training data: JSON lines of {"text", "label"}, or CSV/TSV with a text,label header.
    #[arg(long)]
    pub data: PathBuf,
    /// Directory to write config.json, model.safetensors and train-report.json into.
    #[arg(long)]
    pub out: PathBuf,
    /// Embedding width E.
    #[arg(long, default_value_t = 32)]
    pub embed_dim: usize,
    /// Layers as C:k:p:b,... (channels, kernel, pool, block length).
    #[arg(long, default_value = "64:5:2:8,64:3:2:8")]
    pub layers: String,
    /// FiLM form: scale (gamma only) or affine (gamma and beta).
    #[arg(long, default_value = "scale", value_parser = ["scale", "affine"])]
    pub modulation: String,
    /// LSTM gate activation.
    #[arg(long, default_value = "sigmoid", value_parser = ["sigmoid", "hard_sigmoid"])]
    pub gate: String,
    /// Longest query the trained model accepts, in bytes.
    #[arg(long, default_value_t = 1 << 20)]
    pub max_len: usize,
    /// Passes over the data.
    #[arg(long, default_value_t = 8)]
    pub epochs: usize,
    /// Documents per batch.
    #[arg(long, default_value_t = 32)]
    pub batch_size: usize,
    /// Peak learning rate (AdamW, cosine-decayed).
    #[arg(long, default_value_t = 3e-3)]
    pub lr: f64,
    /// AdamW weight decay.
    #[arg(long, default_value_t = 1e-4)]
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
}

/// `seqless eval`.
#[derive(Debug, Args)]
pub struct EvalArgs {
    /// Model directory (config.json + model.safetensors).
    #[arg(long)]
    pub model: PathBuf,
    /// Labelled data file (JSON lines, CSV or TSV).
    #[arg(long)]
    pub data: PathBuf,
    /// Print JSON instead of a report.
    #[arg(long)]
    pub json: bool,
}

/// `seqless classify`.
#[derive(Debug, Args)]
pub struct ClassifyArgs {
    /// Model directory (config.json + model.safetensors).
    #[arg(long)]
    pub model: PathBuf,
    /// Print JSON: label, logits, probabilities (in label order), padded_len.
    #[arg(long)]
    pub json: bool,
    /// Read the text from a file instead (any bytes).
    #[arg(long, conflicts_with = "text")]
    pub file: Option<PathBuf>,
    /// The text; `-` reads standard input.
    pub text: Option<String>,
    /// How many labels to show in the human output.
    #[arg(long, default_value_t = 3)]
    pub top: usize,
}

/// `seqless bench ...`.
#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Time the monolithic forward pass against the machine's GEMM throughput.
    Forward(BenchForwardArgs),
}

/// `seqless bench forward`.
#[derive(Debug, Args)]
pub struct BenchForwardArgs {
    /// Model directory.
    #[arg(long)]
    pub model: PathBuf,
    /// Input sizes in bytes, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "65536")]
    pub bytes: Vec<usize>,
    /// Timed runs per size (after one warm-up); the median is reported.
    #[arg(long, default_value_t = 5)]
    pub runs: usize,
    /// Compute threads.
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    /// Print JSON lines.
    #[arg(long)]
    pub json: bool,
}

/// `seqless data ...`.
#[derive(Debug, Subcommand)]
pub enum DataCommand {
    /// Build the language-identification data set from the lingua crates' test sentences.
    Langid(LangidArgs),
}

/// `seqless data langid`.
#[derive(Debug, Args)]
pub struct LangidArgs {
    /// Directory to write train.jsonl, test.jsonl and test-single.jsonl into.
    #[arg(long)]
    pub out: PathBuf,
    /// Seed of the sentence shuffle and document assembly (the committed model used 7).
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
}
