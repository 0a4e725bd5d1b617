//! The `seqless` binary: parse arguments, refuse flags that would be ignored, set up
//! logging, delegate, map errors to exit codes.

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::FromArgMatches;
use clap::error::ErrorKind;
use seqless::{cli, commands, scope};

/// mimalloc keeps freed memory for reuse, where glibc returns large blocks (over its mmap
/// threshold) to the kernel: every activation or store blob of a megabyte or more would
/// otherwise fault in fresh, zeroed pages each time it is allocated (docs/results.md, store
/// throughput).
#[cfg(target_env = "gnu")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc's `mi_option_purge_delay`, its place in `mi_option_t` (mimalloc.h, the same in
/// versions 2 and 3); the sys crate names the options around it but not this one.
#[cfg(target_env = "gnu")]
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Keeps freed memory in the process instead of purging it back to the kernel after a
/// delay. A long forward frees each layer's activation (a gigabyte per layer at 1 MB on
/// the seed scale) and allocates the next one's seconds later, past the delay, so every
/// layer faulted in fresh zeroed pages (docs/results.md, "Monolithic forward against
/// onnxruntime"). A process here holds one query (a function) or a bounded set (`serve`,
/// admitted by memory), so its peak is its working set anyway. `MIMALLOC_PURGE_DELAY` in
/// the environment still decides when it is set.
#[cfg(target_env = "gnu")]
fn keep_freed_memory() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: setting an option is a store to mimalloc's option table; -1 is its
        // documented "never purge".
        unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, -1) }
    }
}

/// The command line, with `function` supplied when this binary runs as a Lambda
/// `bootstrap`: the deployment zip ships this one binary under that name, so it must
/// know to be the function process without being told.
#[cfg(feature = "function")]
fn arguments() -> Vec<std::ffi::OsString> {
    let mut args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let named_bootstrap = args
        .first()
        .and_then(|a| std::path::Path::new(a).file_name())
        == Some(seqless_functions::runtime::LAMBDA_BOOTSTRAP.as_ref());
    if named_bootstrap && args.len() == 1 {
        args.push("function".into());
    }
    args
}

/// Without the function process built in, the command line is taken as it is.
#[cfg(not(feature = "function"))]
fn arguments() -> Vec<std::ffi::OsString> {
    std::env::args_os().collect()
}

fn main() -> ExitCode {
    #[cfg(target_env = "gnu")]
    keep_freed_memory();
    let cli = match parse() {
        Ok(cli) => cli,
        Err(code) => return code,
    };
    if cli.command.is_one_shot() {
        stop_quietly_on_closed_pipe();
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("SEQLESS_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .init();
    match commands::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            // Library errors carry their causes in their own messages, so the chain is
            // each cause once.
            eprintln!("error: {err:#}");
            ExitCode::from(commands::exit_code(&err))
        }
    }
}

/// The command line, or the exit code of a refusal already printed: help and version exit
/// 0, a usage error 2 with one line.
fn parse() -> Result<cli::Cli, ExitCode> {
    let command = scope::built_command();
    let parsed = command
        .clone()
        .try_get_matches_from(arguments())
        .and_then(|matches| Ok((cli::Cli::from_arg_matches(&matches)?, matches)));
    let (cli, matches) = match parsed {
        Ok(parsed) => parsed,
        Err(err) if !err.use_stderr() => {
            // --help and --version: clap prints them to stdout.
            let _ = err.print();
            return Err(ExitCode::SUCCESS);
        }
        Err(err) if err.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = err.print();
            return Err(ExitCode::from(commands::USAGE));
        }
        Err(err) => {
            eprintln!("{}", one_line(&err.render().to_string()));
            return Err(ExitCode::from(commands::USAGE));
        }
    };
    if let Err(refusal) = scope::check(&command, &matches) {
        eprintln!("error: {refusal}");
        return Err(ExitCode::from(commands::USAGE));
    }
    Ok(cli)
}

/// clap's message without its usage block, on one line: scripts and logs keep one line
/// per failure.
fn one_line(rendered: &str) -> String {
    let parts: Vec<&str> = rendered
        .lines()
        .take_while(|line| !line.starts_with("Usage:") && !line.starts_with("For more information"))
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .collect();
    format!("{} (see --help)", parts.join(" "))
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
