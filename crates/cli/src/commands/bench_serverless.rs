//! `seqless bench serverless`: serverless latency per plan and split count against the
//! monolithic forward measured in the same run, with bytes moved.
//!
//! A configuration that cannot run (the paper plan at an input whose activation is over
//! the store's largest value, a store that fails mid-run) is reported as a failed row
//! and the sweep goes on, so one impossible combination does not cost the rest of a
//! long bench; the command still exits with an error naming how many failed.

use std::fmt::Write as _;

use anyhow::{Result, bail};
use rand::{Rng, SeedableRng, rngs::StdRng};
use seqless_model::TfilmModel;
use seqless_plan::{PlanKind, Splits};

use super::bench_forward::time_runs;
use crate::cli::{
    BenchServerlessArgs, FunctionHost, InprocArgs, LambdaArgs, PlanArgs, RemoteArgs, ServerlessArgs,
};

const CSV_HEADER: &str =
    "bytes,plan,splits,median_ms,monolithic_ms,ratio,bytes_moved,serial_bytes,invocations,error\n";

fn plan_name(plan: PlanKind) -> &'static str {
    match plan {
        PlanKind::Fused => "fused",
        PlanKind::Paper => "paper",
    }
}

/// One configuration: what was asked for, and what it measured or why it failed.
struct Row {
    bytes: usize,
    plan: PlanKind,
    /// Splits asked for; a measured row reports the splits the plan used instead.
    splits: usize,
    outcome: Result<Measured, String>,
}

/// A configuration that ran.
struct Measured {
    splits_used: usize,
    median_ms: f64,
    monolithic_ms: f64,
    bytes_moved: u64,
    serial_bytes: u64,
    invocations: usize,
}

/// Columns of the table after bytes and plan, with their widths; the CSV has these and
/// `invocations` (see [`measured_cells`]).
const TABLE_COLUMNS: [(&str, usize); 6] = [
    ("splits", 6),
    ("median_ms", 11),
    ("mono_ms", 11),
    ("ratio", 7),
    ("bytes_moved", 12),
    ("serial_bytes", 12),
];

/// A measured row's cells in CSV order from `splits` on, times and ratio with `prec`
/// decimals; the table shows all but the last (`invocations`).
fn measured_cells(m: &Measured, prec: usize) -> [String; 7] {
    [
        m.splits_used.to_string(),
        format!("{:.prec$}", m.median_ms),
        format!("{:.prec$}", m.monolithic_ms),
        format!("{:.prec$}", m.median_ms / m.monolithic_ms),
        m.bytes_moved.to_string(),
        m.serial_bytes.to_string(),
        m.invocations.to_string(),
    ]
}

fn table_header() -> String {
    let cells: Vec<String> = TABLE_COLUMNS
        .iter()
        .map(|(name, width)| format!("{name:>width$}"))
        .collect();
    format!("{:>9} {:>6} {}", "bytes", "plan", cells.join(" "))
}

fn table_line(row: &Row) -> String {
    let head = format!("{:>9} {:>6}", row.bytes, plan_name(row.plan));
    match &row.outcome {
        Ok(m) => {
            let cells: Vec<String> = measured_cells(m, 2)
                .iter()
                .zip(TABLE_COLUMNS)
                .map(|(cell, (_, width))| format!("{cell:>width$}"))
                .collect();
            format!("{head} {}", cells.join(" "))
        }
        Err(e) => format!("{head} {:>6}  failed: {e}", row.splits),
    }
}

/// The row in [`CSV_HEADER`]'s columns: numbers empty and `error` set for a failure.
fn csv_line(row: &Row) -> String {
    let head = format!("{},{}", row.bytes, plan_name(row.plan));
    match &row.outcome {
        Ok(m) => format!("{head},{},", measured_cells(m, 3).join(",")),
        Err(e) => format!("{head},{},,,,,,,\"{}\"", row.splits, e.replace('"', "\"\"")),
    }
}

/// Runs `measure` for every configuration, printing each row as it finishes; a failed
/// configuration becomes a failed row. Returns the CSV text and the failure count.
fn sweep(
    configs: impl IntoIterator<Item = (usize, PlanKind, usize)>,
    mut measure: impl FnMut(usize, PlanKind, usize) -> Result<Measured>,
) -> Result<(String, usize)> {
    let mut csv = String::from(CSV_HEADER);
    let mut failed = 0;
    println!("{}", table_header());
    for (bytes, plan, splits) in configs {
        let outcome = measure(bytes, plan, splits).map_err(|e| {
            failed += 1;
            format!("{e:#}")
        });
        let row = Row {
            bytes,
            plan,
            splits,
            outcome,
        };
        println!("{}", table_line(&row));
        writeln!(csv, "{}", csv_line(&row))?;
    }
    Ok((csv, failed))
}

