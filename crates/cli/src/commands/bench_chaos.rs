//! `seqless bench chaos`: queries under injected faults against the same queries without
//! (`seqless_bench::chaos`), as a table, and a CSV or JSON if asked.

use anyhow::{Context, Result};
use seqless_bench::args::ChaosBenchArgs;

pub fn run(args: ChaosBenchArgs) -> Result<()> {
    #[cfg(feature = "platform")]
    let worker_exe = Some(std::env::current_exe()?);
    #[cfg(not(feature = "platform"))]
    let worker_exe = None;
    let bench = args.bench(worker_exe)?;
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
