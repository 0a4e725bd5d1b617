//! What every serverless query shares: the store's network and its request rate, and the
//! master's CPU. Each is a pool of identical servers taken first come, first served: a
//! request reserves the server that frees first, from the moment it asks. Below capacity
//! a request rarely waits; past it the backlog, and latency with it, grows for as long as
//! the overload lasts, while throughput levels off at the capacity. That levelling is what
//! the sweep reports as saturation.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use serde::Serialize;

/// One shared resource: `servers` identical servers, FIFO.
pub(crate) struct Pool {
    name: &'static str,
    capacity: String,
    servers: u32,
    /// When each server is next free, µs.
    free_at: BinaryHeap<Reverse<u64>>,
    /// Service time reserved so far, summed over servers.
    busy_us: u64,
    /// The latest end of any reservation.
    last_end: u64,
}

impl Pool {
    /// A pool of `servers` (at least 1); `capacity` describes it for the report.
    pub fn new(name: &'static str, servers: u32, capacity: String) -> Self {
        let servers = servers.max(1);
        Self {
            name,
            capacity,
            servers,
            free_at: (0..servers).map(|_| Reverse(0)).collect(),
            busy_us: 0,
            last_end: 0,
        }
    }

    /// Reserves `service_us` on the server that frees first, from `t`; returns when the
    /// service ends. A zero-length service neither waits nor occupies a server.
    pub fn reserve(&mut self, t: u64, service_us: u64) -> u64 {
        if service_us == 0 {
            return t;
        }
        let Reverse(free) = self.free_at.pop().expect("a pool has at least one server");
        let end = t.max(free) + service_us;
        self.free_at.push(Reverse(end));
        self.busy_us += service_us;
        self.last_end = self.last_end.max(end);
        end
    }

    /// The share of the pool's time it served, over the arrival window or, when a backlog
    /// ran past it, until the backlog cleared.
    pub fn usage(&self, window_us: u64) -> ResourceUse {
        let span = window_us.max(self.last_end).max(1);
        ResourceUse {
            resource: self.name.to_string(),
            capacity: self.capacity.clone(),
            utilisation: self.busy_us as f64 / (f64::from(self.servers) * span as f64),
        }
    }
}

/// How busy one shared resource was over a run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ResourceUse {
    /// `store_network`, `store_requests` or `master_cpu`.
    pub resource: String,
    /// Its capacity, in words (nodes and rates, masters and cores).
    pub capacity: String,
    /// Busy time over available time, 0 to 1.
    pub utilisation: f64,
}

/// From this utilisation on, a resource counts as saturated: the queue in front of it
/// no longer drains between bursts.
pub const SATURATED: f64 = 0.95;

/// The most utilised resource, when it is saturated.
pub fn saturated(resources: &[ResourceUse]) -> Option<&ResourceUse> {
    resources
        .iter()
        .filter(|r| r.utilisation >= SATURATED)
        .max_by(|a, b| a.utilisation.total_cmp(&b.utilisation))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pool_queues_past_its_servers_and_counts_its_busy_time() {
        let mut pool = Pool::new("p", 2, "2 servers".into());
        assert_eq!(pool.reserve(0, 10), 10);
        assert_eq!(pool.reserve(0, 10), 10);
        // Both busy until 10: the third waits.
        assert_eq!(pool.reserve(5, 10), 20);
        assert_eq!(pool.reserve(30, 0), 30);
        let used = pool.usage(20);
        assert!((used.utilisation - 30.0 / 40.0).abs() < 1e-12);
        assert!(saturated(std::slice::from_ref(&used)).is_none());
        let full = pool.usage(15);
        assert!((full.utilisation - 0.75).abs() < 1e-12, "spans the backlog");
    }
}
