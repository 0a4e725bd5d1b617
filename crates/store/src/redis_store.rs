//! The Redis backend: one server (plain or TLS) or a Redis Cluster.

use std::future::Future;
use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClientBuilder;
use redis::{ErrorKind, RedisError, RedisWrite, ServerErrorKind, ToRedisArgs, Value};
use tokio::time::Instant;

use crate::error::StoreError;
use crate::redis_bulk::BulkWriter;
use crate::redis_conn::{LazyCluster, NodeOrCluster};
use crate::redis_wait::{READY_SUFFIX, WaitSource, Waiters, blocking_rotate};
use crate::tensor::{HEADER_LEN, Header, StoredTensor, decode_blob, tensor_from_payload};
use crate::url::{Target, TlsFiles, mask, parse};
use crate::{Fetched, StoreOptions, TensorStore, check_ttl, wait_timeout};

/// Largest value Redis accepts in a string (`proto-max-bulk-len` default).
const REDIS_MAX_STRING: usize = 512 * 1024 * 1024;
/// Attempts per operation when the connection is down (each bounded by the
/// operation's deadline); all store operations are idempotent, so a retry after a
/// dropped connection is safe.
const MAX_ATTEMPTS: u32 = 4;
/// First pause between attempts; doubles each time.
const FIRST_BACKOFF: Duration = Duration::from_millis(50);
/// Encoded size from which a put on a single server goes through [`BulkWriter`]: for
/// smaller values the blocking-pool hop's fixed cost outweighs the copies it saves.
const BULK_MIN_BYTES: usize = 32 * 1024;
/// Keys per UNLINK, so a huge delete does not become one huge command.
const DELETE_BATCH: usize = 1024;

/// A [`TensorStore`] backed by Redis, for functions that run in separate processes
/// or machines.
///
/// One `RedisStore` holds [`StoreOptions::connections`] multiplexed connections
/// (redis-rs `ConnectionManager`s, used round-robin; or one Cluster connection,
/// which keeps its own per-node connections) that every clone of the
/// `Arc<dyn TensorStore>` shares; they reconnect in the background after Redis
/// restarts. Every operation is bounded by [`StoreOptions::op_timeout`], and is
/// retried a few times within that bound when the connection has dropped, so the
/// first call after Redis comes back succeeds.
///
/// Keys get [`StoreOptions::key_prefix`] prepended; every write sets an expiry
/// (`SET … PX`); multi-key reads are one pipeline (on a Cluster: concurrent reads,
/// which redis-rs multiplexes per node); row reads use `GETRANGE`; deletes name
/// their keys (`UNLINK`, split per slot by redis-rs on a Cluster), never `KEYS` or
/// `SCAN`.
pub struct RedisStore {
    conns: Vec<Conn>,
    /// Large puts to a single server (none on a Cluster, whose slots redis-rs routes).
    bulk: Option<Arc<BulkWriter>>,
    /// Connections of their own for blocking waits.
    waiters: Waiters,
    next_conn: AtomicUsize,
    prefix: String,
    name: String,
    op_timeout: Duration,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("store", &self.name)
            .field("prefix", &self.prefix)
            .field("op_timeout", &self.op_timeout)
            .finish_non_exhaustive()
    }
}

/// A connection of either kind; both are cheap clones of a shared multiplexer.
type Conn = NodeOrCluster<ConnectionManager>;

impl RedisStore {
    /// Connects to a `redis://`, `rediss://`, `redis+cluster://` or
    /// `rediss+cluster://` URL (see the crate docs) and checks that the server
    /// answers within [`StoreOptions::connect_timeout`], so a wrong URL or a down
    /// server is reported at startup with the (masked) URL in the message.
    pub async fn connect(url: &str, opts: StoreOptions) -> Result<Self, StoreError> {
        Self::open(url, opts, true).await
    }

