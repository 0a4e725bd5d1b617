//! Redis-specific behaviour: what lands on the server, foreign data, traffic of
//! range reads, authentication, TLS verification, and failure and recovery.

mod common;

use std::time::{Duration, Instant};

use common::{PREFIX, options};
use seqless_store::testing::{RedisCluster, RedisServer};
use seqless_store::{QueryId, StoreError, StoreOptions, StoredTensor, open_store};

const TTL: Duration = Duration::from_secs(60);

fn reply_int(reply: &[u8]) -> i64 {
    let s = String::from_utf8_lossy(reply);
    s.trim_start_matches(':')
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("not an integer reply: {s}"))
}

/// `total_net_output_bytes` from `INFO stats`.
fn net_output_bytes(server: &RedisServer) -> u64 {
    let info = server.command(&[b"INFO", b"stats"]).unwrap();
    let info = String::from_utf8_lossy(&info);
    info.lines()
        .find_map(|l| l.strip_prefix("total_net_output_bytes:"))
        .and_then(|v| v.trim().parse().ok())
        .expect("INFO stats has total_net_output_bytes")
}

#[tokio::test]
async fn keys_get_the_prefix_and_an_expiry() {
    let server = RedisServer::start();
    let store = open_store(&server.url(), options()).await.unwrap();
    let key = QueryId::new().key("act");
    store
        .put(
            &key,
            &StoredTensor::f32(vec![2], vec![1.0, 2.0]).unwrap(),
            Duration::from_secs(30),
        )
        .await
        .unwrap();

    let full = format!("{PREFIX}{key}");
    assert_eq!(
        reply_int(&server.command(&[b"EXISTS", full.as_bytes()]).unwrap()),
        1
    );
    assert_eq!(
        reply_int(&server.command(&[b"EXISTS", key.as_bytes()]).unwrap()),
        0
    );
    let pttl = reply_int(&server.command(&[b"PTTL", full.as_bytes()]).unwrap());
    assert!((1..=30_000).contains(&pttl), "PTTL {pttl}");

    // Sub-millisecond TTLs round up rather than to "no expiry" or an error.
    store
        .put(
            &key,
            &StoredTensor::f32(vec![], vec![0.0]).unwrap(),
            Duration::from_micros(10),
        )
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert!(matches!(
        store.get(&key).await,
        Err(StoreError::NotFound { .. })
    ));
}

#[tokio::test]
async fn a_redis_list_under_a_key_is_corrupt_not_garbage() {
    let server = RedisServer::start();
    let store = open_store(&server.url(), options()).await.unwrap();
    let key = QueryId::new().key("list");
    let full = format!("{PREFIX}{key}");
    server
        .command(&[b"RPUSH", full.as_bytes(), b"a", b"b"])
        .unwrap();
    for result in [
        store.get(&key).await.map(|_| ()),
        store.get_rows(&key, 0..1).await.map(|_| ()),
        store.get_many(std::slice::from_ref(&key)).await.map(|_| ()),
    ] {
        match result {
            Err(StoreError::Corrupt { key: k, reason }) => {
                assert_eq!(k, key);
                assert!(reason.contains("WRONGTYPE"), "{reason}");
            }
            other => panic!("expected Corrupt, got {other:?}"),
        }
    }
    // Overwriting it with a tensor works (SET replaces any type).
    let t = StoredTensor::f32(vec![1], vec![1.0]).unwrap();
    store.put(&key, &t, TTL).await.unwrap();
    assert_eq!(store.get(&key).await.unwrap().tensor, t);
}

#[tokio::test]
async fn row_reads_move_only_the_rows() {
    let server = RedisServer::start();
    let store = open_store(&server.url(), options()).await.unwrap();
    let key = QueryId::new().key("big");
    // 1024 rows x 256 f32 = 1 MiB of payload.
    let t =
        StoredTensor::f32(vec![1024, 256], (0..1024 * 256).map(|i| i as f32).collect()).unwrap();
    store.put(&key, &t, TTL).await.unwrap();

    let before = net_output_bytes(&server);
    let halo = store.get_rows(&key, 500..502).await.unwrap();
    let after = net_output_bytes(&server);
    assert_eq!(
        halo.tensor.as_f32().unwrap(),
        &t.as_f32().unwrap()[500 * 256..502 * 256]
    );
    assert_eq!(halo.bytes, 48 + 2 * 256 * 4);
    // The server sent a few KiB (the rows, the header, and the first INFO reply),
    // nowhere near the 1 MiB blob.
    let sent = after - before;
    assert!(
        sent < 16 * 1024,
        "server sent {sent} bytes for a 2-row read"
    );

    let before = net_output_bytes(&server);
    store.get(&key).await.unwrap();
    let sent = net_output_bytes(&server) - before;
    assert!(sent > 1024 * 1024, "a full read sent only {sent} bytes");
}

