//! `seqless bench serverless`: serverless latency per plan and split count against the
//! monolithic forward measured in the same run, with bytes moved.

use std::fmt::Write as _;

use anyhow::Result;
use rand::{Rng, SeedableRng, rngs::StdRng};
use seqless_model::TfilmModel;
use seqless_plan::{PlanKind, Splits};

use super::bench_forward::time_runs;
use crate::cli::{BenchServerlessArgs, ExecArgs};

fn plan_name(plan: PlanKind) -> &'static str {
    match plan {
        PlanKind::Fused => "fused",
        PlanKind::Paper => "paper",
    }
}

pub fn run(args: BenchServerlessArgs) -> Result<()> {
    let model = TfilmModel::load(&args.model)?;
    let rt = super::exec::runtime()?;
    let mut rng = StdRng::seed_from_u64(2);
    let mut csv = String::from(
        "bytes,plan,splits,median_ms,monolithic_ms,ratio,bytes_moved,serial_bytes,invocations\n",
    );
    println!(
        "{:>9} {:>6} {:>6} {:>11} {:>11} {:>7} {:>12} {:>12}",
        "bytes", "plan", "splits", "median_ms", "mono_ms", "ratio", "bytes_moved", "serial_bytes"
    );
    for &n in &args.bytes {
        let n = n.min(model.config.max_len);
        let input: Vec<u8> = (0..n).map(|_| rng.random()).collect();
        let mono = time_runs(args.runs, || Ok(model.forward(&input).map(|_| ())?))?.median_ms;
        for &plan in &args.plan {
            for &splits in &args.splits {
                let exec = ExecArgs {
                    mode: "serverless".into(),
                    plan,
                    splits: Splits::Fixed(splits),
                    max_splits: splits.max(1),
                    min_rows_per_split: 1,
                    memory_mb: 10_240,
                    store: args.store.clone(),
                    key_prefix: "seqless-bench:".into(),
                    ttl_secs: 120,
                    platform: "inproc".into(),
                    endpoint: None,
                    region: None,
                    function_prefix: String::new(),
                    concurrency: args.concurrency,
                    idle_timeout_secs: 600,
                    pricing: None,
                    arch: seqless_cost::Arch::X86_64,
                };
                let (median, last) = rt.block_on(async {
                    let coordinator =
                        super::exec::coordinator(&args.model, model.config.clone(), &exec).await?;
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
                let used_splits = t.splits.first().copied().unwrap_or(0);
                println!(
                    "{n:>9} {:>6} {used_splits:>6} {median:>11.2} {mono:>11.2} {:>7.2} {:>12} {:>12}",
                    plan_name(plan),
                    median / mono,
                    t.bytes_moved,
                    t.serial_bytes
                );
                writeln!(
                    csv,
                    "{n},{},{used_splits},{median:.3},{mono:.3},{:.3},{},{},{}",
                    plan_name(plan),
                    median / mono,
                    t.bytes_moved,
                    t.serial_bytes,
                    t.invocations.len()
                )?;
            }
        }
    }
    if let Some(path) = &args.csv {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(path, csv)?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}
