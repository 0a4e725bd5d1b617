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

use anyhow::{Context, Result};
use seqless_coordinator::Trace;
use seqless_cost::format_count as thousands;
use seqless_cost::{CostArgs, FullCost, Pricing, UsageSummary, paper_cost, summarise};

/// Reads a trace file (see [`Trace::read_many`]) and summarises its usage.
fn read_usage(path: &Path) -> Result<UsageSummary> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading trace {}", path.display()))?;
    let usage: Vec<_> = Trace::read_many(&text)
        .with_context(|| format!("trace {}", path.display()))?
        .iter()
        .map(Trace::usage)
        .collect();
    summarise(&usage).with_context(|| format!("summarising trace {}", path.display()))
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
    let measured = args.trace.as_deref().map(read_usage).transpose()?;
    let input = args.input(&pricing, measured.as_ref())?;
    let source = match (&args.trace, &measured) {
        (Some(path), Some(summary)) => {
            if summary.cold_starts > 0 && args.cold_start_fraction.is_none() {
                eprintln!(
                    "note: {} of {} invocations in the trace were cold starts; that fraction is applied \
                     to all {} queries. Pass --cold-start-fraction to model warm traffic.",
                    summary.cold_starts,
                    summary.invocations,
                    thousands(args.queries)
                );
            }
            format!(
                "trace {}: {} quer{}, {} invocations, {} cold",
                path.display(),
                summary.queries,
                if summary.queries == 1 { "y" } else { "ies" },
                summary.invocations,
                summary.cold_starts
            )
        }
        _ => "--stage flags".to_string(),
    };
    let cost = FullCost::compute(&pricing, &input)?;
    let comparison = args.comparison(&pricing, &cost)?;
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