#[tokio::test]
async fn password_in_the_url_is_used_and_masked() {
    let server = RedisServer::builder().password("s3cret-pw").start();
    let store = open_store(&server.url(), options()).await.unwrap();
    let key = QueryId::new().key("x");
    // A small tensor on the multiplexed connections, a large one on the blocking bulk path:
    // both must authenticate.
    for len in [1, 64 * 1024] {
        let tensor = StoredTensor::f32(vec![len], vec![1.0; len]).unwrap();
        store.put(&key, &tensor, TTL).await.unwrap();
        assert_eq!(store.get(&key).await.unwrap().tensor, tensor);
    }
    assert!(store.describe().contains(":***@"), "{}", store.describe());
    // Redis' 512 MiB string limit less the blob header, for planners.
    assert_eq!(store.max_payload_bytes(), Some((512 << 20) - 48));
    assert!(!store.describe().contains("s3cret-pw"));

    let wrong = server.url().replace("s3cret-pw", "wrong-pw");
    let err = open_store(&wrong, options())
        .await
        .err()
        .expect("wrong password must fail");
    assert!(matches!(err, StoreError::Rejected { .. }), "{err:?}");
    assert!(!err.is_retryable());
    let msg = err.to_string();
    assert!(
        !msg.contains("wrong-pw") && msg.contains(&server.port().to_string()),
        "{msg}"
    );

    let none = format!("redis://127.0.0.1:{}", server.port());
    let err = open_store(&none, options())
        .await
        .err()
        .expect("no password must fail");
    assert!(matches!(err, StoreError::Rejected { .. }), "{err:?}");
}

/// The error `op` ends with, which it must within `bound`.
async fn fails_within<T>(
    bound: Duration,
    op: impl Future<Output = Result<T, StoreError>>,
) -> StoreError {
    let started = Instant::now();
    let Err(err) = op.await else {
        panic!("must fail")
    };
    assert!(started.elapsed() < bound, "took {:?}", started.elapsed());
    err
}

#[tokio::test]
async fn tls_verifies_the_server_certificate() {
    let server = RedisServer::builder().tls().start();
    // Without tls_ca the system trust store is used, which does not know the test CA.
    let untrusted = format!("rediss://127.0.0.1:{}", server.port());
    let err = fails_within(Duration::from_secs(5), open_store(&untrusted, options())).await;
    assert!(err.to_string().contains("certificate"), "{err}");
    assert!(!err.is_retryable(), "{err:?}");
    // A plain connection to a TLS port does not get through either.
    let plain = format!("redis://127.0.0.1:{}", server.port());
    assert!(open_store(&plain, options()).await.is_err());
}

#[tokio::test]
async fn tls_client_certificate_is_required_when_the_server_asks() {
    let server = RedisServer::builder().tls_client_auth().start();
    assert!(open_store(&server.url(), options()).await.is_ok());
    let ca = server.dir().join("ca.pem");
    let no_cert = format!(
        "rediss://127.0.0.1:{}/?tls_ca={}",
        server.port(),
        ca.display()
    );
    assert!(open_store(&no_cert, options()).await.is_err());
}

#[tokio::test]
async fn unreachable_redis_fails_fast_naming_the_url() {
    // A port nothing listens on: bind, note the port, close.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("redis://:hunter2@127.0.0.1:{port}/0");
    let err = fails_within(
        Duration::from_secs(3),
        open_store(&url, StoreOptions::default()),
    )
    .await;
    assert!(err.is_retryable(), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.contains(&format!("redis://:***@127.0.0.1:{port}/0")),
        "{msg}"
    );
    assert!(!msg.contains("hunter2"), "{msg}");
}

