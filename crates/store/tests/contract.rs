//! The `TensorStore` contract, written once and run against every backend: the
//! memory store, a real redis-server, a TLS redis-server and a 3-node Redis
//! Cluster.

mod common;

use std::time::Duration;

use common::Harness;
use seqless_store::tensor::HEADER_LEN;
use seqless_store::{DType, QueryId, StoreError, StoredTensor};

const TTL: Duration = Duration::from_secs(60);

fn grid(rows: usize, cols: usize) -> StoredTensor {
    let data = (0..rows * cols).map(|i| i as f32 * 0.25 - 7.0).collect();
    StoredTensor::f32(vec![rows, cols], data).unwrap()
}

fn assert_not_found(r: Result<impl std::fmt::Debug, StoreError>, key: &str) {
    match r {
        Err(StoreError::NotFound { key: k }) => assert_eq!(k, key),
        other => panic!("expected NotFound for {key}, got {other:?}"),
    }
}

fn assert_corrupt(r: Result<impl std::fmt::Debug, StoreError>, key: &str, needle: &str) {
    match r {
        Err(StoreError::Corrupt { key: k, reason }) => {
            assert_eq!(k, key);
            assert!(reason.contains(needle), "`{reason}` lacks `{needle}`");
        }
        other => panic!("expected Corrupt for {key}, got {other:?}"),
    }
}

async fn round_trip(h: &Harness) {
    let q = QueryId::new();
    let act = grid(17, 5);
    let ids = StoredTensor::u16(vec![6], vec![1, 2, 3, 256, 257, 0]).unwrap();
    let scalar = StoredTensor::f32(vec![], vec![3.5]).unwrap();
    // A single Redis server writes tensors from 32 KB on its blocking bulk path: this
    // one (64 KB) copied into one command buffer, the 512 KB one streamed from the tensor.
    let large = grid(2048, 8);
    let streamed = grid(16384, 8);
    for (name, t) in [
        ("act", &act),
        ("ids", &ids),
        ("scalar", &scalar),
        ("large", &large),
        ("streamed", &streamed),
    ] {
        let written = h.store.put(&q.key(name), t, TTL).await.unwrap();
        assert_eq!(written, t.encoded_len() as u64);
        let got = h.store.get(&q.key(name)).await.unwrap();
        assert_eq!(&got.tensor, t);
        assert_eq!(got.bytes, written);
    }
    let got = h.store.get(&q.key("ids")).await.unwrap().tensor;
    assert_eq!(got.dtype(), DType::U16);
    assert!(matches!(
        got.as_f32(),
        Err(StoreError::DTypeMismatch { .. })
    ));
    h.store.ping().await.unwrap();
    assert!(!h.store.describe().is_empty());
}

async fn overwrite_replaces(h: &Harness) {
    let key = QueryId::new().key("x");
    h.store.put(&key, &grid(2, 2), TTL).await.unwrap();
    h.store.put(&key, &grid(3, 1), TTL).await.unwrap();
    assert_eq!(h.store.get(&key).await.unwrap().tensor, grid(3, 1));
}

async fn missing_keys_are_not_found(h: &Harness) {
    let q = QueryId::new();
    let missing = q.key("never-written");
    assert_not_found(h.store.get(&missing).await, &missing);
    assert_not_found(h.store.get_rows(&missing, 0..1).await, &missing);
    let present = q.key("present");
    h.store.put(&present, &grid(1, 1), TTL).await.unwrap();
    assert_not_found(
        h.store.get_many(&[present.clone(), missing.clone()]).await,
        &missing,
    );
}

async fn keys_expire(h: &Harness) {
    let key = QueryId::new().key("short-lived");
    h.store
        .put(&key, &grid(4, 4), Duration::from_millis(300))
        .await
        .unwrap();
    assert!(h.store.get(&key).await.is_ok());
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_not_found(h.store.get(&key).await, &key);
    assert_not_found(h.store.get_rows(&key, 0..1).await, &key);
    assert!(matches!(
        h.store.put(&key, &grid(1, 1), Duration::ZERO).await,
        Err(StoreError::InvalidInput { .. })
    ));
}

