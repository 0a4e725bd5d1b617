//! The `seqless` binary: parse arguments, set up logging, delegate, map errors to exit codes.

mod cli;
mod commands;

use std::process::ExitCode;

use clap::Parser;

/// mimalloc keeps freed memory for reuse, where glibc returns large blocks (over its mmap
/// threshold) to the kernel: every activation or store blob of a megabyte or more would
/// otherwise fault in fresh, zeroed pages each time it is allocated (docs/results.md, store
/// throughput).
#[cfg(target_env = "gnu")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    if cli.command.is_one_shot() {
        stop_quietly_on_closed_pipe();
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("SEQLESS_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    match commands::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(commands::exit_code(&err))
        }
    }
}

/// Lets a write to a closed stdout end the process by SIGPIPE, silently, instead of
/// making `println!` panic (Rust ignores SIGPIPE by default).
#[cfg(unix)]
fn stop_quietly_on_closed_pipe() {
    // SAFETY: called once at start-up, before any thread is spawned; SIG_DFL is a valid
    // disposition for SIGPIPE.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

/// Nothing to do where there is no SIGPIPE.
#[cfg(not(unix))]
fn stop_quietly_on_closed_pipe() {}
