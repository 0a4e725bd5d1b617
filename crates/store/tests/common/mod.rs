//! Backends for the integration tests: the same contract runs against each.
// Each test binary uses a different subset of these helpers.
#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use seqless_store::testing::{RedisCluster, RedisServer};
use seqless_store::{MemoryStore, StoreOptions, TensorStore, open_store};

/// Key prefix the Redis harnesses use, so tests can find keys on the server.
pub const PREFIX: &str = "test:";

type Plant = Box<dyn Fn(&str, &[u8]) + Send + Sync>;

/// A store plus a way to put raw bytes under one of its keys (bypassing the
/// encoder), and whatever must stay alive while it is used.
pub struct Harness {
    pub store: Arc<dyn TensorStore>,
    plant: Option<Plant>,
    _keep: Box<dyn Send + Sync>,
}

impl Harness {
    /// Puts `bytes` under `key` as the store would find them.
    pub fn plant(&self, key: &str, bytes: &[u8]) {
        match &self.plant {
            Some(plant) => plant(key, bytes),
            None => panic!("this harness cannot plant raw bytes"),
        }
    }

    /// The store at `url` (a `what` server, for messages), with `keep` alive as long.
    async fn open(
        url: &str,
        what: &str,
        plant: Option<Plant>,
        keep: impl Send + Sync + 'static,
    ) -> Self {
        let store = open_store(url, options())
            .await
            .unwrap_or_else(|e| panic!("open {what} store: {e}"));
        Self {
            store,
            plant,
            _keep: Box::new(keep),
        }
    }

    /// Whether [`Harness::plant`] works here.
    pub fn can_plant(&self) -> bool {
        self.plant.is_some()
    }
}

pub fn options() -> StoreOptions {
    StoreOptions {
        key_prefix: PREFIX.to_owned(),
        op_timeout: Duration::from_secs(3),
        connect_timeout: Duration::from_secs(2),
        ..StoreOptions::default()
    }
}

pub async fn memory() -> Harness {
    let store = Arc::new(MemoryStore::new());
    let raw = store.clone();
    Harness {
        store,
        plant: Some(Box::new(move |k, b| {
            raw.put_raw(k, b, Duration::from_secs(60))
        })),
        _keep: Box::new(()),
    }
}

/// SET with an expiry through the raw protocol, checking the reply.
fn raw_set(server: &RedisServer, key: &str, bytes: &[u8]) -> Vec<u8> {
    let full = format!("{PREFIX}{key}");
    server
        .command(&[b"SET", full.as_bytes(), bytes, b"PX", b"60000"])
        .expect("raw SET")
}

pub async fn redis() -> Harness {
    let server = Arc::new(RedisServer::start());
    let raw = server.clone();
    let plant: Plant = Box::new(move |k, b| assert!(raw_set(&raw, k, b).starts_with(b"+OK")));
    Harness::open(&server.url(), "redis", Some(plant), server).await
}

pub async fn cluster() -> Harness {
    let cluster = Arc::new(RedisCluster::start(3));
    let raw = cluster.clone();
    // The key lives on exactly one node; the others answer MOVED.
    let plant: Plant = Box::new(move |k, b| {
        let ok = raw
            .nodes()
            .iter()
            .any(|n| raw_set(n, k, b).starts_with(b"+OK"));
        assert!(ok, "no node accepted {k}");
    });
    Harness::open(&cluster.url(), "cluster", Some(plant), cluster).await
}

/// A TLS server (optionally requiring a client certificate). Raw bytes cannot be
/// planted over TLS with the plain-protocol helper, so the corruption checks run
/// on the other harnesses.
pub async fn tls(client_auth: bool) -> Harness {
    let builder = RedisServer::builder();
    let builder = if client_auth {
        builder.tls_client_auth()
    } else {
        builder.tls()
    };
    let server = builder.start();
    Harness::open(&server.url(), "TLS", None, server).await
}
