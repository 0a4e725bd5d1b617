//! A Redis outage under load: `seqless serve --mode serverless` keeps answering while a real
//! redis-server is killed (SIGKILL, like a crash) and started again under a load of
//! concurrent queries. No request outlives its deadline, the errors of the outage are 503
//! with Retry-After naming the store (or the deadline's 504, for a query its retries and
//! the machine's load made too slow), and the service comes back once Redis does.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;

mod common;

use common::Server;
use seqless_store::testing::RedisServer;

/// The server's deadline: short, so a request stuck on the dead store ends quickly.
const DEADLINE_MS: u64 = 5_000;
/// How long past the deadline a reply may still take to reach the client (the server's own
/// scheduling and the connection), before the request counts as hung.
const GRACE: Duration = Duration::from_secs(5);
const CLIENTS: usize = 8;

/// One answered request: when it was sent and answered, and what came back.
#[derive(Debug)]
struct Answer {
    sent: Instant,
    answered: Instant,
    status: u16,
    retry_after: Option<String>,
    body: serde_json::Value,
}

/// Shared by the clients: the answers so far, and when to stop.
struct Load {
    answers: Mutex<Vec<Answer>>,
    ok: AtomicUsize,
    stop: AtomicBool,
}

/// One closed-loop client: sends its next query as soon as the previous one is answered.
/// A request that gets no answer within the deadline and [`GRACE`] fails the test.
async fn client(url: String, id: usize, load: Arc<Load>) {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_millis(DEADLINE_MS) + GRACE)
        .build()
        .unwrap();
    let mut n = 0;
    while !load.stop.load(Ordering::SeqCst) {
        n += 1;
        let sent = Instant::now();
        let response = http
            .post(format!("{url}/v1/classify"))
            .json(&json!({ "text": format!("Der schnelle braune Fuchs {id} {n} springt über den faulen Hund") }))
            .send()
            .await
            .unwrap_or_else(|e| panic!("client {id}: no answer within the deadline and grace: {e}"));
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get("retry-after")
            .map(|v| v.to_str().unwrap().to_owned());
        let body: serde_json::Value = response.json().await.unwrap();
        let answered = Instant::now();
        if status == 200 {
            load.ok.fetch_add(1, Ordering::SeqCst);
        }
        load.answers.lock().unwrap().push(Answer {
            sent,
            answered,
            status,
            retry_after,
            body,
        });
    }
}

/// Polls `check` every 10 ms until it holds, failing after `patience`.
async fn until(what: &str, patience: Duration, check: impl Fn() -> bool) {
    let give_up = Instant::now() + patience;
    while !check() {
        assert!(Instant::now() < give_up, "{what}: not within {patience:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_redis_restart_under_load_is_503_naming_the_store_then_recovers() {
    let redis = RedisServer::start();
    let store = redis.url();
    let deadline_ms = DEADLINE_MS.to_string();
    let (_server, url, _) = Server::serve(&[
        "--mode",
        "serverless",
        "--store",
        &store,
        "--splits",
        "2",
        "--deadline-ms",
        &deadline_ms,
    ]);
    let load = Arc::new(Load {
        answers: Mutex::new(Vec::new()),
        ok: AtomicUsize::new(0),
        stop: AtomicBool::new(false),
    });
    let clients: Vec<_> = (0..CLIENTS)
        .map(|id| tokio::spawn(client(url.clone(), id, load.clone())))
        .collect();
    let patience = Duration::from_secs(60);

    until("answers before the outage", patience, || {
        load.ok.load(Ordering::SeqCst) >= 4 * CLIENTS
    })
    .await;
    redis.kill();
    let killed = Instant::now();
    until("answers during the outage", patience, || {
        let answers = load.answers.lock().unwrap();
        answers.iter().filter(|a| a.sent > killed).count() >= 2 * CLIENTS
    })
    .await;
    redis.restart();
    let restarted = Instant::now();
    let recovered = |answers: &[Answer]| {
        answers
            .iter()
            .filter(|a| a.status == 200 && a.sent >= restarted)
            .map(|a| a.answered)
            .min()
    };
    until("a query sent after the restart answered", patience, || {
        recovered(&load.answers.lock().unwrap()).is_some()
    })
    .await;
    let recovery = recovered(&load.answers.lock().unwrap()).unwrap() - restarted;
    load.stop.store(true, Ordering::SeqCst);
    for client in clients {
        client.await.unwrap();
    }

    let answers = load.answers.lock().unwrap();
    let mut tally = std::collections::BTreeMap::<(u16, String), usize>::new();
    for answer in answers.iter() {
        let code = answer.body["error"]["code"].as_str().unwrap_or("");
        *tally.entry((answer.status, code.to_owned())).or_default() += 1;
    }
    println!(
        "{} answers from {CLIENTS} clients: {tally:?}; outage {:?}; first success sent after the restart answered {recovery:?} after it",
        answers.len(),
        restarted - killed,
    );
    for answer in answers.iter() {
        let took = answer.answered - answer.sent;
        assert!(
            took <= Duration::from_millis(DEADLINE_MS) + GRACE,
            "a request took {took:?}: {}",
            answer.body
        );
        let code = answer.body["error"]["code"].as_str().unwrap_or("");
        let message = answer.body["error"]["message"].as_str().unwrap_or("");
        match (answer.status, code) {
            (200, _) => {}
            // The store failed under the master or under a function: either way a 503 the
            // client may retry, naming the store.
            (503, "store_unavailable" | "platform_unavailable") => {
                assert_eq!(answer.retry_after.as_deref(), Some("1"), "{}", answer.body);
                assert!(message.contains(&store), "{store} not named in {message:?}");
            }
            // A query slowed by its retries and a loaded machine, ended at the deadline.
            (504, "deadline_exceeded") => {}
            _ => panic!("status {}: {}", answer.status, answer.body),
        }
    }
    let during = |a: &&Answer| a.answered > killed && a.sent < restarted;
    assert!(answers.iter().filter(during).any(|a| a.status == 503));
}
