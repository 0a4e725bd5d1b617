//! The local Lambda platform with real function processes (`seqless function`), real HTTP
//! and a real redis-server: results equal to the monolithic model over both plans and both
//! invokers (our HTTP client and the AWS SDK), the concurrency limit, idle reaping, crash
//! recovery, and Lambda-shaped failures.
#![cfg(feature = "platform")]

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use seqless_coordinator::{BatchPolicy, Coordinator, CoordinatorOptions, HedgePolicy};
use seqless_functions::lambda_api::DEFAULT_FUNCTION_PREFIX;
use seqless_functions::{ErrorKind, InvokeOptions, LocalInvoker, Ping};
use seqless_model::{ModelConfig, TfilmModel, fingerprint};
use seqless_plan::{PAYLOAD_RESERVE_BYTES, PlanKind, Splits, StageKind, Transfer};
use seqless_platform::{PlatformOptions, PlatformServer};
use seqless_store::testing::RedisServer;
use seqless_store::{StoreOptions, open_store};

mod common;

use common::{SEQLESS, Server, json, platform_options, write_test_model};
const PATIENCE: Duration = Duration::from_secs(60);

fn model(dir: &Path) -> (ModelConfig, TfilmModel) {
    (write_test_model(dir, 11), TfilmModel::load(dir).unwrap())
}

/// A model in a temporary directory and a Redis server, for a platform to serve.
struct Setup {
    redis: RedisServer,
    dir: tempfile::TempDir,
    cfg: ModelConfig,
    model: TfilmModel,
}

impl Setup {
    fn new() -> Self {
        let redis = RedisServer::start();
        let dir = tempfile::tempdir().unwrap();
        let (cfg, model) = model(dir.path());
        Self {
            redis,
            dir,
            cfg,
            model,
        }
    }

    /// A new setup and a platform over it, `adjust`ed from [`platform_options`].
    async fn with_platform(adjust: impl FnOnce(&mut PlatformOptions)) -> (Self, PlatformServer) {
        let setup = Self::new();
        let platform = setup.platform(adjust).await;
        (setup, platform)
    }

    /// A platform over the model and Redis, `adjust`ed from [`platform_options`].
    async fn platform(&self, adjust: impl FnOnce(&mut PlatformOptions)) -> PlatformServer {
        let mut options = platform_options(self.dir.path(), &self.redis);
        adjust(&mut options);
        PlatformServer::start(options).await.unwrap()
    }

    /// A coordinator over the platform and Redis.
    async fn coordinator(
        &self,
        platform: &PlatformServer,
        plan: PlanKind,
        splits: usize,
    ) -> Coordinator {
        let options = CoordinatorOptions {
            plan,
            splits: Splits::Fixed(splits),
            function_slots: Some(4),
            ..CoordinatorOptions::default()
        };
        self.coordinator_with(platform, options).await
    }

    /// A coordinator over the platform and Redis with `options`.
    async fn coordinator_with(
        &self,
        platform: &PlatformServer,
        options: CoordinatorOptions,
    ) -> Coordinator {
        let store = open_store(&self.redis.url(), StoreOptions::default())
            .await
            .unwrap();
        let fingerprint = fingerprint(self.dir.path()).expect("model fingerprint");
        let invoker = Arc::new(client(platform));
        Coordinator::new(self.cfg.clone(), fingerprint, store, invoker, options)
    }
}

fn client(platform: &PlatformServer) -> LocalInvoker {
    LocalInvoker::new(
        &platform.endpoint(),
        InvokeOptions {
            function_prefix: DEFAULT_FUNCTION_PREFIX.into(),
            fallback_memory_mb: 1,
            timeout: PATIENCE,
        },
    )
    .unwrap()
}

fn assert_close(got: &[f32], want: &[f32]) {
    assert_eq!(got.len(), want.len());
    for (g, w) in got.iter().zip(want) {
        assert!((g - w).abs() <= 1e-4, "logits {got:?} != {want:?}");
    }
}

