//! `seqless train`: fit a model to a data file and write it as a model directory.

use std::path::Path;

use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use seqless_model::train::{
    EpochReport, InitArgs, TrainArgs, TrainNet, TrainProgress, check_out_dir, load_examples, train,
};
use seqless_model::{CONFIG_FILE, ModelConfig, WEIGHTS_FILE};

use super::usage;

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
    let options = args.options()?;
    let examples = load_examples(&args.data, true)?;
    let mut labels: Vec<String> = examples.iter().map(|e| e.label.clone()).collect();
    labels.sort();
    labels.dedup();
    let config = args.arch.config(labels)?;
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