pub fn run(args: BenchServerlessArgs) -> Result<()> {
    let model = TfilmModel::load(&args.model)?;
    let rt = super::exec::runtime()?;
    let mut rng = StdRng::seed_from_u64(2);
    let mut configs = Vec::new();
    for &n in &args.bytes {
        for &plan in &args.plan {
            for &splits in &args.splits {
                configs.push((n.min(model.config.max_len), plan, splits));
            }
        }
    }
    let total = configs.len();
    // The monolithic time and the input of the size measured last, reused by its plans.
    let mut current: Option<(usize, Vec<u8>, f64)> = None;
    let (csv, failed) = sweep(configs, |n, plan, splits| {
        let (input, mono) = match &current {
            Some((size, input, mono)) if *size == n => (input.clone(), *mono),
            _ => {
                let input: Vec<u8> = (0..n).map(|_| rng.random()).collect();
                let mono =
                    time_runs(args.runs, || Ok(model.forward(&input).map(|_| ())?))?.median_ms;
                current = Some((n, input.clone(), mono));
                (input, mono)
            }
        };
        let plan_args = PlanArgs {
            plan,
            splits: Splits::Fixed(splits),
            max_splits: splits.max(1),
            min_rows_per_split: 1,
            memory_mb: 10_240,
        };
        let serverless = ServerlessArgs {
            store: args.store.clone(),
            key_prefix: "seqless-bench:".into(),
            ttl_secs: 120,
            platform: FunctionHost::Inproc,
            inproc: InprocArgs {
                concurrency: args.concurrency,
                idle_timeout_secs: 600,
            },
            remote: RemoteArgs {
                endpoint: None,
                function_prefix: String::new(),
                lambda: LambdaArgs { region: None },
            },
            pricing: None,
            arch: seqless_cost::Arch::X86_64,
        };
        let (median_ms, last) = rt.block_on(async {
            let coordinator = super::exec::coordinator(
                &args.model,
                model.config.clone(),
                &plan_args,
                &serverless,
            )
            .await?;
            // Warm-up: instances start (cold) here, not in the timed runs.
            let mut last = coordinator.classify(&input).await?;
            let mut ms = Vec::new();
            for _ in 0..args.runs.max(1) {
                last = coordinator.classify(&input).await?;
                ms.push(last.trace.total_ms);
            }
            ms.sort_by(f64::total_cmp);
            anyhow::Ok((ms[ms.len() / 2], last))
        })?;
        let t = &last.trace;
        Ok(Measured {
            splits_used: t.splits.first().copied().unwrap_or(0),
            median_ms,
            monolithic_ms: mono,
            bytes_moved: t.bytes_moved,
            serial_bytes: t.serial_bytes,
            invocations: t.invocations.len(),
        })
    })?;
    if let Some(path) = &args.csv {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(path, csv)?;
        eprintln!("wrote {}", path.display());
    }
    if failed > 0 {
        bail!("{failed} of {total} configurations failed (marked `failed` above)");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn measured(median_ms: f64) -> Measured {
        Measured {
            splits_used: 2,
            median_ms,
            monolithic_ms: 100.0,
            bytes_moved: 10,
            serial_bytes: 4,
            invocations: 3,
        }
    }

    #[test]
    fn a_failed_configuration_is_a_row_and_the_sweep_goes_on() {
        let configs = [
            (64, PlanKind::Fused, 2),
            (1024, PlanKind::Paper, 2),
            (1024, PlanKind::Fused, 2),
        ];
        let mut ran = Vec::new();
        let (csv, failed) = sweep(configs, |bytes, plan, _| {
            ran.push(bytes);
            match plan {
                PlanKind::Paper => bail!("planning failed: a value \"too big\", over the bound"),
                PlanKind::Fused => Ok(measured(bytes as f64 / 8.0)),
            }
        })
        .unwrap();
        assert_eq!(ran, [64, 1024, 1024], "every configuration ran");
        assert_eq!(failed, 1);
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines[0], CSV_HEADER.trim_end());
        assert_eq!(lines[1], "64,fused,2,8.000,100.000,0.080,10,4,3,");
        assert_eq!(
            lines[2],
            "1024,paper,2,,,,,,,\"planning failed: a value \"\"too big\"\", over the bound\""
        );
        assert_eq!(lines[3], "1024,fused,2,128.000,100.000,1.280,10,4,3,");
    }

    #[test]
    fn a_failed_row_in_the_table_names_the_reason() {
        let row = Row {
            bytes: 1024,
            plan: PlanKind::Paper,
            splits: 2,
            outcome: Err("planning failed: over the store's largest value".into()),
        };
        let line = table_line(&row);
        assert!(
            line.contains("paper") && line.contains("failed: planning failed"),
            "{line}"
        );
    }
}
