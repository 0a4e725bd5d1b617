//! The shared tensor store through which seqless's stateless functions pass
//! intermediate activations.
//!
//! A stage function reads its inputs by key, computes, and writes its outputs by
//! key; nothing survives in the function itself. This crate provides:
//!
//! - [`StoredTensor`]: an f32 or u16 tensor with its shape, and a compact binary
//!   blob format with a fixed 48-byte header (magic, version, dtype, dims, CRCs)
//!   that is fully validated on read. Because the header has a fixed size, the
//!   byte range of any rows of dimension 0 is computable, so a conv split can read
//!   the halo rows of its neighbour without reading the neighbour's whole tensor.
//!   The layout is documented in the [`tensor`] module.
//! - [`TensorStore`]: the async trait stage functions and the coordinator use
//!   (`put` with a TTL, `get`, `get_many`, `get_rows`, `delete`, `ping`), with two
//!   backends: [`MemoryStore`] (in-process, the embedded default) and
//!   [`RedisStore`] (Redis single node, TLS, or Cluster). [`open_store`] picks one
//!   from a URL.
//! - [`QueryId`]: an unguessable per-query id whose [`QueryId::key`] namespaces the
//!   query's keys, so concurrent queries never collide and a query's keys can be
//!   deleted by name when it finishes.
//!
//! # Store URLs
//!
//! | URL | backend |
//! |-----|---------|
//! | `memory` | [`MemoryStore`]; every call to [`open_store`] makes a new, empty one |
//! | `redis://[user:password@]host:port[/db]` | one Redis server |
//! | `rediss://[user:password@]host:port[/db][?tls_ca=PATH][&tls_cert=PATH&tls_key=PATH]` | one Redis server over TLS (rustls) |
//! | `redis+cluster://[user:password@]host1:port1,host2:port2[,…]` | a Redis Cluster, discovered from any of the listed nodes |
//! | `rediss+cluster://…` | a Redis Cluster over TLS; same TLS parameters |
//!
//! User and password are sent with `AUTH` (percent-encode special characters).
//! TLS servers are verified against the system trust store, or against the PEM
//! CA certificate(s) in `tls_ca`; `tls_cert`/`tls_key` give a client certificate
//! for servers that require one (`tls-auth-clients yes`). Skipping certificate
//! verification (redis-rs' `#insecure`) is deliberately not supported. Other query
//! parameters (e.g. `protocol=resp3`) are passed to redis-rs. Passwords are masked
//! (`user:***@`) in every message and in [`TensorStore::describe`].
//!
//! # Redis specifics
//!
//! - Every key is written with an expiry (`SET key blob PX ttl`), under
//!   [`StoreOptions::key_prefix`]; values are limited to Redis' 512 MiB strings.
//! - `get_many` is one pipeline of `GET`s. A Cluster pipeline must stay within
//!   one hash slot, and a query's keys deliberately carry no hash tag (so one
//!   large query spreads over all nodes), so on a Cluster `get_many` issues the
//!   `GET`s concurrently and redis-rs multiplexes them per node.
//! - `get_rows` is two round trips: `EXISTS` + `STRLEN` + `GETRANGE` of the
//!   header, then `GETRANGE` of the rows' bytes.
//! - `delete` is `UNLINK` of the named keys (in batches); on a Cluster redis-rs
//!   splits it per slot.
//! - [`StoreOptions::connections`] multiplexed connections per store
//!   (`ConnectionManager`s, or the Cluster connection), shared by all clones of the
//!   `Arc<dyn TensorStore>`.
//! - On a single server, a put of 32 KB or more goes over a small pool of blocking
//!   connections on tokio's blocking threads instead: the tensor is encoded straight
//!   into its RESP command and written as it is, one copy of the payload where the
//!   multiplexed connection makes three. On a Cluster every put is multiplexed.
//!
//! # Failure behaviour
//!
//! Every Redis operation is bounded by [`StoreOptions::op_timeout`]; with Redis
//! down it fails within that bound with [`StoreError::Unavailable`] or
//! [`StoreError::Timeout`] naming the masked URL (both
//! [`StoreError::is_retryable`]). Connections are shared and reconnect in the
//! background; the first operation after Redis comes back succeeds. Data that
//! cannot be a tensor (truncated, corrupted, a plain string, a Redis list) is
//! [`StoreError::Corrupt`], never garbage.
//!
//! # Example
//!
//! ```
//! use std::time::Duration;
//! use seqless_store::{MemoryStore, QueryId, StoredTensor, TensorStore};
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let store = MemoryStore::new();
//! let query = QueryId::new();
//! let key = query.key("layer1/act/split0");
//!
//! let act = StoredTensor::f32(vec![4, 2], vec![0., 1., 2., 3., 4., 5., 6., 7.])?;
//! store.put(&key, &act, Duration::from_secs(60)).await?;
//!
//! // A neighbour's halo: rows 3..4 only, without reading the whole tensor.
//! let halo = store.get_rows(&key, 3..4).await?;
//! assert_eq!(halo.tensor.shape(), &[1, 2]);
//! assert_eq!(halo.tensor.as_f32()?, &[6., 7.]);
//! assert!(halo.bytes < act.encoded_len() as u64);
//!
//! store.delete(&[key.clone()]).await?;
//! assert!(store.get(&key).await.is_err());
//! # Ok::<(), seqless_store::StoreError>(())
//! # }).unwrap();
//! ```

