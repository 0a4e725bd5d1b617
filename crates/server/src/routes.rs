//! The HTTP surface: one handler per endpoint, and the router that wires limits, auth,
//! JSON errors for unknown routes and methods, panic safety and response counting.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::rejection::JsonRejection;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tower_http::catch_panic::CatchPanicLayer;
use utoipa::openapi::{ContentBuilder, HeaderBuilder, Ref, RefOr, ResponseBuilder};
use utoipa::{IntoResponses, PartialSchema, ToSchema};

use crate::api::{
    BatchRequest, BatchResponse, ClassifyRequest, ClassifyResponse, ModelInfo, ModelsResponse,
    Object, StatusResponse,
};
use crate::auth::require_token;
use crate::error::{ApiError, ErrorBody};
use crate::metrics::{CONTENT_TYPE, Metrics};
use crate::openapi::document;
use crate::service::Service;

type Shared = State<Arc<Service>>;

/// The error replies both classify endpoints can give, but for 422: each endpoint names its
/// own, which says what it checks.
struct ClassifyErrors;

impl IntoResponses for ClassifyErrors {
    fn responses() -> BTreeMap<String, RefOr<utoipa::openapi::Response>> {
        let error = |description: &str| {
            let body = ContentBuilder::new()
                .schema(Some(Ref::from_schema_name(ErrorBody::name())))
                .build();
            ResponseBuilder::new()
                .description(description)
                .content("application/json", body)
        };
        let retry_after = HeaderBuilder::new()
            .schema(u64::schema())
            .description(Some("Seconds to wait before retrying"))
            .build();
        [
            ("400", error("The body is not JSON")),
            ("401", error("Missing or wrong bearer token")),
            (
                "413",
                error("The body is over --body-limit (body_too_large), or the text's (batch's) estimated peak memory is over --memory-budget-mb (over_memory_budget)"),
            ),
            ("415", error("Content-Type is not application/json")),
            ("500", error("A fault of the server or a function")),
            (
                "503",
                error("At --max-in-flight, or no memory freed within the queue's bounds (overloaded); or store/platform down; see Retry-After")
                    .header("Retry-After", retry_after),
            ),
            ("504", error("Past the per-query deadline")),
        ]
        .into_iter()
        .map(|(status, response)| (status.to_owned(), response.build().into()))
        .collect()
    }
}

/// Classify one text.
#[utoipa::path(
    post, path = "/v1/classify", tag = "classify",
    request_body = ClassifyRequest,
    responses(
        (status = 200, description = "The label and probabilities", body = ClassifyResponse),
        ClassifyErrors,
        (status = 422, description = "Wrong fields or types, empty or too long text, bad base64", body = ErrorBody),
    )
)]
pub async fn classify(
    State(service): Shared,
    body: Result<Json<Object<ClassifyRequest>>, JsonRejection>,
) -> Result<Json<ClassifyResponse>, ApiError> {
    let Json(Object(request)) = body?;
    let trace = request.trace;
    let bytes = request.bytes()?;
    let mut answers = service.classify(vec![bytes], trace, false).await?;
    answers
        .pop()
        .map(Json)
        .ok_or_else(|| ApiError::internal("no answer for the text"))
}

/// Classify several texts, answered in order.
#[utoipa::path(
    post, path = "/v1/classify/batch", tag = "classify",
    request_body = BatchRequest,
    responses(
        (status = 200, description = "One result per text, in order", body = BatchResponse),
        ClassifyErrors,
        (status = 422, description = "Wrong fields or types, a bad text (named by index), more texts than --max-batch", body = ErrorBody),
    )
)]
pub async fn classify_batch(
    State(service): Shared,
    body: Result<Json<Object<BatchRequest>>, JsonRejection>,
) -> Result<Json<BatchResponse>, ApiError> {
    let Json(Object(request)) = body?;
    let trace = request.trace;
    let texts = request.bytes()?;
    let results = service.classify(texts, trace, true).await?;
    Ok(Json(BatchResponse { results }))
}

