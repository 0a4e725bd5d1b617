//! Every endpoint over real HTTP, for the monolithic mode (with and without dynamic
//! batching) and the serverless mode (inproc platform; memory and Redis stores).

mod common;

use std::time::Duration;

use base64::Engine as _;
use common::*;
use seqless_server::{Batching, ServiceLimits};
use serde_json::json;

const TEXTS: [&str; 4] = [
    "Der schnelle braune Fuchs springt über den faulen Hund.",
    "Le renard brun rapide saute par-dessus le chien paresseux.",
    "The quick brown fox jumps over the lazy dog.",
    "Быстрая коричневая лиса прыгает через ленивую собаку.",
];

/// The reply agrees with the in-process forward pass: label, and every probability.
fn assert_matches_forward(reply: &serde_json::Value, text: &[u8]) {
    let expected = model().forward(text).unwrap();
    assert_eq!(reply["label"], expected.label.as_str(), "{reply}");
    let labels = model().config.labels;
    for (label, p) in labels.iter().zip(&expected.probabilities) {
        let got = reply["probabilities"][label].as_f64().unwrap();
        assert!((got - f64::from(*p)).abs() < 1e-4, "{label}: {got} vs {p}");
    }
}

/// Classify, batch, models, health, ready, metrics and OpenAPI, for any engine.
async fn check_endpoints(server: &TestServer, mode: &str) {
    let before = metrics_text(server).await;
    let answered_before = metric(&before, "seqless_queries_total{outcome=\"ok\"}").unwrap_or(0.0);
    // One text, as UTF-8 and as base64 of the same bytes.
    for text in TEXTS {
        let (status, _, reply) = post(&server.at("/v1/classify"), json!({ "text": text })).await;
        assert_eq!(status, 200, "{reply}");
        assert_matches_forward(&reply, text.as_bytes());
        assert_eq!(reply["mode"], mode);
        assert!(reply["latency_ms"].as_f64().unwrap() >= 0.0);
        assert!(reply.get("trace").is_none(), "no trace unless asked");
    }
    // Not UTF-8 at all: only text_base64 can carry it.
    let bytes: Vec<u8> = (0..=255u8).rev().cycle().take(700).collect();
    let encoded = base64::engine::general_purpose::STANDARD.encode(&bytes);
    let (status, _, reply) = post(
        &server.at("/v1/classify"),
        json!({ "text_base64": encoded, "trace": true }),
    )
    .await;
    assert_eq!(status, 200, "{reply}");
    assert_matches_forward(&reply, &bytes);
    if mode == "serverless" {
        let trace = &reply["trace"];
        let invocations = trace["invocations"].as_array().unwrap();
        assert_eq!(reply["invocations"], invocations.len());
        assert_eq!(trace["splits"], json!([2]));
        assert!(reply["cost_usd"].as_f64().unwrap() > 0.0);
        assert_eq!(reply["cost_usd"], trace["cost_usd"]);
    } else {
        assert_eq!(reply["invocations"], 0);
        assert_eq!(reply["cost_usd"], 0.0);
        assert!(
            reply.get("trace").is_none(),
            "monolithic runs have no trace"
        );
    }
    // A batch answers in order.
    let (status, _, reply) =
        post(&server.at("/v1/classify/batch"), json!({ "texts": TEXTS })).await;
    assert_eq!(status, 200, "{reply}");
    let results = reply["results"].as_array().unwrap();
    assert_eq!(results.len(), TEXTS.len());
    for (result, text) in results.iter().zip(TEXTS) {
        assert_matches_forward(result, text.as_bytes());
    }
    let encoded: Vec<String> = TEXTS
        .iter()
        .map(|t| base64::engine::general_purpose::STANDARD.encode(t))
        .collect();
    let (status, _, reply) = post(
        &server.at("/v1/classify/batch"),
        json!({ "texts_base64": encoded }),
    )
    .await;
    assert_eq!(status, 200, "{reply}");
    assert_matches_forward(&reply["results"][3], TEXTS[3].as_bytes());

    let (status, _, models) = get(&server.at("/v1/models")).await;
    assert_eq!(status, 200);
    let info = &models["models"][0];
    assert_eq!(info["name"], "langid");
    assert_eq!(info["labels"].as_array().unwrap().len(), 24);
    assert_eq!(info["config"]["format"], "seqless-tfilm/1");
    assert_eq!(info["mode"], mode);
    assert_eq!(info["plan"].is_object(), mode == "serverless", "{info}");

    let (status, _, health) = get(&server.at("/healthz")).await;
    assert_eq!((status, health["status"].as_str()), (200, Some("ok")));
    let (status, _, ready) = get(&server.at("/readyz")).await;
    assert_eq!(
        (status, ready["status"].as_str()),
        (200, Some("ready")),
        "{ready}"
    );
    if mode == "serverless" {
        assert!(ready["checks"]["store"].is_string(), "{ready}");
        assert!(ready["checks"]["platform"].is_string(), "{ready}");
    }

    let response = client().get(server.at("/metrics")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/openmetrics-text")
    );
    let text = response.text().await.unwrap();
    let answered = (2 * TEXTS.len() + TEXTS.len() + 1) as f64 + answered_before;
    assert_eq!(
        metric(&text, "seqless_queries_total{outcome=\"ok\"}"),
        Some(answered),
        "{text}"
    );
    assert_eq!(
        metric(&text, "seqless_query_duration_seconds_count"),
        Some(answered)
    );
    assert_eq!(metric(&text, "seqless_queries_in_flight"), Some(0.0));
    assert!(metric(&text, "seqless_http_responses_total{status=\"200\"}").is_some());
    if mode == "serverless" {
        for stage in ["conv", "head"] {
            let sample = format!("seqless_function_invocations_total{{stage=\"{stage}\"}}");
            assert!(metric(&text, &sample).unwrap() >= answered, "{text}");
        }
        assert!(
            metric(&text, "seqless_function_cold_starts_total{stage=\"conv\"}").unwrap() >= 1.0
        );
        assert!(metric(&text, "seqless_store_bytes_total").unwrap() > 0.0);
        // Every value went through the store (the default --transfer store).
        assert_eq!(metric(&text, "seqless_inline_bytes_total"), Some(0.0));
        assert!(metric(&text, "seqless_billed_gb_seconds_total").unwrap() > 0.0);
        assert!(metric(&text, "seqless_estimated_cost_usd_total").unwrap() > 0.0);
    }

    let (status, _, doc) = get(&server.at("/openapi.json")).await;
    assert_eq!(status, 200);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    for path in [
        "/v1/classify",
        "/v1/classify/batch",
        "/v1/models",
        "/healthz",
        "/readyz",
        "/metrics",
    ] {
        assert!(
            doc["paths"][path].is_object(),
            "{path} missing from the OpenAPI document"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn monolithic_serves_every_endpoint() {
    let server = monolithic(ServiceLimits::default(), None, None).await;
    check_endpoints(&server, "monolithic").await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serverless_memory_store_serves_every_endpoint() {
    let server = serverless("memory", ServiceLimits::default()).await;
    check_endpoints(&server, "serverless").await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamic_batching_gives_the_same_answers_and_batches() {
    let batching = Batching {
        max: 8,
        wait: Duration::from_millis(20),
    };
    let server = monolithic(ServiceLimits::default(), Some(batching), None).await;
    let url = server.at("/v1/classify");
    let replies = futures_util::future::join_all(
        TEXTS
            .iter()
            .cycle()
            .take(16)
            .map(|t| post(&url, json!({ "text": t }))),
    )
    .await;
    for ((status, _, reply), text) in replies.iter().zip(TEXTS.iter().cycle()) {
        assert_eq!(*status, 200, "{reply}");
        assert_matches_forward(reply, text.as_bytes());
    }
    let text = metrics_text(&server).await;
    let jobs = metric(&text, "seqless_batch_size_count").unwrap();
    assert!(
        (1.0..16.0).contains(&jobs),
        "16 concurrent queries ran as {jobs} jobs"
    );
    assert_eq!(metric(&text, "seqless_batch_size_sum"), Some(16.0));
    check_endpoints(&server, "monolithic").await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serverless_redis_store_serves_and_reports_the_store_down() {
    let redis = seqless_store::testing::RedisServer::start();
    let server = serverless(&redis.url(), ServiceLimits::default()).await;
    check_endpoints(&server, "serverless").await;
    // Every query deleted its keys.
    assert_eq!(redis.dbsize(), 0);

    redis.kill();
    let reply = post(&server.at("/v1/classify"), json!({ "text": TEXTS[0] })).await;
    assert_error(&reply, 503, "store_unavailable");
    assert!(reply.1.contains_key("retry-after"));
    assert!(error_message(&reply).contains("127.0.0.1"), "{}", reply.2);
    let ready = get(&server.at("/readyz")).await;
    assert_error(&ready, 503, "not_ready");
    assert!(error_message(&ready).contains("store"), "{}", ready.2);
    let text = metrics_text(&server).await;
    assert_eq!(
        metric(&text, "seqless_queries_total{outcome=\"unavailable\"}"),
        Some(1.0)
    );
    // Liveness does not depend on the store.
    assert_eq!(get(&server.at("/healthz")).await.0, 200);

    redis.restart();
    let mut recovered = false;
    for _ in 0..50 {
        if post(&server.at("/v1/classify"), json!({ "text": TEXTS[0] }))
            .await
            .0
            == 200
        {
            recovered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(recovered, "queries work again once Redis is back");
    server.shutdown().await;
}
