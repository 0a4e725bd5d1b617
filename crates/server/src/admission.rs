//! Backpressure: a bound on queries in flight. A query past the bound is refused at once with
//! 503 and `Retry-After` rather than queued, so latency stays bounded under overload and a
//! load balancer can send the query elsewhere; shutdown waits for the admitted ones.

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::metrics::gauge::Gauge;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::error::ApiError;

/// Seconds a refused client is told to wait.
const RETRY_AFTER_SECS: u64 = 1;
/// Far above any sensible bound, and within what a semaphore and a `u32` count hold.
const MAX_CAPACITY: usize = 1 << 20;

/// Hands out permits for queries, up to a fixed number at once.
#[derive(Debug, Clone)]
pub struct Admission {
    slots: Arc<Semaphore>,
    capacity: u32,
    in_flight: Gauge,
}

/// Holds `n` slots until dropped, which happens when the query has really stopped (even if
/// its client was answered 504 earlier).
#[derive(Debug)]
pub struct Permit {
    _slots: OwnedSemaphorePermit,
    n: u32,
    in_flight: Gauge,
}

impl Drop for Permit {
    fn drop(&mut self) {
        self.in_flight.dec_by(i64::from(self.n));
    }
}

impl Admission {
    /// At most `capacity` (clamped to 1..=2^20) queries at once, counted on the `in_flight` gauge.
    pub fn new(capacity: usize, in_flight: Gauge) -> Self {
        let capacity = capacity.clamp(1, MAX_CAPACITY);
        Self {
            slots: Arc::new(Semaphore::new(capacity)),
            capacity: capacity as u32,
            in_flight,
        }
    }

    /// Admits `n` queries (a batch takes one slot per text, at most the whole capacity, so
    /// any batch can run on an idle server), or refuses with 503 + `Retry-After`.
    pub fn admit(&self, n: usize) -> Result<Permit, ApiError> {
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
        self.in_flight.inc_by(i64::from(n));
        Ok(Permit {
            _slots: slots,
            n,
            in_flight: self.in_flight.clone(),
        })
    }

    /// Waits until every admitted query has finished, or `within` has passed; says which.
    pub async fn drain(&self, within: Duration) -> bool {
        tokio::time::timeout(within, self.slots.acquire_many(self.capacity))
            .await
            .is_ok_and(|permit| permit.is_ok())
    }
}