    /// As [`RedisStore::connect`]; with `check` false, a server or Cluster that does not
    /// answer yet is not an error: its connections are made on first use and retried
    /// after, so a long-running service can start first, report itself not ready, and
    /// recover when Redis comes up.
    pub(crate) async fn open(
        url: &str,
        opts: StoreOptions,
        check: bool,
    ) -> Result<Self, StoreError> {
        let name = mask(url.trim());
        let bad = |reason: String| StoreError::BadUrl {
            url: name.clone(),
            reason,
        };
        let target = parse(url)?;
        let lazy = !check;
        if url.trim().to_ascii_lowercase().starts_with("rediss") {
            install_crypto_provider();
        }
        let connect = async {
            match target {
                Target::Memory => Err(bad("`memory` is not a Redis URL".into())),
                Target::Node { url, tls } => {
                    let client = if tls.is_empty() {
                        redis::Client::open(url.as_str())
                    } else {
                        redis::Client::build_with_tls(url.as_str(), certificates(&tls, &bad)?)
                    }
                    .map_err(|e| bad(e.to_string()))?;
                    let config = ConnectionManagerConfig::new()
                        .set_connection_timeout(Some(opts.connect_timeout))
                        .set_response_timeout(Some(backstop(opts.op_timeout)))
                        .set_number_of_retries(1)
                        .set_min_delay(FIRST_BACKOFF)
                        .set_max_delay(Duration::from_secs(1));
                    let conns = (0..opts.connections.max(1))
                        .map(|_| {
                            ConnectionManager::new_lazy_with_config(client.clone(), config.clone())
                                .map(Conn::Node)
                                .map_err(|e| bad(e.to_string()))
                        })
                        .collect::<Result<Vec<_>, _>>()?;
                    let bulk = BulkWriter::new(&client, opts.connect_timeout, opts.op_timeout)
                        .map_err(|e| bad(e.to_string()))?;
                    let config = redis::AsyncConnectionConfig::new()
                        .set_connection_timeout(Some(opts.connect_timeout))
                        .set_response_timeout(Some(backstop(opts.op_timeout)));
                    let waits = WaitSource::Node(Box::new((client, config)));
                    Ok((conns, Some(Arc::new(bulk)), waits))
                }
                Target::Cluster { nodes, tls } => {
                    let mut builder = ClusterClientBuilder::new(nodes)
                        .connection_timeout(opts.connect_timeout)
                        .response_timeout(backstop(opts.op_timeout))
                        .retries(2);
                    if !tls.is_empty() {
                        builder = builder.certs(certificates(&tls, &bad)?);
                    }
                    let client = builder.build().map_err(|e| bad(e.to_string()))?;
                    let client = Arc::new(client);
                    let cluster = LazyCluster::new(client.clone());
                    Ok((
                        vec![Conn::Cluster(cluster)],
                        None,
                        WaitSource::Cluster(client),
                    ))
                }
            }
        };
        let (conns, bulk, waits) = tokio::time::timeout(opts.connect_timeout, connect)
            .await
            .map_err(|_| no_answer(&name, opts.connect_timeout))??;
        let store = Self {
            conns,
            bulk,
            waiters: Waiters::new(waits, opts.op_timeout),
            next_conn: AtomicUsize::new(0),
            prefix: opts.key_prefix,
            name,
            op_timeout: opts.op_timeout,
        };
        if lazy {
            return Ok(store);
        }
        let mut conn = store.conn();
        let ping = async move { redis::cmd("PING").query_async::<Value>(&mut conn).await };
        match tokio::time::timeout(opts.connect_timeout, ping).await {
            Err(_) => Err(no_answer(&store.name, opts.connect_timeout)),
            Ok(Err(e)) => Err(store.map_err(None, e)),
            Ok(Ok(_)) => Ok(store),
        }
    }

    /// The next connection, round-robin: concurrent large transfers spread over
    /// several sockets instead of queueing behind each other on one.
    fn conn(&self) -> Conn {
        let i = self.next_conn.fetch_add(1, Ordering::Relaxed) % self.conns.len();
        self.conns[i].clone()
    }