async fn metrics(platform: &PlatformServer) -> String {
    reqwest::get(format!("{}/metrics", platform.endpoint()))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// The value of an unlabelled series.
fn series(metrics: &str, name: &str) -> f64 {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("{name} missing from\n{metrics}"))
        .trim()
        .parse()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn function_processes_compute_what_the_monolithic_model_does_for_every_plan() {
    let (setup, platform) = Setup::with_platform(|_| {}).await;
    let input = "Grüße aus Köln — a query long enough to split over several functions. ".repeat(8);
    let want = setup.model.forward(input.as_bytes()).unwrap();
    // The platform runs 4 functions at once: a resident query of 2 splits, a serial stage
    // and a hedge.
    for (plan, splits) in [
        (PlanKind::Fused, 3),
        (PlanKind::Paper, 2),
        (PlanKind::Resident, 2),
    ] {
        let coordinator = setup.coordinator(&platform, plan, splits).await;
        for _ in 0..2 {
            let got = coordinator.classify(input.as_bytes()).await.unwrap();
            assert_eq!(got.prediction.label, want.label, "{plan:?}");
            assert_close(&got.prediction.logits, &want.logits);
            let trace = &got.trace;
            assert!(trace.invocations.iter().all(|i| i.billed_ms >= 1));
            let residents = trace
                .invocations
                .iter()
                .filter(|i| i.stage == StageKind::Resident);
            assert_eq!(
                residents.count(),
                if plan == PlanKind::Resident { 2 } else { 0 }
            );
            for i in &trace.invocations {
                let memory = if matches!(i.stage, StageKind::Tfilm | StageKind::Head) {
                    256
                } else {
                    1024
                };
                assert_eq!(i.memory_mb, memory, "{:?}", i.stage);
                assert_eq!(i.cold, i.init_ms > 0.0);
                // A function process serves one invocation at a time and measures its CPU.
                assert!(i.cpu_ms.is_some_and(|ms| ms > 0.0), "{i:?}");
            }
        }
    }
    // The first query of the first plan started processes; the second reused them.
    let m = metrics(&platform).await;
    assert!(
        m.contains(r#"seqless_platform_cold_starts_total{function="seqless-conv"}"#),
        "{m}"
    );
    assert!(
        m.contains("seqless_platform_init_model_load_seconds_count"),
        "{m}"
    );
    assert!(
        m.contains("seqless_platform_init_process_start_seconds_count"),
        "{m}"
    );
    platform.shutdown().await;
}

/// Values sent inline cross real function processes over HTTP: the monolithic answer, with
/// a short query never touching Redis, and a long one under a small payload limit split
/// between the invocations and Redis.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inline_values_cross_function_processes_and_the_rest_goes_through_redis() {
    let (setup, platform) = Setup::with_platform(|_| {}).await;
    for (bytes, room, whole) in [(3_000, 6 << 20, true), (40_000, 150_000, false)] {
        let input: Vec<u8> = (0..bytes).map(|i| (i * 7 % 253) as u8).collect();
        let want = setup.model.forward(&input).unwrap();
        let options = CoordinatorOptions {
            plan: PlanKind::Fused,
            splits: Splits::Fixed(3),
            transfer: Transfer::Inline,
            payload_limit: PAYLOAD_RESERVE_BYTES + room,
            ..CoordinatorOptions::default()
        };
        let coordinator = setup.coordinator_with(&platform, options).await;
        let got = coordinator.classify(&input).await.unwrap();
        assert_close(&got.prediction.logits, &want.logits);
        let trace = &got.trace;
        assert!(trace.inline_bytes > 0, "{trace:?}");
        assert_eq!(trace.bytes_moved == 0, whole, "{bytes} bytes: {trace:?}");
        assert_eq!(setup.redis.dbsize(), 0, "no key left");
    }
    platform.shutdown().await;
}

/// Every invocation the platform ran, summed over functions and outcomes.
fn invocations_run(metrics: &str) -> f64 {
    metrics
        .lines()
        .filter(|l| l.starts_with("seqless_platform_invocations_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Cross-query batching through real function processes: the stages of queries in flight
/// together travel as `{"batch": [...]}` events, the platform runs fewer invocations than
/// there are stages, each query's trace pays exactly its share of them, and every answer
/// is the monolithic model's, through the store and inline alike.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queries_in_flight_together_share_invocations_of_function_processes() {
    let (setup, platform) = Setup::with_platform(|_| {}).await;
    let texts: Vec<Vec<u8>> = (0..5)
        .map(|q| {
            (0..2_000 + q * 1_500)
                .map(|i| (i * (q + 3) % 251) as u8)
                .collect()
        })
        .collect();
    for transfer in [Transfer::Store, Transfer::Inline] {
        let options = CoordinatorOptions {
            plan: PlanKind::Fused,
            splits: Splits::Fixed(2),
            transfer,
            hedge: HedgePolicy::Off,
            batch: BatchPolicy::Window {
                window: Duration::from_millis(500),
                max: 8,
            },
            ..CoordinatorOptions::default()
        };
        let coordinator = setup.coordinator_with(&platform, options).await;
        let before = invocations_run(&metrics(&platform).await);
        let answers = join_all(texts.iter().map(|t| coordinator.classify(t))).await;
        let ran = invocations_run(&metrics(&platform).await) - before;
        let (mut stages, mut requests) = (0, 0.0);
        for (text, answer) in texts.iter().zip(answers) {
            let answer = answer.unwrap();
            assert_close(
                &answer.prediction.logits,
                &setup.model.forward(text).unwrap().logits,
            );
            stages += answer.trace.invocations.len();
            requests += answer.trace.requests;
        }
        assert!(
            ran < stages as f64,
            "{transfer:?}: {ran} invocations for {stages} stages"
        );
        assert!(
            (requests - ran).abs() < 1e-6,
            "{transfer:?}: paid for {requests}, ran {ran}"
        );
        assert_eq!(setup.redis.dbsize(), 0, "no key left");
    }
    platform.shutdown().await;
}

/// Gang admission: 16 clients of 4-split resident queries against a platform that runs 8
/// functions at once. Each query holds 6 slots for its whole run (its splits, a serial
/// stage and a hedge), so one runs at a time, and none waits on functions that cannot
/// start.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn resident_queries_beyond_the_platforms_concurrency_complete_without_deadlock() {
    let (setup, platform) = Setup::with_platform(|o| {
        o.max_concurrency = 8;
        o.queue_bound = 256;
    })
    .await;
    let mut coordinator = setup.coordinator(&platform, PlanKind::Resident, 4).await;
    coordinator = Coordinator::new(
        setup.cfg.clone(),
        fingerprint(setup.dir.path()).unwrap(),
        coordinator.store().clone(),
        coordinator.invoker().clone(),
        CoordinatorOptions {
            function_slots: Some(8),
            deadline: Duration::from_secs(120),
            ..coordinator.options().clone()
        },
    );
    let input =
        "ein Satz, der lang genug ist, um auf vier Funktionen verteilt zu werden. ".repeat(6);
    let want = setup.model.forward(input.as_bytes()).unwrap();
    let clients: Vec<_> = (0..16)
        .map(|_| {
            let (c, input) = (coordinator.clone(), input.clone());
            tokio::spawn(async move { c.classify(input.as_bytes()).await })
        })
        .collect();
    for client in clients {
        let got = client.await.unwrap().expect("no query deadlocks or fails");
        assert_close(&got.prediction.logits, &want.logits);
        assert_eq!(got.trace.splits, vec![4; setup.cfg.layers.len()]);
    }
    let m = metrics(&platform).await;
    assert!(!m.contains("seqless_platform_throttles_total{"), "{m}");
    platform.shutdown().await;
}

/// `seqless platform` as its own process, read until it prints its endpoint.
struct PlatformProcess {
    server: Server,
    endpoint: String,
}

impl PlatformProcess {
    fn start(model_dir: &Path, redis: &RedisServer) -> Self {
        let (server, line) = Server::start(
            Command::new(SEQLESS)
                .args(["platform", "--listen", "127.0.0.1:0", "--model"])
                .arg(model_dir)
                .args(["--store", &redis.url(), "--function-memory", "head=256"]),
        );
        let endpoint = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .to_owned();
        Self { server, endpoint }
    }
}

#[cfg(feature = "aws")]
#[test]
fn the_aws_sdk_invokes_the_same_functions_through_the_endpoint_override() {
    let Setup {
        redis, dir, model, ..
    } = Setup::new();
    let platform = PlatformProcess::start(dir.path(), &redis);
    let text = "Dzień dobry, jak się masz? ".repeat(6);
    let want = model.forward(text.as_bytes()).unwrap();
    // `seqless classify` over the platform, as the `lambda` or the `local` invoker.
    let classify = |invoker: &str| {
        let mut command = Command::new(SEQLESS);
        command
            .args(["classify", "--model"])
            .arg(dir.path())
            .args(["--mode", "serverless", "--platform", invoker])
            .args(["--endpoint", &platform.endpoint]);
        command
    };
    for plan in ["fused", "paper"] {
        let out = classify("lambda")
            .args([
                "--store",
                &redis.url(),
                "--plan",
                plan,
                "--splits",
                "2",
                "--json",
                &text,
            ])
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("AWS_REGION", "us-east-1")
            .env("AWS_CONFIG_FILE", "/dev/null")
            .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .output()
            .unwrap();
        let got = json(out);
        assert_eq!(got["label"], want.label.as_str());
        let logits: Vec<f32> = serde_json::from_value(got["logits"].clone()).unwrap();
        assert_close(&logits, &want.logits);
        let invocations = got["trace"]["invocations"].as_array().unwrap();
        assert!(
            invocations
                .iter()
                .any(|i| i["stage"] == "head" && i["memory_mb"] == 256)
                || plan == "paper"
        );
    }
    // A memory store cannot be shared with function processes: refused, saying why.
    let out = classify("local").arg("hi").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--store memory") && err.contains("share no memory"),
        "{err}"
    );
}

#[cfg(unix)]
#[test]
fn sigterm_stops_the_platform_with_exit_0() {
    let setup = Setup::new();
    let mut platform = PlatformProcess::start(setup.dir.path(), &setup.redis);
    let kill = Command::new("kill")
        .args(["-TERM", &platform.server.child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let status = platform.server.wait_exit(PATIENCE);
    assert_eq!(status.code(), Some(0), "{status:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn processes_stay_within_the_concurrency_limit_and_idle_ones_are_reaped() {
    let (setup, platform) = Setup::with_platform(|o| {
        o.max_concurrency = 2;
        o.idle_timeout = Duration::from_millis(500);
    })
    .await;
    let coordinator = setup.coordinator(&platform, PlanKind::Fused, 3).await;
    let inputs: Vec<String> = (0..6)
        .map(|i| format!("query {i} ").repeat(20 + i))
        .collect();
    let results = join_all(inputs.iter().map(|q| coordinator.classify(q.as_bytes()))).await;
    for (q, got) in inputs.iter().zip(results) {
        let want = setup.model.forward(q.as_bytes()).unwrap();
        assert_close(&got.unwrap().prediction.logits, &want.logits);
    }
    let m = metrics(&platform).await;
    let peak = series(&m, "seqless_platform_workers_alive_peak");
    assert!(
        (1.0..=2.0).contains(&peak),
        "peak {peak} processes with a limit of 2"
    );
    let give_up = Instant::now() + PATIENCE;
    while !platform.workers().is_empty() {
        assert!(
            Instant::now() < give_up,
            "idle processes not reaped: {:?}",
            platform.workers()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        series(
            &metrics(&platform).await,
            "seqless_platform_workers_reaped_total"
        ) >= 1.0
    );
    platform.shutdown().await;
}

/// Lambda's 6 MB limit holds for responses as for requests: a function that answers more
/// has run (and is billed), and the caller gets `Function.ResponseSizeTooLarge`, a failure
/// that would repeat; an answer under the limit comes back whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_response_over_6_mb_is_refused_as_lambda_refuses_it() {
    // The setup holds the Redis server the platform uses.
    let (_setup, platform) = Setup::with_platform(|_| {}).await;
    let local = client(&platform);
    let padded = |reply_bytes| Ping {
        reply_bytes,
        ..Ping::default()
    };
    local
        .ping(StageKind::Conv, padded(5 << 20))
        .await
        .expect("5 MB is under the limit");
    let err = local
        .ping(StageKind::Conv, padded(6 << 20))
        .await
        .expect_err("over 6 MB with its JSON");
    assert_eq!(err.kind(), ErrorKind::Permanent, "{err}");
    let text = err.to_string();
    assert!(text.contains("Function.ResponseSizeTooLarge"), "{text}");
    assert!(text.contains("6291456 bytes"), "{text}");
    assert!(err.billing().is_some_and(|m| m.billed_ms >= 1), "{err:?}");
    platform.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_process_killed_mid_invocation_fails_it_and_the_next_query_succeeds() {
    let (setup, platform) = Setup::with_platform(|_| {}).await;
    let local = client(&platform);
    let held = tokio::spawn(async move {
        let ping = Ping {
            hold_ms: 120_000,
            ..Ping::default()
        };
        local.ping(StageKind::Conv, ping).await
    });
    let give_up = Instant::now() + PATIENCE;
    let pid = loop {
        // Busy from assignment on: killed while loading or while holding the ping, the
        // invocation must fail the same way.
        if let Some(w) = platform.workers().into_iter().find(|w| w.state == "busy") {
            break w.pid;
        }
        assert!(Instant::now() < give_up, "the ping never reached a process");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let killed = Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let err = tokio::time::timeout(PATIENCE, held)
        .await
        .unwrap()
        .unwrap()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Retryable, "{err}");
    assert!(err.to_string().contains("Runtime.ExitError"), "{err}");

    let coordinator = setup.coordinator(&platform, PlanKind::Fused, 2).await;
    let got = coordinator.classify(b"after the crash").await.unwrap();
    assert_close(
        &got.prediction.logits,
        &setup.model.forward(b"after the crash").unwrap().logits,
    );
    platform.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_events_and_failed_inits_come_back_as_lambda_function_errors() {
    let (setup, platform) = Setup::with_platform(|_| {}).await;
    let http = reqwest::Client::new();
    let invoke = |body: &'static str| {
        http.post(format!(
            "{}/2015-03-31/functions/seqless-conv/invocations",
            platform.endpoint()
        ))
        .body(body)
        .send()
    };
    let bad = invoke(r#"{"query_id": 5}"#).await.unwrap();
    assert_eq!(bad.status(), 200);
    assert_eq!(bad.headers()["X-Amz-Function-Error"], "Unhandled");
    let body: serde_json::Value = bad.json().await.unwrap();
    assert_eq!(body["errorType"], "Permanent");
    assert!(
        body["errorMessage"]
            .as_str()
            .unwrap()
            .contains("malformed stage event"),
        "{body}"
    );
    // The process survived the bad event and answers the next one.
    let ping = invoke(r#"{"ping": {}}"#).await.unwrap();
    assert_eq!(ping.status(), 200);
    assert!(ping.headers().get("X-Amz-Function-Error").is_none());
    platform.shutdown().await;

    // A model that does not load: the init error arrives through the Runtime API.
    let broken = tempfile::tempdir().unwrap();
    model(broken.path());
    std::fs::write(broken.path().join("model.safetensors"), b"not safetensors").unwrap();
    let platform = PlatformServer::start(platform_options(broken.path(), &setup.redis))
        .await
        .unwrap();
    let err = client(&platform)
        .ping(StageKind::Conv, Ping::default())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Permanent, "{err}");
    assert!(err.to_string().contains("model"), "{err}");
    platform.shutdown().await;

    // An unreachable store is an init error worth retrying.
    let platform = setup
        .platform(|o| o.store_url = "redis://127.0.0.1:1".into())
        .await;
    let err = client(&platform)
        .ping(StageKind::Conv, Ping::default())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Retryable, "{err}");
    platform.shutdown().await;
}

#[test]
fn the_function_binary_refuses_to_run_outside_a_lambda_runtime() {
    let out = Command::new(SEQLESS)
        .arg("function")
        .env_remove("AWS_LAMBDA_RUNTIME_API")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("AWS_LAMBDA_RUNTIME_API"), "{err}");
}
