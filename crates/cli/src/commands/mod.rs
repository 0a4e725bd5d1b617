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

/// Whether one error is about what the user gave rather than the machine it runs on.
fn user_must_fix(err: &(dyn std::error::Error + 'static)) -> bool {
    use seqless_coordinator::CoordinatorError;
    use seqless_cost::CostError;
    use seqless_sim::SimError;
    use seqless_store::StoreError;

    let named_path_missing = |e: &std::io::Error| e.kind() == std::io::ErrorKind::NotFound;
    let store = |e: &StoreError| {
        matches!(
            e,
            StoreError::BadUrl { .. } | StoreError::InvalidInput { .. }
        )
    };
    if err.is::<UsageError>()
        || err.is::<seqless_coordinator::TraceReadError>()
        || err.is::<seqless_plan::PlanError>()
        || err.is::<seqless_server::TokenError>()
    {
        return true;
    }
    if let Some(e) = err.downcast_ref::<ModelError>() {
        return match e {
            ModelError::Io { cause, .. } => named_path_missing(cause),
            ModelError::ConfigSyntax { .. }
            | ModelError::InputLen(_)
            | ModelError::Config(_)
            | ModelError::Weights { .. }
            | ModelError::SafeTensors { .. }
            | ModelError::Input(_)
            | ModelError::Flags(_)
            | ModelError::Data { .. } => true,
            _ => false,
        };
    }
    if let Some(e) = err.downcast_ref::<CoordinatorError>() {
        return match e {
            CoordinatorError::Input(_) | CoordinatorError::Plan(_) => true,
            CoordinatorError::Store { cause, .. } => store(cause),
            _ => false,
        };
    }
    if let Some(e) = err.downcast_ref::<StoreError>() {
        return store(e);
    }
    if let Some(e) = err.downcast_ref::<CostError>() {
        return match e {
            CostError::Io { cause, .. } => named_path_missing(cause),
            CostError::Parse { .. }
            | CostError::BadPrice { .. }
            | CostError::UnknownInstance { .. }
            | CostError::InvalidInput { .. }
            | CostError::Flags(_) => true,
            CostError::InFlag { cause, .. } => user_must_fix(cause.as_ref()),
        };
    }
    #[cfg(feature = "platform")]
    if let Some(e) = err.downcast_ref::<seqless_platform::PlatformError>() {
        return matches!(e, seqless_platform::PlatformError::Options(_));
    }
    if let Some(e) = err.downcast_ref::<seqless_bench::BenchError>() {
        return matches!(e, seqless_bench::BenchError::Flags(_));
    }
    if let Some(e) = err.downcast_ref::<SimError>() {
        return match e {
            SimError::Io { cause, .. } => named_path_missing(cause),
            SimError::Json { .. }
            | SimError::TraceLine { .. }
            | SimError::Config { .. }
            | SimError::Shape { .. }
            | SimError::Plan(_)
            | SimError::SloUnmet(_)
            | SimError::Flags(_) => true,
            SimError::Cost(cost) => user_must_fix(cost),
            SimError::Model(model) => user_must_fix(model),
            SimError::Plot { .. } => false,
        };
    }
    if let Some(e) = err.downcast_ref::<std::io::Error>() {
        return named_path_missing(e);
    }
    false
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
