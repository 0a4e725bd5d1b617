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

use seqless_cost::format_count as thousands;
use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result, bail, ensure};
use seqless_cost::{FullCost, FullCostInput, Pricing, StageUsage, paper_cost};
use serde::Deserialize;

use crate::cli::CostArgs;

/// The INIT duration assumed for a cold start when neither the trace nor `--init-ms`
/// gives one: the simulator's default `cold_start_ms`, so the two tools agree.
pub const DEFAULT_INIT_MS: u64 = 250;

/// One invocation of a query trace, as `seqless classify --mode serverless --json` writes
/// it under `trace.invocations`. Only the fields the bill needs are read; the others
/// (`layer`, `split`, `duration_ms`, `compute_ms`, ...) are ignored.
#[derive(Debug, Clone, Deserialize)]
pub struct TraceInvocation {
    /// Stage kind: `conv`, `tfilm`, `head` or `classifier`.
    pub stage: String,
    /// The function's configured memory.
    pub memory_mb: u32,
    /// Billed handler duration, ms (already rounded up).
    pub billed_ms: u64,
    /// Whether the invocation started a new instance.
    #[serde(default)]
    pub cold: bool,
    /// INIT duration of a cold start, ms.
    #[serde(default)]
    pub init_ms: f64,
    /// Bytes read from the store.
    #[serde(default)]
    pub bytes_in: u64,
    /// Bytes written to the store.
    #[serde(default)]
    pub bytes_out: u64,
}

/// One query's trace: its invocations and, when the coordinator recorded it, the total
/// store traffic (input upload included).
#[derive(Debug, Clone, Deserialize)]
pub struct QueryTrace {
    /// Every invocation of the query.
    pub invocations: Vec<TraceInvocation>,
    /// Bytes through the store, upload included.
    #[serde(default)]
    pub bytes_moved: Option<u64>,
}

impl QueryTrace {
    /// Store bytes of the query: `bytes_moved` if recorded, else the functions' reads and
    /// writes.
    fn store_bytes(&self) -> u64 {
        self.bytes_moved.unwrap_or_else(|| {
            self.invocations
                .iter()
                .map(|i| i.bytes_in + i.bytes_out)
                .sum()
        })
    }
}

/// What a trace file says about the average query, ready for [`FullCostInput`].
#[derive(Debug, Clone, PartialEq)]
pub struct TraceSummary {
    /// Queries in the file.
    pub queries: usize,
    /// Invocations in the file.
    pub invocations: usize,
    /// Cold starts in the file.
    pub cold_starts: usize,
    /// Per (stage, memory) usage per query; cold-start fractions as measured.
    pub stages: Vec<StageUsage>,
    /// Mean INIT of the cold invocations, rounded up, if any were cold.
    pub init_ms: Option<u64>,
    /// Mean store bytes per query.
    pub store_bytes_per_query: u64,
}

/// Reads a trace file: one JSON document or several (JSON lines, or documents one after
/// another, or one JSON array). Each document is the output of `seqless classify --json`
/// (the trace under `trace`) or a bare trace (with `invocations` at the top).
pub fn read_traces(path: &Path) -> Result<Vec<QueryTrace>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading trace {}", path.display()))?;
    let mut docs = Vec::new();
    for value in serde_json::Deserializer::from_str(&text).into_iter::<serde_json::Value>() {
        let value = value.with_context(|| format!("trace {} is not valid JSON", path.display()))?;
        match value {
            serde_json::Value::Array(items) => docs.extend(items),
            other => docs.push(other),
        }
    }
    ensure!(
        !docs.is_empty(),
        "trace {} holds no query; expected the output of `seqless classify --mode serverless --json`",
        path.display()
    );
    docs.iter()
        .enumerate()
        .map(|(n, doc)| {
            let trace = doc.get("trace").unwrap_or(doc);
            QueryTrace::deserialize(trace).with_context(|| {
                format!(
                    "trace {}, query {}: not a seqless trace (expected `trace.invocations` as \
                     written by `seqless classify --mode serverless --json`)",
                    path.display(),
                    n + 1
                )
            })
        })
        .collect()
}

