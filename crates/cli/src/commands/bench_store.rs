//! `seqless bench store`: tensor put/get throughput, against redis-benchmark.

use anyhow::Result;
use seqless_store::bench::{
    baseline_endpoint, redis_benchmark_baseline, render_table, run_store_bench, to_csv,
};
use seqless_store::{StoreOptions, open_store};

use crate::cli::BenchStoreArgs;

pub fn run(args: BenchStoreArgs) -> Result<()> {
    let rt = super::exec::runtime()?;
    let mut rows = rt.block_on(async {
        let defaults = StoreOptions::default();
        let options = StoreOptions {
            key_prefix: "seqless-bench:".into(),
            connections: args.connections.unwrap_or(defaults.connections),
            ..defaults
        };
        let store = open_store(&args.store, options).await?;
        anyhow::Ok(run_store_bench(store, &args.sizes, args.runs, args.parallel).await?)
    })?;
    if let Some((host, port)) = baseline_endpoint(&args.store) {
        for row in &mut rows {
            // Enough requests for a stable rate, bounded so large payloads stay quick.
            let requests = (256 << 20) / row.size_bytes.max(1);
            let (set, get) = redis_benchmark_baseline(
                &host,
                port,
                row.size_bytes,
                args.parallel,
                requests.clamp(200, 20_000),
            )?;
            *row = row.clone().with_baseline(set, get);
        }
    } else {
        eprintln!(
            "no redis-benchmark baseline for {} (plain redis:// without a password only)",
            args.store
        );
    }
    print!("{}", render_table(&rows));
    if let Some(path) = &args.csv {
        std::fs::write(path, to_csv(&rows))?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}
