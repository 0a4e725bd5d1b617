//! Blocking waits on Redis, for functions that must not poll: a writer pushes one element
//! onto the key's wake-up list (`KEY#ready`), and each waiter blocks in
//! `BLMOVE KEY#ready KEY#ready LEFT RIGHT timeout`. A move from a list onto itself rotates
//! the element instead of taking it, so one push wakes every waiter, and waiters that come
//! later find the element still there. A waiter checks `EXISTS KEY` before blocking, so
//! a value written before the wait started is seen at once.
//!
//! A blocking command holds its connection until it answers, which would stall every
//! other request multiplexed on it; waits therefore run on connections of their own,
//! kept in a small pool.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::cluster::ClusterClient;
use redis::{AsyncConnectionConfig, Cmd, RedisResult};

use crate::redis_conn::{LazyCluster, NodeOrCluster};

/// Suffix of a key's wake-up list.
pub(crate) const READY_SUFFIX: &str = "#ready";

/// The shortest blocking timeout sent: Redis reads 0 as "forever".
const SHORTEST_BLOCK: Duration = Duration::from_millis(1);

/// Where waiting connections come from.
pub(crate) enum WaitSource {
    Node(Box<(redis::Client, AsyncConnectionConfig)>),
    Cluster(Arc<ClusterClient>),
}

/// Connections used only for blocking waits, one waiter at a time each.
pub(crate) struct Waiters {
    source: WaitSource,
    idle: Mutex<Vec<WaitConn>>,
    /// Longest single blocking call: below the connections' response timeout, so a wait
    /// longer than that is a series of blocking calls rather than one the client gives
    /// up on.
    pub(crate) slice: Duration,
}

/// A connection of either kind, owned by one waiter while it waits.
pub(crate) type WaitConn = NodeOrCluster<MultiplexedConnection>;

impl Waiters {
    pub(crate) fn new(source: WaitSource, slice: Duration) -> Self {
        Self {
            source,
            idle: Mutex::default(),
            slice,
        }
    }

    /// An idle waiting connection, or a new one.
    pub(crate) async fn take(&self) -> RedisResult<WaitConn> {
        let idle = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
        if let Some(conn) = idle {
            return Ok(conn);
        }
        match &self.source {
            WaitSource::Node(node) => node
                .0
                .get_multiplexed_async_connection_with_config(&node.1)
                .await
                .map(WaitConn::Node),
            WaitSource::Cluster(client) => client
                .get_async_connection()
                .await
                .map(|conn| WaitConn::Cluster(LazyCluster::connected(client.clone(), conn))),
        }
    }

    /// Returns a connection whose last command answered, for the next waiter. One that
    /// failed or timed out is dropped instead: a blocking call may still be pending on it.
    pub(crate) fn give_back(&self, conn: WaitConn) {
        self.idle
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(conn);
    }
}

/// `BLMOVE ready ready LEFT RIGHT timeout`, blocking for at most `block`.
pub(crate) fn blocking_rotate(ready: &str, block: Duration) -> Cmd {
    let mut cmd = redis::cmd("BLMOVE");
    cmd.arg(ready)
        .arg(ready)
        .arg("LEFT")
        .arg("RIGHT")
        .arg(block.max(SHORTEST_BLOCK).as_secs_f64());
    cmd
}
