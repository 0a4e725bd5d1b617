//! Which process runs an invocation: a warm idle one of the function if any, else a new
//! one (a cold start) while fewer than the concurrency limit are alive, else, after
//! stopping the least recently used idle process of another function, a new one; else the
//! invocation waits in a bounded queue or is throttled.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use crate::faults::Injector;
use crate::metrics::PlatformMetrics;
use crate::options::{FunctionSpec, PlatformOptions};
use crate::runtime_api;
use crate::worker::Worker;

/// A process ready for an invocation.
pub struct Acquired {
    /// The process.
    pub worker: Arc<Worker>,
    /// Whether it was started for this invocation.
    pub cold: bool,
}

/// Why no process could be had.
#[derive(Debug)]
pub enum AcquireError {
    /// Every process busy and the queue full, or no process freed in time.
    Throttled,
    /// A new process could not be started.
    Spawn(String),
}

struct Idle {
    worker: Arc<Worker>,
    since: Instant,
}

#[derive(Default)]
struct PoolState {
    /// Every process not yet exited, stopping ones included.
    workers: HashMap<u64, Arc<Worker>>,
    /// Processes being spawned (counted against the limit before they exist).
    starting: usize,
    /// Warm processes with no job, least recently used first.
    idle: Vec<Idle>,
    /// Invocations waiting for a process.
    waiting: usize,
}

impl PoolState {
    fn alive(&self) -> usize {
        self.workers.len() + self.starting
    }
}

/// What the decision under the lock said to do.
enum Step {
    Warm(Arc<Worker>),
    Spawn,
    /// Stopped an idle process of another function; retry when it has exited.
    Evicted,
    Wait,
}

/// The function processes and the rules that start, reuse and stop them.
pub struct Pool {
    options: PlatformOptions,
    state: Mutex<PoolState>,
    changed: Notify,
    next_id: AtomicU64,
    metrics: Arc<PlatformMetrics>,
    faults: Option<Injector>,
    this: Weak<Pool>,
}

/// One row of `GET /workers`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct WorkerInfo {
    /// The function it runs.
    pub function: String,
    /// Its process id.
    pub pid: u32,
    /// `busy`, `idle` or `stopping` (killed or starting, not yet reusable).
    pub state: &'static str,
}

impl Pool {
    /// An empty pool, injecting `faults` into its invocations if any.
    pub fn new(
        options: PlatformOptions,
        metrics: Arc<PlatformMetrics>,
        faults: Option<Injector>,
    ) -> Arc<Self> {
        Arc::new_cyclic(|this| Self {
            options,
            state: Mutex::default(),
            changed: Notify::new(),
            next_id: AtomicU64::new(1),
            metrics,
            faults,
            this: this.clone(),
        })
    }

    /// The fault injector, when faults are injected.
    pub fn faults(&self) -> Option<&Injector> {
        self.faults.as_ref()
    }

