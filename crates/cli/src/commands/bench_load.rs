//! `seqless bench load`: throughput and latency of a running server against client
//! concurrency, as a table, a CSV and a chart.

use anyhow::{Context, Result};
use seqless_bench::load::{LoadOptions, load_chart, render_table, sweep, texts, to_csv};
use seqless_server::ApiToken;

use seqless_bench::args::LoadBenchArgs;

pub fn run(args: LoadBenchArgs) -> Result<()> {
    let token = ApiToken::from_env_or_file(args.auth_token_file.as_deref())?;
    let corpus = super::read_corpus(args.text_file.as_deref())?;
    let options = LoadOptions {
        url: args.url.clone(),
        token: token.map(|t| t.expose().to_owned()),
        requests: args.requests,
        runs: args.runs,
    };
    let rt = super::exec::runtime()?;
    let points = rt.block_on(sweep(
        &options,
        texts(corpus.as_deref(), args.bytes),
        &args.concurrency,
    ))?;
    print!("{}", render_table(&points));
    if let Some(path) = &args.csv {
        std::fs::write(path, to_csv(&points))
            .with_context(|| format!("writing {}", path.display()))?;
    }
    if let Some(path) = &args.plot {
        load_chart(&args.title, &points, path)?;
    }
    Ok(())
}
