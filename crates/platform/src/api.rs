//! The platform's public HTTP API: Lambda's Invoke and GetFunction operations, plus
//! `/metrics` and `/workers` for operators and tests.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine as _;
use seqless_wire::lambda::MAX_SYNC_PAYLOAD_BYTES as MAX_PAYLOAD;

use crate::errors::InvokeApiError;
use crate::invoke::{Invoked, invoke};
use crate::metrics::PlatformMetrics;
use crate::options::FunctionSpec;
use crate::pool::Pool;
use crate::worker::function_arn;

/// What every handler needs.
pub struct Shared {
    /// The processes.
    pub pool: Arc<Pool>,
    /// The records.
    pub metrics: Arc<PlatformMetrics>,
    /// The functions, by name.
    pub functions: HashMap<String, Arc<FunctionSpec>>,
}

/// The router of the public API.
pub fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route(
            "/2015-03-31/functions/{function}/invocations",
            post(invoke_function),
        )
        .route("/2015-03-31/functions/{function}", get(get_function))
        .route("/metrics", get(metrics))
        .route("/workers", get(workers))
        .fallback(|uri: Uri| async move { InvokeApiError::UnknownOperation(uri.path().to_owned()) })
        .layer(DefaultBodyLimit::max(MAX_PAYLOAD))
        .with_state(shared)
}

/// A function by name, partial ARN or ARN, with an optional `:$LATEST` qualifier.
fn lookup(shared: &Shared, function: &str) -> Result<Arc<FunctionSpec>, InvokeApiError> {
    let name = function
        .rsplit_once("function:")
        .map_or(function, |(_, rest)| rest);
    let name = name.strip_suffix(":$LATEST").unwrap_or(name);
    shared
        .functions
        .get(name)
        .cloned()
        .ok_or_else(|| InvokeApiError::ResourceNotFound(function_arn(name)))
}

fn header(value: &str) -> HeaderValue {
    HeaderValue::from_str(value).unwrap_or_else(|_| HeaderValue::from_static("invalid"))
}

fn reply(invoked: Invoked, tail: bool) -> Response {
    let mut headers = HeaderMap::new();
    headers.insert("Content-Type", HeaderValue::from_static("application/json"));
    headers.insert("X-Amzn-RequestId", header(&invoked.request_id));
    headers.insert(
        "X-Amz-Executed-Version",
        HeaderValue::from_static("$LATEST"),
    );
    if invoked.function_error {
        headers.insert(
            "X-Amz-Function-Error",
            HeaderValue::from_static("Unhandled"),
        );
    }
    if tail {
        let log = base64::engine::general_purpose::STANDARD.encode(&invoked.log_tail);
        headers.insert("X-Amz-Log-Result", header(&log));
    }
    headers.insert("X-Seqless-Worker-Pid", header(&invoked.pid.to_string()));
    if let Some(init) = invoked.init {
        if let Some(ms) = init.process_start_ms {
            headers.insert("X-Seqless-Init-Process-Ms", header(&format!("{ms:.3}")));
        }
        headers.insert(
            "X-Seqless-Init-Model-Ms",
            header(&format!("{:.3}", init.model_load_ms)),
        );
    }
    (StatusCode::OK, headers, invoked.payload).into_response()
}

async fn invoke_function(
    State(shared): State<Arc<Shared>>,
    Path(function): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, InvokeApiError> {
    let spec = lookup(&shared, &function)?;
    let body = body.map_err(|_| InvokeApiError::RequestTooLarge(MAX_PAYLOAD))?;
    // Lambda takes an empty payload as `{}`.
    let body = if body.is_empty() {
        Bytes::from_static(b"{}")
    } else {
        body
    };
    if let Err(e) = serde_json::from_slice::<serde::de::IgnoredAny>(&body) {
        return Err(InvokeApiError::InvalidRequestContent(e.to_string()));
    }
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let tail = match text("X-Amz-Log-Type") {
        None | Some("None") => false,
        Some("Tail") => true,
        Some(other) => {
            return Err(InvokeApiError::InvalidParameterValue(format!(
                "X-Amz-Log-Type {other:?}: expected Tail or None"
            )));
        }
    };
    match text("X-Amz-Invocation-Type").unwrap_or("RequestResponse") {
        "RequestResponse" => {
            let invoked = invoke(&shared.pool, &shared.metrics, &spec, body).await?;
            Ok(reply(invoked, tail))
        }
        "Event" => {
            let shared = shared.clone();
            tokio::spawn(async move {
                if let Err(e) = invoke(&shared.pool, &shared.metrics, &spec, body).await {
                    tracing::warn!(function = %spec.name, error = ?e, "asynchronous invocation refused");
                }
            });
            Ok(StatusCode::ACCEPTED.into_response())
        }
        "DryRun" => Ok(StatusCode::NO_CONTENT.into_response()),
        other => Err(InvokeApiError::InvalidParameterValue(format!(
            "X-Amz-Invocation-Type {other:?}: expected RequestResponse, Event or DryRun"
        ))),
    }
}

async fn get_function(
    State(shared): State<Arc<Shared>>,
    Path(function): Path<String>,
) -> Result<Json<serde_json::Value>, InvokeApiError> {
    let spec = lookup(&shared, &function)?;
    let timeout = shared.pool.options().timeout.as_secs().max(1);
    Ok(Json(serde_json::json!({
        "Configuration": {
            "FunctionName": spec.name,
            "FunctionArn": function_arn(&spec.name),
            "Runtime": "provided.al2023",
            "Handler": "bootstrap",
            "MemorySize": spec.memory_mb,
            "Timeout": timeout,
            "Version": "$LATEST",
            "State": "Active",
            "PackageType": "Zip",
        }
    })))
}

async fn metrics(State(shared): State<Arc<Shared>>) -> Response {
    match shared.metrics.encode() {
        Ok(text) => (
            [(
                "Content-Type",
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            text,
        )
            .into_response(),
        Err(e) => InvokeApiError::Service(format!("encoding metrics: {e}")).into_response(),
    }
}

async fn workers(State(shared): State<Arc<Shared>>) -> Json<Vec<crate::pool::WorkerInfo>> {
    Json(shared.pool.workers())
}
