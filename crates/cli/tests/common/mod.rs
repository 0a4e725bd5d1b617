//! Shared by the integration tests: running the binary under test, a small random model,
//! and the local Lambda platform's settings.

#![allow(dead_code)] // Each test binary uses a different part of this module.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use seqless_functions::lambda_api::DEFAULT_FUNCTION_PREFIX;
use seqless_model::testing::{config, random, write_model};
use seqless_model::{GateActivation, ModelConfig, Modulation};
use seqless_platform::PlatformOptions;
use seqless_store::testing::RedisServer;

/// The shipped model's directory.
pub const LANGID: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../models/langid");

/// The binary under test, which is also the function processes' executable.
pub const SEQLESS: &str = env!("CARGO_BIN_EXE_seqless");

/// Set to a function binary (such as the `bootstrap` deploy/build.sh builds) to run the
/// platform's function processes from it instead of the binary under test, so that an
/// artifact built apart from the tests passes the same equivalence tests.
pub const FUNCTION_BINARY_ENV: &str = "SEQLESS_FUNCTION_BINARY";

/// The function processes' executable: `$SEQLESS_FUNCTION_BINARY`, else [`SEQLESS`].
pub fn function_binary() -> PathBuf {
    match std::env::var_os(FUNCTION_BINARY_ENV).filter(|v| !v.is_empty()) {
        Some(exe) => {
            let exe = PathBuf::from(exe);
            assert!(
                exe.is_file(),
                "{FUNCTION_BINARY_ENV}={}: no such file",
                exe.display()
            );
            exe
        }
        None => SEQLESS.into(),
    }
}

/// A platform on a free loopback port running `seqless function` processes of the model
/// in `model_dir` over `redis`: 4 processes, small serial stages at 256 MB.
pub fn platform_options(model_dir: &Path, redis: &RedisServer) -> PlatformOptions {
    PlatformOptions {
        listen: "127.0.0.1:0".parse().unwrap(),
        model_dir: model_dir.to_path_buf(),
        store_url: redis.url(),
        key_prefix: "seqless:".into(),
        ttl_secs: 60,
        worker_exe: function_binary(),
        function_prefix: DEFAULT_FUNCTION_PREFIX.into(),
        max_concurrency: 4,
        queue_bound: 64,
        idle_timeout: Duration::from_secs(600),
        timeout: Duration::from_secs(60),
        memory_mb: 1024,
        function_memory: [("tfilm".to_owned(), 256), ("head".to_owned(), 256)]
            .into_iter()
            .collect(),
    }
}

/// Runs the binary under test with `args`.
pub fn seqless(args: &[&str]) -> Output {
    Command::new(SEQLESS)
        .args(args)
        .output()
        .expect("run seqless")
}

/// The standard output of a command that must have exited 0 (else its stderr is the panic).
#[track_caller]
pub fn stdout(out: Output) -> String {
    assert!(
        out.status.success(),
        "{:?}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

/// The standard output of `seqless ARGS...`, which must exit 0.
#[track_caller]
pub fn ok(args: &[&str]) -> String {
    stdout(seqless(args))
}

/// The standard error of a command that must have exited 2, refusing its input.
#[track_caller]
pub fn refusal(out: Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    stderr
}

/// The standard output of a command that must have exited 0, as JSON.
#[track_caller]
pub fn json(out: Output) -> serde_json::Value {
    serde_json::from_str(&stdout(out)).expect("JSON output")
}

/// Writes a random two-layer affine model with three labels to `dir`.
pub fn write_test_model(dir: &Path, seed: u64) -> ModelConfig {
    let cfg = config(
        4,
        "6:3:2:4,5:4:1:2",
        Modulation::Affine,
        GateActivation::Sigmoid,
        3,
    );
    write_model(dir, &cfg, &random(&cfg, seed, 0.8));
    cfg
}

/// A server process (`seqless serve`, `seqless platform`), killed on drop if the test did
/// not stop it.
pub struct Server {
    pub child: Child,
}

impl Server {
    /// Spawns `command` with its stdout piped; the first line it prints (its address).
    pub fn start(command: &mut Command) -> (Self, String) {
        let mut child = command
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn the server");
        let mut line = String::new();
        BufReader::new(child.stdout.as_mut().unwrap())
            .read_line(&mut line)
            .unwrap();
        (Self { child }, line)
    }

    /// `seqless serve --model models/langid --listen 127.0.0.1:0` with `extra` flags and no
    /// API token from the environment; the server, its base URL and its listening line.
    pub fn serve(extra: &[&str]) -> (Self, String, String) {
        let (server, line) = Self::start(
            Command::new(SEQLESS)
                .args(["serve", "--model", LANGID])
                .args(["--listen", "127.0.0.1:0"])
                .args(extra)
                .env_remove("SEQLESS_API_TOKEN"),
        );
        let url = line
            .split_whitespace()
            .find(|w| w.starts_with("http://"))
            .unwrap_or_else(|| panic!("no URL in {line:?}"))
            .to_owned();
        (server, url, line)
    }

    /// Its exit status, once it exits within `patience`.
    pub fn wait_exit(&mut self, patience: Duration) -> ExitStatus {
        let deadline = Instant::now() + patience;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "still running after {patience:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // `seqless platform`'s function processes die with it: they are spawned
        // kill-on-drop, and they exit once their Runtime API is gone.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
