//! The one error shape every endpoint answers with: `{"error": {"code", "message"}}`.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use seqless_coordinator::CoordinatorError;
use seqless_model::ModelError;
use serde::Serialize;
use utoipa::ToSchema;

/// A refusal or failure, as a status, a stable machine-readable code and a message a user
/// can act on. Clients branch on `code`; `message` is for people.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// HTTP status of the reply.
    pub status: StatusCode,
    /// Stable, snake_case code (documented in docs/serve.md).
    pub code: &'static str,
    /// What was wrong, naming the field or the failing component.
    pub message: String,
    /// Seconds after which a retry may succeed (`Retry-After`), for 503s.
    pub retry_after_secs: Option<u64>,
}

/// The JSON body of every error reply.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// The `error` object of [`ErrorBody`].
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable, snake_case code, such as `text_too_long` or `overloaded`.
    pub code: String,
    /// A human-readable explanation.
    pub message: String,
}

impl ApiError {
    /// An error with this status, code and message.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            retry_after_secs: None,
        }
    }

    /// A request that is well-formed JSON but not acceptable (empty text, bad base64...).
    pub fn invalid(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, code, message)
    }

    /// A temporary inability to serve: 503 with `Retry-After`.
    pub fn unavailable(
        code: &'static str,
        message: impl Into<String>,
        retry_after_secs: u64,
    ) -> Self {
        Self {
            retry_after_secs: Some(retry_after_secs),
            ..Self::new(StatusCode::SERVICE_UNAVAILABLE, code, message)
        }
    }

    /// A failure of the server itself; the details go to the log, not only to the client.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message)
    }

    /// The same error with its message prefixed by where it happened (`texts[3]: ...`).
    pub fn at(mut self, place: &str) -> Self {
        self.message = format!("{place}: {}", self.message);
        self
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            tracing::warn!(status = %self.status, code = self.code, message = %self.message, "request failed");
        }
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code.to_owned(),
                message: self.message,
            },
        };
        let mut response = (self.status, Json(body)).into_response();
        if let Some(secs) = self.retry_after_secs {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

/// axum's JSON rejections are plain text; this keeps their status and gives them our shape.
impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        let status = rejection.status();
        let code = match status {
            StatusCode::PAYLOAD_TOO_LARGE => "body_too_large",
            StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
            StatusCode::UNPROCESSABLE_ENTITY => "invalid_request",
            StatusCode::BAD_REQUEST => "bad_json",
            _ => "bad_request",
        };
        let message = match status {
            StatusCode::PAYLOAD_TOO_LARGE => {
                "the request body is over this server's limit (--body-limit)".to_owned()
            }
            _ => rejection.body_text(),
        };
        Self::new(status, code, message)
    }
}

/// How a failed query maps onto HTTP: the user's fault (422), a dependency that is down and
/// may come back (503), or a fault of the system (500).
impl From<CoordinatorError> for ApiError {
    fn from(err: CoordinatorError) -> Self {
        let retryable = err.is_retryable();
        match &err {
            CoordinatorError::Input(_) => Self::invalid("invalid_text", err.to_string()),
            CoordinatorError::Plan(_) => Self::invalid("no_plan", err.to_string()),
            CoordinatorError::Store { .. } if retryable => {
                Self::unavailable("store_unavailable", err.to_string(), 1)
            }
            CoordinatorError::Function { .. } if retryable => {
                Self::unavailable("platform_unavailable", err.to_string(), 1)
            }
            _ => Self::internal(err.to_string()),
        }
    }
}

impl From<ModelError> for ApiError {
    fn from(err: ModelError) -> Self {
        match err {
            ModelError::Input(message) => Self::invalid("invalid_text", message),
            ModelError::InputLen(e) => Self::invalid(e.code(), e.to_string()),
            other => Self::internal(other.to_string()),
        }
    }
}