/// The served model: name, labels, config and execution settings.
#[utoipa::path(
    get, path = "/v1/models", tag = "models",
    responses(
        (status = 200, description = "The served model", body = ModelsResponse),
        (status = 401, description = "Missing or wrong bearer token", body = ErrorBody),
    )
)]
pub async fn models(State(service): Shared) -> Json<ModelsResponse> {
    let config = service.engine.config();
    Json(ModelsResponse {
        models: vec![ModelInfo {
            name: service.model_name.clone(),
            labels: config.labels.clone(),
            max_len: config.max_len,
            config: config.clone(),
            mode: service.engine.mode().to_owned(),
            plan: service.engine.plan_info(),
        }],
    })
}

/// Liveness: the process answers. Never needs a token.
#[utoipa::path(
    get, path = "/healthz", tag = "operations",
    responses((status = 200, description = "The process is up", body = StatusResponse))
)]
pub async fn healthz() -> Json<StatusResponse> {
    Json(StatusResponse {
        status: "ok".into(),
        checks: Default::default(),
    })
}

/// Readiness: the store and the platform answer (serverless mode).
#[utoipa::path(
    get, path = "/readyz", tag = "operations",
    responses(
        (status = 200, description = "Ready to serve queries", body = StatusResponse),
        (status = 401, description = "Missing or wrong bearer token", body = ErrorBody),
        (status = 503, description = "The store or the platform does not answer", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait before retrying"))),
    )
)]
pub async fn readyz(State(service): Shared) -> Result<Json<StatusResponse>, ApiError> {
    let checks = service.engine.ready().await?;
    Ok(Json(StatusResponse {
        status: "ready".into(),
        checks,
    }))
}

/// Metrics in the OpenMetrics text format (Prometheus scrapes it).
#[utoipa::path(
    get, path = "/metrics", tag = "operations",
    responses(
        (status = 200, description = "The metrics", body = String,
            content_type = "application/openmetrics-text; version=1.0.0; charset=utf-8"),
        (status = 401, description = "Missing or wrong bearer token", body = ErrorBody),
    )
)]
pub async fn metrics(State(service): Shared) -> Response {
    (
        [(header::CONTENT_TYPE, CONTENT_TYPE)],
        service.metrics.render(),
    )
        .into_response()
}

/// This API's OpenAPI 3 document.
#[utoipa::path(
    get, path = "/openapi.json", tag = "operations",
    responses(
        (status = 200, description = "The OpenAPI document", body = Object),
        (status = 401, description = "Missing or wrong bearer token", body = ErrorBody),
    )
)]
pub async fn openapi(State(service): Shared) -> Json<utoipa::openapi::OpenApi> {
    Json(document(service.token.is_some(), service.limits.max_batch))
}

async fn not_found(request: Request) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        format!("no endpoint at {}; see /openapi.json", request.uri().path()),
    )
}

async fn method_not_allowed(request: Request) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!(
            "{} is not allowed on {}; see /openapi.json",
            request.method(),
            request.uri().path()
        ),
    )
}

async fn count_responses(
    State(metrics): State<Arc<Metrics>>,
    request: Request,
    next: Next,
) -> Response {
    let response = next.run(request).await;
    metrics.response(response.status().as_u16());
    response
}

fn panicked(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    ApiError::internal("the server hit a bug handling this request; it was logged").into_response()
}

/// The whole application: every endpoint, with the service's token (if any) required on all
/// but `/healthz`.
pub fn router(service: Arc<Service>) -> Router {
    let counters = service.metrics.clone();
    let body_limit = service.limits.body_limit;
    let mut protected = Router::new()
        .route("/v1/classify", post(classify))
        .route("/v1/classify/batch", post(classify_batch))
        .route("/v1/models", get(models))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/openapi.json", get(openapi));
    if let Some(token) = service.token.clone() {
        protected = protected.route_layer(middleware::from_fn_with_state(token, require_token));
    }
    Router::new()
        .route("/healthz", get(healthz))
        .merge(protected)
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(service)
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(CatchPanicLayer::custom(panicked))
        .layer(middleware::from_fn_with_state(counters, count_responses))
}