/// Averages traces into per-stage usage. Stages are grouped by kind and memory size,
/// named by kind alone unless one kind ran at several memory sizes (then `kind@MB`).
pub fn summarise(traces: &[QueryTrace]) -> Result<TraceSummary> {
    ensure!(!traces.is_empty(), "no query in the trace");
    let queries = traces.len();
    #[derive(Default)]
    struct Acc {
        count: u64,
        billed_ms: u64,
        cold: u64,
    }
    let mut groups: BTreeMap<(String, u32), Acc> = BTreeMap::new();
    let mut init_sum = 0.0;
    let mut cold_starts = 0usize;
    let mut invocations = 0usize;
    for inv in traces.iter().flat_map(|t| &t.invocations) {
        ensure!(
            inv.init_ms.is_finite() && inv.init_ms >= 0.0,
            "trace invocation of stage {} has init_ms = {}; expected a finite number >= 0",
            inv.stage,
            inv.init_ms
        );
        invocations += 1;
        let acc = groups
            .entry((inv.stage.clone(), inv.memory_mb))
            .or_default();
        acc.count += 1;
        acc.billed_ms += inv.billed_ms;
        if inv.cold {
            acc.cold += 1;
            cold_starts += 1;
            init_sum += inv.init_ms;
        }
    }
    ensure!(invocations > 0, "the trace has no invocations");
    let mut per_kind: BTreeMap<&str, usize> = BTreeMap::new();
    for (kind, _) in groups.keys() {
        *per_kind.entry(kind.as_str()).or_default() += 1;
    }
    let stages = groups
        .iter()
        .map(|((kind, memory_mb), acc)| StageUsage {
            stage: if per_kind[kind.as_str()] > 1 {
                format!("{kind}@{memory_mb}MB")
            } else {
                kind.clone()
            },
            memory_mb: *memory_mb,
            invocations_per_query: acc.count as f64 / queries as f64,
            billed_ms: acc.billed_ms as f64 / acc.count as f64,
            cold_start_fraction: acc.cold as f64 / acc.count as f64,
        })
        .collect();
    let store_total: u64 = traces.iter().map(QueryTrace::store_bytes).sum();
    Ok(TraceSummary {
        queries,
        invocations,
        cold_starts,
        stages,
        init_ms: (cold_starts > 0).then(|| (init_sum / cold_starts as f64).ceil() as u64),
        store_bytes_per_query: (store_total as f64 / queries as f64).round() as u64,
    })
}

/// Parses `--stage NAME:INVOCATIONS:MS:MB[:COLD]`: the stage name, invocations per query,
/// mean billed ms per invocation, memory in MB and, optionally, the fraction of
/// invocations that start cold (default 0).
pub fn parse_stage(spec: &str) -> Result<StageUsage> {
    let parts: Vec<&str> = spec.split(':').collect();
    ensure!(
        (4..=5).contains(&parts.len()) && !parts[0].is_empty(),
        "--stage {spec:?}: expected NAME:INVOCATIONS:MS:MB[:COLD], e.g. conv:8:50:2048:0.01"
    );
    let number = |i: usize, what: &str| -> Result<f64> {
        let v: f64 = parts[i]
            .parse()
            .with_context(|| format!("--stage {spec:?}: {what} {:?} is not a number", parts[i]))?;
        ensure!(
            v.is_finite() && v >= 0.0,
            "--stage {spec:?}: {what} is {v}; expected a finite number >= 0"
        );
        Ok(v)
    };
    let memory_mb: u32 = parts[3].parse().with_context(|| {
        format!(
            "--stage {spec:?}: memory {:?} is not a whole number of MB",
            parts[3]
        )
    })?;
    ensure!(
        memory_mb > 0,
        "--stage {spec:?}: memory must be at least 1 MB"
    );
    let cold_start_fraction = if parts.len() == 5 {
        number(4, "cold-start fraction")?
    } else {
        0.0
    };
    ensure!(
        cold_start_fraction <= 1.0,
        "--stage {spec:?}: cold-start fraction is {cold_start_fraction}; expected a number in [0, 1]"
    );
    Ok(StageUsage {
        stage: parts[0].to_string(),
        memory_mb,
        invocations_per_query: number(1, "invocations per query")?,
        billed_ms: number(2, "billed ms")?,
        cold_start_fraction,
    })
}

