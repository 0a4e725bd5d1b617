//! A real server on a free port, run in this test process, and helpers to talk HTTP to it.

#![allow(dead_code)] // Each test binary uses a different part of this module.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use seqless_coordinator::{Coordinator, CoordinatorOptions};
use seqless_functions::{InprocInvoker, InprocOptions};
use seqless_model::TfilmModel;
use seqless_server::{ApiToken, Batching, Engine, Metrics, Service, ServiceLimits, serve};
use seqless_store::{StoreOptions, TensorStore, open_store};
use tokio::sync::oneshot;

/// The shipped language-identification model.
pub fn langid() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models/langid")
}

/// A running server: its base URL; stopped (gracefully) on drop.
pub struct TestServer {
    pub url: String,
    pub service: Arc<Service>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl TestServer {
    /// Starts `engine` behind the router on 127.0.0.1:0.
    pub async fn start(
        engine: Engine,
        metrics: Arc<Metrics>,
        limits: ServiceLimits,
        token: Option<&str>,
    ) -> Self {
        let token = token.map(|t| ApiToken::new(t, "test").unwrap());
        let service = Arc::new(Service::new(
            engine,
            "langid".into(),
            limits,
            metrics,
            token,
        ));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(serve(listener, service.clone(), async {
            let _ = stopped.await;
        }));
        Self {
            url,
            service,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// Stops accepting, drains, and returns once the server has exited.
    pub async fn shutdown(mut self) {
        let _ = self.stop.take().unwrap().send(());
        self.task.take().unwrap().await.unwrap().unwrap();
    }

    pub fn at(&self, path: &str) -> String {
        format!("{}{path}", self.url)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// The monolithic model of the shipped langid model.
pub fn model() -> TfilmModel {
    TfilmModel::load(&langid()).unwrap()
}

/// A monolithic server.
pub async fn monolithic(
    limits: ServiceLimits,
    batching: Option<Batching>,
    token: Option<&str>,
) -> TestServer {
    let metrics = Arc::new(Metrics::new());
    let engine = Engine::monolithic(model(), batching, &metrics);
    TestServer::start(engine, metrics, limits, token).await
}

/// A coordinator over the in-process invoker and the store at `store_url`.
pub async fn coordinator(store_url: &str) -> Coordinator {
    let options = StoreOptions {
        op_timeout: Duration::from_secs(2),
        connect_timeout: Duration::from_secs(2),
        ..StoreOptions::default()
    };
    let store: Arc<dyn TensorStore> = open_store(store_url, options).await.unwrap();
    let invoker = InprocInvoker::new(
        InprocOptions {
            model_dir: langid(),
            concurrency: 4,
            idle_timeout: Duration::from_secs(60),
            memory_mb: 1024,
            ttl: Duration::from_secs(60),
        },
        store.clone(),
    );
    let options = CoordinatorOptions {
        // Two conv functions per query even for short texts, so traces show parallel stages.
        splits: seqless_plan::Splits::Fixed(2),
        ..CoordinatorOptions::default()
    };
    let (model, fingerprint) = TfilmModel::load_fingerprinted(&langid()).unwrap();
    Coordinator::new(model.config, fingerprint, store, Arc::new(invoker), options)
}

/// A serverless server over the store at `store_url` (`memory` or a Redis URL).
pub async fn serverless(store_url: &str, limits: ServiceLimits) -> TestServer {
    let metrics = Arc::new(Metrics::new());
    let engine = Engine::Serverless(Box::new(coordinator(store_url).await));
    TestServer::start(engine, metrics, limits, None).await
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap()
}

/// POSTs JSON and returns status, headers and the JSON body (every reply is JSON).
pub async fn post(
    url: &str,
    body: serde_json::Value,
) -> (u16, reqwest::header::HeaderMap, serde_json::Value) {
    let response = client().post(url).json(&body).send().await.unwrap();
    split(response).await
}

/// GETs and returns status, headers and the body parsed as JSON (Null if it is not JSON).
pub async fn get(url: &str) -> (u16, reqwest::header::HeaderMap, serde_json::Value) {
    split(client().get(url).send().await.unwrap()).await
}

pub async fn split(
    response: reqwest::Response,
) -> (u16, reqwest::header::HeaderMap, serde_json::Value) {
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let bytes = response.bytes().await.unwrap();
    let json = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
    (status, headers, json)
}

/// Asserts the reply is the JSON error shape with this status and code.
pub fn assert_error(
    reply: &(u16, reqwest::header::HeaderMap, serde_json::Value),
    status: u16,
    code: &str,
) {
    let (got, headers, body) = reply;
    assert_eq!(*got, status, "body: {body}");
    assert_eq!(
        headers.get("content-type").and_then(|v| v.to_str().ok()),
        Some("application/json"),
        "{body}"
    );
    assert_eq!(body["error"]["code"], code, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{body}"
    );
}

/// The message of a JSON error reply.
pub fn error_message(reply: &(u16, reqwest::header::HeaderMap, serde_json::Value)) -> &str {
    reply.2["error"]["message"]
        .as_str()
        .unwrap_or_else(|| panic!("no error message in {}", reply.2))
}

/// The value of one metric sample line (`name{labels} value`) in a /metrics text.
pub fn metric(text: &str, sample: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(sample)?.strip_prefix(' ')?.parse().ok())
}

/// The server's `/metrics` page.
pub async fn metrics_text(server: &TestServer) -> String {
    client()
        .get(server.at("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// Waits until the server reports `n` queries in flight.
pub async fn wait_in_flight(server: &TestServer, n: f64) {
    for _ in 0..500 {
        let text = metrics_text(server).await;
        if metric(&text, "seqless_queries_in_flight") == Some(n) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the server never had {n} queries in flight");
}