#[tokio::test]
async fn an_unroutable_host_is_bounded_by_the_connect_timeout() {
    // TEST-NET-1 (RFC 5737): never routed; connects either hang or fail at once.
    let opts = StoreOptions {
        connect_timeout: Duration::from_millis(500),
        ..StoreOptions::default()
    };
    let err = fails_within(
        Duration::from_secs(2),
        open_store("redis://192.0.2.1:6379", opts),
    )
    .await;
    assert!(err.to_string().contains("redis://192.0.2.1:6379"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operations_fail_fast_while_redis_is_down_and_work_after_it_returns() {
    let server = RedisServer::start();
    let opts = StoreOptions {
        op_timeout: Duration::from_secs(2),
        ..options()
    };
    let store = open_store(&server.url(), opts).await.unwrap();
    let q = QueryId::new();
    let t = StoredTensor::f32(vec![3, 2], vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]).unwrap();
    // Large enough for the blocking bulk path, which has connections of its own.
    let large = StoredTensor::f32(vec![128 * 1024], vec![0.5; 128 * 1024]).unwrap();
    store.put(&q.key("before"), &t, TTL).await.unwrap();
    store.put(&q.key("large"), &large, TTL).await.unwrap();

    let old_pid = server.pid();
    server.kill();
    for _ in 0..3 {
        let err = fails_within(Duration::from_secs(3), store.get(&q.key("before"))).await;
        assert!(err.is_retryable(), "{err:?}");
        assert!(err.to_string().contains(&server.url()), "{err}");
        for tensor in [&t, &large] {
            let during = q.key("during");
            let err = fails_within(Duration::from_secs(3), store.put(&during, tensor, TTL)).await;
            assert!(err.is_retryable(), "{err:?}");
            assert!(err.to_string().contains(&server.url()), "{err}");
        }
    }

    server.restart();
    assert_ne!(server.pid(), old_pid);
    // The very next operation succeeds; the data died with the old process.
    store.put(&q.key("after"), &t, TTL).await.unwrap();
    assert_eq!(store.get(&q.key("after")).await.unwrap().tensor, t);
    store.put(&q.key("large"), &large, TTL).await.unwrap();
    assert_eq!(store.get(&q.key("large")).await.unwrap().tensor, large);
    assert!(matches!(
        store.get(&q.key("before")).await,
        Err(StoreError::NotFound { .. })
    ));
    store.ping().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_operation_after_a_restart_succeeds_without_a_failed_one_in_between() {
    let server = RedisServer::start();
    let store = open_store(&server.url(), options()).await.unwrap();
    let key = QueryId::new().key("x");
    let t = StoredTensor::u16(vec![2], vec![7, 8]).unwrap();
    let large = StoredTensor::u16(vec![64 * 1024], vec![9; 64 * 1024]).unwrap();
    // Several bulk-path puts at once leave several idle blocking connections behind.
    let puts = (0..6).map(|i| {
        let (store, large, key) = (&store, &large, format!("{key}-{i}"));
        async move { store.put(&key, large, TTL).await }
    });
    for put in futures_util::future::join_all(puts).await {
        put.unwrap();
    }
    store.put(&key, &t, TTL).await.unwrap();
    // Crash and restart while the store is idle: its connections are dead but it
    // does not know yet.
    server.restart();
    store.put(&key, &t, TTL).await.unwrap();
    assert_eq!(store.get(&key).await.unwrap().tensor, t);
    store.put(&key, &large, TTL).await.unwrap();
    assert_eq!(store.get(&key).await.unwrap().tensor, large);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_recovers_after_a_node_restarts() {
    let cluster = RedisCluster::start(3);
    let opts = StoreOptions {
        op_timeout: Duration::from_secs(2),
        ..options()
    };
    let store = open_store(&cluster.url(), opts).await.unwrap();
    let q = QueryId::new();
    // Enough keys that every node owns some.
    let keys: Vec<String> = (0..30).map(|i| q.key(&format!("split{i}"))).collect();
    let t = StoredTensor::f32(vec![2], vec![1.0, 2.0]).unwrap();
    for k in &keys {
        store.put(k, &t, TTL).await.unwrap();
    }
    cluster.nodes()[1].kill();
    let err = fails_within(Duration::from_secs(4), store.get_many(&keys)).await;
    assert!(err.is_retryable(), "{err:?}");
    assert!(err.to_string().contains("redis+cluster://"), "{err}");

    cluster.nodes()[1].restart();
    // The restarted node rejoins with its slots (its data is gone). Rejoining takes the
    // cluster a moment after the process serves, so the first write may wait for it.
    let rejoined = tokio::time::Instant::now() + Duration::from_secs(20);
    while store.put(&keys[0], &t, TTL).await.is_err() {
        assert!(
            tokio::time::Instant::now() < rejoined,
            "the cluster never took a write again"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    for k in &keys {
        store.put(k, &t, TTL).await.unwrap();
    }
    assert_eq!(store.get_many(&keys).await.unwrap().len(), keys.len());
    store.delete(&keys).await.unwrap();
    for k in &keys {
        assert!(matches!(
            store.get(k).await,
            Err(StoreError::NotFound { .. })
        ));
    }
}