/// Sums `--hourly NAME[:COUNT]` charges, each priced by name in the price list.
pub fn other_hourly_usd(pricing: &Pricing, specs: &[String]) -> Result<f64> {
    specs.iter().try_fold(0.0, |sum, spec| {
        let (name, count) = match spec.split_once(':') {
            Some((name, count)) => {
                let count: f64 = count
                    .parse()
                    .ok()
                    .filter(|c: &f64| c.is_finite() && *c >= 0.0)
                    .with_context(|| {
                        format!("--hourly {spec:?}: count {count:?} is not a number >= 0")
                    })?;
                (name, count)
            }
            None => (spec.as_str(), 1.0),
        };
        let hourly = pricing
            .hourly(name)
            .with_context(|| format!("--hourly {spec:?}"))?;
        Ok(sum + hourly * count)
    })
}

/// Loads `--pricing FILE`, or the embedded default prices.
pub fn load_pricing(path: Option<&Path>) -> Result<Pricing> {
    match path {
        Some(path) => {
            Pricing::load(path).with_context(|| format!("loading prices from {}", path.display()))
        }
        None => Ok(Pricing::default()),
    }
}

/// The instance the serverless bill is compared with.
#[derive(Debug, Clone, PartialEq)]
struct Comparison {
    instance: String,
    hourly_usd: f64,
    qps: f64,
    break_even_utilisation: f64,
    crossover_qps: Option<f64>,
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
    let pricing = load_pricing(args.pricing.as_deref())?;
    let (mut stages, measured_init, measured_store, source) = match (
        &args.trace,
        args.stage.is_empty(),
    ) {
        (Some(path), true) => {
            let summary = summarise(&read_traces(path)?)
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
                .map(|s| parse_stage(s))
                .collect::<Result<Vec<_>>>()?;
            (stages, None, None, "--stage flags".to_string())
        }
        (Some(_), false) => bail!("give either --trace or --stage, not both"),
        (None, true) => bail!(
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
        other_hourly_usd: other_hourly_usd(&pricing, &args.hourly)?,
    };
    let cost = FullCost::compute(&pricing, &input)?;
    let hourly_usd = match args.instance_hourly {
        Some(usd) => usd,
        None => pricing.hourly(&args.instance).context("--instance")?,
    };
    let comparison = Comparison {
        instance: args.instance.clone(),
        hourly_usd,
        qps: args.instance_qps,
        break_even_utilisation: cost
            .break_even_utilisation(hourly_usd, args.instance_qps)
            .context("break-even against --instance-hourly / --instance-qps")?,
        crossover_qps: cost.crossover_qps(hourly_usd),
    };
    if args.json {
        let mut json = serde_json::to_value(&cost)?;
        json["comparison"] = serde_json::json!({
            "instance": comparison.instance,
            "instance_hourly_usd": comparison.hourly_usd,
            "instance_qps": comparison.qps,
            "break_even_utilisation": Some(comparison.break_even_utilisation).filter(|u| u.is_finite()),
            "crossover_qps": comparison.crossover_qps,
        });
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
    print!("{}", render_comparison(&comparison));
    Ok(())
}

/// The break-even lines under the table.
fn render_comparison(c: &Comparison) -> String {
    let instance_per_million = c.hourly_usd / (c.qps * 3600.0) * 1e6;
    let mut out = format!(
        "Against {} (${}/h, {} q/s at full use: ${:.4} per million queries at 100%):\n",
        c.instance, c.hourly_usd, c.qps, instance_per_million
    );
    let u = c.break_even_utilisation;
    if u.is_infinite() {
        out += "  break-even utilisation: none (serverless costs nothing at this volume)\n";
    } else if u >= 1.0 {
        out += &format!(
            "  break-even utilisation: {:.1}%: serverless is cheaper per query even at full use\n",
            u * 100.0
        );
    } else {
        out += &format!(
            "  break-even utilisation: {:.2}%: below it serverless is cheaper per query, above it the instance\n",
            u * 100.0
        );
    }
    match c.crossover_qps {
        Some(qps) => {
            out += &format!(
                "  hourly bills equal at a steady {qps:.1} q/s (serverless cheaper below)\n"
            )
        }
        None => {
            out += "  hourly bills never equal: the master and cache alone cost at least the instance\n"
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stage_flags_parse_and_refuse_clearly() {
        let s = parse_stage("conv:8:50:2048:0.01").unwrap();
        assert_eq!(s.stage, "conv");
        assert_eq!(s.memory_mb, 2048);
        assert_eq!(s.invocations_per_query, 8.0);
        assert_eq!(s.billed_ms, 50.0);
        assert_eq!(s.cold_start_fraction, 0.01);
        assert_eq!(
            parse_stage("head:1:5:512").unwrap().cold_start_fraction,
            0.0
        );
        for bad in [
            "conv",
            "conv:8:50",
            "conv:x:50:1024",
            "conv:8:50:0",
            "conv:8:50:1024:2",
            ":1:1:1",
        ] {
            let err = parse_stage(bad).unwrap_err().to_string();
            assert!(err.contains("--stage"), "{bad}: {err}");
        }
    }

    #[test]
    fn hourly_charges_are_priced_by_name_and_count() {
        let pricing = Pricing::default();
        let endpoint = pricing.hourly("vpc-interface-endpoint-az").unwrap();
        let secret = pricing.hourly("secretsmanager-secret").unwrap();
        let specs = [
            "vpc-interface-endpoint-az:2".to_owned(),
            "secretsmanager-secret".to_owned(),
        ];
        let sum = other_hourly_usd(&pricing, &specs).unwrap();
        assert!((sum - (2.0 * endpoint + secret)).abs() < 1e-12);
        assert_eq!(other_hourly_usd(&pricing, &[]).unwrap(), 0.0);
        for bad in [
            "nat:1",
            "vpc-interface-endpoint-az:x",
            "vpc-interface-endpoint-az:-1",
        ] {
            let err = format!(
                "{:#}",
                other_hourly_usd(&pricing, &[bad.to_owned()]).unwrap_err()
            );
            assert!(err.contains("--hourly"), "{bad}: {err}");
        }
    }

    #[test]
    fn traces_average_per_stage_and_memory() {
        let inv = |stage: &str, mb, ms, cold| TraceInvocation {
            stage: stage.into(),
            memory_mb: mb,
            billed_ms: ms,
            cold,
            init_ms: if cold { 99.5 } else { 0.0 },
            bytes_in: 10,
            bytes_out: 5,
        };
        let traces = vec![
            QueryTrace {
                invocations: vec![
                    inv("conv", 1024, 10, true),
                    inv("conv", 1024, 20, false),
                    inv("head", 512, 3, false),
                ],
                bytes_moved: Some(100),
            },
            QueryTrace {
                invocations: vec![inv("conv", 1024, 30, false), inv("head", 256, 1, false)],
                bytes_moved: None,
            },
        ];
        let s = summarise(&traces).unwrap();
        assert_eq!((s.queries, s.invocations, s.cold_starts), (2, 5, 1));
        assert_eq!(s.init_ms, Some(100));
        assert_eq!(s.store_bytes_per_query, (100 + 30) / 2);
        let names: Vec<&str> = s.stages.iter().map(|s| s.stage.as_str()).collect();
        assert_eq!(names, ["conv", "head@256MB", "head@512MB"]);
        assert_eq!(s.stages[0].invocations_per_query, 1.5);
        assert_eq!(s.stages[0].billed_ms, 20.0);
        assert!((s.stages[0].cold_start_fraction - 1.0 / 3.0).abs() < 1e-12);
    }
}