async fn row_ranges(h: &Harness) {
    let key = QueryId::new().key("act");
    let t = grid(10, 3);
    h.store.put(&key, &t, TTL).await.unwrap();

    let halo = h.store.get_rows(&key, 2..5).await.unwrap();
    assert_eq!(halo.tensor.shape(), &[3, 3]);
    assert_eq!(halo.tensor.as_f32().unwrap(), &t.as_f32().unwrap()[6..15]);
    // Header plus the rows, not the whole blob.
    assert_eq!(halo.bytes, (HEADER_LEN + 3 * 3 * 4) as u64);
    assert!(halo.bytes < t.encoded_len() as u64);

    let all = h.store.get_rows(&key, 0..10).await.unwrap();
    assert_eq!(all.tensor, t);
    let last = h.store.get_rows(&key, 9..10).await.unwrap();
    assert_eq!(last.tensor.as_f32().unwrap(), &t.as_f32().unwrap()[27..30]);
    let none = h.store.get_rows(&key, 4..4).await.unwrap();
    assert_eq!(none.tensor.shape(), &[0, 3]);

    for range in [8..11, 10..11, 0..1000] {
        match h.store.get_rows(&key, range.clone()).await {
            Err(StoreError::RowRange {
                key: k, rows: 10, ..
            }) => assert_eq!(k, key),
            other => panic!("{range:?}: expected RowRange, got {other:?}"),
        }
    }
    let u = StoredTensor::u16(vec![5, 2], (0..10).collect()).unwrap();
    h.store.put(&key, &u, TTL).await.unwrap();
    let rows = h.store.get_rows(&key, 1..3).await.unwrap().tensor;
    assert_eq!(rows.as_u16().unwrap(), &[2, 3, 4, 5]);
}

async fn get_many_keeps_order(h: &Harness) {
    let q = QueryId::new();
    let keys: Vec<String> = (0..12).map(|i| q.key(&format!("split{i}"))).collect();
    for (i, k) in keys.iter().enumerate() {
        h.store.put(k, &grid(i + 1, 2), TTL).await.unwrap();
    }
    let mut wanted = keys.clone();
    wanted.reverse();
    let got = h.store.get_many(&wanted).await.unwrap();
    assert_eq!(got.len(), 12);
    for (j, f) in got.iter().enumerate() {
        assert_eq!(f.tensor, grid(12 - j, 2));
        assert_eq!(f.bytes, f.tensor.encoded_len() as u64);
    }
    assert!(h.store.get_many(&[]).await.unwrap().is_empty());
}

async fn delete_by_name(h: &Harness) {
    let q = QueryId::new();
    let keys: Vec<String> = (0..6).map(|i| q.key(&format!("k{i}"))).collect();
    for k in &keys {
        h.store.put(k, &grid(1, 3), TTL).await.unwrap();
    }
    let mut doomed = keys[..5].to_vec();
    doomed.push(q.key("never-written"));
    h.store.delete(&doomed).await.unwrap();
    for k in &keys[..5] {
        assert_not_found(h.store.get(k).await, k);
    }
    assert!(h.store.get(&keys[5]).await.is_ok());
    h.store.delete(&[]).await.unwrap();
}

async fn concurrent_use(h: &Harness) {
    let q = QueryId::new();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..32 {
        let store = h.store.clone();
        let key = q.key(&format!("task{i}"));
        tasks.spawn(async move {
            let t = grid(i + 1, 8);
            store.put(&key, &t, TTL).await.unwrap();
            assert_eq!(store.get(&key).await.unwrap().tensor, t);
            assert_eq!(
                store.get_rows(&key, i..i + 1).await.unwrap().tensor.shape(),
                &[1, 8]
            );
        });
    }
    while let Some(r) = tasks.join_next().await {
        r.unwrap();
    }
}

async fn corrupt_blobs_are_refused(h: &Harness) {
    let q = QueryId::new();
    let good = grid(6, 4).encode();

    let truncated = q.key("truncated");
    h.plant(&truncated, &good[..good.len() - 5]);
    assert_corrupt(h.store.get(&truncated).await, &truncated, "payload is");
    assert_corrupt(
        h.store.get_rows(&truncated, 0..1).await,
        &truncated,
        "header implies",
    );

    let short = q.key("short");
    h.plant(&short, &good[..20]);
    assert_corrupt(h.store.get(&short).await, &short, "truncated");
    assert_corrupt(h.store.get_rows(&short, 0..1).await, &short, "truncated");

    let flipped = q.key("flipped-payload");
    let mut bad = good.clone();
    bad[HEADER_LEN + 33] ^= 0x10;
    h.plant(&flipped, &bad);
    assert_corrupt(h.store.get(&flipped).await, &flipped, "payload CRC");

    let header = q.key("flipped-header");
    let mut bad = good.clone();
    bad[9] ^= 0x01;
    h.plant(&header, &bad);
    assert_corrupt(h.store.get(&header).await, &header, "header CRC");
    assert_corrupt(h.store.get_rows(&header, 0..1).await, &header, "header CRC");

    let foreign = q.key("foreign");
    h.plant(
        &foreign,
        b"some plain string value that another program SET here",
    );
    assert_corrupt(
        h.store.get(&foreign).await,
        &foreign,
        "not a seqless tensor",
    );
    assert_corrupt(
        h.store.get_rows(&foreign, 0..1).await,
        &foreign,
        "not a seqless tensor",
    );

    let fine = q.key("fine");
    h.store.put(&fine, &grid(1, 1), TTL).await.unwrap();
    assert_corrupt(
        h.store.get_many(&[fine, foreign.clone()]).await,
        &foreign,
        "not a seqless tensor",
    );
}

