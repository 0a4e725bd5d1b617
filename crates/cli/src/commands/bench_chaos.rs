//! `seqless bench chaos`: queries under injected faults against the same queries without
//! (`seqless_bench::chaos`), as a table, and a CSV or JSON if asked.

use anyhow::{Context, Result};
use seqless_bench::chaos::{ChaosBench, ChaosPlatform, table_header};

use super::usage;
use crate::cli::{BenchChaosArgs, ChaosHost};

pub fn run(args: BenchChaosArgs) -> Result<()> {
    for (flag, value) in [
        ("--queries", args.queries),
        ("--concurrency", args.concurrency),
        ("--rounds", args.rounds),
        ("--splits", args.splits),
        ("--functions", args.functions),
    ] {
        if value == 0 {
            usage!("{flag} 0: give at least 1");
        }
    }
    if args.rounds > args.queries {
        usage!(
            "--rounds {} is over --queries {}: every round runs at least one query of each kind",
            args.rounds,
            args.queries
        );
    }
    if let Some(size) = args.bytes.iter().find(|&&b| b == 0) {
        usage!("--bytes {size}: a query has at least 1 byte");
    }
    let redis = args.store.starts_with("redis://");
    if args.store != "memory" && !redis {
        usage!(
            "--store {}: give memory or a redis:// URL, where the run's keys can be counted",
            args.store
        );
    }
    let platform = match args.platform {
        ChaosHost::Inproc => ChaosPlatform::Inproc,
        ChaosHost::Local if !redis => {
            usage!("--platform local needs --store redis://...: function processes share no memory")
        }
        #[cfg(feature = "platform")]
        ChaosHost::Local => ChaosPlatform::Local {
            worker_exe: std::env::current_exe()?,
        },
        #[cfg(not(feature = "platform"))]
        ChaosHost::Local => usage!(
            "--platform local needs the `platform` feature: build with `cargo build --release -p seqless --features platform`"
        ),
    };
    let bench = ChaosBench {
        model_dir: args.model,
        store_url: args.store,
        platform,
        sizes: args.bytes,
        queries: args.queries,
        concurrency: args.concurrency,
        rounds: args.rounds,
        plan: args.plan,
        splits: args.splits,
        functions: args.functions,
        faults: args.faults,
        hedge: args.hedge.policy(),
    };
    println!(
        "faults: {}",
        seqless_bench::chaos::faults_text(&bench.faults)
    );
    println!("{}", table_header());
    let report = super::exec::runtime()?.block_on(bench.run(|line| println!("{line}")))?;
    println!("keys left in the store: {}", report.keys_left);
    for (path, text) in [
        (&args.csv, report.csv()),
        (&args.json, serde_json::to_string_pretty(&report)?),
    ] {
        if let Some(path) = path {
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)?;
            }
            std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
            eprintln!("wrote {}", path.display());
        }
    }
    Ok(())
}
