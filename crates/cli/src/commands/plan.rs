//! `seqless plan`: every plan kind, split count and memory size for a query of a given
//! length, with predicted latency and cost (`seqless_sim::planner`), the Pareto frontier,
//! and the pick for an objective within an SLO.

use anyhow::{Context, Result};
use seqless_sim::Calibration;
use seqless_sim::planner::{Candidate, SearchSpace, pick, search};

use super::simulate::load_model_config;
use super::usage;
use crate::cli::PlannerArgs;

pub fn run(args: PlannerArgs) -> Result<()> {
    if args.bytes == 0 {
        usage!("--bytes 0: a query has at least 1 byte");
    }
    if let Some(slo) = args.slo_ms.filter(|s| !(s.is_finite() && *s > 0.0)) {
        usage!("--slo-ms {slo}: give a positive number of milliseconds");
    }
    let config = load_model_config(&args.model)?;
    config
        .check_input_len(args.bytes)
        .map_err(|e| super::UsageError(format!("--bytes {}: {e}", args.bytes)))?;
    let calibration = match &args.calibration {
        Some(path) => Calibration::load(path)
            .with_context(|| format!("loading calibration {}", path.display()))?,
        None => Calibration::default(),
    };
    let pricing = seqless_cost::Pricing::load_or_default(args.pricing.as_deref())?;
    let space = SearchSpace {
        plans: args.plans.clone(),
        splits: args.splits.clone(),
        memory_mb: args.memory_mb.clone(),
        host_cores: args.host_cores,
    };
    let candidates = search(
        &config,
        args.bytes,
        &calibration,
        &space,
        &pricing,
        args.arch,
    );
    let chosen = pick(&candidates, args.objective, args.slo_ms)
        .map_err(|e| super::UsageError(e.to_string()))?;
    if args.json {
        let json = serde_json::json!({
            "bytes": args.bytes,
            "objective": args.objective,
            "slo_ms": args.slo_ms,
            "calibration": args.calibration,
            "candidates": candidates,
            "pick": chosen,
        });
        println!("{}", serde_json::to_string_pretty(&json)?);
        return Ok(());
    }
    match &args.calibration {
        Some(path) => println!("calibration: {}", path.display()),
        None => println!(
            "calibration: the simulator's placeholder defaults; measure one with `seqless bench calibrate`"
        ),
    }
    println!(
        "predicted on a warm, idle deployment; every transfer through the store (inline payloads are not built); memory above {} MB is not assumed to speed compute (unvalidated here)",
        calibration.cpu_reference_mb
    );
    println!("{}", header());
    for c in &candidates {
        println!("{}", line(c));
    }
    if let Some(layer_wise) = candidates
        .iter()
        .find(|c| c.feasible() && c.is_layer_wise())
    {
        println!(
            "layer-wise baseline (one function per layer, no sequence splits, as Gillis): {:.1} ms, ${:.9} per query at {} MB",
            layer_wise.latency_ms, layer_wise.cost_usd, layer_wise.memory_mb
        );
    }
    let slo = args
        .slo_ms
        .map_or(String::new(), |s| format!(" within {s} ms"));
    match chosen {
        Some(c) => println!(
            "pick ({:?}{slo}): {} plan, {} splits, {} MB: {:.1} ms, ${:.9} per query",
            args.objective,
            c.plan.as_str(),
            c.splits_used,
            c.memory_mb,
            c.latency_ms,
            c.cost_usd
        ),
        None => println!("no configuration can run this query (all refused above)"),
    }
    Ok(())
}

fn header() -> String {
    format!(
        "{:>9} {:>6} {:>6} {:>11} {:>13} {:>8} {:>9} {:>10}  frontier",
        "plan", "splits", "MB", "latency_ms", "usd/query", "requests", "GB-s", "store_MB"
    )
}

fn line(c: &Candidate) -> String {
    let head = format!(
        "{:>9} {:>6} {:>6}",
        c.plan.as_str(),
        c.splits_used.max(c.splits),
        c.memory_mb
    );
    match &c.refused {
        Some(why) => format!("{head}  refused: {why}"),
        None => format!(
            "{head} {:>11.1} {:>13.9} {:>8} {:>9.4} {:>10.2}  {}",
            c.latency_ms,
            c.cost_usd,
            c.requests,
            c.gb_s,
            c.store_bytes as f64 / 1e6,
            if c.pareto { "*" } else { "" }
        ),
    }
}
