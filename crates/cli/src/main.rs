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

/// The command line, with `function` supplied when this binary runs as a Lambda
/// `bootstrap`: the deployment zip ships this one binary under that name, so it must
/// know to be the function process without being told.
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

fn main() -> ExitCode {
    let cli = cli::Cli::parse_from(arguments());
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
            eprintln!("error: {}", describe(&err));
            ExitCode::from(commands::exit_code(&err))
        }
    }
}

/// The error and its causes, joined by ": ", each said once.
///
/// Several of the workspace's error types put their source into their own message (so a
/// plain `to_string()`, as the HTTP API sends, is complete) and also expose it as the
/// source; anyhow's `{:#}` would then print that cause twice. A cause already at the end
/// of the message so far is skipped.
fn describe(err: &anyhow::Error) -> String {
    let mut message = String::new();
    for cause in err.chain() {
        let text = cause.to_string();
        if message.is_empty() {
            message = text;
        } else if !message.ends_with(&text) {
            message = format!("{message}: {text}");
        }
    }
    message
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

#[cfg(test)]
mod tests {
    use super::describe;

    #[derive(Debug, thiserror::Error)]
    #[error("reading {path}: {source}")]
    struct Wrapped {
        path: &'static str,
        source: std::io::Error,
    }

    #[test]
    fn a_cause_inside_the_message_is_not_repeated() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "no such file");
        let err = anyhow::Error::new(Wrapped {
            path: "m.json",
            source: io,
        })
        .context("loading the model");
        assert_eq!(
            describe(&err),
            "loading the model: reading m.json: no such file"
        );
        assert_eq!(
            format!("{err:#}"),
            "loading the model: reading m.json: no such file: no such file"
        );
    }
}