    fn full_key(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    /// Runs one store operation under the deadline, retrying while the connection
    /// is down.
    async fn run<T, F, Fut>(
        &self,
        op: &str,
        key: Option<&str>,
        mut attempt: F,
    ) -> Result<T, StoreError>
    where
        F: FnMut(Conn) -> Fut,
        Fut: Future<Output = Result<T, StoreError>>,
    {
        let deadline = Instant::now() + self.op_timeout;
        let mut backoff = FIRST_BACKOFF;
        let mut tries = 0;
        // Retries stay on one connection: the failure made it start reconnecting, while
        // the next one round-robin may still hold a connection from before a restart.
        let conn = self.conn();
        loop {
            tries += 1;
            let err = match tokio::time::timeout_at(deadline, attempt(conn.clone())).await {
                Ok(Ok(v)) => return Ok(v),
                Ok(Err(e)) => e,
                Err(_) => {
                    return Err(StoreError::Timeout {
                        store: self.name.clone(),
                        op: describe_op(op, key, self.op_timeout),
                    });
                }
            };
            let retry = matches!(err, StoreError::Unavailable { .. })
                && tries < MAX_ATTEMPTS
                && Instant::now() + backoff < deadline;
            if !retry {
                return Err(err);
            }
            tracing::debug!(store = %self.name, op, attempt = tries, error = %err, "retrying");
            tokio::time::sleep(backoff).await;
            backoff *= 2;
        }
    }

    /// Converts a redis-rs error, naming `key` where the error is about its value.
    fn map_err(&self, key: Option<&str>, e: RedisError) -> StoreError {
        if let (true, Some(key)) = (is_wrongtype(&e), key) {
            return StoreError::corrupt(
                key,
                "the Redis key holds a list, hash, set or other non-string value \
                 (WRONGTYPE): something other than seqless wrote it",
            );
        }
        if e.is_timeout() {
            return StoreError::Timeout {
                store: self.name.clone(),
                op: describe_op("request", key, self.op_timeout),
            };
        }
        // A refused certificate surfaces as an I/O error, but retrying cannot fix it.
        let tls_refused = e.to_string().contains("certificate");
        let transient = (e.is_io_error() && !tls_refused)
            || matches!(
                e.kind(),
                ErrorKind::ClusterConnectionNotFound
                    | ErrorKind::Parse
                    | ErrorKind::Server(
                        ServerErrorKind::BusyLoading
                            | ServerErrorKind::TryAgain
                            | ServerErrorKind::ClusterDown
                            | ServerErrorKind::MasterDown
                            | ServerErrorKind::Moved
                            | ServerErrorKind::Ask
                            | ServerErrorKind::ReadOnly
                    )
            );
        if transient {
            unavailable(&self.name, &e)
        } else {
            StoreError::Rejected {
                store: self.name.clone(),
                reason: e.to_string(),
            }
        }
    }

    /// Interprets a GET reply: bytes, or NotFound, or the server's error.
    fn blob(&self, key: &str, value: Value) -> Result<Vec<u8>, StoreError> {
        match value {
            Value::BulkString(bytes) => Ok(bytes),
            Value::Nil => Err(StoreError::NotFound {
                key: key.to_owned(),
            }),
            Value::ServerError(e) => Err(self.map_err(Some(key), e.into())),
            other => Err(StoreError::corrupt(
                key,
                format!("unexpected Redis reply {other:?}"),
            )),
        }
    }

    /// GETs the blob under `key` (`full` with the prefix) over `conn`.
    async fn get_on(
        &self,
        conn: &mut (impl redis::aio::ConnectionLike + Send),
        key: &str,
        full: &str,
    ) -> Result<Vec<u8>, StoreError> {
        let value = redis::cmd("GET")
            .arg(full)
            .query_async::<Value>(conn)
            .await
            .map_err(|e| self.map_err(Some(key), e))?;
        self.blob(key, value)
    }

    async fn get_blob(&self, key: &str) -> Result<Vec<u8>, StoreError> {
        let full = self.full_key(key);
        self.run("GET", Some(key), |mut conn| {
            let full = &full;
            async move { self.get_on(&mut conn, key, full).await }
        })
        .await
    }

    async fn get_blobs(&self, keys: &[String]) -> Result<Vec<Vec<u8>>, StoreError> {
        let full: Vec<String> = keys.iter().map(|k| self.full_key(k)).collect();
        self.run(&format!("GET of {} keys", keys.len()), None, |mut conn| {
            let full = &full;
            async move {
                match &mut conn {
                    Conn::Node(_) => {
                        let mut pipe = redis::pipe();
                        for k in full {
                            pipe.cmd("GET").arg(k);
                        }
                        let values: Vec<Value> = pipe
                            .ignore_errors()
                            .query_async(&mut conn)
                            .await
                            .map_err(|e| self.map_err(None, e))?;
                        if values.len() != keys.len() {
                            return Err(StoreError::Rejected {
                                store: self.name.clone(),
                                reason: format!(
                                    "a pipeline of {} GETs returned {} replies",
                                    keys.len(),
                                    values.len()
                                ),
                            });
                        }
                        keys.iter()
                            .zip(values)
                            .map(|(k, v)| self.blob(k, v))
                            .collect()
                    }
                    // A Cluster pipeline must stay in one slot; independent GETs are
                    // routed per key and multiplexed per node instead.
                    Conn::Cluster(cluster) => {
                        let connection = cluster
                            .connection()
                            .await
                            .map_err(|e| self.map_err(None, e))?;
                        let reads = keys.iter().zip(full).map(|(k, f)| {
                            let mut c = connection.clone();
                            async move { self.get_on(&mut c, k, f).await }
                        });
                        futures_util::future::join_all(reads)
                            .await
                            .into_iter()
                            .collect()
                    }
                }
            }
        })
        .await
    }
}

/// Loads the PEM files a URL names for redis-rs.
fn certificates(
    files: &TlsFiles,
    bad: &impl Fn(String) -> StoreError,
) -> Result<redis::TlsCertificates, StoreError> {
    let read = |path: &std::path::Path, what: &str| {
        std::fs::read(path).map_err(|e| bad(format!("cannot read {what} {}: {e}", path.display())))
    };
    let root_cert = files
        .ca
        .as_deref()
        .map(|p| read(p, "CA certificate"))
        .transpose()?;
    let client_tls = match (&files.cert, &files.key) {
        (Some(cert), Some(key)) => Some(redis::ClientTlsConfig {
            client_cert: read(cert, "client certificate")?,
            client_key: read(key, "client key")?,
        }),
        _ => None,
    };
    Ok(redis::TlsCertificates {
        client_tls,
        root_cert,
    })
}

/// redis-rs enables rustls without choosing a crypto provider; choose ring unless
/// the process already chose one.
fn install_crypto_provider() {
    // An error only means a provider is already installed, which is what we want.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Whether the server said WRONGTYPE, directly or for a command of a pipeline.
fn is_wrongtype(e: &RedisError) -> bool {
    e.code() == Some("WRONGTYPE")
        || e.clone()
            .into_server_errors()
            .is_some_and(|errs| errs.iter().any(|(_, se)| se.code() == "WRONGTYPE"))
}

fn unavailable(store: &str, e: &RedisError) -> StoreError {
    let reason = if e.kind() == ErrorKind::Parse {
        // Another service on the port answers with bytes that are not RESP.
        "the server there does not speak the Redis protocol; check the URL's host and port"
            .to_owned()
    } else {
        e.to_string()
    };
    StoreError::Unavailable {
        store: store.to_owned(),
        reason,
    }
}

fn no_answer(store: &str, after: Duration) -> StoreError {
    StoreError::Unavailable {
        store: store.to_owned(),
        reason: format!("no answer within {after:?}"),
    }
}

fn describe_op(op: &str, key: Option<&str>, limit: Duration) -> String {
    match key {
        Some(k) => format!("{op} `{k}` (limit {limit:?})"),
        None => format!("{op} (limit {limit:?})"),
    }
}

/// redis-rs' own response timeout: a backstop behind the store's deadline, so a
/// slow reply is normally reported by [`RedisStore::run`], which knows the operation.
fn backstop(op_timeout: Duration) -> Duration {
    op_timeout + Duration::from_secs(1)
}

/// A tensor as one Redis argument, encoded straight into the command buffer.
struct BlobArg<'a>(&'a StoredTensor);

impl ToRedisArgs for BlobArg<'_> {
    fn write_redis_args<W: ?Sized + RedisWrite>(&self, out: &mut W) {
        self.0
            .write_encoded(&mut out.writer_for_next_arg())
            .expect("redis-rs buffers arguments in memory, which cannot fail");
    }
}

