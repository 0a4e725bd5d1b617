//! One module per subcommand; [`run`] dispatches.

mod baseline;
mod bench_calibrate;
mod bench_forward;
mod bench_load;
mod bench_platform;
mod bench_serverless;
mod bench_store;
mod classify;
mod cost;
mod data;
mod eval;
mod exec;
mod function;
mod platform;
mod serve;
mod simulate;
mod train;

use anyhow::Result;
use seqless_model::ModelError;

use crate::cli::{BenchCommand, Cli, Command, DataCommand};

/// Runs the parsed command line.
pub fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Train(args) => train::run(args),
        Command::Init(args) => train::init(args),
        Command::Eval(args) => eval::run(args),
        Command::Classify(args) => classify::run(args),
        Command::Bench(BenchCommand::Forward(args)) => bench_forward::run(args),
        Command::Bench(BenchCommand::Serverless(args)) => bench_serverless::run(args),
        Command::Bench(BenchCommand::Store(args)) => bench_store::run(args),
        Command::Bench(BenchCommand::Load(args)) => bench_load::run(args),
        Command::Bench(BenchCommand::Platform(args)) => bench_platform::run(args),
        Command::Bench(BenchCommand::Calibrate(args)) => bench_calibrate::run(args),
        Command::Data(DataCommand::Langid(args)) => data::langid(args),
        Command::Data(DataCommand::Codelang(args)) => data::codelang(args),
        Command::Baseline(args) => baseline::run(args),
        Command::Cost(args) => cost::run(args),
        Command::Simulate(args) => simulate::run(args),
        Command::Serve(args) => serve::run(args),
        Command::Function => function::run(),
        Command::Platform(args) => platform::run(args),
    }
}

/// 2 for input the user must fix (bad text, model or data files), 1 for everything else.
pub fn exit_code(err: &anyhow::Error) -> u8 {
    if let Some(
        seqless_coordinator::CoordinatorError::Input(_)
        | seqless_coordinator::CoordinatorError::Plan(_),
    ) = err.downcast_ref()
    {
        return 2;
    }
    match err.downcast_ref::<ModelError>() {
        Some(
            ModelError::Input(_)
            | ModelError::Data { .. }
            | ModelError::Config(_)
            | ModelError::ConfigSyntax { .. }
            | ModelError::Weights { .. }
            | ModelError::SafeTensors { .. },
        ) => 2,
        _ => 1,
    }
}

/// Builds a rayon pool of `threads` workers (0 or `None`: all cores).
pub fn thread_pool(threads: Option<usize>) -> Result<rayon::ThreadPool> {
    Ok(rayon::ThreadPoolBuilder::new()
        .num_threads(threads.unwrap_or(0))
        .build()?)
}
