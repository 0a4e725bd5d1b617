//! `seqless bench platform`: the local Lambda platform's cold start, warm overhead and
//! serverless latency against in-process functions (`seqless_bench::platform_run`).

use anyhow::Result;
use seqless_bench::platform_run::PlatformBench;

use seqless_bench::args::PlatformBenchArgs;

pub fn run(args: PlatformBenchArgs) -> Result<()> {
    let bench = PlatformBench {
        model_dir: args.model,
        store_url: args.store,
        worker_exe: std::env::current_exe()?,
        runs: args.runs,
        bytes: args.bytes,
        splits: args.splits,
    };
    let figures = super::exec::runtime()?.block_on(bench.run(|line| println!("{line}")))?;
    if let Some(path) = &args.csv {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(path, figures.csv())?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}