fn ttl_millis(ttl: Duration) -> u64 {
    // Redis counts milliseconds; never round a positive TTL down to 0.
    u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1)
}

#[async_trait::async_trait]
impl TensorStore for RedisStore {
    async fn put(
        &self,
        key: &str,
        tensor: &StoredTensor,
        ttl: Duration,
    ) -> Result<u64, StoreError> {
        check_ttl(key, ttl)?;
        if tensor.encoded_len() > REDIS_MAX_STRING {
            return Err(StoreError::invalid(format!(
                "tensor `{key}` encodes to {} bytes, over Redis' {REDIS_MAX_STRING}-byte string limit",
                tensor.encoded_len()
            )));
        }
        let full_key = self.full_key(key);
        if let Some(bulk) = self
            .bulk
            .as_ref()
            .filter(|_| tensor.encoded_len() >= BULK_MIN_BYTES)
        {
            self.run("SET", Some(key), |_| {
                // The clone shares the tensor's elements; the key is a few bytes.
                let (full_key, tensor) = (full_key.clone(), tensor.clone());
                async move {
                    match bulk
                        .set(full_key, tensor, ttl_millis(ttl))
                        .await
                        .map_err(|e| self.map_err(Some(key), e))?
                    {
                        Value::ServerError(e) => Err(self.map_err(Some(key), e.into())),
                        _ => Ok(()),
                    }
                }
            })
            .await?;
            return Ok(tensor.encoded_len() as u64);
        }
        // Sized up front: growing the argument buffer by doubling would copy a large
        // blob several more times and fault in fresh pages at each step.
        let mut cmd = redis::Cmd::with_capacity(5, full_key.len() + tensor.encoded_len() + 32);
        cmd.arg("SET")
            .arg(full_key)
            .arg(BlobArg(tensor))
            .arg("PX")
            .arg(ttl_millis(ttl));
        self.run("SET", Some(key), |mut conn| {
            let cmd = &cmd;
            async move {
                cmd.query_async::<Value>(&mut conn)
                    .await
                    .map_err(|e| self.map_err(Some(key), e))?;
                Ok(())
            }
        })
        .await?;
        Ok(tensor.encoded_len() as u64)
    }

