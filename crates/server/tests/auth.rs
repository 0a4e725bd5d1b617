//! Bearer-token auth on and off, over real HTTP.

mod common;

use common::*;
use seqless_server::{ApiToken, ServiceLimits};
use serde_json::json;

const TOKEN: &str = "s3cret-token-for-tests";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_token_everything_but_healthz_needs_it() {
    let server = monolithic(ServiceLimits::default(), None, Some(TOKEN)).await;
    assert_eq!(get(&server.at("/healthz")).await.0, 200);
    for path in ["/v1/models", "/readyz", "/metrics", "/openapi.json"] {
        let reply = get(&server.at(path)).await;
        assert_error(&reply, 401, "unauthorized");
        assert!(
            reply.1["www-authenticate"]
                .to_str()
                .unwrap()
                .starts_with("Bearer"),
            "{path}"
        );
    }
    let reply = post(&server.at("/v1/classify"), json!({ "text": "hello" })).await;
    assert_error(&reply, 401, "unauthorized");
    for wrong in [
        "Bearer nope",
        "Bearer s3cret-token-for-test",
        "Basic czNjcmV0",
        TOKEN,
    ] {
        let response = client()
            .post(server.at("/v1/classify"))
            .header("authorization", wrong)
            .json(&json!({ "text": "hello" }))
            .send()
            .await
            .unwrap();
        assert_error(&split(response).await, 401, "unauthorized");
    }
    // The scheme name is case-insensitive (RFC 7235); the token is not.
    for scheme in ["Bearer", "bearer", "BEARER"] {
        let response = client()
            .post(server.at("/v1/classify"))
            .header("authorization", format!("{scheme} {TOKEN}"))
            .json(&json!({ "text": "hello" }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{scheme}");
    }
    let response = client()
        .post(server.at("/v1/classify"))
        .header("authorization", format!("bearer {}", TOKEN.to_uppercase()))
        .json(&json!({ "text": "hello" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    for path in ["/v1/models", "/readyz", "/metrics", "/openapi.json"] {
        let response = client()
            .get(server.at(path))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{path}");
    }
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_token_everything_is_open() {
    let server = monolithic(ServiceLimits::default(), None, None).await;
    for path in [
        "/healthz",
        "/v1/models",
        "/readyz",
        "/metrics",
        "/openapi.json",
    ] {
        assert_eq!(get(&server.at(path)).await.0, 200, "{path}");
    }
    server.shutdown().await;
}

#[test]
fn tokens_come_from_a_file_trimmed_and_never_empty() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("token");
    std::fs::write(&file, format!("{TOKEN}\n")).unwrap();
    let token = ApiToken::from_env_or_file(Some(&file)).unwrap().unwrap();
    assert!(token.matches(TOKEN.as_bytes()));
    assert!(!token.matches(b"s3cret"));
    assert!(
        !format!("{token:?}").contains(TOKEN),
        "Debug never shows the secret"
    );
    std::fs::write(&file, " \n").unwrap();
    assert!(ApiToken::from_env_or_file(Some(&file)).is_err());
    assert!(ApiToken::from_env_or_file(Some(&dir.path().join("missing"))).is_err());
}