mod error;
mod memory;
mod redis_bulk;
mod redis_conn;
mod redis_store;
mod redis_wait;
pub mod tensor;
#[cfg(feature = "test-support")]
pub mod testing;
mod url;

use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

pub use error::StoreError;
pub use memory::MemoryStore;
pub use redis_store::RedisStore;
/// Defined with the stage event that carries it; re-exported because every key is built from it.
pub use seqless_wire::QueryId;
pub use tensor::{DType, StoredTensor, TensorData};

/// What a read returned and how many bytes crossed the store, so traces and cost
/// estimates count real traffic (a row read counts its header and rows only).
#[derive(Debug, Clone, PartialEq)]
pub struct Fetched {
    /// The tensor (or the requested rows of it).
    pub tensor: StoredTensor,
    /// Bytes read from the store for it.
    pub bytes: u64,
}

/// Tensors by key with an expiry: the only state the stage functions share.
///
/// Implementations behave the same as seen through this trait: a key that was
/// never written, has expired or was deleted is [`StoreError::NotFound`]; bytes
/// that are not a valid blob are [`StoreError::Corrupt`]; byte counts are blob
/// bytes.
#[async_trait::async_trait]
pub trait TensorStore: Send + Sync + 'static {
    /// Writes `tensor` under `key`, expiring after `ttl` (which must be non-zero,
    /// so no key can outlive a crashed query forever). Returns the bytes written.
    async fn put(&self, key: &str, tensor: &StoredTensor, ttl: Duration)
    -> Result<u64, StoreError>;

    /// Reads and fully validates the tensor under `key`.
    async fn get(&self, key: &str) -> Result<Fetched, StoreError>;

    /// Reads several tensors in one round trip (one pipeline on Redis), in the
    /// order of `keys`; fails with the first key's error if any key fails.
    async fn get_many(&self, keys: &[String]) -> Result<Vec<Fetched>, StoreError>;

    /// Reads rows `rows` of dimension 0 (a halo), giving shape
    /// `[rows.len(), shape[1..]..]` without reading the rest of the blob (Redis:
    /// `GETRANGE` of the header, then of the rows). Checks the header CRC, the
    /// blob length and the bounds; cannot check the payload CRC, which covers the
    /// whole payload.
    async fn get_rows(&self, key: &str, rows: Range<usize>) -> Result<Fetched, StoreError>;

    /// Deletes `keys` by name (never by pattern); missing keys are not an error.
    async fn delete(&self, keys: &[String]) -> Result<(), StoreError>;

    /// Checks the store answers, for health checks and startup.
    async fn ping(&self) -> Result<(), StoreError>;

    /// Wakes every caller of [`TensorStore::wait_for`] blocked on `key`, which the caller
    /// has just written. The wake-up lasts as long as `ttl` (Redis: one element on the
    /// list `KEY#ready`, which [`TensorStore::delete`] removes with the key), so a waiter
    /// that arrives late is not lost, and signalling twice is harmless.
    async fn signal(&self, key: &str, ttl: Duration) -> Result<(), StoreError>;

    /// Returns once `key` exists, blocking without polling while it does not: a value
    /// written and [`signal`](TensorStore::signal)led after the wait began wakes it. Fails
    /// with the retryable [`StoreError::Timeout`] when `timeout` passes first. A key
    /// written without a signal is seen only if it exists when the wait begins.
    async fn wait_for(&self, key: &str, timeout: Duration) -> Result<(), StoreError>;

    /// A description for messages: `memory`, or the URL with any password masked.
    fn describe(&self) -> String;

    /// The largest tensor payload one value can hold (the blob header excluded), so a
    /// planner can refuse or split a query up front instead of failing at the first
    /// oversized write. `None`: bounded only by memory.
    fn max_payload_bytes(&self) -> Option<u64> {
        None
    }
}

