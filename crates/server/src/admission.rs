//! Backpressure by count and by memory.
//!
//! - **Count**: a bound on queries in flight. A query past it is refused at once with 503
//!   and `Retry-After` rather than queued, so latency stays bounded under overload and a
//!   load balancer can send the query elsewhere.
//! - **Memory**: every query carries an estimate of its peak memory (the engine's, from its
//!   length and the model), and the estimates of the queries running together stay within
//!   a budget, so a burst of long queries cannot get the server killed for memory. A query
//!   whose estimate does not fit now waits in a queue bounded by length and by time (first
//!   come, first served, so a long query is not starved by short ones), and is refused with
//!   503 and `Retry-After` past either bound. A query over the whole budget could never run
//!   and is refused with 413 before it takes anything.
//!
//! Shutdown waits for the admitted ones.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::http::StatusCode;
use prometheus_client::metrics::gauge::Gauge;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::error::ApiError;

/// Seconds a refused client is told to wait.
const RETRY_AFTER_SECS: u64 = 1;
/// Far above any sensible bound, and within what a semaphore and a `u32` count hold.
const MAX_CAPACITY: usize = 1 << 20;
/// The memory semaphore counts KiB: a `u32` of them spans 4 TiB, and a semaphore takes at
/// most `u32` permits in one call.
const UNIT: u64 = 1 << 10;

/// Mebibytes of `bytes`, rounded up, for messages.
fn mib(bytes: u64) -> u64 {
    bytes.div_ceil(1 << 20)
}

/// The memory bound: the budget and the queue in front of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryLimits {
    /// Bytes the estimates of the queries running at once may add up to.
    pub budget_bytes: u64,
    /// Queries that may wait for memory at once; more are refused with 503.
    pub queue_max: usize,
    /// Longest a query waits for memory before it is refused with 503.
    pub queue_wait: Duration,
}

/// The share of the machine's memory (or of the cgroup's limit) the default budget gives to
/// queries: the rest is the model, the runtime, the memory the allocator keeps for reuse,
/// and slack for the estimates of the serverless master, which count what the master holds.
pub const DEFAULT_BUDGET_FRACTION: f64 = 0.5;

/// The budget when the machine's memory cannot be read (not Linux).
const FALLBACK_BUDGET_BYTES: u64 = 4 << 30;

/// The memory this process may use: the cgroup's limit where one is set (v2
/// `memory.max`, or v1 `memory.limit_in_bytes`), else the machine's `MemTotal`; `None`
/// where neither can be read.
pub fn machine_memory_bytes() -> Option<u64> {
    let read = |path: &str| std::fs::read_to_string(path).ok();
    let total = read("/proc/meminfo").and_then(|info| {
        let kib = info
            .lines()
            .find_map(|line| line.strip_prefix("MemTotal:"))?
            .trim()
            .strip_suffix("kB")?
            .trim()
            .parse::<u64>()
            .ok()?;
        Some(kib * 1024)
    });
    // "max" (v2) or a huge number (v1) means no limit, which `min` with the total absorbs.
    let cgroup = [
        "/sys/fs/cgroup/memory.max",
        "/sys/fs/cgroup/memory/memory.limit_in_bytes",
    ]
    .into_iter()
    .find_map(|path| read(path)?.trim().parse::<u64>().ok());
    match (total, cgroup) {
        (Some(t), Some(c)) => Some(t.min(c)),
        (t, c) => t.or(c),
    }
}

impl Default for MemoryLimits {
    /// [`DEFAULT_BUDGET_FRACTION`] of [`machine_memory_bytes`] (4 GiB where it cannot be
    /// read), a queue of 64 and a wait of 5 s.
    fn default() -> Self {
        let budget_bytes = machine_memory_bytes().map_or(FALLBACK_BUDGET_BYTES, |bytes| {
            (bytes as f64 * DEFAULT_BUDGET_FRACTION) as u64
        });
        Self {
            budget_bytes,
            queue_max: 64,
            queue_wait: Duration::from_secs(5),
        }
    }
}

