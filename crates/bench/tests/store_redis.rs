//! The store bench against a real Redis server, with `redis-benchmark` beside it.

use seqless_store::testing::RedisServer;
use seqless_store::{StoreOptions, open_store};

fn options() -> StoreOptions {
    StoreOptions {
        key_prefix: "test:".to_owned(),
        ..StoreOptions::default()
    }
}

/// The store bench against a real server runs `redis-benchmark` beside every run and
/// attaches its medians, and leaves no key behind: neither the store's nor the
/// baseline's.
#[tokio::test]
async fn store_bench_measures_the_baseline_on_the_same_server() {
    let server = RedisServer::start();
    let store = open_store(&server.url(), options()).await.unwrap();
    let endpoint = seqless_bench::store::baseline_endpoint(&server.url());
    assert!(endpoint.is_some(), "a plain redis:// URL has a baseline");
    let rows = seqless_bench::store::run_store_bench(store, &[4096], 2, 2, endpoint)
        .await
        .unwrap();
    let row = &rows[0];
    let baseline = row.baseline.expect("measured");
    assert!(baseline.set_fresh_mb_s > 0.0, "{row:?}");
    assert!(baseline.set_one_key_mb_s > 0.0, "{row:?}");
    assert!(baseline.get_mb_s > 0.0, "{row:?}");
    assert!(baseline.get_one_key_mb_s > 0.0, "{row:?}");
    assert!(
        row.put_ratio.unwrap() > 0.0 && row.get_ratio.unwrap() > 0.0,
        "{row:?}"
    );
    assert_eq!(server.dbsize(), 0);
}

/// The baseline's GETs read values of the requested size (not missing keys, which the
/// server answers far faster): the one key, and the distinct keys it fills first under
/// the names `redis-benchmark -r` draws. Every key it wrote is gone afterwards.
#[test]
fn redis_benchmark_baseline_writes_fresh_keys_and_cleans_up() {
    let server = RedisServer::start();
    let (host, port) = seqless_bench::store::baseline_endpoint(&server.url()).unwrap();
    let baseline =
        seqless_bench::store::redis_benchmark_baseline(&host, port, 1000, 2, 50).unwrap();
    assert!(baseline.set_fresh_mb_s > 0.0 && baseline.get_mb_s > 0.0);
    assert!(baseline.get_one_key_mb_s > 0.0);
    let stats = String::from_utf8(server.command(&[b"INFO", b"stats"]).unwrap()).unwrap();
    let stat = |name: &str| -> u64 {
        stats
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name}:")))
            .unwrap_or_else(|| panic!("no {name} in {stats}"))
            .trim()
            .parse()
            .unwrap()
    };
    assert_eq!(stat("keyspace_misses"), 0, "every GET found its value");
    assert_eq!(
        stat("keyspace_hits"),
        2 * 50,
        "both GET runs read their 50: {stats}"
    );
    assert_eq!(server.dbsize(), 0);
}
