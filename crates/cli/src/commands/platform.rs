//! `seqless platform`: the local Lambda platform, until Ctrl-C or SIGTERM (then it drains
//! and exits 0, as `serve` does).

use std::io::Write as _;
use std::time::Duration;

use anyhow::{Context, Result};
use seqless_platform::{PlatformOptions, PlatformServer};

use crate::cli::PlatformArgs;

fn seconds(flag: &str, s: f64) -> Result<Duration> {
    match Duration::try_from_secs_f64(s) {
        Ok(d) => Ok(d),
        Err(_) => super::usage!("{flag} {s}: not a number of seconds"),
    }
}

/// The platform's options from its flags; the function binary defaults to this one.
pub fn options(args: PlatformArgs) -> Result<PlatformOptions> {
    let worker_exe = match args.worker_exe {
        Some(exe) => exe,
        None => std::env::current_exe().context("finding this executable")?,
    };
    let model_dir = std::path::absolute(&args.model)
        .with_context(|| format!("--model {}", args.model.display()))?;
    Ok(PlatformOptions {
        listen: args.listen,
        model_dir,
        store_url: args.store,
        key_prefix: args.key_prefix,
        ttl_secs: args.ttl_secs.max(1),
        worker_exe,
        function_prefix: args.function_prefix,
        max_concurrency: args.concurrency,
        queue_bound: args.queue,
        idle_timeout: seconds("--idle-timeout-secs", args.idle_timeout_secs)?,
        timeout: seconds("--timeout-secs", args.timeout_secs)?,
        memory_mb: args.memory_mb,
        function_memory: args.function_memory,
    })
}

pub fn run(args: PlatformArgs) -> Result<()> {
    let faults = args.faults.unwrap_or_default();
    let options = options(args)?;
    super::exec::runtime()?.block_on(async {
        let platform = PlatformServer::start_with_faults(options, faults).await?;
        let stop = seqless_server::shutdown_signal();
        // The first line of stdout is the endpoint, for scripts and tests.
        println!("listening on {}", platform.endpoint());
        std::io::stdout().flush()?;
        stop.await;
        eprintln!("stopping: draining the Invoke API, then stopping function processes");
        platform.shutdown().await;
        anyhow::Ok(())
    })
}
