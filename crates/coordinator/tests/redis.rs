//! The serverless pipeline over a real redis-server: equal to the monolithic model, no key
//! left behind, and clear, bounded failures when Redis dies mid-run.

use std::time::{Duration, Instant};

use seqless_coordinator::{Coordinator, CoordinatorOptions};
use seqless_model::{GateActivation, Modulation};
use seqless_plan::PlanKind;
use seqless_store::testing::{RedisCluster, RedisServer};
use seqless_store::{StoreOptions, open_store};

mod common;

use seqless_model::testing::{RandomModel, assert_same_prediction};

struct Setup {
    model: RandomModel,
    coordinators: Vec<Coordinator>,
}

async fn setup(redis: &RedisServer, layers: &str, modulation: Modulation, seed: u64) -> Setup {
    let model = RandomModel::new(layers, 4, modulation, GateActivation::Sigmoid, seed);
    let options = StoreOptions {
        op_timeout: Duration::from_secs(2),
        ..StoreOptions::default()
    };
    let store = open_store(&redis.url(), options).await.unwrap();
    let invoker = common::invoker(model.dir.path(), store.clone());
    let coordinators = [
        (PlanKind::Fused, 1),
        (PlanKind::Fused, 5),
        (PlanKind::Paper, 3),
        (PlanKind::Resident, 3),
    ]
    .into_iter()
    .map(|(plan, splits)| {
        Coordinator::new(
            model.model.config.clone(),
            model.fingerprint.clone(),
            store.clone(),
            invoker.clone(),
            common::options(plan, splits),
        )
    })
    .collect();
    Setup {
        model,
        coordinators,
    }
}

/// The equivalence property over random models and inputs, with one real redis-server
/// owned by the test (so it is stopped when the test ends).
#[test]
fn serverless_over_redis_equals_monolithic_and_cleans_up() {
    use proptest::prelude::*;
    use proptest::test_runner::{Config, TestRunner};

    let redis = RedisServer::start();
    let rt = common::runtime();
    let layer = (
        1usize..6,
        1usize..6,
        1usize..3,
        prop::sample::select(vec![1usize, 2, 4]),
    )
        .prop_map(|(c, k, p, b)| format!("{c}:{k}:{p}:{b}"));
    let strategy = (
        prop::collection::vec(layer, 1..4),
        any::<bool>(),
        any::<u64>(),
        prop::collection::vec(any::<u8>(), 1..15_000),
    );
    let mut runner = TestRunner::new(Config {
        cases: 10,
        ..Config::default()
    });
    runner
        .run(&strategy, |(layers, affine, seed, text)| {
            let modulation = if affine {
                Modulation::Affine
            } else {
                Modulation::Scale
            };
            rt.block_on(async {
                let s = setup(&redis, &layers.join(","), modulation, seed).await;
                let expected = s.model.model.forward(&text).unwrap();
                for c in &s.coordinators {
                    let got = c.classify(&text).await.unwrap();
                    prop_assert_eq!(&got.prediction.label, &expected.label);
                    for (g, e) in got.prediction.logits.iter().zip(&expected.logits) {
                        prop_assert!(
                            (g - e).abs() <= 1e-4,
                            "{:?} vs {:?}",
                            got.prediction.logits,
                            expected.logits
                        );
                    }
                }
                Ok(())
            })
        })
        .unwrap();
    // Every query deleted its keys by name.
    assert_eq!(redis.dbsize(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_killed_mid_run_fails_fast_then_recovers() {
    let redis = RedisServer::start();
    let s = setup(&redis, "6:3:2:4,5:4:1:2", Modulation::Scale, 3).await;
    let c = s.coordinators[1].clone();
    let text = vec![b'z'; 20_000];
    c.classify(&text).await.unwrap();
    // Kill Redis while a query is in flight.
    let running = tokio::spawn({
        let c = c.clone();
        let text = text.clone();
        async move { c.classify(&text).await }
    });
    tokio::time::sleep(Duration::from_millis(5)).await;
    redis.kill();
    let started = Instant::now();
    let in_flight = tokio::time::timeout(Duration::from_secs(30), running)
        .await
        .expect("no hang")
        .unwrap();
    let after = c.classify(&text).await;
    let elapsed = started.elapsed();
    let err = after.expect_err("Redis is down").to_string();
    assert!(
        err.contains("127.0.0.1"),
        "the error names the store: {err}"
    );
    assert!(
        elapsed < Duration::from_secs(25),
        "failures took {elapsed:?}"
    );
    if let Err(e) = in_flight {
        assert!(e.is_retryable(), "a dead store is a retryable failure: {e}");
    }
    redis.restart();
    let ok = c
        .classify(&text)
        .await
        .expect("works again once Redis is back");
    assert_eq!(
        ok.prediction.label,
        s.model.model.forward(&text).unwrap().label
    );
}

/// A Cluster primary killed under load fails over to its replica. Queries in flight then
/// succeed through their retries or fail fast, none runs past its deadline, and every query
/// that starts once the replica has taken over succeeds with the monolithic answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_primary_failing_over_under_load_loses_no_later_query() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    let cluster = RedisCluster::start_with_replicas(3, 1, 1000);
    let model = RandomModel::new(
        "6:3:2:4,5:4:1:2",
        4,
        Modulation::Scale,
        GateActivation::Sigmoid,
        21,
    );
    let options = StoreOptions {
        op_timeout: Duration::from_secs(2),
        ..StoreOptions::default()
    };
    let store = open_store(&cluster.url(), options).await.unwrap();
    let invoker = common::invoker(model.dir.path(), store.clone());
    let deadline = Duration::from_secs(10);
    let options = CoordinatorOptions {
        deadline,
        ..common::options(PlanKind::Fused, 3)
    };
    let c = common::coordinator(&model, store, invoker, options);
    let text = vec![b'q'; 5000];
    let want = model.model.forward(&text).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..4)
        .map(|_| {
            let (c, text, stop) = (c.clone(), text.clone(), stop.clone());
            tokio::spawn(async move {
                let mut runs = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let started = Instant::now();
                    let answer = c.classify(&text).await;
                    runs.push((started, started.elapsed(), answer));
                }
                runs
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let primaries = cluster.primaries();
    assert_eq!(primaries.len(), 3);
    primaries[0].kill();
    let killed = Instant::now();
    // The replica takes over once the others have missed the primary for the node timeout.
    while cluster.primaries().len() < 3 {
        assert!(
            killed.elapsed() < Duration::from_secs(30),
            "no replica took over"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let taken_over = Instant::now();
    tokio::time::sleep(Duration::from_secs(4)).await;
    stop.store(true, Ordering::Relaxed);
    let (mut after, mut failed, mut total) = (0, 0, 0);
    for client in clients {
        for (started, took, answer) in client.await.unwrap() {
            total += 1;
            failed += usize::from(answer.is_err());
            assert!(
                took < deadline + Duration::from_secs(3),
                "a query took {took:?}"
            );
            // Queries that start a moment after the takeover (the client learns the new
            // topology on its first refused request) all succeed.
            if started > taken_over + Duration::from_secs(1) {
                let got = answer.unwrap_or_else(|e| panic!("after the failover: {e}"));
                assert_same_prediction(&got.prediction, &want, "after the failover");
                after += 1;
            }
        }
    }
    eprintln!(
        "{total} queries: {failed} failed, {after} after the takeover (took {:?})",
        taken_over - killed
    );
    assert!(after >= 4, "only {after} queries after the failover");
}
