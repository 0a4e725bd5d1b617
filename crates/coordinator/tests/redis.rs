//! The serverless pipeline over a real redis-server: equal to the monolithic model, no key
//! left behind, and clear, bounded failures when Redis dies mid-run.

use std::sync::Arc;
use std::time::{Duration, Instant};

use seqless_coordinator::{Coordinator, CoordinatorOptions};
use seqless_functions::{InprocOptions, InprocPlatform};
use seqless_model::testing::{config, random, write_model};
use seqless_model::{GateActivation, Modulation, TfilmModel};
use seqless_plan::{PlanKind, Splits};
use seqless_store::testing::RedisServer;
use seqless_store::{StoreOptions, open_store};

struct Setup {
    _dir: tempfile::TempDir,
    model: TfilmModel,
    coordinators: Vec<Coordinator>,
}

async fn setup(redis: &RedisServer, layers: &str, modulation: Modulation, seed: u64) -> Setup {
    let cfg = config(4, layers, modulation, GateActivation::Sigmoid, 3);
    let dir = tempfile::tempdir().unwrap();
    write_model(dir.path(), &cfg, &random(&cfg, seed, 0.8));
    let model = TfilmModel::load(dir.path()).unwrap();
    let options = StoreOptions {
        op_timeout: Duration::from_secs(2),
        ..StoreOptions::default()
    };
    let store = open_store(&redis.url(), options).await.unwrap();
    let platform = Arc::new(InprocPlatform::new(
        InprocOptions {
            model_dir: dir.path().into(),
            concurrency: 4,
            idle_timeout: Duration::from_secs(60),
            memory_mb: 512,
            ttl: Duration::from_secs(60),
        },
        store.clone(),
    ));
    let coordinators = [
        (PlanKind::Fused, 1),
        (PlanKind::Fused, 5),
        (PlanKind::Paper, 3),
    ]
    .into_iter()
    .map(|(plan, splits)| {
        let options = CoordinatorOptions {
            plan,
            splits: Splits::Fixed(splits),
            ..CoordinatorOptions::default()
        };
        Coordinator::new(cfg.clone(), store.clone(), platform.clone(), options)
    })
    .collect();
    Setup {
        _dir: dir,
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serverless_over_redis_equals_monolithic_and_cleans_up() {
    let redis = RedisServer::start();
    for (i, (layers, modulation)) in [
        ("6:3:2:4,5:4:1:2", Modulation::Affine),
        ("4:5:1:3,6:2:2:2,3:3:1:4", Modulation::Scale),
    ]
    .into_iter()
    .enumerate()
    {
        let s = setup(&redis, layers, modulation, i as u64).await;
        for len in [1usize, 17, 900, 12_345] {
            let text: Vec<u8> = (0..len).map(|j| (j * 7 + i) as u8).collect();
            let expected = s.model.forward(&text).unwrap();
            for c in &s.coordinators {
                let got = c.classify(&text).await.unwrap();
                assert_eq!(got.prediction.label, expected.label);
                for (g, e) in got.prediction.logits.iter().zip(&expected.logits) {
                    assert!(
                        (g - e).abs() <= 1e-4,
                        "{:?} vs {:?}",
                        got.prediction.logits,
                        expected.logits
                    );
                }
            }
        }
    }
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
    assert_eq!(ok.prediction.label, s.model.forward(&text).unwrap().label);
}
