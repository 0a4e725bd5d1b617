//! Admission by memory over real HTTP: a query over the whole budget is a 413 that names its
//! estimate and the budget; past the budget, queries wait in the queue and then run one
//! budget's worth at a time, or are refused with 503 and Retry-After, never another 5xx.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures_util::future::join_all;
use seqless_server::{MemoryLimits, ServiceLimits};
use serde_json::json;

mod common;

use common::{
    TestServer, assert_error, error_message, metric, metrics_text, model, monolithic, post,
    wait_in_flight,
};

/// The monolithic server's estimate for a text of `len` bytes, as it admits it by.
fn estimate(server: &TestServer, len: usize) -> u64 {
    server.service.engine.query_memory_bytes(len)
}

fn limits(budget_bytes: u64, queue_max: usize, queue_wait: Duration) -> ServiceLimits {
    ServiceLimits {
        memory: MemoryLimits {
            budget_bytes,
            queue_max,
            queue_wait,
        },
        ..ServiceLimits::default()
    }
}

fn text(len: usize) -> String {
    "lorem ipsum ".repeat(len / 12 + 1)[..len].to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_text_or_batch_over_the_whole_budget_is_413_naming_estimate_and_budget() {
    let config = model().config;
    // Room for a 64 KiB text, not for one of 256 KiB.
    let budget = 2 * config.forward_peak_bytes(64 << 10);
    let server = monolithic(limits(budget, 4, Duration::from_secs(5)), None, None).await;
    let need = estimate(&server, 256 << 10);
    assert!(need > budget);
    let reply = post(
        &server.at("/v1/classify"),
        json!({ "text": text(256 << 10) }),
    )
    .await;
    assert_error(&reply, 413, "over_memory_budget");
    let message = error_message(&reply);
    for part in [
        format!("the text of {} bytes", 256 << 10),
        format!("about {} MiB ({need} bytes)", need.div_ceil(1 << 20)),
        format!("budget of {} MiB", budget.div_ceil(1 << 20)),
        "--memory-budget-mb".to_owned(),
    ] {
        assert!(message.contains(&part), "{part:?} not in {message:?}");
    }
    // Three texts that fit one by one but not together: the batch is refused as a whole.
    let texts = vec![text(64 << 10); 3];
    let reply = post(&server.at("/v1/classify/batch"), json!({ "texts": texts })).await;
    assert_error(&reply, 413, "over_memory_budget");
    assert!(
        error_message(&reply).contains("the batch of 3 texts"),
        "{}",
        error_message(&reply)
    );
    // Refused before admission, as a client's error; a text that fits still runs.
    let metrics = metrics_text(&server).await;
    assert_eq!(
        metric(&metrics, "seqless_queries_total{outcome=\"invalid\"}"),
        Some(4.0)
    );
    let reply = post(
        &server.at("/v1/classify"),
        json!({ "text": text(64 << 10) }),
    )
    .await;
    assert_eq!(reply.0, 200, "{}", reply.2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_budget_queries_wait_their_turn_and_all_succeed() {
    let len = 32 << 10;
    let config = model().config;
    // One query's worth of memory: the others wait in a queue long enough for all of them.
    let budget = config.forward_peak_bytes(len) + 4 * len as u64;
    let server = monolithic(limits(budget, 16, Duration::from_secs(120)), None, None).await;
    assert!(2 * estimate(&server, len) > budget);
    let server = Arc::new(server);
    // Sample the in-flight gauge while the load runs: memory admits one query at a time.
    let running = Arc::new(AtomicBool::new(true));
    let sampler = tokio::spawn({
        let (server, running) = (server.clone(), running.clone());
        async move {
            let mut most = 0.0f64;
            while running.load(Ordering::SeqCst) {
                let text = metrics_text(&server).await;
                most = most.max(metric(&text, "seqless_queries_in_flight").unwrap_or(0.0));
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            most
        }
    });
    let url = server.at("/v1/classify");
    let replies = join_all((0..8).map(|i| {
        let url = url.clone();
        async move { post(&url, json!({ "text": format!("{i} {}", text(len - 8)) })).await }
    }))
    .await;
    running.store(false, Ordering::SeqCst);
    for reply in &replies {
        assert_eq!(reply.0, 200, "{}", reply.2);
    }
    let most = sampler.await.unwrap();
    assert!(
        most <= 1.0,
        "{most} queries ran at once within one query's budget"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_no_room_to_queue_past_the_budget_is_503_with_retry_after() {
    let config = model().config;
    let long = 960 << 10;
    // Room for the long query and little else; no queue.
    let budget = config.forward_peak_bytes(long) + 4 * long as u64;
    let server = monolithic(limits(budget, 0, Duration::from_secs(5)), None, None).await;
    let url = server.at("/v1/classify");
    let slow = tokio::spawn({
        let url = url.clone();
        async move { post(&url, json!({ "text": text(long) })).await }
    });
    wait_in_flight(&server, 1.0).await;
    let reply = post(&url, json!({ "text": text(64 << 10) })).await;
    assert_error(&reply, 503, "overloaded");
    assert_eq!(reply.1.get("retry-after").unwrap(), "1");
    let message = error_message(&reply);
    assert!(
        message.contains("--memory-budget-mb") && message.contains("--memory-queue-max"),
        "{message}"
    );
    let first = slow.await.unwrap();
    assert_eq!(first.0, 200, "{}", first.2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_past_the_budget_is_answered_200_or_503_with_retry_after() {
    let len = 48 << 10;
    let config = model().config;
    // Two queries' worth, a short queue and a short wait: some are refused, none fails.
    let budget = 2 * (config.forward_peak_bytes(len) + 4 * len as u64);
    let server = monolithic(limits(budget, 2, Duration::from_millis(200)), None, None).await;
    let url = server.at("/v1/classify");
    let replies = join_all((0..24).map(|i| {
        let url = url.clone();
        async move { post(&url, json!({ "text": format!("{i} {}", text(len - 8)) })).await }
    }))
    .await;
    for reply in &replies {
        match reply.0 {
            200 => assert!(reply.2["label"].is_string(), "{}", reply.2),
            503 => {
                assert_error(reply, 503, "overloaded");
                assert_eq!(reply.1.get("retry-after").unwrap(), "1");
            }
            other => panic!("status {other}: {}", reply.2),
        }
    }
    assert!(replies.iter().any(|r| r.0 == 200));
    server.shutdown().await;
}
