//! `seqless platform`: the local Lambda platform, until Ctrl-C or SIGTERM (then it drains
//! and exits 0, as `serve` does).

use std::io::Write as _;

use anyhow::{Context, Result};
use seqless_platform::{PlatformArgs, PlatformServer};

pub fn run(args: PlatformArgs) -> Result<()> {
    let this_exe = std::env::current_exe().context("finding this executable")?;
    let (options, faults) = args.options(this_exe)?;
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
