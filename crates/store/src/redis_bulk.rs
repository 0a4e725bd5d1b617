//! Large SETs on blocking connections, with the payload copied once instead of three times.
//!
//! redis-rs' multiplexed connection packs every command into a second buffer
//! (`Cmd::get_packed_command`) and copies that again into its framed write buffer, so a
//! tensor put through it is copied three times in user space and faults in fresh pages for
//! each copy; on a 2-core machine that held puts of 64 KB to 1 MB near half of
//! `redis-benchmark`'s rate (docs/results.md). The blocking `redis::Connection` takes a
//! packed command as bytes and writes them to its socket as they are, so here a tensor is
//! encoded once, straight into its RESP command, and written from there.
//!
//! The blocking calls run on tokio's blocking pool with socket timeouts, one connection
//! per in-flight put (like `redis-benchmark -c N`); idle connections are kept for reuse,
//! and all are dropped when one finds the server gone, so the retry after a Redis restart
//! reconnects at once.

use std::io::Write;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use redis::{ConnectionLike, RedisError, RedisResult, Value};

use crate::tensor::StoredTensor;

/// Idle blocking connections kept for reuse; more puts than this in flight open more.
const MAX_IDLE: usize = 16;

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
        client: redis::Client,
        connect_timeout: Duration,
        op_timeout: Duration,
    ) -> Self {
        Self {
            client,
            idle: Mutex::new(Vec::new()),
            connect_timeout,
            op_timeout,
        }
    }

    /// Sends one packed command (from [`packed_set`]) and returns the server's reply,
    /// off the async runtime's worker threads.
    pub(crate) async fn send(self: &Arc<Self>, command: Arc<Vec<u8>>) -> RedisResult<Value> {
        let this = Arc::clone(self);
        tokio::task::spawn_blocking(move || this.send_blocking(&command))
            .await
            .map_err(|join| RedisError::from(std::io::Error::other(join.to_string())))?
    }

    fn send_blocking(&self, command: &[u8]) -> RedisResult<Value> {
        let idle = self
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        let mut conn = match idle {
            Some(conn) => conn,
            None => self.connect()?,
        };
        let reply = conn.req_packed_command(command).inspect_err(|e| {
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

/// `SET key blob PX ttl_ms` as a RESP array of bulk strings, the tensor encoded straight
/// into it: the only copy of the payload a bulk put makes.
pub(crate) fn packed_set(key: &str, tensor: &StoredTensor, ttl_ms: u64) -> Vec<u8> {
    let ttl = ttl_ms.to_string();
    let mut out = Vec::with_capacity(tensor.encoded_len() + key.len() + ttl.len() + 64);
    let write = |out: &mut Vec<u8>| -> std::io::Result<()> {
        write!(out, "*5\r\n$3\r\nSET\r\n${}\r\n{key}\r\n", key.len())?;
        write!(out, "${}\r\n", tensor.encoded_len())?;
        tensor.write_encoded(out)?;
        write!(out, "\r\n$2\r\nPX\r\n${}\r\n{ttl}\r\n", ttl.len())
    };
    write(&mut out).expect("writing into a Vec cannot fail");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packed_set_is_the_command_redis_rs_would_send() {
        let tensor = StoredTensor::f32(vec![2, 3], (0..6).map(|i| i as f32).collect()).unwrap();
        let ours = packed_set("q:1/x", &tensor, 1500);
        let theirs = redis::cmd("SET")
            .arg("q:1/x")
            .arg(tensor.encode())
            .arg("PX")
            .arg(1500u64)
            .get_packed_command();
        assert_eq!(ours, theirs);
    }
}
