//! `seqless train`: fit a model to a data file and write it as a model directory.

use std::path::Path;

use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use seqless_model::train::{
    EpochReport, TrainNet, TrainOptions, TrainProgress, load_examples, train,
};
use seqless_model::{CONFIG_FILE, ModelConfig, WEIGHTS_FILE};

use super::usage;
use crate::cli::{InitArgs, TrainArgs};

/// Draws one indicatif bar per epoch with the running loss and accuracy.
struct Bar {
    bar: Option<ProgressBar>,
}

impl TrainProgress for Bar {
    fn start_epoch(&mut self, epoch: usize, batches: usize) {
        let bar = ProgressBar::new(batches as u64);
        bar.set_style(
            ProgressStyle::with_template(
                "epoch {prefix} [{bar:30}] {pos}/{len} {msg} ({elapsed}, eta {eta})",
            )
            .expect("valid template")
            .progress_chars("=> "),
        );
        bar.set_prefix(epoch.to_string());
        self.bar = Some(bar);
    }

    fn batch(&mut self, loss: f64, accuracy: f64) {
        if let Some(bar) = &self.bar {
            bar.set_message(format!("loss {loss:.4} acc {accuracy:.3}"));
            bar.inc(1);
        }
    }

    fn end_epoch(&mut self, r: &EpochReport) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
        let valid = match (r.valid_loss, r.valid_accuracy) {
            (Some(l), Some(a)) => format!("   valid loss {l:.4} acc {a:.4}"),
            _ => String::new(),
        };
        eprintln!(
            "epoch {}: train loss {:.4} acc {:.4}{valid}   ({:.1} s)",
            r.epoch, r.train_loss, r.train_accuracy, r.seconds
        );
    }
}

/// Refuses an `--out` that cannot become a model directory: an existing file, or a path under
/// one. Checked before anything is read or written, so a refusal leaves no files.
fn check_out_dir(out: &Path) -> Result<()> {
    let mut existing = Some(out);
    while let Some(path) = existing {
        if path.as_os_str().is_empty() {
            break;
        }
        if path.exists() {
            if !path.is_dir() {
                usage!(
                    "--out {}: {} is a file, not a directory; give a new or existing directory",
                    out.display(),
                    path.display()
                );
            }
            break;
        }
        existing = path.parent();
    }
    Ok(())
}

/// Refuses training options that cannot train: every one is checked before the data is
/// read or a worker starts, so a long run never fails late on a flag.
fn check_train_options(args: &TrainArgs) -> Result<()> {
    if !(args.lr.is_finite() && args.lr > 0.0) {
        usage!(
            "--lr {}: the learning rate must be a finite number above 0",
            args.lr
        );
    }
    if !(args.weight_decay.is_finite() && args.weight_decay >= 0.0) {
        usage!(
            "--weight-decay {}: must be a finite number of at least 0",
            args.weight_decay
        );
    }
    if args.batch_size == 0 {
        usage!("--batch-size 0: a batch needs at least 1 document");
    }
    if args.epochs == 0 {
        usage!("--epochs 0: training needs at least 1 epoch");
    }
    if !(args.valid_fraction > 0.0 && args.valid_fraction < 1.0) {
        usage!(
            "--valid-fraction {}: must be above 0 and below 1 (some data to validate on, some to train on)",
            args.valid_fraction
        );
    }
    if let Some(dir) = &args.init_from
        && !dir.join(CONFIG_FILE).is_file()
    {
        usage!(
            "--init-from {}: no {CONFIG_FILE} there; give a model directory",
            dir.display()
        );
    }
    // The architecture flags, with stand-in labels: the real ones come from the data.
    args.arch.config(vec!["a".into(), "b".into()])?;
    if args.threads == Some(0) {
        usage!("--threads 0: give at least 1, or leave it out for all cores");
    }
    check_out_dir(&args.out)
}

/// Writes a model directory: config and weights.
fn write_model_dir(dir: &Path, config: &ModelConfig, net: &TrainNet) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    config.save(&dir.join(CONFIG_FILE))?;
    net.save(&dir.join(WEIGHTS_FILE))?;
    Ok(())
}

/// Runs `seqless init`: an untrained model with training's initialisation.
pub fn init(args: InitArgs) -> Result<()> {
    let mut labels = args.labels.clone();
    labels.sort();
    labels.dedup();
    if labels.len() < 2 {
        usage!("--labels needs at least two distinct labels");
    }
    check_out_dir(&args.out)?;
    let config = args.arch.config(labels)?;
    let net = TrainNet::init(&config, args.seed)?;
    write_model_dir(&args.out, &config, &net)?;
    eprintln!(
        "wrote an untrained model ({} parameters) to {}",
        seqless_cost::format_count(
            seqless_model::weights::expected_tensors(&config)
                .iter()
                .map(|(_, shape)| shape.iter().product::<usize>())
                .sum::<usize>() as u64
        ),
        args.out.display()
    );
    Ok(())
}

/// Runs `seqless train`.
pub fn run(args: TrainArgs) -> Result<()> {
    check_train_options(&args)?;
    let examples = load_examples(&args.data, true)?;
    let mut labels: Vec<String> = examples.iter().map(|e| e.label.clone()).collect();
    labels.sort();
    labels.dedup();
    let config = args.arch.config(labels)?;
    let options = TrainOptions {
        epochs: args.epochs,
        batch_size: args.batch_size,
        learning_rate: args.lr,
        weight_decay: args.weight_decay,
        seed: args.seed,
        valid_fraction: args.valid_fraction,
        init_from: args.init_from.clone(),
        checkpoint_dir: Some(args.out.clone()),
        ..TrainOptions::default()
    };
    eprintln!(
        "training on {} documents, {} labels, layers {}, {} epochs",
        examples.len(),
        config.labels.len(),
        args.arch.layers,
        options.epochs
    );
    let pool = super::thread_pool(args.threads)?;
    let (net, report) =
        pool.install(|| train(&config, &examples, &options, &mut Bar { bar: None }))?;
    write_model_dir(&args.out, &config, &net)?;
    let report_path = args.out.join("train-report.json");
    std::fs::write(&report_path, serde_json::to_string_pretty(&report)? + "\n")
        .with_context(|| format!("writing {}", report_path.display()))?;
    eprintln!("wrote {}", args.out.display());
    Ok(())
}
