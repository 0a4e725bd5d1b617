//! `seqless bench chaos`'s flags (the `clap` feature), checked and turned into the
//! [`ChaosBench`] they describe.

use std::path::PathBuf;

use clap::{Args, ValueEnum};
use seqless_coordinator::HedgeArgs;
use seqless_functions::FaultInjection;
use seqless_plan::PlanKind;

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
pub struct ChaosArgs {
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

impl ChaosArgs {
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
