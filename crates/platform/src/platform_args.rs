//! `seqless platform`'s flags (the `clap` feature), turned into the [`PlatformOptions`] and
//! fault injection they describe. They live beside the options, so that the names
//! [`PlatformOptions::validate`] refuses are the flags a user typed.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use seqless_wire::faults::FaultInjection;
use seqless_wire::lambda::{DEFAULT_MEMORY_MB, parse_memory_mb};

use crate::{PlatformError, PlatformOptions, parse_function_memory};

/// `seqless platform`'s flags.
#[derive(Debug, Args)]
pub struct PlatformArgs {
    /// Address of the Invoke API (port 0 picks a free one; the URL is printed).
    #[arg(long, default_value = "127.0.0.1:9000")]
    pub listen: SocketAddr,
    /// Model directory the function processes load.
    #[arg(long)]
    pub model: PathBuf,
    /// Store the function processes share: redis://..., rediss://..., redis+cluster://...
    #[arg(long)]
    pub store: String,
    /// Prefix of every store key (the coordinator's --key-prefix).
    #[arg(long, default_value = "seqless:")]
    pub key_prefix: String,
    /// Expiry of every stored tensor, in seconds.
    #[arg(long, default_value_t = 300)]
    pub ttl_secs: u64,
    /// Function processes alive at once, over all functions.
    #[arg(long, default_value_t = 8)]
    pub concurrency: usize,
    /// Invocations that may wait for a busy platform before it throttles (429); 0
    /// throttles at once, as Lambda does.
    #[arg(long, default_value_t = 256)]
    pub queue: usize,
    /// Seconds an idle function process stays warm.
    #[arg(long, default_value_t = 600.0)]
    pub idle_timeout_secs: f64,
    /// Seconds an invocation may run before it is failed and its process killed.
    #[arg(long, default_value_t = 60.0)]
    pub timeout_secs: f64,
    /// Memory size of every function, MB (billing and AWS_LAMBDA_FUNCTION_MEMORY_SIZE).
    #[arg(long, default_value_t = DEFAULT_MEMORY_MB, value_parser = parse_memory_mb)]
    pub memory_mb: u32,
    /// Memory sizes by stage kind, such as tfilm=256,head=256.
    #[arg(long, default_value = "", value_parser = parse_function_memory)]
    pub function_memory: BTreeMap<String, u32>,
    /// Function names are this prefix plus the stage kind (seqless-conv, ...).
    #[arg(long, default_value = "seqless-")]
    pub function_prefix: String,
    /// The function binary, run as `EXE function` [default: this seqless].
    #[arg(long)]
    pub worker_exe: Option<PathBuf>,
    /// Inject faults per invocation, seeded: seed=N,error=R,crash=R,delay=R,delay-factor=F,throttle=R
    /// (docs/platform.md, "Fault injection").
    #[arg(long, value_parser = |s: &str| s.parse::<FaultInjection>())]
    pub faults: Option<FaultInjection>,
}

impl PlatformArgs {
    /// The platform's options, with `default_worker_exe` as the function binary when
    /// `--worker-exe` is not given, and the faults to inject (none by default).
    pub fn options(
        self,
        default_worker_exe: PathBuf,
    ) -> Result<(PlatformOptions, FaultInjection), PlatformError> {
        let model_dir = std::path::absolute(&self.model).map_err(|e| {
            PlatformError::Options(format!("--model {}: {e}", self.model.display()))
        })?;
        let options = PlatformOptions {
            listen: self.listen,
            model_dir,
            store_url: self.store,
            key_prefix: self.key_prefix,
            ttl_secs: self.ttl_secs.max(1),
            worker_exe: self.worker_exe.unwrap_or(default_worker_exe),
            function_prefix: self.function_prefix,
            max_concurrency: self.concurrency,
            queue_bound: self.queue,
            idle_timeout: seconds("--idle-timeout-secs", self.idle_timeout_secs)?,
            timeout: seconds("--timeout-secs", self.timeout_secs)?,
            memory_mb: self.memory_mb,
            function_memory: self.function_memory,
        };
        Ok((options, self.faults.unwrap_or_default()))
    }
}

fn seconds(flag: &str, s: f64) -> Result<Duration, PlatformError> {
    Duration::try_from_secs_f64(s)
        .map_err(|_| PlatformError::Options(format!("{flag} {s}: not a number of seconds")))
}
