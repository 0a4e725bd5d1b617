//! `seqless classify`: one text through the model.

use seqless_coordinator::BatchPolicy;
use std::io::Read;

use anyhow::{Context, Result};
use seqless_coordinator::{StageGroup, Trace};
use seqless_model::{Prediction, TfilmModel};
use seqless_plan::{PlanKind, Splits};

use super::exec::Caller;
use super::usage;
use crate::cli::{ClassifyArgs, Mode};

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
        None => usage!("give a TEXT, --file PATH, or - to read standard input"),
    }
}

/// The JSON form of a prediction, shared by every mode: probabilities keyed by label, as the
/// HTTP API answers; logits stay an array in label order, which `cost --trace` reads.
pub fn prediction_json(prediction: &Prediction, labels: &[String]) -> serde_json::Value {
    let probabilities: serde_json::Map<String, serde_json::Value> = labels
        .iter()
        .cloned()
        .zip(prediction.probabilities.iter().map(|&p| p.into()))
        .collect();
    serde_json::json!({
        "label": prediction.label,
        "labels": labels,
        "logits": prediction.logits,
        "probabilities": probabilities,
        "padded_len": prediction.padded_len,
    })
}

/// The plan and the conv functions per layer that ran, and why they differ from `--splits`.
fn splits_line(trace: &Trace, asked: Splits, planned: bool) -> String {
    let plan = trace.plan.as_str();
    if planned {
        let splits: Vec<String> = trace.splits.iter().map(usize::to_string).collect();
        return format!(
            "plan {plan}, conv functions per layer: {} (the planner's pick for this length, from --plan-calibration)",
            splits.join(", ")
        );
    }
    if trace.plan == PlanKind::Resident {
        let ran = trace.splits.first().copied().unwrap_or(0);
        let why = match asked {
            Splits::Fixed(n) if ran < n => format!(
                " (fewer than --splits {n}: each split's rows must be whole blocks of every layer, and a query's splits must fit, with a serial stage and a hedge, in --function-slots)"
            ),
            _ => String::new(),
        };
        return format!("plan resident, splits: {ran}, each one function through every layer{why}");
    }
    let ran: Vec<String> = trace.splits.iter().map(usize::to_string).collect();
    let why = match asked {
        Splits::Fixed(n) if trace.splits.iter().any(|&s| s != n) => format!(
            " (fewer than --splits {n} where a layer has fewer blocks at this length: a split takes whole blocks)"
        ),
        Splits::Fixed(_) => String::new(),
        Splits::Auto => " (--splits auto: one per --min-rows-per-split input rows, at most --max-splits and at most one per block, more where a split would not fit in --memory-mb)".into(),
    };
    format!(
        "plan {plan}, conv functions per layer: {}{why}",
        ran.join(", ")
    )
}

/// One line of the trace per stage kind and layer: how many ran, the slowest, and what
/// they moved.
fn group_line(g: &StageGroup) -> String {
    format!(
        "  {:<10} layer {}: {} invocation{}, slowest {:.1} ms, {} bytes through the store{}",
        g.stage.as_str(),
        g.layer,
        g.invocations,
        if g.invocations == 1 { "" } else { "s" },
        g.slowest_ms,
        g.store_bytes,
        inline_suffix(g.inline_bytes)
    )
}

/// `, N bytes inline` when values travelled inside invocations, else nothing.
fn inline_suffix(bytes: u64) -> String {
    match bytes {
        0 => String::new(),
        n => format!(", {n} bytes inline"),
    }
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
    let (prediction, trace) = match args.exec.mode {
        Mode::Serverless => {
            let rt = super::exec::runtime()?;
            let config = model.config.clone();
            let exec = &args.exec;
            let result = rt.block_on(async {
                let coordinator = exec
                    .serverless
                    .coordinator(
                        &args.model,
                        config,
                        &exec.plan,
                        Caller::Command,
                        BatchPolicy::Off,
                    )
                    .await?;
                anyhow::Ok(coordinator.classify(&input).await?)
            })?;
            (result.prediction, Some(result.trace))
        }
        Mode::Monolithic => (model.forward(&input)?, None),
    };
    if args.json {
        let mut json = prediction_json(&prediction, &model.config.labels);
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
            let planned = args.exec.serverless.chooser.calibration.is_some();
            println!("{}", splits_line(t, args.exec.plan.splits, planned));
            for g in t.stage_groups() {
                println!("{}", group_line(&g));
            }
            let inline = inline_suffix(t.inline_bytes);
            println!(
                "serverless: {} invocations, {:.1} ms, {} bytes moved ({} serial){inline}, {:.6} GB-s, ${:.9}",
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
