//! `seqless serve` as a process: a load of 500 queries at concurrency 32 answered without
//! error and equal to the model and to `seqless classify`, a graceful SIGTERM, and a store
//! that is down at startup.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use seqless_model::TfilmModel;
use serde_json::json;

mod common;

use common::{LANGID, Server, json};

/// A running `seqless serve` and its URL.
struct Serve {
    server: Server,
    url: String,
}

impl Serve {
    fn start(extra: &[&str]) -> Self {
        let (server, url, _) = Server::serve(extra);
        Self { server, url }
    }
}

/// 500 short texts in several languages, each different.
fn texts() -> Vec<String> {
    let sentences = [
        "Der schnelle braune Fuchs springt über den faulen Hund",
        "Le renard brun rapide saute par-dessus le chien paresseux",
        "The quick brown fox jumps over the lazy dog",
        "Быстрая коричневая лиса прыгает через ленивую собаку",
        "Szybki brązowy lis przeskakuje nad leniwym psem",
        "Il rapido volpe marrone salta sopra il cane pigro",
    ];
    (0..500)
        .map(|i| format!("{} {i}", sentences[i % sentences.len()]))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_load_of_500_queries_at_concurrency_32_is_answered_like_the_cli() {
    let serve = Serve::start(&[]);
    let texts = Arc::new(texts());
    let url = format!("{}/v1/classify", serve.url);
    let replies: Vec<(usize, serde_json::Value)> = {
        let client = reqwest::Client::new();
        let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let workers = (0..32).map(|_| {
            let (client, next, texts, url) =
                (client.clone(), next.clone(), texts.clone(), url.clone());
            tokio::spawn(async move {
                let mut out = Vec::new();
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if i >= texts.len() {
                        return out;
                    }
                    let response = client
                        .post(&url)
                        .json(&json!({ "text": texts[i] }))
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(response.status(), 200, "query {i}");
                    out.push((i, response.json().await.unwrap()));
                }
            })
        });
        let mut all = Vec::new();
        for worker in futures_util::future::join_all(workers).await {
            all.extend(worker.unwrap());
        }
        all
    };
    assert_eq!(replies.len(), 500, "every query answered");
    let model = TfilmModel::load(Path::new(LANGID)).unwrap();
    for (i, reply) in &replies {
        let expected = model.forward(texts[*i].as_bytes()).unwrap();
        assert_eq!(reply["label"], expected.label.as_str(), "text {i}");
        for (label, p) in model.config.labels.iter().zip(&expected.probabilities) {
            let got = reply["probabilities"][label].as_f64().unwrap();
            assert!((got - f64::from(*p)).abs() < 1e-5, "text {i}, {label}");
        }
    }
    // The same texts through the real `seqless classify --json`.
    for (i, reply) in replies.iter().filter(|(i, _)| i % 97 == 0) {
        let cli = json(common::seqless(&[
            "classify", "--model", LANGID, "--json", &texts[*i],
        ]));
        assert_eq!(reply["label"], cli["label"], "text {i}");
        for label in &model.config.labels {
            let got = reply["probabilities"][label].as_f64().unwrap();
            let p = cli["probabilities"][label].as_f64().unwrap();
            assert!((got - p).abs() < 1e-5, "text {i}, {label}");
        }
    }
    let metrics = metrics(&serve.url).await;
    assert!(
        metrics.contains("seqless_queries_total{outcome=\"ok\"} 500"),
        "{metrics}"
    );
}

async fn metrics(url: &str) -> String {
    let response = reqwest::get(format!("{url}/metrics")).await.unwrap();
    response.text().await.unwrap()
}

/// The value of the in-flight gauge, polled until it reads `n`.
async fn wait_in_flight(url: &str, n: u32) {
    let sample = format!("seqless_queries_in_flight {n}\n");
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if metrics(url).await.contains(&sample) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("the server never had {n} queries in flight");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_the_in_flight_query_finish_then_exits_0() {
    let mut serve = Serve::start(&[]);
    let url = serve.url.clone();
    let long = "lorem ipsum dolor sit amet ".repeat(38_000);
    let endpoint = format!("{url}/v1/classify");
    let request = tokio::spawn(async move {
        reqwest::Client::new()
            .post(endpoint)
            .json(&json!({ "text": long }))
            .send()
            .await
    });
    wait_in_flight(&url, 1).await;
    let kill = Command::new("kill")
        .args(["-TERM", &serve.server.child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let response = request
        .await
        .unwrap()
        .expect("the in-flight query is answered");
    let status = response.status().as_u16();
    let reply = response.json::<serde_json::Value>().await.unwrap();
    assert_eq!(status, 200, "{reply}");
    assert!(reply["label"].is_string());
    let status = serve.server.wait_exit(Duration::from_secs(30));
    assert!(status.success(), "exit status {status:?}");
    // Nothing listens any more.
    let refused = reqwest::get(format!("{url}/healthz")).await;
    assert!(refused.is_err(), "still accepting after shutdown");
}

/// A store down at startup makes `serve` not ready rather than stopping it (as `seqless
/// platform` starts); once Redis answers, it is ready and classifies.
async fn down_at_startup_then_ready(url: &str, bring_up: impl FnOnce()) {
    let serve = Serve::start(&["--mode", "serverless", "--store", url]);
    let ready = || async {
        reqwest::get(format!("{}/readyz", serve.url))
            .await
            .unwrap()
            .status()
            .as_u16()
    };
    assert_eq!(ready().await, 503, "{url}");
    bring_up();
    let deadline = Instant::now() + Duration::from_secs(30);
    while ready().await != 200 {
        assert!(
            Instant::now() < deadline,
            "{url}: never ready after Redis came up"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let reply = reqwest::Client::new()
        .post(format!("{}/v1/classify", serve.url))
        .json(&json!({ "text": "Der schnelle braune Fuchs" }))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16();
    assert_eq!(reply, 200, "{url}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_down_at_startup_is_not_ready_until_it_comes_up() {
    let redis = seqless_store::testing::RedisServer::start();
    redis.kill();
    down_at_startup_then_ready(&redis.url(), || redis.restart()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_down_at_startup_is_not_ready_until_it_comes_up() {
    let cluster = seqless_store::testing::RedisCluster::start(3);
    for node in cluster.nodes() {
        node.kill();
    }
    down_at_startup_then_ready(&cluster.url(), || {
        for node in cluster.nodes() {
            node.restart();
        }
    })
    .await;
}