    fn state(&self) -> MutexGuard<'_, PoolState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn decide(&self, function: &FunctionSpec, queue: bool) -> Result<Step, AcquireError> {
        let mut state = self.state();
        if let Some(i) = state
            .idle
            .iter()
            .rposition(|i| i.worker.function.name == function.name)
        {
            return Ok(Step::Warm(state.idle.remove(i).worker));
        }
        if state.alive() < self.options.max_concurrency {
            state.starting += 1;
            let alive = state.alive();
            self.metrics.workers_alive(alive);
            return Ok(Step::Spawn);
        }
        if !state.idle.is_empty() {
            // Least recently used first; it stays counted until it has exited, so the
            // limit holds for processes, not just for bookkeeping.
            let victim = state.idle.remove(0).worker;
            victim.kill();
            return Ok(Step::Evicted);
        }
        if queue && state.waiting >= self.options.queue_bound {
            return Err(AcquireError::Throttled);
        }
        state.waiting += usize::from(queue);
        Ok(Step::Wait)
    }

    /// A process for one invocation of `function`, waiting at most `patience` for one.
    pub async fn acquire(
        &self,
        function: &Arc<FunctionSpec>,
        patience: Duration,
    ) -> Result<Acquired, AcquireError> {
        let give_up = tokio::time::Instant::now() + patience;
        let mut queued = false;
        let outcome = loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            match self.decide(function, !queued) {
                Ok(Step::Warm(worker)) => {
                    break Ok(Acquired {
                        worker,
                        cold: false,
                    });
                }
                Ok(Step::Spawn) => {
                    break self
                        .spawn(function.clone())
                        .await
                        .map(|worker| Acquired { worker, cold: true });
                }
                Ok(Step::Evicted) => {}
                Ok(Step::Wait) => queued = true,
                Err(e) => break Err(e),
            }
            if tokio::time::timeout_at(give_up, changed).await.is_err() {
                break Err(AcquireError::Throttled);
            }
        };
        if queued {
            self.state().waiting -= 1;
        }
        outcome
    }

    async fn spawn(&self, function: Arc<FunctionSpec>) -> Result<Arc<Worker>, AcquireError> {
        let started = async {
            let (listener, addr) = runtime_api::bind().await?;
            let id = self.next_id.fetch_add(1, Ordering::Relaxed);
            let pool = self.this.clone();
            let inject_faults = self.faults.is_some();
            let worker = Worker::spawn(
                id,
                function.clone(),
                &self.options,
                addr,
                inject_faults,
                move |w| {
                    if let Some(pool) = pool.upgrade() {
                        pool.exited(w);
                    }
                },
            )?;
            tokio::spawn(runtime_api::serve(listener, worker.clone()));
            std::io::Result::Ok(worker)
        }
        .await;
        let mut state = self.state();
        state.starting -= 1;
        if let Ok(worker) = &started {
            state.workers.insert(worker.id, worker.clone());
        }
        self.metrics.workers_alive(state.alive());
        match started {
            Ok(worker) => {
                self.metrics.cold_start(&function.name);
                tracing::debug!(pid = worker.pid, function = %function.name, "function process started");
                Ok(worker)
            }
            Err(e) => {
                drop(state);
                self.changed.notify_waiters();
                Err(AcquireError::Spawn(format!(
                    "starting {} for {}: {e}",
                    self.options.worker_exe.display(),
                    function.name
                )))
            }
        }
    }

    /// Puts a process back after its invocation, warm; a process that exited or was
    /// stopped is not reused.
    pub fn release(&self, worker: Arc<Worker>) {
        {
            let mut state = self.state();
            if !state.workers.contains_key(&worker.id) || !worker.reusable() {
                return;
            }
            state.idle.push(Idle {
                worker,
                since: Instant::now(),
            });
        }
        self.changed.notify_waiters();
    }

    /// Stops a process that must not be reused (timed out, failed its init).
    pub fn discard(&self, worker: &Worker) {
        self.state().idle.retain(|i| i.worker.id != worker.id);
        worker.kill();
    }

    fn exited(&self, worker: &Arc<Worker>) {
        let alive = {
            let mut state = self.state();
            state.workers.remove(&worker.id);
            state.idle.retain(|i| i.worker.id != worker.id);
            state.alive()
        };
        self.metrics.workers_alive(alive);
        self.metrics.worker_exited(&worker.function.name);
        self.changed.notify_waiters();
    }

    /// Stops processes idle for longer than the idle timeout; returns how many.
    pub fn reap(&self) -> usize {
        let timeout = self.options.idle_timeout;
        let stale: Vec<Arc<Worker>> = {
            let mut state = self.state();
            let (stale, keep) = std::mem::take(&mut state.idle)
                .into_iter()
                .partition(|i| i.since.elapsed() >= timeout);
            state.idle = keep;
            stale.into_iter().map(|i: Idle| i.worker).collect()
        };
        for worker in &stale {
            tracing::debug!(pid = worker.pid, function = %worker.function.name, "reaping idle function process");
            worker.kill();
        }
        self.metrics.reaped(stale.len());
        stale.len()
    }

    /// Stops every process and waits (at most `patience`) for them to exit.
    pub async fn stop_all(&self, patience: Duration) {
        let give_up = tokio::time::Instant::now() + patience;
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            let workers: Vec<Arc<Worker>> = {
                let mut state = self.state();
                state.idle.clear();
                state.workers.values().cloned().collect()
            };
            if workers.is_empty() {
                return;
            }
            workers.iter().for_each(|w| w.kill());
            if tokio::time::timeout_at(give_up, changed).await.is_err() {
                return;
            }
        }
    }

    /// The processes now, for `GET /workers`.
    pub fn workers(&self) -> Vec<WorkerInfo> {
        let state = self.state();
        let mut rows: Vec<WorkerInfo> = state
            .workers
            .values()
            .map(|w| WorkerInfo {
                function: w.function.name.clone(),
                pid: w.pid,
                state: if state.idle.iter().any(|i| i.worker.id == w.id) {
                    "idle"
                } else if w.busy() {
                    "busy"
                } else {
                    "stopping"
                },
            })
            .collect();
        rows.sort_by_key(|r| r.pid);
        rows
    }

    /// The options the pool was built with.
    pub fn options(&self) -> &PlatformOptions {
        &self.options
    }
}
