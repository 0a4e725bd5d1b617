//! `seqless classify`: one text through the model.

use std::io::Read;

use anyhow::{Context, Result, bail};
use seqless_model::{Prediction, TfilmModel};

use crate::cli::ClassifyArgs;

/// Reads the query from the argument, a file or standard input, as raw bytes.
fn read_input(args: &ClassifyArgs) -> Result<Vec<u8>> {
    if let Some(path) = &args.file {
        return std::fs::read(path).with_context(|| format!("reading {}", path.display()));
    }
    match args.text.as_deref() {
        Some("-") => {
            let mut buf = Vec::new();
            std::io::stdin()
                .read_to_end(&mut buf)
                .context("reading standard input")?;
            Ok(buf)
        }
        Some(text) => Ok(text.as_bytes().to_vec()),
        None => bail!("give a TEXT, --file PATH, or - to read standard input"),
    }
}

/// The JSON form of a prediction, shared by every mode.
pub fn prediction_json(prediction: &Prediction) -> serde_json::Value {
    serde_json::json!({
        "label": prediction.label,
        "logits": prediction.logits,
        "probabilities": prediction.probabilities,
        "padded_len": prediction.padded_len,
    })
}

/// Label and the `top` most likely labels, one per line.
pub fn render_prediction(prediction: &Prediction, labels: &[String], top: usize) -> String {
    let mut order: Vec<usize> = (0..labels.len()).collect();
    order.sort_by(|&a, &b| prediction.probabilities[b].total_cmp(&prediction.probabilities[a]));
    let mut out = format!("{}\n", prediction.label);
    for &i in order.iter().take(top.max(1)) {
        out.push_str(&format!(
            "  {:<8} {:.4}\n",
            labels[i], prediction.probabilities[i]
        ));
    }
    out
}

pub fn run(args: ClassifyArgs) -> Result<()> {
    let model = TfilmModel::load(&args.model)?;
    let input = read_input(&args)?;
    let (prediction, trace) = if args.exec.mode == "serverless" {
        let rt = super::exec::runtime()?;
        let labels = model.config.clone();
        let result = rt.block_on(async {
            let coordinator = super::exec::coordinator(&args.model, labels, &args.exec).await?;
            anyhow::Ok(coordinator.classify(&input).await?)
        })?;
        (result.prediction, Some(result.trace))
    } else {
        (model.forward(&input)?, None)
    };
    if args.json {
        let mut json = prediction_json(&prediction);
        if let Some(trace) = &trace {
            json["trace"] = serde_json::to_value(trace)?;
        }
        println!("{json}");
    } else {
        print!(
            "{}",
            render_prediction(&prediction, &model.config.labels, args.top)
        );
        if let Some(t) = &trace {
            println!(
                "serverless: {} invocations, {:.1} ms, {} bytes moved ({} serial), {:.6} GB-s, ${:.9}",
                t.invocations.len(),
                t.total_ms,
                t.bytes_moved,
                t.serial_bytes,
                t.billed_gb_s,
                t.cost_usd
            );
        }
    }
    Ok(())
}
