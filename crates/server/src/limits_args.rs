//! The service limits of `seqless serve` as flags (the `clap` feature), turned into the
//! [`ServiceLimits`] they set.

use std::time::Duration;

use clap::Args;

use crate::{MemoryLimits, ServiceLimits};

/// What the server admits: body size, queries in flight, their memory and the wait for
/// it, the deadline and the batch size.
#[derive(Debug, Clone, Args)]
pub struct LimitsArgs {
    /// Largest request body, bytes (413 above it).
    #[arg(long, default_value_t = 4 << 20)]
    pub body_limit: usize,
    /// Queries in flight at once; more are refused with 503 and Retry-After.
    #[arg(long, default_value_t = 64)]
    pub max_in_flight: usize,
    /// Memory the running queries' estimated peaks may add up to, MiB [default: half the
    /// machine's memory, or of the cgroup's limit]. A query over it is refused with 413.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=(u64::MAX >> 20)))]
    pub memory_budget_mb: Option<u64>,
    /// Queries that may wait for memory at once; more are refused with 503 and Retry-After.
    #[arg(long, default_value_t = 64)]
    pub memory_queue_max: usize,
    /// Longest a query waits for memory, ms, before it is refused with 503 and Retry-After.
    #[arg(long, default_value_t = 5_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub memory_queue_wait_ms: u64,
    /// Time a request may take from admission to answer, ms (504 after it).
    #[arg(long, default_value_t = 30_000)]
    pub deadline_ms: u64,
    /// Most texts in one POST /v1/classify/batch.
    #[arg(long, default_value_t = 64)]
    pub max_batch_texts: usize,
}

impl LimitsArgs {
    /// The limits the flags set; the memory budget defaults to a share of the machine's.
    pub fn limits(&self) -> ServiceLimits {
        let defaults = MemoryLimits::default();
        ServiceLimits {
            body_limit: self.body_limit,
            max_in_flight: self.max_in_flight,
            memory: MemoryLimits {
                budget_bytes: self
                    .memory_budget_mb
                    .map_or(defaults.budget_bytes, |mb| mb << 20),
                queue_max: self.memory_queue_max,
                queue_wait: Duration::from_millis(self.memory_queue_wait_ms),
            },
            deadline: Duration::from_millis(self.deadline_ms.max(1)),
            max_batch: self.max_batch_texts,
        }
    }
}
