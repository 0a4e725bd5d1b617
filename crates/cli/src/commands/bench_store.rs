//! `seqless bench store`: tensor put/get throughput, against redis-benchmark.

use anyhow::Result;
use seqless_bench::store::{baseline_endpoint, render_table, run_store_bench, to_csv};
use seqless_store::{StoreOptions, open_store};

use seqless_bench::args::StoreBenchArgs;

pub fn run(args: StoreBenchArgs) -> Result<()> {
    let baseline = baseline_endpoint(&args.store);
    if baseline.is_none() {
        eprintln!(
            "no redis-benchmark baseline for {} (plain redis:// without a password only)",
            args.store
        );
    }
    let rt = super::exec::runtime()?;
    let rows = rt.block_on(async {
        let defaults = StoreOptions::default();
        let options = StoreOptions {
            key_prefix: "seqless-bench:".into(),
            connections: args.connections.unwrap_or(defaults.connections),
            ..defaults
        };
        let store = open_store(&args.store, options).await?;
        anyhow::Ok(run_store_bench(store, &args.sizes, args.runs, args.parallel, baseline).await?)
    })?;
    print!("{}", render_table(&rows));
    if let Some(path) = &args.csv {
        std::fs::write(path, to_csv(&rows))?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}
