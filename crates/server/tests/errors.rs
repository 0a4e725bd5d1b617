//! Every refusal over real HTTP: the JSON error shape, the status, and the code.

mod common;

use std::time::Duration;

use common::*;
use seqless_server::ServiceLimits;
use serde_json::json;

async fn raw(
    server: &TestServer,
    path: &str,
    content_type: &str,
    body: &'static str,
) -> (u16, reqwest::header::HeaderMap, serde_json::Value) {
    let response = client()
        .post(server.at(path))
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap();
    split(response).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_are_json_errors() {
    let limits = ServiceLimits {
        body_limit: 64 * 1024,
        max_batch: 3,
        ..ServiceLimits::default()
    };
    let server = monolithic(limits, None, None).await;
    let classify = server.at("/v1/classify");
    let batch = server.at("/v1/classify/batch");

    // Over the body limit, whether the text would fit the model or not.
    let big = "a".repeat(100 * 1024);
    assert_error(
        &post(&classify, json!({ "text": big })).await,
        413,
        "body_too_large",
    );
    // Not JSON, not JSON's content type.
    assert_error(
        &raw(&server, "/v1/classify", "application/json", "{\"text\": ").await,
        400,
        "bad_json",
    );
    assert_error(
        &raw(&server, "/v1/classify", "text/plain", "hello").await,
        415,
        "unsupported_media_type",
    );
    // Wrong types, unknown or missing fields, both fields; the fields as an array, which
    // serde's derived structs would read in order, refused as the OpenAPI document says, on
    // both endpoints; empty texts; batches of too many texts or none.
    let refusals = [
        (&classify, json!({ "text": 42 }), "invalid_request"),
        (
            &classify,
            json!({ "text": "hi", "trace": "yes" }),
            "invalid_request",
        ),
        (&classify, json!({ "txt": "hi" }), "invalid_request"),
        (&classify, json!({}), "invalid_request"),
        (&classify, json!([1, 2]), "invalid_request"),
        (&classify, json!(["hi"]), "invalid_request"),
        (&classify, json!("hi"), "invalid_request"),
        (&batch, json!([["hi"]]), "invalid_request"),
        (
            &classify,
            json!({ "text": "a", "text_base64": "YQ==" }),
            "invalid_request",
        ),
        (&classify, json!({ "text": "" }), "empty_text"),
        (&classify, json!({ "text_base64": "" }), "empty_text"),
        (
            &batch,
            json!({ "texts": ["a", "b", "c", "d"] }),
            "batch_too_large",
        ),
        (&batch, json!({ "texts": [] }), "invalid_request"),
    ];
    for (url, request, code) in refusals {
        let reply = post(url, request.clone()).await;
        assert_eq!(reply.2["error"]["code"], code, "{request} to {url}");
        assert_error(&reply, 422, code);
    }
    // Bad base64 and bad texts in a batch, named in the message (by index in a batch).
    let named = [
        (
            &classify,
            json!({ "text_base64": "not base64!" }),
            "bad_base64",
            "text_base64",
        ),
        (
            &batch,
            json!({ "texts": ["a", "", "c"] }),
            "empty_text",
            "texts[1]",
        ),
        (
            &batch,
            json!({ "texts_base64": ["YQ==", "%%"] }),
            "bad_base64",
            "texts_base64[1]",
        ),
    ];
    for (url, request, code, name) in named {
        let reply = post(url, request.clone()).await;
        assert_eq!(reply.2["error"]["code"], code, "{request} to {url}");
        assert_error(&reply, 422, code);
        assert!(
            error_message(&reply).starts_with(name),
            "{request}: {}",
            reply.2
        );
    }
    // Unknown routes and methods.
    assert_error(&get(&server.at("/v2/nothing")).await, 404, "not_found");
    assert_error(&get(&classify).await, 405, "method_not_allowed");
    assert_error(
        &post(&server.at("/healthz"), json!({})).await,
        405,
        "method_not_allowed",
    );
    // The server is fine after all that.
    assert_eq!(post(&classify, json!({ "text": "ok" })).await.0, 200);
    let text = metrics_text(&server).await;
    assert!(metric(&text, "seqless_queries_total{outcome=\"invalid\"}").unwrap() >= 4.0);
    assert!(metric(&text, "seqless_http_responses_total{status=\"422\"}").unwrap() >= 10.0);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_over_max_len_is_refused() {
    let server = monolithic(ServiceLimits::default(), None, None).await;
    let max_len = model().config.max_len;
    let text = "a".repeat(max_len + 1);
    let reply = post(&server.at("/v1/classify"), json!({ "text": text })).await;
    assert_error(&reply, 422, "text_too_long");
    assert!(error_message(&reply).contains(&max_len.to_string()));
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_deadline_is_504_and_the_query_still_drains() {
    let limits = ServiceLimits {
        deadline: Duration::from_millis(1),
        ..ServiceLimits::default()
    };
    let server = monolithic(limits, None, None).await;
    let text = "lorem ipsum ".repeat(40_000);
    let reply = post(&server.at("/v1/classify"), json!({ "text": text })).await;
    assert_error(&reply, 504, "deadline_exceeded");
    let metrics = metrics_text(&server).await;
    assert_eq!(
        metric(&metrics, "seqless_queries_total{outcome=\"timeout\"}"),
        Some(1.0)
    );
    // The query keeps its slot until it really stops; shutdown waits for it.
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_the_in_flight_bound_is_503_with_retry_after() {
    let limits = ServiceLimits {
        max_in_flight: 1,
        ..ServiceLimits::default()
    };
    let server = monolithic(limits, None, None).await;
    let long = "lorem ipsum ".repeat(80_000);
    let url = server.at("/v1/classify");
    let slow = tokio::spawn(async move { post(&url, json!({ "text": long })).await });
    wait_in_flight(&server, 1.0).await;
    let reply = post(&server.at("/v1/classify"), json!({ "text": "short" })).await;
    assert_error(&reply, 503, "overloaded");
    assert_eq!(reply.1["retry-after"], "1");
    // A batch needs slots too.
    let reply = post(
        &server.at("/v1/classify/batch"),
        json!({ "texts": ["a", "b"] }),
    )
    .await;
    assert_error(&reply, 503, "overloaded");
    assert_eq!(slow.await.unwrap().0, 200);
    // Once the slot is free, queries are admitted again.
    assert_eq!(
        post(&server.at("/v1/classify"), json!({ "text": "short" }))
            .await
            .0,
        200
    );
    let metrics = metrics_text(&server).await;
    assert_eq!(
        metric(&metrics, "seqless_queries_total{outcome=\"overloaded\"}"),
        Some(3.0)
    );
    server.shutdown().await;
}
