//! The simulator against the real thing: the same closed-loop workload run on the local
//! Lambda platform (real `seqless function` processes, real Redis) and simulated from a
//! calibration that `seqless bench calibrate` measured on the same platform, in the same
//! test. This checks that the pipeline runs end to end and that its outputs are complete:
//! how close the two throughputs are depends on what else the machine runs, so the
//! tolerance belongs to a benchmark, not to a test. The ratio is printed.
//!
//! One client sends queries back to back. More clients would make the function
//! processes of this machine share its cores, which Lambda environments do not (each has
//! its own CPU share), so the simulator, rightly, would not match; the simulator's
//! concurrency limits and queueing are checked by its own invariant tests.
#![cfg(feature = "platform")]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use seqless_coordinator::{Coordinator, CoordinatorOptions};
use seqless_functions::lambda_api::DEFAULT_FUNCTION_PREFIX;
use seqless_functions::{InvokeOptions, LocalInvoker, ModelFingerprint};
use seqless_model::ModelConfig;
use seqless_platform::{PlatformOptions, PlatformServer};
use seqless_store::testing::RedisServer;
use seqless_store::{StoreOptions, open_store};

mod common;

use common::{json, ok, platform_options, seqless};
/// Function processes at once: the platform's limit and the simulated account limit
/// (one per stage kind of the shipped model, so no process is stopped for another).
const PROCESSES: usize = 2;
/// Closed-loop clients.
const CLIENTS: usize = 1;
/// Bytes per query: enough conv work that compute, not HTTP, dominates.
const QUERY_BYTES: usize = 16_384;
/// How long the measured and simulated loops run.
const WINDOW: Duration = Duration::from_secs(6);

fn shipped_model() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models/langid")
}

/// Queries per second that `CLIENTS` back-to-back clients get through the platform.
async fn measured_throughput(
    config: &ModelConfig,
    fingerprint: ModelFingerprint,
    redis: &RedisServer,
    endpoint: &str,
) -> f64 {
    let store = open_store(&redis.url(), StoreOptions::default())
        .await
        .unwrap();
    let invoker = LocalInvoker::new(
        endpoint,
        InvokeOptions {
            function_prefix: DEFAULT_FUNCTION_PREFIX.into(),
            fallback_memory_mb: 1024,
            timeout: Duration::from_secs(60),
        },
    )
    .unwrap();
    let coordinator = Arc::new(Coordinator::new(
        config.clone(),
        fingerprint,
        store,
        Arc::new(invoker),
        CoordinatorOptions::default(),
    ));
    let text: Vec<u8> = b"the quick brown fox jumps over the lazy dog "
        .iter()
        .copied()
        .cycle()
        .take(QUERY_BYTES)
        .collect();
    let done = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let clients: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let (coordinator, done, text) = (coordinator.clone(), done.clone(), text.clone());
            tokio::spawn(async move {
                while started.elapsed() < WINDOW {
                    coordinator.classify(&text).await.expect("query succeeds");
                    if started.elapsed() <= WINDOW {
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    for client in clients {
        client.await.unwrap();
    }
    done.load(Ordering::Relaxed) as f64 / WINDOW.as_secs_f64()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_local_platform_is_measured_calibrated_and_simulated_end_to_end() {
    let redis = RedisServer::start();
    let model_dir = shipped_model();
    let config = ModelConfig::load(&model_dir.join("config.json")).unwrap();
    let platform = PlatformServer::start(PlatformOptions {
        max_concurrency: PROCESSES,
        ..platform_options(&model_dir, &redis)
    })
    .await
    .unwrap();
    let endpoint = platform.endpoint();
    let work = tempfile::tempdir().unwrap();
    let calibration = work.path().join("calibration.json");
    let model = model_dir.to_str().unwrap().to_owned();
    let store = redis.url();
    let calibrate = {
        let args = [
            "bench",
            "calibrate",
            "--model",
            &model,
            "--memory-mb",
            "1024",
            "--platform",
            "local",
            "--endpoint",
            &endpoint,
            "--store",
            &store,
            "--bytes",
            "4096,16384,32768",
            "--runs",
            "3",
            "--out",
            calibration.to_str().unwrap(),
        ]
        .map(str::to_owned);
        tokio::task::spawn_blocking(move || ok(&args.each_ref().map(String::as_str)))
    };
    calibrate.await.unwrap();
    let measured = measured_throughput(
        &config,
        seqless_model::fingerprint(&model_dir).unwrap(),
        &redis,
        &endpoint,
    )
    .await;

    // The platform's process limit is the simulated account's concurrency.
    let mut cal: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&calibration).unwrap()).unwrap();
    // Function processes measured their CPU, and this process its own as the master's.
    for (kind, stage) in cal["stages"].as_object().unwrap() {
        let ratio = stage["cpu_per_compute"].as_f64();
        assert!(ratio.is_some_and(|r| r > 0.0), "{kind}: {stage}");
    }
    let master = &cal["master"];
    assert!(
        master["cpu_ms_per_query"].as_f64().unwrap() > 0.0,
        "{master}"
    );
    assert!(
        master["cpu_ms_per_invocation"].as_f64().unwrap() >= 0.0,
        "{master}"
    );
    cal["limits"]["account_concurrency"] = PROCESSES.into();
    // A process here has a whole core whatever its memory setting, as a 1,769 MB
    // Lambda environment has: the simulated 1,024 MB functions must not be slowed.
    cal["cpu_reference_mb"] = 1024.into();
    std::fs::write(&calibration, cal.to_string()).unwrap();
    let sim_config = work.path().join("sim.json");
    let sim = serde_json::json!({
        "seed": 1,
        "duration_s": WINDOW.as_secs_f64(),
        "drain_s": 10.0,
        "arrivals": {"kind": "closed_loop", "clients": CLIENTS, "think_s": 0.0},
        "lengths": {"kind": "fixed", "bytes": QUERY_BYTES},
        // The one local Redis moves what the calibration measured it moving, not a
        // cache.m5.large's network.
        "serverless": {"store_node": {"bandwidth_mb_per_s": cal["store"]["bandwidth_mb_per_s"]}},
    });
    std::fs::write(&sim_config, sim.to_string()).unwrap();
    let report = json(seqless(&[
        "simulate",
        "--config",
        sim_config.to_str().unwrap(),
        "--calibration",
        calibration.to_str().unwrap(),
        "--model",
        &model,
        "--memory-mb",
        "1024",
        "--json",
    ]));
    let simulated = report["serverless"]["throughput_qps"].as_f64().unwrap();
    platform.shutdown().await;
    assert!(measured > 0.0, "no query finished in the window");
    let ratio = simulated / measured;
    eprintln!("simulated {simulated:.2} q/s, measured {measured:.2} q/s, ratio {ratio:.2}");
    assert!(simulated > 0.0, "the simulation served nothing: {report}");
    let resources = report["serverless"]["resources"].as_array().unwrap();
    let names: Vec<&str> = resources
        .iter()
        .map(|r| r["resource"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["store_network", "store_requests", "master_cpu"]);
    for r in resources {
        let u = r["utilisation"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&u), "{r}");
    }
}