    fn max_payload_bytes(&self) -> Option<u64> {
        Some((REDIS_MAX_STRING - HEADER_LEN) as u64)
    }

    async fn get(&self, key: &str) -> Result<Fetched, StoreError> {
        let blob = self.get_blob(key).await?;
        let tensor = decode_blob(key, &blob)?;
        Ok(Fetched {
            tensor,
            bytes: blob.len() as u64,
        })
    }

    async fn get_many(&self, keys: &[String]) -> Result<Vec<Fetched>, StoreError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let blobs = self.get_blobs(keys).await?;
        keys.iter()
            .zip(blobs)
            .map(|(key, blob)| {
                Ok(Fetched {
                    tensor: decode_blob(key, &blob)?,
                    bytes: blob.len() as u64,
                })
            })
            .collect()
    }

    async fn get_rows(&self, key: &str, rows: Range<usize>) -> Result<Fetched, StoreError> {
        let full = self.full_key(key);
        // One round trip for existence, length and header (all one key, so one slot).
        let (exists, len, head) = self
            .run("GETRANGE header", Some(key), |mut conn| {
                let full = &full;
                async move {
                    let mut pipe = redis::pipe();
                    pipe.cmd("EXISTS").arg(full);
                    pipe.cmd("STRLEN").arg(full);
                    pipe.cmd("GETRANGE").arg(full).arg(0).arg(HEADER_LEN - 1);
                    pipe.query_async::<(i64, u64, Vec<u8>)>(&mut conn)
                        .await
                        .map_err(|e| self.map_err(Some(key), e))
                }
            })
            .await?;
        if exists == 0 {
            return Err(StoreError::NotFound {
                key: key.to_owned(),
            });
        }
        let header = Header::parse(key, &head)?;
        if usize::try_from(len).ok() != Some(header.blob_len()) {
            return Err(StoreError::corrupt(
                key,
                format!(
                    "blob is {len} bytes, its header implies {}",
                    header.blob_len()
                ),
            ));
        }
        let span = header.row_span(key, rows)?;
        let payload = if span.len == 0 {
            Vec::new()
        } else {
            let (start, end) = (span.offset, span.offset + span.len - 1);
            self.run("GETRANGE rows", Some(key), |mut conn| {
                let full = &full;
                async move {
                    redis::cmd("GETRANGE")
                        .arg(full)
                        .arg(start)
                        .arg(end)
                        .query_async::<Vec<u8>>(&mut conn)
                        .await
                        .map_err(|e| self.map_err(Some(key), e))
                }
            })
            .await?
        };
        if payload.len() != span.len {
            // The key expired or was replaced between the two reads.
            return Err(if payload.is_empty() {
                StoreError::NotFound {
                    key: key.to_owned(),
                }
            } else {
                StoreError::corrupt(
                    key,
                    format!(
                        "row read returned {} bytes, expected {}",
                        payload.len(),
                        span.len
                    ),
                )
            });
        }
        let tensor = tensor_from_payload(key, header.dtype, span.shape, &payload)?;
        Ok(Fetched {
            tensor,
            bytes: (HEADER_LEN + span.len) as u64,
        })
    }

    async fn delete(&self, keys: &[String]) -> Result<(), StoreError> {
        for batch in keys.chunks(DELETE_BATCH) {
            let mut cmd = redis::cmd("UNLINK");
            for k in batch {
                let full = self.full_key(k);
                cmd.arg(format!("{full}{READY_SUFFIX}")).arg(full);
            }
            self.run(
                &format!("UNLINK of {} keys", batch.len()),
                None,
                |mut conn| {
                    let cmd = &cmd;
                    async move {
                        cmd.query_async::<Value>(&mut conn)
                            .await
                            .map_err(|e| self.map_err(None, e))?;
                        Ok(())
                    }
                },
            )
            .await?;
        }
        Ok(())
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.run("PING", None, |mut conn| async move {
            redis::cmd("PING")
                .query_async::<Value>(&mut conn)
                .await
                .map_err(|e| self.map_err(None, e))?;
            Ok(())
        })
        .await
    }

    async fn signal(&self, key: &str, ttl: Duration) -> Result<(), StoreError> {
        check_ttl(key, ttl)?;
        let ready = format!("{}{READY_SUFFIX}", self.full_key(key));
        self.run("RPUSH", Some(key), |mut conn| {
            let ready = &ready;
            async move {
                let mut pipe = redis::pipe();
                pipe.cmd("RPUSH").arg(ready).arg(1).ignore();
                pipe.cmd("PEXPIRE").arg(ready).arg(ttl_millis(ttl)).ignore();
                pipe.query_async::<()>(&mut conn)
                    .await
                    .map_err(|e| self.map_err(Some(key), e))
            }
        })
        .await
    }

    async fn wait_for(&self, key: &str, timeout: Duration) -> Result<(), StoreError> {
        let deadline = Instant::now() + timeout;
        let full = self.full_key(key);
        let ready = format!("{full}{READY_SUFFIX}");
        let mut backoff = FIRST_BACKOFF;
        loop {
            let waited = async {
                let mut conn = self.waiters.take().await?;
                loop {
                    let exists: bool = redis::cmd("EXISTS")
                        .arg(&full)
                        .query_async(&mut conn)
                        .await?;
                    let left = deadline.saturating_duration_since(Instant::now());
                    if exists || left.is_zero() {
                        return Ok((conn, exists));
                    }
                    blocking_rotate(&ready, left.min(self.waiters.slice))
                        .query_async::<Value>(&mut conn)
                        .await?;
                }
            };
            let err = match waited.await {
                Ok((conn, found)) => {
                    self.waiters.give_back(conn);
                    return match found {
                        true => Ok(()),
                        false => Err(wait_timeout(&self.name, key, timeout)),
                    };
                }
                Err(e) => self.map_err(Some(key), e),
            };
            // A dropped connection (Redis restarting) is waited out on a new one.
            if !err.is_retryable() || Instant::now() + backoff >= deadline {
                return Err(err);
            }
            tracing::debug!(store = %self.name, key, error = %err, "retrying a wait");
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(1));
        }
    }

    fn describe(&self) -> String {
        self.name.clone()
    }
}
