//! One connection type over a single server's connection and a Cluster's, so the store
//! and its waiters send commands through redis' `ConnectionLike` whatever the deployment.

use std::sync::Arc;

use redis::aio::ConnectionLike;
use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, Pipeline, RedisFuture, RedisResult, Value};

/// A connection to a single server (`N`) or to a Cluster.
#[derive(Clone)]
pub(crate) enum NodeOrCluster<N> {
    Node(N),
    Cluster(LazyCluster),
}

/// A Cluster connection, made on first use unless given, as a single server's
/// `ConnectionManager` is: a service can start while every node is down, and connect once
/// one answers. Clones share the one connection, which keeps its own per-node connections.
#[derive(Clone)]
pub(crate) struct LazyCluster {
    client: Arc<ClusterClient>,
    conn: Arc<tokio::sync::OnceCell<ClusterConnection>>,
}

impl LazyCluster {
    /// Connects on the first command.
    pub(crate) fn new(client: Arc<ClusterClient>) -> Self {
        Self {
            client,
            conn: Default::default(),
        }
    }

    /// Uses `conn`, already made by `client`.
    pub(crate) fn connected(client: Arc<ClusterClient>, conn: ClusterConnection) -> Self {
        Self {
            client,
            conn: Arc::new(tokio::sync::OnceCell::new_with(Some(conn))),
        }
    }

    /// The shared connection, made now if no call has made it yet.
    pub(crate) async fn connection(&self) -> RedisResult<ClusterConnection> {
        self.conn
            .get_or_try_init(|| self.client.get_async_connection())
            .await
            .cloned()
    }
}

impl<N: ConnectionLike + Send> ConnectionLike for NodeOrCluster<N> {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Self::Node(c) => c.req_packed_command(cmd),
            Self::Cluster(c) => Box::pin(async move {
                let mut conn = c.connection().await?;
                conn.req_packed_command(cmd).await
            }),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Self::Node(c) => c.req_packed_commands(pipeline, offset, count),
            Self::Cluster(c) => Box::pin(async move {
                let mut conn = c.connection().await?;
                conn.req_packed_commands(pipeline, offset, count).await
            }),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Node(c) => c.get_db(),
            // A Cluster has only database 0.
            Self::Cluster(_) => 0,
        }
    }
}