/// Waiters block until the key is signalled, all of them wake on one signal, a late
/// waiter finds the key at once, and a wait that runs out names the key and can be retried.
async fn waits_wake_on_signal(h: &Harness) {
    let q = QueryId::new();
    let key = q.key("edge");
    let waiters: Vec<_> = (0..3)
        .map(|_| {
            let (store, key) = (h.store.clone(), key.clone());
            tokio::spawn(async move {
                store.wait_for(&key, Duration::from_secs(20)).await?;
                store.get(&key).await
            })
        })
        .collect();
    // The waiters are blocked, not finished: nothing has been written yet.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(waiters.iter().all(|w| !w.is_finished()));
    h.store.put(&key, &grid(3, 2), TTL).await.unwrap();
    h.store.signal(&key, TTL).await.unwrap();
    for waiter in waiters {
        let got = tokio::time::timeout(Duration::from_secs(10), waiter)
            .await
            .expect("a signalled waiter wakes")
            .unwrap()
            .unwrap();
        assert_eq!(got.tensor, grid(3, 2));
    }
    // A waiter that arrives after the write does not block.
    h.store
        .wait_for(&key, Duration::from_millis(1))
        .await
        .unwrap();
    // A second signal (a retried writer) is harmless.
    h.store.signal(&key, TTL).await.unwrap();
    h.store
        .wait_for(&key, Duration::from_secs(1))
        .await
        .unwrap();

    let missing = q.key("never-signalled");
    let started = std::time::Instant::now();
    let err = h
        .store
        .wait_for(&missing, Duration::from_millis(300))
        .await
        .unwrap_err();
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert!(err.is_retryable(), "{err}");
    assert!(err.to_string().contains(&missing), "{err}");
    assert!(matches!(
        h.store.signal(&missing, Duration::ZERO).await,
        Err(StoreError::InvalidInput { .. })
    ));
    h.store.delete(std::slice::from_ref(&key)).await.unwrap();
    assert_not_found(h.store.get(&key).await, &key);
}

/// Every check above, one after another on one store (for harnesses that are
/// expensive to start).
async fn run_all(h: &Harness) {
    round_trip(h).await;
    overwrite_replaces(h).await;
    missing_keys_are_not_found(h).await;
    keys_expire(h).await;
    row_ranges(h).await;
    get_many_keeps_order(h).await;
    delete_by_name(h).await;
    concurrent_use(h).await;
    waits_wake_on_signal(h).await;
    if h.can_plant() {
        corrupt_blobs_are_refused(h).await;
    }
}

/// One `#[tokio::test]` per contract check for a cheap harness.
macro_rules! contract {
    ($backend:ident: $($check:ident),* $(,)?) => {
        mod $backend {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $check() {
                    let h = crate::common::$backend().await;
                    crate::$check(&h).await;
                }
            )*
        }
    };
}

contract!(memory: round_trip, overwrite_replaces, missing_keys_are_not_found, keys_expire,
    row_ranges, get_many_keeps_order, delete_by_name, concurrent_use, waits_wake_on_signal,
    corrupt_blobs_are_refused);
contract!(redis: round_trip, overwrite_replaces, missing_keys_are_not_found, keys_expire,
    row_ranges, get_many_keeps_order, delete_by_name, concurrent_use, waits_wake_on_signal,
    corrupt_blobs_are_refused);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_redis_meets_the_contract() {
    run_all(&common::tls(false).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_redis_with_client_certificates_meets_the_contract() {
    run_all(&common::tls(true).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_cluster_meets_the_contract() {
    run_all(&common::cluster().await).await;
}
