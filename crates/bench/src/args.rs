//! The flags of every `seqless bench` that needs no execution mode (the `clap` feature),
//! beside the benches they configure; `bench chaos`'s are checked and turned into the
//! [`ChaosBench`] they describe.

use std::path::PathBuf;

use clap::{Args, ValueEnum};
use seqless_coordinator::{DEFAULT_INLINE_MAX_BYTES, HedgeArgs, parse_function_slots};
use seqless_functions::FaultInjection;
use seqless_plan::{PlanKind, Transfer};

use crate::BenchError;
use crate::chaos::{ChaosBench, ChaosPlatform};

/// Where `seqless bench chaos` runs the functions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ChaosHost {
    /// In this process.
    Inproc,
    /// On two `seqless platform`s the bench starts (one with --faults), over --store Redis.
    Local,
}

/// `seqless bench chaos`'s flags.
#[derive(Debug, Args)]
pub struct ChaosBenchArgs {
    /// Model directory.
    #[arg(long)]
    pub model: PathBuf,
    /// Query sizes in bytes, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "16384,65536")]
    pub bytes: Vec<usize>,
    /// Queries per size, with faults and again without.
    #[arg(long, default_value_t = 1000)]
    pub queries: usize,
    /// Queries in flight at once.
    #[arg(long, default_value_t = 16)]
    pub concurrency: usize,
    /// Rounds per size, each running its share of the fault-free queries, then of the
    /// faulty ones, back to back.
    #[arg(long, default_value_t = 4)]
    pub rounds: usize,
    /// The faults injected per invocation (docs/platform.md, "Fault injection").
    #[arg(
        long,
        default_value = "seed=7,error=0.1,crash=0.02,delay=0.05,delay-factor=10",
        value_parser = |s: &str| s.parse::<FaultInjection>()
    )]
    pub faults: FaultInjection,
    /// Where the functions run: inproc, or local (needs --store redis://...).
    #[arg(long, value_enum, default_value = "inproc")]
    pub platform: ChaosHost,
    /// memory (inproc only) or redis://host:port/db, where the run's keys are counted.
    #[arg(long, default_value = "memory")]
    pub store: String,
    /// The stage graph.
    #[arg(long, value_enum, default_value = "fused")]
    pub plan: PlanKind,
    /// Conv functions per layer.
    #[arg(long, default_value_t = 4)]
    pub splits: usize,
    /// Function instances per condition (processes on the local platform).
    #[arg(long, default_value_t = 8)]
    pub functions: usize,
    /// Hedging, the same with and without faults.
    #[command(flatten)]
    pub hedge: HedgeArgs,
    /// Write the rows as CSV here too.
    #[arg(long)]
    pub csv: Option<PathBuf>,
    /// Write the report as JSON here too.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

/// `seqless bench forward`'s flags.
#[derive(Debug, Args)]
pub struct ForwardBenchArgs {
    /// Model directory.
    #[arg(long)]
    pub model: PathBuf,
    /// Input sizes in bytes, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "65536")]
    pub bytes: Vec<usize>,
    /// Timed runs per size (after one warm-up); the median is reported.
    #[arg(long, default_value_t = 5)]
    pub runs: usize,
    /// Compute threads.
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    /// Print JSON lines.
    #[arg(long)]
    pub json: bool,
}

/// `seqless bench serverless`'s flags.
#[derive(Debug, Args)]
pub struct ServerlessBenchArgs {
    /// Model directory.
    #[arg(long)]
    pub model: PathBuf,
    /// Input sizes in bytes, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "4096,65536,1048576")]
    pub bytes: Vec<usize>,
    /// Split counts, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,2,4,8")]
    pub splits: Vec<usize>,
    /// Plans, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "fused,paper")]
    pub plan: Vec<PlanKind>,
    /// Timed runs per case (after a warm-up); the median is reported.
    #[arg(long, default_value_t = 5)]
    pub runs: usize,
    /// Tensor store URL (memory or redis://...).
    #[arg(long, default_value = "memory")]
    pub store: String,
    /// In-process function invocations at once (default as `classify`'s --concurrency).
    #[arg(long)]
    pub concurrency: Option<usize>,
    /// Run the functions on the `seqless platform` at this URL instead of in process
    /// (needs --store redis://...).
    #[arg(long)]
    pub endpoint: Option<String>,
    /// With --endpoint: the platform's --concurrency, which caps resident splits.
    #[arg(long, value_parser = parse_function_slots)]
    pub function_slots: Option<usize>,
    /// How values move between functions, comma-separated: store, inline (see
    /// `classify --transfer`).
    #[arg(long, value_enum, value_delimiter = ',', default_value = "store")]
    pub transfer: Vec<Transfer>,
    /// With inline: the largest value sent inline, in bytes (see `classify
    /// --inline-max-bytes`).
    #[arg(long, default_value_t = DEFAULT_INLINE_MAX_BYTES)]
    pub inline_max_bytes: u64,
    /// Write the table as CSV here too.
    #[arg(long)]
    pub csv: Option<PathBuf>,
}

/// `seqless bench store`'s flags.
#[derive(Debug, Args)]
pub struct StoreBenchArgs {
    /// Store URL (redis://host:port for a comparison with redis-benchmark).
    #[arg(long)]
    pub store: String,
    /// Payload sizes in bytes, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "65536,1048576,8388608")]
    pub sizes: Vec<usize>,
    /// Timed runs per size; the median is reported.
    #[arg(long, default_value_t = 5)]
    pub runs: usize,
    /// Concurrent clients (the same for redis-benchmark).
    #[arg(long, default_value_t = 8)]
    pub parallel: usize,
    /// Multiplexed connections the store spreads its calls over (default: the store's).
    #[arg(long)]
    pub connections: Option<usize>,
    /// Write the table as CSV here too.
    #[arg(long)]
    pub csv: Option<PathBuf>,
}

