//! One function process (an execution environment): spawning it with Lambda's
//! environment, its own Runtime API listener, the job it is running, its output and its
//! exit.

use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use seqless_wire::faults::{FAULTS_ENV, WorkerFault};
use seqless_wire::lambda::LambdaErrorBody;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::Command;
use tokio::sync::{Notify, oneshot};

use crate::logs::LogBuffer;
use crate::options::{FunctionSpec, PlatformOptions};

/// The subcommand of the function binary that runs a function process.
const FUNCTION_SUBCOMMAND: &str = "function";
/// Region in the ARNs and environment the functions see.
pub const REGION: &str = "us-east-1";
/// Account id in the ARNs (Lambda's documentation account).
pub const ACCOUNT: &str = "000000000000";
/// Variables of the platform's own environment passed on to function processes (the rest
/// is cleared, as a Lambda environment starts clean).
const PASSED_ENV: [&str; 6] = [
    "PATH",
    "LD_LIBRARY_PATH",
    "TMPDIR",
    "SEQLESS_LOG",
    "RUST_LOG",
    "RUST_BACKTRACE",
];

/// The ARN of a function, as Lambda names it.
pub fn function_arn(name: &str) -> String {
    format!("arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}")
}

/// How an invocation ended, from the process's side.
#[derive(Debug)]
pub enum Completion {
    /// The function posted a result.
    Response(Bytes),
    /// The function posted an error, at init or while handling.
    Error(LambdaErrorBody),
    /// The process exited first (its exit status, in words).
    Exited(String),
    /// It ran past its timeout; the process is being killed.
    TimedOut,
}

/// What the invoker learns when its job ends.
#[derive(Debug)]
pub struct Finished {
    /// How it ended.
    pub completion: Completion,
    /// When the process received it from `/next` (never, if it died or failed before).
    pub delivered: Option<Instant>,
    /// When it ended.
    pub at: Instant,
    /// The process's first log line number of this job.
    pub log_mark: u64,
}

/// One invocation handed to a process.
pub struct Job {
    /// Lambda's request id.
    pub request_id: String,
    /// The event.
    pub payload: Bytes,
    /// The invocation's time limit, for the deadline header.
    pub timeout: Duration,
    /// The injected fault the process is told to act out, if any.
    pub fault: Option<WorkerFault>,
    /// Where the outcome goes.
    pub done: oneshot::Sender<Finished>,
    delivered: Option<Instant>,
    log_mark: u64,
}

impl Job {
    /// A job not yet seen by any process.
    pub fn new(
        request_id: String,
        payload: Bytes,
        timeout: Duration,
        fault: Option<WorkerFault>,
        done: oneshot::Sender<Finished>,
    ) -> Self {
        Self {
            request_id,
            payload,
            timeout,
            fault,
            done,
            delivered: None,
            log_mark: 0,
        }
    }

    fn finish(self, completion: Completion) {
        // The invoker may have given up (timeout); then nobody needs the outcome.
        let _ = self.done.send(Finished {
            completion,
            delivered: self.delivered,
            at: Instant::now(),
            log_mark: self.log_mark,
        });
    }
}

/// What `/next` hands the process.
pub struct Delivery {
    /// Lambda's request id.
    pub request_id: String,
    /// The event.
    pub payload: Bytes,
    /// Milliseconds since the epoch when the invocation times out.
    pub deadline_ms: u64,
    /// The injected fault to act out, if any.
    pub fault: Option<WorkerFault>,
}

/// Where a process is in Lambda's init phase.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Init {
    /// Started, not yet at its first `/next`.
    Running,
    /// Reached `/next` this long after the spawn.
    Done(Duration),
    /// Posted an init error.
    Failed,
}

struct State {
    init: Init,
    job: Option<Job>,
    exited: bool,
}

/// Why a Runtime API call was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum RuntimeRefusal {
    /// The request id is not the one the process is running.
    UnknownRequest,
    /// An init error after init, or a second one.
    InvalidState,
}

/// A function process and the Runtime API state the platform keeps for it.
pub struct Worker {
    /// Unique within the platform.
    pub id: u64,
    /// The function it runs.
    pub function: Arc<FunctionSpec>,
    /// Its process id.
    pub pid: u32,
    spawned_at: Instant,
    state: Mutex<State>,
    /// Wakes `/next` when a job arrives or the process exits.
    job_ready: Notify,
    /// Wakes the Runtime API listener when the process exits.
    exit: Notify,
    kill: Notify,
    log: Mutex<LogBuffer>,
    max_rss_kb: AtomicU64,
}

