//! `seqless cost`: the paper's arithmetic (`--paper`), or the fuller cost model of
//! docs/cost-model.md over a period of operation, with the break-even utilisation of an
//! instance.
//!
//! The full model needs each stage's invocations per query, billed duration and memory.
//! They come from a real trace (`--trace FILE`, the output of
//! `seqless classify --mode serverless --json`, one or more queries) or from `--stage`
//! flags. Everything priced by the hour (master, cache nodes, the compared instance) is
//! looked up by name in the price list (`--pricing FILE`, default: the embedded AWS
//! prices).

use std::path::Path;

use anyhow::{Context, Result, anyhow, ensure};
use seqless_coordinator::Trace;
use seqless_cost::format_count as thousands;
use seqless_cost::{
    Comparison, DEFAULT_INIT_MS, FullCost, FullCostInput, Pricing, StageUsage, paper_cost,
    summarise,
};

use super::usage;
use crate::cli::CostArgs;

/// Reads a trace file (see [`Trace::read_many`]).
fn read_traces(path: &Path) -> Result<Vec<Trace>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading trace {}", path.display()))?;
    Trace::read_many(&text).with_context(|| format!("trace {}", path.display()))
}

/// Runs `seqless cost`.
pub fn run(args: CostArgs) -> Result<()> {
    if args.paper {
        let paper = paper_cost();
        if args.json {
            println!("{}", serde_json::to_string_pretty(&paper)?);
        } else {
            print!("{}", paper.render());
        }
        return Ok(());
    }
    let pricing = Pricing::load_or_default(args.pricing.as_deref())?;
    let (mut stages, measured_init, measured_store, source) = match (
        &args.trace,
        args.stage.is_empty(),
    ) {
        (Some(path), true) => {
            let usage: Vec<_> = read_traces(path)?.iter().map(Trace::usage).collect();
            let summary = summarise(&usage)
                .with_context(|| format!("summarising trace {}", path.display()))?;
            let source = format!(
                "trace {}: {} quer{}, {} invocations, {} cold",
                path.display(),
                summary.queries,
                if summary.queries == 1 { "y" } else { "ies" },
                summary.invocations,
                summary.cold_starts
            );
            if summary.cold_starts > 0 && args.cold_start_fraction.is_none() {
                eprintln!(
                    "note: {} of {} invocations in the trace were cold starts; that fraction is applied \
                     to all {} queries. Pass --cold-start-fraction to model warm traffic.",
                    summary.cold_starts,
                    summary.invocations,
                    thousands(args.queries)
                );
            }
            (
                summary.stages,
                summary.init_ms,
                Some(summary.store_bytes_per_query),
                source,
            )
        }
        (None, false) => {
            let stages = args
                .stage
                .iter()
                .map(|s| s.parse::<StageUsage>().map_err(|e| anyhow!("--stage {e}")))
                .collect::<Result<Vec<StageUsage>>>()?;
            (stages, None, None, "--stage flags".to_string())
        }
        (Some(_), false) => usage!("give either --trace or --stage, not both"),
        (None, true) => usage!(
            "the full cost model needs per-stage usage: --trace FILE (the output of \
             `seqless classify --mode serverless --json`) or --stage NAME:INVOCATIONS:MS:MB[:COLD] \
             (repeatable); or --paper for the paper's arithmetic"
        ),
    };
    if let Some(fraction) = args.cold_start_fraction {
        ensure!(
            fraction.is_finite() && (0.0..=1.0).contains(&fraction),
            "--cold-start-fraction is {fraction}; expected a number in [0, 1]"
        );
        for s in &mut stages {
            s.cold_start_fraction = fraction;
        }
    }
    let input = FullCostInput {
        queries: args.queries,
        arch: args.arch,
        stages,
        init_ms: args.init_ms.or(measured_init).unwrap_or(DEFAULT_INIT_MS),
        cache_nodes: args.cache_nodes,
        cache_node_hourly_usd: pricing.hourly(&args.cache_node).context("--cache-node")?,
        master_hourly_usd: pricing.hourly(&args.master).context("--master")?,
        hours: args.hours,
        store_bytes_per_query: args.store_bytes_per_query.or(measured_store).unwrap_or(0),
        cross_az_fraction: args.cross_az_fraction,
        other_hourly_usd: pricing.hourly_charges(&args.hourly).context("--hourly")?,
    };
    let cost = FullCost::compute(&pricing, &input)?;
    let hourly_usd = match args.instance_hourly {
        Some(usd) => usd,
        None => pricing.hourly(&args.instance).context("--instance")?,
    };
    let comparison = Comparison::new(&cost, &args.instance, hourly_usd, args.instance_qps)
        .context("break-even against --instance-hourly / --instance-qps")?;
    if args.json {
        let mut json = serde_json::to_value(&cost)?;
        json["comparison"] = serde_json::to_value(&comparison)?;
        println!("{}", serde_json::to_string_pretty(&json)?);
        return Ok(());
    }
    println!(
        "Full cost model: {} queries in {} h, {} functions, prices {} ({})",
        thousands(cost.queries),
        cost.hours,
        cost.arch,
        pricing.region,
        pricing.prices_as_of
    );
    println!(
        "Stages from {source}; INIT {} ms per cold start\n",
        input.init_ms
    );
    print!("{}", cost.render());
    println!(
        "\nCost per million queries: ${:.4}",
        cost.cost_per_million_queries_usd
    );
    print!("{}", comparison.render());
    Ok(())
}
