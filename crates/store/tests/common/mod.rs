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
    let store = open_store(&server.url(), options())
        .await
        .expect("open redis store");
    let raw = server.clone();
    Harness {
        store,
        plant: Some(Box::new(move |k, b| {
            assert!(raw_set(&raw, k, b).starts_with(b"+OK"))
        })),
        _keep: Box::new(server),
    }
}

pub async fn cluster() -> Harness {
    let cluster = Arc::new(RedisCluster::start(3));
    let store = open_store(&cluster.url(), options())
        .await
        .expect("open cluster store");
    let raw = cluster.clone();
    Harness {
        store,
        // The key lives on exactly one node; the others answer MOVED.
        plant: Some(Box::new(move |k, b| {
            let ok = raw
                .nodes()
                .iter()
                .any(|n| raw_set(n, k, b).starts_with(b"+OK"));
            assert!(ok, "no node accepted {k}");
        })),
        _keep: Box::new(cluster),
    }
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
    let server = Arc::new(builder.start());
    let store = open_store(&server.url(), options())
        .await
        .expect("open TLS store");
    Harness {
        store,
        plant: None,
        _keep: Box::new(server),
    }
}
