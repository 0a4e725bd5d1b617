//! The Lambda Runtime API of one function process, on a listener of its own (as each
//! Lambda execution environment has its own), so every call is known to come from it.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::header::CONTENT_LENGTH;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use seqless_wire::faults::FAULT_CONTEXT_KEY;
use seqless_wire::lambda::{LambdaErrorBody, MAX_SYNC_PAYLOAD_BYTES, RESPONSE_TOO_LARGE};
use tokio::net::TcpListener;

use crate::errors::runtime_api_error;
use crate::worker::{Completion, RuntimeRefusal, Worker, function_arn};

/// Binds a fresh Runtime API listener on a free loopback port.
pub async fn bind() -> std::io::Result<(TcpListener, SocketAddr)> {
    let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
    let addr = listener.local_addr()?;
    Ok((listener, addr))
}

/// Serves `worker`'s Runtime API on `listener` until the process exits.
pub async fn serve(listener: TcpListener, worker: Arc<Worker>) {
    let app = Router::new()
        .route("/2018-06-01/runtime/invocation/next", get(next))
        .route(
            "/2018-06-01/runtime/invocation/{request_id}/response",
            post(response).layer(DefaultBodyLimit::max(MAX_SYNC_PAYLOAD_BYTES)),
        )
        .route(
            "/2018-06-01/runtime/invocation/{request_id}/error",
            post(error),
        )
        .route("/2018-06-01/runtime/init/error", post(init_error))
        .fallback(|| async {
            runtime_api_error(
                StatusCode::NOT_FOUND,
                "NotFound",
                "no such Runtime API path",
            )
        })
        .with_state(worker.clone());
    tokio::select! {
        served = axum::serve(listener, app) => {
            if let Err(e) = served {
                tracing::warn!(pid = worker.pid, error = %e, "runtime API listener failed");
            }
        }
        () = worker.gone() => {}
    }
}

fn header(value: &str) -> HeaderValue {
    HeaderValue::from_str(value).unwrap_or_else(|_| HeaderValue::from_static("invalid"))
}

async fn next(State(worker): State<Arc<Worker>>) -> Response {
    let Some(job) = worker.next_job().await else {
        return runtime_api_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Runtime.Exited",
            "the execution environment is shutting down",
        );
    };
    let mut headers = HeaderMap::new();
    headers.insert("Lambda-Runtime-Aws-Request-Id", header(&job.request_id));
    headers.insert(
        "Lambda-Runtime-Deadline-Ms",
        header(&job.deadline_ms.to_string()),
    );
    headers.insert(
        "Lambda-Runtime-Invoked-Function-Arn",
        header(&function_arn(&worker.function.name)),
    );
    // X-Ray's form: Root=1-{epoch seconds, hex}-{96-bit id};Parent={64-bit id}.
    let hex = job.request_id.replace('-', "");
    let trace = format!(
        "Root=1-{:08x}-{};Parent={};Sampled=0",
        job.deadline_ms / 1000,
        hex.get(..24).unwrap_or(&hex),
        hex.get(16..).unwrap_or(&hex),
    );
    headers.insert("Lambda-Runtime-Trace-Id", header(&trace));
    if let Some(fault) = job.fault {
        // The Runtime API's per-invocation channel to the function (the client context).
        let context = serde_json::json!({ "custom": { FAULT_CONTEXT_KEY: fault.to_string() } });
        headers.insert(
            "Lambda-Runtime-Client-Context",
            header(&context.to_string()),
        );
    }
    headers.insert("Content-Type", HeaderValue::from_static("application/json"));
    (StatusCode::OK, headers, job.payload).into_response()
}

fn accepted(result: Result<(), RuntimeRefusal>) -> Response {
    match result {
        Ok(()) => (
            StatusCode::ACCEPTED,
            axum::Json(serde_json::json!({ "status": "OK" })),
        )
            .into_response(),
        Err(RuntimeRefusal::UnknownRequest) => runtime_api_error(
            StatusCode::BAD_REQUEST,
            "InvalidRequestID",
            "the request id is not the invocation this environment is running",
        ),
        Err(RuntimeRefusal::InvalidState) => runtime_api_error(
            StatusCode::FORBIDDEN,
            "InvalidStateTransition",
            "init errors are accepted only during init",
        ),
    }
}

/// A response over Lambda's 6 MB is refused to the function (413, as the Runtime API
/// does) and fails the invocation with `Function.ResponseSizeTooLarge`: the function ran
/// and is billed, and its answer never reaches the caller.
async fn response(
    State(worker): State<Arc<Worker>>,
    Path(request_id): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let Ok(body) = body else {
        let size = headers
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .map_or(String::new(), |n| format!(" ({n} bytes)"));
        let error = LambdaErrorBody::new(
            RESPONSE_TOO_LARGE,
            format!(
                "Response payload size{size} exceeded maximum allowed payload size ({MAX_SYNC_PAYLOAD_BYTES} bytes)."
            ),
        );
        // Whether or not the invocation is still this environment's, the function hears
        // that its response was too large.
        let _ = worker.complete(&request_id, Completion::Error(error));
        return runtime_api_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "RequestEntityTooLarge",
            "the response is over the 6 MB synchronous payload limit",
        );
    };
    accepted(worker.complete(&request_id, Completion::Response(body)))
}

/// Reads an error posted by the function; one that is not Lambda's JSON shape is kept as
/// text under the type from `Lambda-Runtime-Function-Error-Type`.
fn posted_error(headers: &HeaderMap, body: &[u8]) -> LambdaErrorBody {
    serde_json::from_slice(body).unwrap_or_else(|_| {
        let error_type = headers
            .get("Lambda-Runtime-Function-Error-Type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("Runtime.Unknown");
        LambdaErrorBody::new(error_type, String::from_utf8_lossy(body))
    })
}

async fn error(
    State(worker): State<Arc<Worker>>,
    Path(request_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let error = posted_error(&headers, &body);
    accepted(worker.complete(&request_id, Completion::Error(error)))
}

async fn init_error(
    State(worker): State<Arc<Worker>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    accepted(worker.init_failed(posted_error(&headers, &body)))
}