fn micros_since_epoch(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

/// Peak resident memory of a live process (`VmHWM`), in kB.
fn read_vm_hwm_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

impl Worker {
    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the state half-written (every
        // update is a single assignment), so a poisoned lock is still usable.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Spawns `<worker_exe> function` with Lambda's environment, pointed at its own
    /// Runtime API on `runtime_api`, and told to act on injected faults when
    /// `inject_faults`. `on_exit` runs once the process has exited and its job (if any) has
    /// been failed.
    pub fn spawn(
        id: u64,
        function: Arc<FunctionSpec>,
        options: &PlatformOptions,
        runtime_api: SocketAddr,
        inject_faults: bool,
        on_exit: impl FnOnce(&Arc<Worker>) + Send + 'static,
    ) -> std::io::Result<Arc<Self>> {
        let mut command = Command::new(&options.worker_exe);
        command.arg(FUNCTION_SUBCOMMAND).env_clear();
        for name in PASSED_ENV {
            if let Some(value) = std::env::var_os(name) {
                command.env(name, value);
            }
        }
        let name = &function.name;
        let memory = function.memory_mb.to_string();
        let stream = format!("local/[$LATEST]{id:016x}");
        let group = format!("/aws/lambda/{name}");
        let runtime_api = runtime_api.to_string();
        let ttl = options.ttl_secs.to_string();
        let model = options.model_dir.to_string_lossy().into_owned();
        let lambda_env = [
            ("AWS_LAMBDA_RUNTIME_API", runtime_api.as_str()),
            ("AWS_LAMBDA_FUNCTION_NAME", name),
            ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", &memory),
            ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST"),
            ("AWS_LAMBDA_LOG_STREAM_NAME", &stream),
            ("AWS_LAMBDA_LOG_GROUP_NAME", &group),
            ("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand"),
            ("AWS_EXECUTION_ENV", "AWS_Lambda_provided.al2023"),
            ("AWS_REGION", REGION),
            ("AWS_DEFAULT_REGION", REGION),
            ("_HANDLER", "bootstrap"),
            ("TZ", ":UTC"),
            ("SEQLESS_MODEL", &model),
            ("SEQLESS_STORE", &options.store_url),
            ("SEQLESS_KEY_PREFIX", &options.key_prefix),
            ("SEQLESS_TTL_SECS", &ttl),
        ];
        command
            .envs(lambda_env)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        if inject_faults {
            command.env(FAULTS_ENV, "1");
        }
        let spawned_at = Instant::now();
        command.env(
            "SEQLESS_SPAWNED_AT_US",
            micros_since_epoch(SystemTime::now()).to_string(),
        );
        let mut child = command.spawn()?;
        let worker = Arc::new(Self {
            id,
            function,
            pid: child.id().unwrap_or(0),
            spawned_at,
            state: Mutex::new(State {
                init: Init::Running,
                job: None,
                exited: false,
            }),
            job_ready: Notify::new(),
            exit: Notify::new(),
            kill: Notify::new(),
            log: Mutex::new(LogBuffer::default()),
            max_rss_kb: AtomicU64::new(0),
        });
        if let Some(out) = child.stdout.take() {
            tokio::spawn(capture(worker.clone(), out));
        }
        if let Some(err) = child.stderr.take() {
            tokio::spawn(capture(worker.clone(), err));
        }
        let watched = worker.clone();
        tokio::spawn(async move {
            let status = tokio::select! {
                status = child.wait() => status,
                () = watched.kill.notified() => {
                    let _ = child.start_kill();
                    child.wait().await
                }
            };
            let status = match status {
                Ok(s) => s.to_string(),
                Err(e) => format!("could not wait for the process: {e}"),
            };
            watched.exited(status);
            on_exit(&watched);
        });
        Ok(worker)
    }

    fn exited(&self, status: String) {
        let job = {
            let mut state = self.state();
            state.exited = true;
            state.job.take()
        };
        tracing::debug!(pid = self.pid, function = %self.function.name, %status, "function process exited");
        if let Some(job) = job {
            job.finish(Completion::Exited(status));
        }
        self.job_ready.notify_waiters();
        self.exit.notify_waiters();
    }

    /// Stops the process (idle reaping, timeouts, init failures); its exit is handled as
    /// any other.
    pub fn kill(&self) {
        self.kill.notify_one();
    }

    /// Hands the process a job; gives it back if the process has exited or is busy.
    pub fn assign(&self, job: Job) -> Result<(), Job> {
        {
            let mut state = self.state();
            if state.exited || state.job.is_some() || state.init == Init::Failed {
                return Err(job);
            }
            state.job = Some(job);
        }
        // `/next` checks the state after enabling its waiter, so no wake-up is lost.
        self.job_ready.notify_waiters();
        Ok(())
    }

    /// Takes back the running job (the invoker gave up on it).
    pub fn take_job(&self) -> Option<(Option<Instant>, u64)> {
        self.state().job.take().map(|j| (j.delivered, j.log_mark))
    }

    /// `/next`: waits for a job; `None` once the process is gone. The first call ends the
    /// init phase.
    pub async fn next_job(self: &Arc<Self>) -> Option<Delivery> {
        loop {
            let ready = self.job_ready.notified();
            tokio::pin!(ready);
            ready.as_mut().enable();
            {
                let mut state = self.state();
                if state.exited {
                    return None;
                }
                if state.init == Init::Running {
                    state.init = Init::Done(self.spawned_at.elapsed());
                }
                if let Some(job) = state.job.as_mut().filter(|j| j.delivered.is_none()) {
                    job.delivered = Some(Instant::now());
                    job.log_mark = self.log().mark();
                    let deadline = SystemTime::now() + job.timeout;
                    self.watch(job.request_id.clone(), job.timeout);
                    return Some(Delivery {
                        request_id: job.request_id.clone(),
                        payload: job.payload.clone(),
                        deadline_ms: micros_since_epoch(deadline) / 1000,
                        fault: job.fault,
                    });
                }
            }
            ready.await;
        }
    }

    /// Fails the job `request_id` and kills the process if it is still running after
    /// `timeout` (from delivery, as Lambda times a handler).
    fn watch(self: &Arc<Self>, request_id: String, timeout: Duration) {
        let worker = Arc::downgrade(self);
        tokio::spawn(async move {
            tokio::time::sleep(timeout).await;
            if let Some(worker) = worker.upgrade()
                && worker.complete(&request_id, Completion::TimedOut).is_ok()
            {
                worker.kill();
            }
        });
    }

    /// `/response` and `/error`: ends the job with `request_id`.
    pub fn complete(&self, request_id: &str, completion: Completion) -> Result<(), RuntimeRefusal> {
        let job = {
            let mut state = self.state();
            let running = state
                .job
                .as_ref()
                .is_some_and(|j| j.request_id == request_id && j.delivered.is_some());
            if !running {
                return Err(RuntimeRefusal::UnknownRequest);
            }
            state.job.take()
        };
        if let Some(job) = job {
            job.finish(completion);
        }
        Ok(())
    }

    /// `/init/error`: fails the job waiting for this process and stops it, as Lambda
    /// discards an environment whose init failed.
    pub fn init_failed(&self, error: LambdaErrorBody) -> Result<(), RuntimeRefusal> {
        let job = {
            let mut state = self.state();
            if state.init != Init::Running {
                return Err(RuntimeRefusal::InvalidState);
            }
            state.init = Init::Failed;
            state.job.take()
        };
        tracing::warn!(pid = self.pid, function = %self.function.name, error = %error.error_message, "function init failed");
        if let Some(job) = job {
            job.finish(Completion::Error(error));
        }
        self.kill();
        Ok(())
    }

    /// The init phase's length: spawn to first `/next`, or to now if it never got there.
    pub fn init_duration(&self) -> Duration {
        match self.state().init {
            Init::Done(d) => d,
            Init::Running | Init::Failed => self.spawned_at.elapsed(),
        }
    }

    /// Returns once the process has exited.
    pub async fn gone(&self) {
        loop {
            let changed = self.exit.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            if self.state().exited {
                return;
            }
            changed.await;
        }
    }

    /// Whether the process can take another job: initialised, not exited, not busy.
    pub fn reusable(&self) -> bool {
        let state = self.state();
        matches!(state.init, Init::Done(_)) && !state.exited && state.job.is_none()
    }

    /// Whether the process is running a job.
    pub fn busy(&self) -> bool {
        self.state().job.is_some()
    }

    /// Peak resident memory so far, MB (the last reading if the process is gone).
    pub fn max_memory_mb(&self) -> u64 {
        if let Some(kb) = read_vm_hwm_kb(self.pid) {
            self.max_rss_kb.fetch_max(kb, Ordering::Relaxed);
        }
        self.max_rss_kb.load(Ordering::Relaxed).div_ceil(1024)
    }

    fn log(&self) -> MutexGuard<'_, LogBuffer> {
        self.log.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Lines the process wrote since `mark`.
    pub fn log_since(&self, mark: u64) -> Vec<String> {
        self.log().since(mark)
    }
}

/// Keeps a process's output lines, and passes them on to the platform's log.
async fn capture(worker: Arc<Worker>, stream: impl AsyncRead + Unpin) {
    let mut lines = BufReader::new(stream).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        tracing::debug!(pid = worker.pid, function = %worker.function.name, "{line}");
        worker.log().push(line);
    }
}
