//! The serverless pipeline over a real redis-server: equal to the monolithic model, no key
//! left behind, and clear, bounded failures when Redis dies mid-run.

use std::time::{Duration, Instant};

use seqless_coordinator::Coordinator;
use seqless_model::{GateActivation, Modulation};
use seqless_plan::PlanKind;
use seqless_store::testing::RedisServer;
use seqless_store::{StoreOptions, open_store};

mod common;

use seqless_model::testing::RandomModel;

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

fn dbsize(redis: &RedisServer) -> String {
    String::from_utf8_lossy(&redis.command(&[b"DBSIZE"]).unwrap())
        .trim()
        .trim_start_matches(':')
        .to_string()
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
    assert_eq!(dbsize(&redis), "0");
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