/// `seqless bench load`'s flags.
#[derive(Debug, Args)]
pub struct LoadBenchArgs {
    /// Base URL of a running `seqless serve`.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub url: String,
    /// Concurrent clients, comma-separated; the first level is the speedup baseline.
    #[arg(long, value_delimiter = ',', default_value = "1,2,4,8,16,32")]
    pub concurrency: Vec<usize>,
    /// Size of every query, bytes.
    #[arg(long, default_value_t = 4096)]
    pub bytes: usize,
    /// Timed requests per run.
    #[arg(long, default_value_t = 200)]
    pub requests: usize,
    /// Runs per level; the median run is reported.
    #[arg(long, default_value_t = 3)]
    pub runs: usize,
    /// Cut the queries from this text file instead of random words.
    #[arg(long)]
    pub text_file: Option<PathBuf>,
    /// Read the bearer token from this file instead of $SEQLESS_API_TOKEN.
    #[arg(long)]
    pub auth_token_file: Option<PathBuf>,
    /// Write the table as CSV here too.
    #[arg(long)]
    pub csv: Option<PathBuf>,
    /// Draw throughput and latency against concurrency here (.svg or .png).
    #[arg(long)]
    pub plot: Option<PathBuf>,
    /// Name of this run in the plot's titles.
    #[arg(long, default_value = "seqless serve")]
    pub title: String,
}

/// `seqless bench platform`'s flags.
#[cfg(feature = "platform")]
#[derive(Debug, Args)]
pub struct PlatformBenchArgs {
    /// Model directory.
    #[arg(long)]
    pub model: PathBuf,
    /// Redis URL (function processes share no memory).
    #[arg(long)]
    pub store: String,
    /// Query sizes in bytes for the serverless comparison, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "65536,1048576")]
    pub bytes: Vec<usize>,
    /// Conv functions per layer in the serverless comparison.
    #[arg(long, default_value_t = 2)]
    pub splits: usize,
    /// Samples per figure; the median is reported.
    #[arg(long, default_value_t = 7)]
    pub runs: usize,
    /// Write the figures as CSV here too.
    #[arg(long)]
    pub csv: Option<PathBuf>,
}

impl ChaosBenchArgs {
    /// The bench the flags describe, refusing any that cannot run. `worker_exe` is the
    /// function binary for `--platform local`; `None` where this build cannot serve as one.
    pub fn bench(&self, worker_exe: Option<PathBuf>) -> Result<ChaosBench, BenchError> {
        let refuse = |reason: String| Err(BenchError::Flags(reason));
        let zero = [
            ("--queries", self.queries),
            ("--concurrency", self.concurrency),
            ("--rounds", self.rounds),
            ("--splits", self.splits),
            ("--functions", self.functions),
        ]
        .into_iter()
        .find(|&(_, value)| value == 0);
        let redis = self.store.starts_with("redis://");
        let checks = [
            (
                zero.is_none(),
                format!("{} 0: give at least 1", zero.map_or("", |(flag, _)| flag)),
            ),
            (
                self.rounds <= self.queries,
                format!(
                    "--rounds {} is over --queries {}: every round runs at least one query of \
                     each kind",
                    self.rounds, self.queries
                ),
            ),
            (
                !self.bytes.contains(&0),
                "--bytes 0: a query has at least 1 byte".into(),
            ),
            (
                self.store == "memory" || redis,
                format!(
                    "--store {}: give memory or a redis:// URL, where the run's keys can be \
                     counted",
                    self.store
                ),
            ),
        ];
        if let Some((_, reason)) = checks.into_iter().find(|(ok, _)| !ok) {
            return refuse(reason);
        }
        let platform = match (self.platform, worker_exe) {
            (ChaosHost::Inproc, _) => ChaosPlatform::Inproc,
            (ChaosHost::Local, _) if !redis => {
                return refuse(
                    "--platform local needs --store redis://...: function processes share no memory"
                        .into(),
                );
            }
            #[cfg(feature = "platform")]
            (ChaosHost::Local, Some(worker_exe)) => ChaosPlatform::Local { worker_exe },
            (ChaosHost::Local, _) => {
                return refuse(
                    "--platform local needs the `platform` feature: build with \
                     `cargo build --release -p seqless --features platform`"
                        .into(),
                );
            }
        };
        Ok(ChaosBench {
            model_dir: self.model.clone(),
            store_url: self.store.clone(),
            platform,
            sizes: self.bytes.clone(),
            queries: self.queries,
            concurrency: self.concurrency,
            rounds: self.rounds,
            plan: self.plan,
            splits: self.splits,
            functions: self.functions,
            faults: self.faults,
            hedge: self.hedge.policy(),
        })
    }
}

/// `seqless bench validation-chart`'s flags.
#[derive(Debug, Args)]
pub struct ValidationChartArgs {
    /// The validation table: `scripts/validate-sim.sh`'s OUT_DIR/validation.csv.
    #[arg(long)]
    pub table: PathBuf,
    /// Where to draw measured against predicted (.svg or .png).
    #[arg(long)]
    pub plot: PathBuf,
}