/// Settings every backend shares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreOptions {
    /// Prepended to every Redis key, so several deployments (or tests) can share a
    /// server; the memory store ignores it. Default `seqless:`.
    pub key_prefix: String,
    /// Upper bound on each store operation, retries included. Default 5 s.
    pub op_timeout: Duration,
    /// Upper bound on establishing a connection (and on the startup check in
    /// [`open_store`]). Default 2 s.
    pub connect_timeout: Duration,
    /// Multiplexed connections to a single Redis server, used round-robin. One
    /// connection serialises every in-flight transfer on one socket, which caps
    /// throughput with several large tensors in flight; a Cluster connection keeps
    /// its own connection per node and ignores this. Default 4.
    pub connections: usize,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            key_prefix: "seqless:".to_owned(),
            op_timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(2),
            connections: 4,
        }
    }
}

/// Opens the store a URL names (forms in the crate docs). For Redis this connects
/// and pings, so a wrong URL or an unreachable server fails here, within
/// `opts.connect_timeout`, rather than in the first query.
pub async fn open_store(url: &str, opts: StoreOptions) -> Result<Arc<dyn TensorStore>, StoreError> {
    open(url, opts, true).await
}

/// As [`open_store`], for a service that starts before its store: a single Redis server
/// that is down is not an error, its connections are made when it answers (a cluster
/// still needs a node up to learn its topology); a bad URL still is an error.
pub async fn open_store_lazily(
    url: &str,
    opts: StoreOptions,
) -> Result<Arc<dyn TensorStore>, StoreError> {
    open(url, opts, false).await
}

async fn open(
    url: &str,
    opts: StoreOptions,
    check: bool,
) -> Result<Arc<dyn TensorStore>, StoreError> {
    match url::parse(url)? {
        url::Target::Memory => Ok(Arc::new(MemoryStore::new())),
        url::Target::Node { .. } | url::Target::Cluster { .. } => {
            Ok(Arc::new(RedisStore::open(url, opts, check).await?))
        }
    }
}

/// What a wait that ran out of time reports.
pub(crate) fn wait_timeout(store: &str, key: &str, timeout: Duration) -> StoreError {
    StoreError::Timeout {
        store: store.to_owned(),
        op: format!("waiting for `{key}` (limit {timeout:?})"),
    }
}

/// Refuses a zero TTL: a key must expire, and Redis refuses `PX 0`.
pub(crate) fn check_ttl(key: &str, ttl: Duration) -> Result<(), StoreError> {
    if ttl.is_zero() {
        return Err(StoreError::invalid(format!(
            "TTL for `{key}` is zero; every key must live for a positive time"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_options() {
        let o = StoreOptions::default();
        assert_eq!(o.key_prefix, "seqless:");
        assert_eq!(o.op_timeout, Duration::from_secs(5));
        assert_eq!(o.connect_timeout, Duration::from_secs(2));
    }

    #[tokio::test]
    async fn open_store_memory_and_bad_urls() {
        let s = open_store("memory", StoreOptions::default()).await.unwrap();
        assert_eq!(s.describe(), "memory");
        s.ping().await.unwrap();
        let err = open_store("ftp://u:hunter2@x", StoreOptions::default())
            .await
            .err()
            .unwrap();
        assert!(matches!(err, StoreError::BadUrl { .. }));
        assert!(!err.to_string().contains("hunter2"));
    }

    #[tokio::test]
    async fn zero_ttl_is_refused() {
        let s = MemoryStore::new();
        let t = StoredTensor::f32(vec![1], vec![1.0]).unwrap();
        assert!(matches!(
            s.put("k", &t, Duration::ZERO).await,
            Err(StoreError::InvalidInput { .. })
        ));
    }
}
