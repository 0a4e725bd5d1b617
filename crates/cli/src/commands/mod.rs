//! One module per subcommand; [`run`] dispatches.

#[cfg(feature = "train")]
mod baseline;
mod bench_calibrate;
mod bench_chaos;
mod bench_forward;
mod bench_load;
#[cfg(feature = "platform")]
mod bench_platform;
mod bench_serverless;
mod bench_store;
mod bench_validation;
mod classify;
mod cost;
#[cfg(feature = "train")]
mod data;
#[cfg(feature = "train")]
mod eval;
mod exec;
#[cfg(feature = "function")]
mod function;
mod plan;
#[cfg(feature = "platform")]
mod platform;
mod serve;
mod simulate;
#[cfg(feature = "train")]
mod train;

use anyhow::Result;
use seqless_model::ModelError;

#[cfg(feature = "train")]
use crate::cli::DataCommand;
use crate::cli::{BenchCommand, Cli, Command};

/// Runs the parsed command line.
pub fn run(cli: Cli) -> Result<()> {
    match cli.command {
        #[cfg(feature = "train")]
        Command::Train(args) => train::run(args),
        #[cfg(feature = "train")]
        Command::Init(args) => train::init(args),
        #[cfg(feature = "train")]
        Command::Eval(args) => eval::run(args),
        Command::Classify(args) => classify::run(args),
        Command::Bench(BenchCommand::Forward(args)) => bench_forward::run(args),
        Command::Bench(BenchCommand::Serverless(args)) => bench_serverless::run(args),
        Command::Bench(BenchCommand::Store(args)) => bench_store::run(args),
        Command::Bench(BenchCommand::Load(args)) => bench_load::run(args),
        #[cfg(feature = "platform")]
        Command::Bench(BenchCommand::Platform(args)) => bench_platform::run(args),
        Command::Bench(BenchCommand::Calibrate(args)) => bench_calibrate::run(args),
        Command::Bench(BenchCommand::Chaos(args)) => bench_chaos::run(args),
        Command::Bench(BenchCommand::ValidationChart(args)) => bench_validation::run(args),
        #[cfg(feature = "train")]
        Command::Data(DataCommand::Langid(args)) => data::langid(args),
        #[cfg(feature = "train")]
        Command::Data(DataCommand::Codelang(args)) => data::codelang(args),
        #[cfg(feature = "train")]
        Command::Baseline(args) => baseline::run(args),
        Command::Cost(args) => cost::run(args),
        Command::Simulate(args) => simulate::run(args),
        Command::Plan(args) => plan::run(args),
        Command::Serve(args) => serve::run(args),
        #[cfg(feature = "function")]
        Command::Function => function::run(),
        #[cfg(feature = "platform")]
        Command::Platform(args) => platform::run(args),
    }
}

/// The exit code of a refusal the user fixes: a bad or missing input, model, data file, flag
/// or URL (README, "Exit codes"). Everything else, a fault of the environment, exits 1.
pub const USAGE: u8 = 2;

/// A refusal of the command line itself, found by a command rather than by clap.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// Returns a [`UsageError`] from a format string.
macro_rules! usage {
    ($($arg:tt)*) => {
        return Err($crate::commands::UsageError(format!($($arg)*)).into())
    };
}
pub(crate) use usage;

/// [`USAGE`] when any cause in the chain is the user's to fix, else 1.
pub fn exit_code(err: &anyhow::Error) -> u8 {
    if err.chain().any(user_must_fix) {
        USAGE
    } else {
        1
    }
}

/// Whether one error is about what the user gave rather than the machine it runs on: each
/// library's error type answers for its own variants.
fn user_must_fix(err: &(dyn std::error::Error + 'static)) -> bool {
    let verdicts = [
        err.downcast_ref::<ModelError>()
            .map(ModelError::caller_can_fix),
        err.downcast_ref::<seqless_coordinator::CoordinatorError>()
            .map(seqless_coordinator::CoordinatorError::caller_can_fix),
        err.downcast_ref::<seqless_store::StoreError>()
            .map(seqless_store::StoreError::caller_can_fix),
        err.downcast_ref::<seqless_cost::CostError>()
            .map(seqless_cost::CostError::caller_can_fix),
        err.downcast_ref::<seqless_sim::SimError>()
            .map(seqless_sim::SimError::caller_can_fix),
        err.downcast_ref::<seqless_bench::BenchError>()
            .map(seqless_bench::BenchError::caller_can_fix),
        #[cfg(feature = "platform")]
        err.downcast_ref::<seqless_platform::PlatformError>()
            .map(seqless_platform::PlatformError::caller_can_fix),
        err.downcast_ref::<std::io::Error>()
            .map(|e| e.kind() == std::io::ErrorKind::NotFound),
    ];
    verdicts.into_iter().flatten().next().unwrap_or_else(|| {
        err.is::<UsageError>()
            || err.is::<seqless_coordinator::TraceReadError>()
            || err.is::<seqless_plan::PlanError>()
            || err.is::<seqless_server::TokenError>()
    })
}

/// Builds a rayon pool of `threads` workers (0 or `None`: all cores).
pub fn thread_pool(threads: Option<usize>) -> Result<rayon::ThreadPool> {
    Ok(rayon::ThreadPoolBuilder::new()
        .num_threads(threads.unwrap_or(0))
        .build()?)
}

/// The text a benchmark cuts its queries from: the file's, when one is given (`None`: the
/// benchmark's random words).
pub fn read_corpus(path: Option<&std::path::Path>) -> Result<Option<String>> {
    use anyhow::Context;
    path.map(|path| {
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
    })
    .transpose()
}
