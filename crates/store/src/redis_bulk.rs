//! Large SETs on blocking connections, with the payload written to the socket from the
//! tensor's own memory.
//!
//! redis-rs' multiplexed connection packs every command into a second buffer
//! (`Cmd::get_packed_command`) and copies that again into its framed write buffer, so a
//! tensor put through it is copied three times in user space and faults in fresh pages for
//! each copy. The blocking `redis::Connection` writes the
//! bytes it is given to its socket as they are, so here the command is streamed through a
//! `BufWriter`. From [`STREAM_FROM_BYTES`] on, its buffer is small: the RESP framing and
//! the blob header collect in it, and the payload, larger than the buffer, goes from the
//! tensor to the kernel with no copy at all. That makes one command three writes
//! (framing and header, payload, trailer), so these sockets set `TCP_NODELAY`: with
//! Nagle's algorithm the small trailer would wait for the server to acknowledge the
//! payload. Below it the buffer holds the whole command, sent in one write: copying a few
//! hundred kilobytes costs about what two more writes and TCP pushes do.
//!
//! The blocking calls run on tokio's blocking pool with socket timeouts, one connection
//! per in-flight put (like `redis-benchmark -c N`); idle connections are kept for reuse,
//! and all are dropped when one finds the server gone, so the retry after a Redis restart
//! reconnects at once.

use std::io::{BufWriter, Write};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use redis::io::tcp::TcpSettings;
use redis::{ConnectionLike, RedisError, RedisResult, Value};

use crate::tensor::StoredTensor;

/// Idle blocking connections kept for reuse; more puts than this in flight open more.
const MAX_IDLE: usize = 16;
/// Blob size from which the payload is streamed from the tensor instead of copied into
/// the command's buffer (see the module docs).
const STREAM_FROM_BYTES: usize = 256 * 1024;
/// Buffer for a streamed command's framing and blob header; the payload bypasses it.
const FRAMING_BUFFER_BYTES: usize = 8 * 1024;
/// Room for a command's RESP framing and its TTL, beside the key and the blob.
const FRAMING_BYTES: usize = 128;

/// A pool of blocking connections to one Redis server, for large SETs.
pub(crate) struct BulkWriter {
    client: redis::Client,
    idle: Mutex<Vec<redis::Connection>>,
    connect_timeout: Duration,
    op_timeout: Duration,
}

impl BulkWriter {
    /// Connections are opened on first use; `client` carries the URL's TLS, AUTH and DB.
    pub(crate) fn new(
        client: &redis::Client,
        connect_timeout: Duration,
        op_timeout: Duration,
    ) -> RedisResult<Self> {
        let info = client
            .get_connection_info()
            .clone()
            .set_tcp_settings(TcpSettings::default().set_nodelay(true));
        Ok(Self {
            client: redis::Client::open(info)?,
            idle: Mutex::new(Vec::new()),
            connect_timeout,
            op_timeout,
        })
    }

    /// `SET key <tensor's blob> PX ttl_ms`, off the async runtime's worker threads; the
    /// clone shares the tensor's elements, and keeps them alive if the caller gives up
    /// waiting while the write is under way.
    pub(crate) async fn set(
        self: &Arc<Self>,
        key: String,
        tensor: StoredTensor,
        ttl_ms: u64,
    ) -> RedisResult<Value> {
        let this = Arc::clone(self);
        tokio::task::spawn_blocking(move || this.set_blocking(&key, &tensor, ttl_ms))
            .await
            .map_err(|join| RedisError::from(std::io::Error::other(join.to_string())))?
    }

    fn set_blocking(&self, key: &str, tensor: &StoredTensor, ttl_ms: u64) -> RedisResult<Value> {
        let idle = self
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        let mut conn = match idle {
            Some(conn) => conn,
            None => self.connect()?,
        };
        // On an error the connection is dropped here: it may hold half a command.
        let reply = send_set(&mut conn, key, tensor, ttl_ms).inspect_err(|e| {
            if e.is_io_error() || e.is_connection_dropped() {
                // The server went away: the other idle connections are dead too, and a
                // retry must open a fresh one rather than try each of them in turn.
                self.idle
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .clear();
            }
        })?;
        if conn.is_open() {
            let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
            if idle.len() < MAX_IDLE {
                idle.push(conn);
            }
        }
        Ok(reply)
    }

    fn connect(&self) -> RedisResult<redis::Connection> {
        let conn = self
            .client
            .get_connection_with_timeout(self.connect_timeout)?;
        conn.set_read_timeout(Some(self.op_timeout))?;
        conn.set_write_timeout(Some(self.op_timeout))?;
        Ok(conn)
    }
}

/// Writes the SET to `conn` and reads its reply, skipping RESP3 push messages as
/// redis-rs' own `req_packed_command` does.
fn send_set(
    conn: &mut redis::Connection,
    key: &str,
    tensor: &StoredTensor,
    ttl_ms: u64,
) -> RedisResult<Value> {
    let blob = tensor.encoded_len();
    let capacity = if blob < STREAM_FROM_BYTES {
        blob + key.len() + FRAMING_BYTES
    } else {
        FRAMING_BUFFER_BYTES
    };
    let mut out = BufWriter::with_capacity(
        capacity,
        ConnectionWriter {
            conn: &mut *conn,
            error: None,
        },
    );
    let written = write_set(&mut out, key, tensor, ttl_ms).and_then(|()| out.flush());
    if let Err(io) = written {
        // The connection's own error keeps its kind (a timeout stays a timeout).
        return Err(out.get_mut().error.take().unwrap_or_else(|| io.into()));
    }
    drop(out);
    loop {
        match conn.recv_response()? {
            Value::Push { .. } => continue,
            reply => return Ok(reply),
        }
    }
}

/// An `io::Write` over a blocking connection's socket, keeping the connection's own
/// error, which `io::Error` would flatten.
struct ConnectionWriter<'a> {
    conn: &'a mut redis::Connection,
    error: Option<RedisError>,
}

impl Write for ConnectionWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self.conn.send_packed_command(buf) {
            Ok(()) => Ok(buf.len()),
            Err(e) => {
                let io = std::io::Error::other(e.to_string());
                self.error = Some(e);
                Err(io)
            }
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        // Every write has already gone to the socket.
        Ok(())
    }
}

/// `SET key blob PX ttl` as a RESP array of bulk strings, the tensor's blob streamed
/// into it.
fn write_set(
    out: &mut impl Write,
    key: &str,
    tensor: &StoredTensor,
    ttl_ms: u64,
) -> std::io::Result<()> {
    let ttl = ttl_ms.to_string();
    write!(out, "*5\r\n$3\r\nSET\r\n${}\r\n{key}\r\n", key.len())?;
    write!(out, "${}\r\n", tensor.encoded_len())?;
    tensor.write_encoded(out)?;
    write!(out, "\r\n$2\r\nPX\r\n${}\r\n{ttl}\r\n", ttl.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_streamed_set_is_the_command_redis_rs_would_send() {
        let tensor = StoredTensor::f32(vec![2, 3], (0..6).map(|i| i as f32).collect()).unwrap();
        let mut ours = Vec::new();
        write_set(&mut ours, "q:1/x", &tensor, 1500).unwrap();
        let theirs = redis::cmd("SET")
            .arg("q:1/x")
            .arg(tensor.encode())
            .arg("PX")
            .arg(1500u64)
            .get_packed_command();
        assert_eq!(ours, theirs);
    }
}
