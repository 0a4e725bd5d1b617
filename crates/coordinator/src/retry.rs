//! Retrying stages that failed with a transient error.

use std::time::Duration;

/// Retries of failed stages and store writes: at scale, throttling (429), crashed or
/// timed-out instances and store hiccups are routine, and each would otherwise lose the
/// query. Retrying a stage is safe because stages are idempotent (docs/design.md §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts per stage, the first included; 1 turns retries off.
    pub max_attempts: u32,
    /// The backoff before retry n is drawn uniformly from 0 to
    /// min(`max_backoff`, `base_backoff` · 2^(n−1)) ("full jitter"), so that many stages
    /// throttled at once do not come back at once.
    pub base_backoff: Duration,
    /// The largest backoff.
    pub max_backoff: Duration,
}

/// Six attempts: at 12% of invocations failing (the chaos run: 10% errors, 2%
/// crashes), a stage fails all six about 3 times in a million, so a thousand queries of a
/// dozen stages all succeed; four would lose about one query in 400.
impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 6,
            base_backoff: Duration::from_millis(25),
            max_backoff: Duration::from_secs(1),
        }
    }
}

impl RetryPolicy {
    /// No retries: every failure fails the query.
    pub fn none() -> Self {
        Self {
            max_attempts: 1,
            ..Self::default()
        }
    }

    /// The backoff before retry `retry` (1 for the first), with full jitter.
    pub fn backoff(&self, retry: u32) -> Duration {
        let doubling = 2u32.saturating_pow(retry.saturating_sub(1));
        let cap = self
            .base_backoff
            .saturating_mul(doubling)
            .min(self.max_backoff);
        cap.mul_f64(rand::random::<f64>())
    }
}
