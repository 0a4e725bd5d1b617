//! `/metrics` of a serverless server counts its queries' retries and hedges, taken from each
//! answered query's trace: under injected function errors and stragglers, the counters
//! equal the sums over the traces the server returned; and under cross-query batching, the
//! stages per invocation and the requests per query.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use seqless_coordinator::{BatchPolicy, Coordinator, CoordinatorOptions, HedgePolicy, RetryPolicy};
use seqless_functions::{FaultInjection, InprocInvoker, InprocOptions};
use seqless_model::TfilmModel;
use seqless_server::{Engine, Metrics, ServiceLimits};
use seqless_store::MemoryStore;
use serde_json::json;

mod common;

use common::{TestServer, langid, metric, metrics_text, post};

/// The shipped model's in-process functions, four at once.
fn inproc_options() -> InprocOptions {
    InprocOptions {
        model_dir: langid(),
        concurrency: 4,
        idle_timeout: Duration::from_secs(60),
        memory_mb: 1024,
        ttl: Duration::from_secs(60),
    }
}

/// The shipped model on in-process functions that fail and straggle, with quick retries
/// and hedges from 5 ms.
fn faulty_coordinator() -> Coordinator {
    let store = Arc::new(MemoryStore::new());
    let faults: FaultInjection = "seed=9,error=0.15,delay=0.15,delay-factor=100"
        .parse()
        .unwrap();
    let invoker = InprocInvoker::with_faults(inproc_options(), store.clone(), faults).unwrap();
    let options = CoordinatorOptions {
        splits: seqless_plan::Splits::Fixed(4),
        retry: RetryPolicy {
            max_attempts: 10,
            base_backoff: Duration::from_millis(1),
            max_backoff: Duration::from_millis(5),
        },
        hedge: HedgePolicy::After {
            factor: 3.0,
            floor: Duration::from_millis(5),
            budget: 1.0,
        },
        ..CoordinatorOptions::default()
    };
    let (model, fingerprint) = TfilmModel::load_fingerprinted(&langid()).unwrap();
    Coordinator::new(model.config, fingerprint, store, Arc::new(invoker), options)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_and_hedges_are_counted_from_the_traces() {
    let metrics = Arc::new(Metrics::new());
    let engine = Engine::Serverless(Box::new(faulty_coordinator()));
    let server = TestServer::start(engine, metrics, ServiceLimits::default(), None).await;
    let mut retries = BTreeMap::<String, f64>::new();
    let mut hedges = BTreeMap::<(String, String), f64>::new();
    for i in 0..30 {
        let text = "Der schnelle braune Fuchs springt über den faulen Hund. ".repeat(10 + i);
        let (status, _, reply) = post(
            &server.at("/v1/classify"),
            json!({ "text": text, "trace": true }),
        )
        .await;
        assert_eq!(status, 200, "{reply}");
        let trace = &reply["trace"];
        for retry in trace["retries"].as_array().unwrap() {
            let stage = retry["stage"].as_str().unwrap().to_owned();
            *retries.entry(stage).or_default() += 1.0;
        }
        for hedge in trace["hedges"].as_array().unwrap() {
            let stage = hedge["stage"].as_str().unwrap().to_owned();
            let winner = hedge["winner"].as_str().unwrap().to_owned();
            *hedges.entry((stage, winner)).or_default() += 1.0;
        }
    }
    assert!(
        !retries.is_empty() && !hedges.is_empty(),
        "{retries:?} {hedges:?}"
    );
    let text = metrics_text(&server).await;
    for (stage, n) in &retries {
        let sample = format!("seqless_function_retries_total{{stage=\"{stage}\"}}");
        assert_eq!(metric(&text, &sample), Some(*n), "{sample} in\n{text}");
    }
    for ((stage, winner), n) in &hedges {
        let sample =
            format!("seqless_function_hedges_total{{stage=\"{stage}\",winner=\"{winner}\"}}");
        assert_eq!(metric(&text, &sample), Some(*n), "{sample} in\n{text}");
    }
    server.shutdown().await;
}

/// Queries in flight together whose stages share invocations: `/metrics` has the size of
/// every invocation sent and the requests each query paid for, and both agree with the
/// traces the server returned.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stage_batches_and_requests_per_query_are_counted() {
    let store = Arc::new(MemoryStore::new());
    let invoker = InprocInvoker::new(inproc_options(), store.clone());
    let options = CoordinatorOptions {
        splits: seqless_plan::Splits::Fixed(2),
        hedge: HedgePolicy::Off,
        batch: BatchPolicy::Window {
            window: Duration::from_millis(300),
            max: 8,
        },
        ..CoordinatorOptions::default()
    };
    let (model, fingerprint) = TfilmModel::load_fingerprinted(&langid()).unwrap();
    let coordinator =
        Coordinator::new(model.config, fingerprint, store, Arc::new(invoker), options);
    let metrics = Arc::new(Metrics::new());
    coordinator.observe_batches(metrics.stage_batch_observer());
    let engine = Engine::Serverless(Box::new(coordinator));
    let server = TestServer::start(engine, metrics, ServiceLimits::default(), None).await;
    let queries = 6;
    let url = server.at("/v1/classify");
    let replies = futures_util::future::join_all((0..queries).map(|i| {
        let text = "The quick brown fox jumps over the lazy dog. ".repeat(20 + 5 * i);
        post(&url, json!({ "text": text, "trace": true }))
    }))
    .await;
    let (mut stages, mut requests) = (0.0, 0.0);
    for (status, _, reply) in &replies {
        assert_eq!(*status, 200, "{reply}");
        stages += reply["trace"]["invocations"].as_array().unwrap().len() as f64;
        requests += reply["trace"]["requests"].as_f64().unwrap();
    }
    let text = metrics_text(&server).await;
    let sample = |name: &str| metric(&text, name).unwrap_or_else(|| panic!("{name} in\n{text}"));
    let sent = sample("seqless_function_stage_batch_size_count");
    assert_eq!(sample("seqless_function_stage_batch_size_sum"), stages);
    assert!(sent < stages, "{sent} invocations for {stages} stages");
    assert!(
        (sent - requests).abs() < 1e-9,
        "{sent} sent, {requests} paid for"
    );
    assert_eq!(
        sample("seqless_function_requests_per_query_count"),
        queries as f64
    );
    assert!((sample("seqless_function_requests_per_query_sum") - requests).abs() < 1e-9);
    server.shutdown().await;
}