/// Hands out permits for queries, up to a number at once and within a memory budget.
#[derive(Debug, Clone)]
pub struct Admission {
    slots: Arc<Semaphore>,
    capacity: u32,
    in_flight: Gauge,
    memory: Arc<Semaphore>,
    limits: MemoryLimits,
    budget_units: u32,
    waiting: Arc<AtomicUsize>,
}

/// Holds `n` slots and the query's memory until dropped, which happens when the query has
/// really stopped (even if its client was answered 504 earlier).
#[derive(Debug)]
pub struct Permit {
    _slots: OwnedSemaphorePermit,
    _memory: OwnedSemaphorePermit,
    n: u32,
    in_flight: Gauge,
}

impl Drop for Permit {
    fn drop(&mut self) {
        self.in_flight.dec_by(i64::from(self.n));
    }
}

/// Counts a query in the memory queue for as long as it waits there, including when its
/// client goes away and the wait is dropped.
struct Waiting(Arc<AtomicUsize>);

impl Drop for Waiting {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Admission {
    /// At most `capacity` (clamped to 1..=2^20) queries at once, counted on the `in_flight`
    /// gauge, whose memory estimates stay within `memory`.
    pub fn new(capacity: usize, memory: MemoryLimits, in_flight: Gauge) -> Self {
        let capacity = capacity.clamp(1, MAX_CAPACITY);
        let budget_units = u32::try_from(memory.budget_bytes / UNIT)
            .unwrap_or(u32::MAX)
            .max(1);
        Self {
            slots: Arc::new(Semaphore::new(capacity)),
            capacity: capacity as u32,
            in_flight,
            memory: Arc::new(Semaphore::new(budget_units as usize)),
            limits: memory,
            budget_units,
            waiting: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// Refuses with 413 a request whose estimated memory (`bytes`, all its texts together)
    /// is over the whole budget: it could never run, so waiting or retrying cannot help.
    pub fn check_memory(&self, bytes: u64, what: &str) -> Result<(), ApiError> {
        if bytes <= self.limits.budget_bytes {
            return Ok(());
        }
        Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "over_memory_budget",
            format!(
                "{what} would need about {} MiB ({bytes} bytes) at its peak, over this server's memory budget of {} MiB (--memory-budget-mb); send a shorter text, fewer texts, or use a server with a larger budget",
                mib(bytes),
                mib(self.limits.budget_bytes),
            ),
        ))
    }

    /// Admits `n` queries whose estimated peak memory adds up to `bytes` (already within
    /// the budget: [`Self::check_memory`]). A batch takes one slot per text, at most the
    /// whole capacity, so any batch can run on an idle server. Refuses with 503 +
    /// `Retry-After` at the count bound at once, and when memory is short, after waiting
    /// in the queue, or at once when the queue is full.
    pub async fn admit(&self, n: usize, bytes: u64) -> Result<Permit, ApiError> {
        let n = u32::try_from(n).unwrap_or(u32::MAX).clamp(1, self.capacity);
        let slots = self.slots.clone().try_acquire_many_owned(n).map_err(|_| {
            ApiError::unavailable(
                "overloaded",
                format!(
                    "the server is at its bound of {} queries in flight (--max-in-flight); retry shortly",
                    self.capacity
                ),
                RETRY_AFTER_SECS,
            )
        })?;
        let units = u32::try_from(bytes.div_ceil(UNIT))
            .unwrap_or(u32::MAX)
            .clamp(1, self.budget_units);
        let memory = match self.memory.clone().try_acquire_many_owned(units) {
            Ok(memory) => memory,
            Err(_) => self.wait_for_memory(units, bytes).await?,
        };
        self.in_flight.inc_by(i64::from(n));
        Ok(Permit {
            _slots: slots,
            _memory: memory,
            n,
            in_flight: self.in_flight.clone(),
        })
    }

