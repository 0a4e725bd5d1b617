//! The embedded backend: a map in this process, with expiry.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::error::StoreError;
use crate::tensor::{StoredTensor, decode_blob, rows_from_blob};
use crate::{Fetched, TensorStore, check_ttl, wait_timeout};

/// How often a write sweeps expired entries out of the map.
const SWEEP_EVERY: Duration = Duration::from_secs(1);

/// The in-process [`TensorStore`] used when everything runs in one process
/// (the embedded default, and tests).
///
/// It keeps encoded blobs rather than tensors so that it behaves like Redis in
/// every way a caller can see: the same byte counts, the same validation on
/// read, the same `NotFound` after expiry or deletion. Expired entries are
/// invisible at once and are swept out on later writes. The store's key prefix
/// is not used: the map is private to this process.
#[derive(Debug)]
pub struct MemoryStore {
    inner: Mutex<Inner>,
    /// Woken by every signal; waiters then check whether their key exists.
    signalled: tokio::sync::Notify,
}

#[derive(Debug)]
struct Inner {
    entries: HashMap<String, Entry>,
    last_sweep: Instant,
}

#[derive(Debug)]
struct Entry {
    blob: Arc<[u8]>,
    expires_at: Instant,
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self {
            inner: Mutex::new(Inner {
                entries: HashMap::new(),
                last_sweep: Instant::now(),
            }),
            signalled: tokio::sync::Notify::new(),
        }
    }

    /// Keys that have not expired, sorted; for tests and diagnostics (e.g. checking
    /// that a finished query left nothing behind).
    pub fn live_keys(&self) -> Vec<String> {
        let now = Instant::now();
        let mut keys: Vec<String> = self
            .lock()
            .entries
            .iter()
            .filter(|(_, e)| e.expires_at > now)
            .map(|(k, _)| k.clone())
            .collect();
        keys.sort();
        keys
    }

    /// Stores arbitrary bytes under `key`, bypassing the encoder, so tests can put
    /// a corrupt or foreign blob where a tensor is expected.
    #[cfg(feature = "test-support")]
    pub fn put_raw(&self, key: &str, bytes: &[u8], ttl: Duration) {
        self.insert(key, Arc::from(bytes), ttl);
    }

    // A poisoned lock only means another thread panicked mid-operation; every
    // operation leaves the map consistent, so carry on with it.
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn insert(&self, key: &str, blob: Arc<[u8]>, ttl: Duration) {
        let now = Instant::now();
        let mut inner = self.lock();
        if now.duration_since(inner.last_sweep) >= SWEEP_EVERY {
            inner.entries.retain(|_, e| e.expires_at > now);
            inner.last_sweep = now;
        }
        inner.entries.insert(
            key.to_owned(),
            Entry {
                blob,
                expires_at: now + ttl,
            },
        );
    }

    fn blob(&self, key: &str) -> Result<Arc<[u8]>, StoreError> {
        let now = Instant::now();
        let mut inner = self.lock();
        match inner.entries.get(key) {
            Some(e) if e.expires_at > now => Ok(e.blob.clone()),
            Some(_) => {
                inner.entries.remove(key);
                Err(not_found(key))
            }
            None => Err(not_found(key)),
        }
    }
}

fn not_found(key: &str) -> StoreError {
    StoreError::NotFound {
        key: key.to_owned(),
    }
}

#[async_trait::async_trait]
impl TensorStore for MemoryStore {
    async fn put(
        &self,
        key: &str,
        tensor: &StoredTensor,
        ttl: Duration,
    ) -> Result<u64, StoreError> {
        check_ttl(key, ttl)?;
        let blob: Arc<[u8]> = tensor.encode().into();
        let bytes = blob.len() as u64;
        self.insert(key, blob, ttl);
        Ok(bytes)
    }

    async fn get(&self, key: &str) -> Result<Fetched, StoreError> {
        let blob = self.blob(key)?;
        let tensor = decode_blob(key, &blob)?;
        Ok(Fetched {
            tensor,
            bytes: blob.len() as u64,
        })
    }

    async fn get_many(&self, keys: &[String]) -> Result<Vec<Fetched>, StoreError> {
        let mut out = Vec::with_capacity(keys.len());
        for key in keys {
            out.push(self.get(key).await?);
        }
        Ok(out)
    }

    async fn get_rows(&self, key: &str, rows: Range<usize>) -> Result<Fetched, StoreError> {
        let blob = self.blob(key)?;
        let (tensor, bytes) = rows_from_blob(key, &blob, rows)?;
        Ok(Fetched { tensor, bytes })
    }

    async fn delete(&self, keys: &[String]) -> Result<(), StoreError> {
        let mut inner = self.lock();
        for key in keys {
            inner.entries.remove(key);
        }
        Ok(())
    }

    async fn ping(&self) -> Result<(), StoreError> {
        Ok(())
    }

    async fn signal(&self, key: &str, ttl: Duration) -> Result<(), StoreError> {
        check_ttl(key, ttl)?;
        self.signalled.notify_waiters();
        Ok(())
    }

    async fn wait_for(&self, key: &str, timeout: Duration) -> Result<(), StoreError> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            // Registered before the check, so a signal between the two is not missed.
            let mut signalled = std::pin::pin!(self.signalled.notified());
            signalled.as_mut().enable();
            if self.blob(key).is_ok() {
                return Ok(());
            }
            if tokio::time::timeout_at(deadline, signalled).await.is_err() {
                return Err(wait_timeout("memory", key, timeout));
            }
        }
    }

    fn describe(&self) -> String {
        "memory".to_owned()
    }
}
