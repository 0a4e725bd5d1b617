//! `seqless serve`'s memory flags as a process: the budget is validated (exit 2 naming the
//! flag), announced on the listening line, and a text over it is a 413 that says why.

use serde_json::json;

mod common;

use common::{LANGID, Server, refusal, seqless};

#[test]
fn bad_memory_flags_exit_2_naming_the_flag() {
    for (flag, value) in [
        ("--memory-budget-mb", "0"),
        ("--memory-budget-mb", "lots"),
        ("--memory-budget-mb", "1.5"),
        ("--memory-queue-wait-ms", "0"),
        ("--memory-queue-max", "many"),
    ] {
        let stderr = refusal(seqless(&[
            "serve",
            "--model",
            LANGID,
            "--listen",
            "127.0.0.1:0",
            flag,
            value,
        ]));
        assert!(stderr.contains(flag), "{flag} {value}: {stderr}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_text_over_the_budget_is_413_and_one_within_it_is_answered() {
    let (_server, url, line) = Server::serve(&["--memory-budget-mb", "64"]);
    assert!(line.contains("memory budget 64 MiB"), "{line}");
    let client = reqwest::Client::new();
    let classify = |text: String| {
        client
            .post(format!("{url}/v1/classify"))
            .json(&json!({ "text": text }))
            .send()
    };
    let response = classify("a".repeat(1 << 20)).await.unwrap();
    assert_eq!(response.status().as_u16(), 413);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "over_memory_budget", "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("budget of 64 MiB (--memory-budget-mb)"),
        "{message}"
    );
    let response = classify("Der schnelle braune Fuchs".into()).await.unwrap();
    assert_eq!(response.status().as_u16(), 200);
}
