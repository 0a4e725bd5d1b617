//! `seqless bench load`: throughput and latency of a running server against client
//! concurrency, as a table, a CSV and a chart.

use anyhow::{Context, Result};
use seqless_server::ApiToken;
use seqless_server::load::{LoadOptions, LoadPoint, random_texts, sweep, texts_from, to_csv};
use seqless_sim::plot::{MeasuredLine, MeasuredPanel, measured_chart};

use crate::cli::BenchLoadArgs;

/// Distinct queries cycled through, so caches see realistic variety.
const DISTINCT_TEXTS: usize = 64;

fn plot(args: &BenchLoadArgs, points: &[LoadPoint], path: &std::path::Path) -> Result<()> {
    let along = |f: fn(&LoadPoint) -> f64| -> Vec<(f64, f64)> {
        points
            .iter()
            .map(|p| (p.concurrency as f64, f(p)))
            .collect()
    };
    let line = |label: &str, points| MeasuredLine {
        label: label.into(),
        points,
    };
    let panels = vec![
        MeasuredPanel {
            title: format!("{}: throughput", args.title),
            x_label: "concurrent clients".into(),
            y_label: "queries/s".into(),
            lines: vec![line("throughput", along(|p| p.qps))],
            log_y: false,
        },
        MeasuredPanel {
            title: format!("{}: latency", args.title),
            x_label: "concurrent clients".into(),
            y_label: "latency (ms)".into(),
            lines: vec![
                line("p50", along(|p| p.p50_ms)),
                line("p99", along(|p| p.p99_ms)),
            ],
            log_y: true,
        },
    ];
    Ok(measured_chart(&panels, path)?)
}

pub fn run(args: BenchLoadArgs) -> Result<()> {
    let token = ApiToken::from_env_or_file(args.auth_token_file.as_deref())?;
    let texts = match &args.text_file {
        Some(path) => {
            let corpus = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            texts_from(&corpus, args.bytes, DISTINCT_TEXTS)
        }
        None => random_texts(args.bytes, DISTINCT_TEXTS, 0),
    };
    let options = LoadOptions {
        url: args.url.clone(),
        token: token.map(|t| t.expose().to_owned()),
        requests: args.requests,
        runs: args.runs,
    };
    let rt = super::exec::runtime()?;
    let points = rt.block_on(sweep(&options, texts, &args.concurrency))?;
    println!(
        "{:>11} {:>8} {:>6} {:>10} {:>9} {:>9} {:>8}",
        "concurrency", "requests", "errors", "queries/s", "p50 ms", "p99 ms", "speedup"
    );
    for p in &points {
        println!(
            "{:>11} {:>8} {:>6} {:>10.1} {:>9.2} {:>9.2} {:>7.2}x",
            p.concurrency, p.requests, p.errors, p.qps, p.p50_ms, p.p99_ms, p.speedup
        );
    }
    if let Some(path) = &args.csv {
        std::fs::write(path, to_csv(&points))
            .with_context(|| format!("writing {}", path.display()))?;
    }
    if let Some(path) = &args.plot {
        plot(&args, &points, path)?;
    }
    Ok(())
}