    /// Queues for `units` of memory, within the queue's length and wait bounds.
    async fn wait_for_memory(
        &self,
        units: u32,
        bytes: u64,
    ) -> Result<OwnedSemaphorePermit, ApiError> {
        let MemoryLimits {
            budget_bytes,
            queue_max,
            queue_wait,
        } = self.limits;
        let busy = |why: String| {
            ApiError::unavailable(
                "overloaded",
                format!(
                    "the queries running hold this server's memory budget of {} MiB (--memory-budget-mb) and this one needs about {} MiB; {why}; retry shortly",
                    mib(budget_bytes),
                    mib(bytes)
                ),
                RETRY_AFTER_SECS,
            )
        };
        let queued = self.waiting.fetch_add(1, Ordering::SeqCst);
        let _waiting = Waiting(self.waiting.clone());
        if queued >= queue_max {
            return Err(busy(format!(
                "{queue_max} queries already wait for memory (--memory-queue-max)"
            )));
        }
        match tokio::time::timeout(queue_wait, self.memory.clone().acquire_many_owned(units)).await
        {
            Ok(Ok(memory)) => Ok(memory),
            Ok(Err(_)) => Err(ApiError::internal("the memory semaphore was closed")),
            Err(_) => Err(busy(format!(
                "it waited {queue_wait:?} for memory (--memory-queue-wait-ms)"
            ))),
        }
    }

    /// Waits until every admitted query has finished, or `within` has passed; says which.
    pub async fn drain(&self, within: Duration) -> bool {
        tokio::time::timeout(within, self.slots.acquire_many(self.capacity))
            .await
            .is_ok_and(|permit| permit.is_ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn admission(budget_kib: u64, queue_max: usize, wait_ms: u64) -> Admission {
        Admission::new(
            8,
            MemoryLimits {
                budget_bytes: budget_kib * UNIT,
                queue_max,
                queue_wait: Duration::from_millis(wait_ms),
            },
            Gauge::default(),
        )
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn the_default_budget_is_half_of_what_the_machine_or_cgroup_allows() {
        let machine = machine_memory_bytes().expect("Linux has /proc/meminfo");
        assert!(machine > 0);
        let budget = MemoryLimits::default().budget_bytes;
        assert_eq!(budget, (machine as f64 * DEFAULT_BUDGET_FRACTION) as u64);
    }

    #[test]
    fn over_the_whole_budget_is_a_413_naming_both_figures() {
        let a = admission(4 << 10, 1, 10);
        assert!(a.check_memory(4 << 20, "the text").is_ok());
        let err = a.check_memory((4 << 20) + 1, "the text").unwrap_err();
        assert_eq!(err.status, StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(err.code, "over_memory_budget");
        assert!(err.message.contains("about 5 MiB"), "{}", err.message);
        assert!(err.message.contains("budget of 4 MiB"), "{}", err.message);
        assert!(
            err.message.contains("--memory-budget-mb"),
            "{}",
            err.message
        );
    }

    #[tokio::test]
    async fn a_query_waits_for_memory_and_runs_once_it_is_freed() {
        let a = admission(100, 1, 60_000);
        let first = a.admit(1, 80 * UNIT).await.unwrap();
        let waiter = tokio::spawn({
            let a = a.clone();
            async move { a.admit(1, 80 * UNIT).await.map(|_| ()) }
        });
        while a.waiting.load(Ordering::SeqCst) == 0 {
            tokio::task::yield_now().await;
        }
        // The queue holds one: a third query is refused at once, naming the queue bound.
        let full = a.admit(1, 80 * UNIT).await.unwrap_err();
        assert_eq!(full.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(full.retry_after_secs, Some(RETRY_AFTER_SECS));
        assert!(
            full.message.contains("--memory-queue-max"),
            "{}",
            full.message
        );
        drop(first);
        waiter.await.unwrap().unwrap();
        assert_eq!(a.waiting.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn a_query_that_waits_too_long_is_a_503_naming_the_wait_bound() {
        let a = admission(100, 4, 20);
        let _held = a.admit(1, 60 * UNIT).await.unwrap();
        let err = a.admit(1, 60 * UNIT).await.unwrap_err();
        assert_eq!(err.status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(
            err.message.contains("--memory-queue-wait-ms"),
            "{}",
            err.message
        );
        // Small enough to fit beside the held one: admitted at once.
        assert!(a.admit(1, 40 * UNIT).await.is_ok());
    }
}
