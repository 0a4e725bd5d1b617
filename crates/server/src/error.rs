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
    /// A human-readable explanation; for a 500, only "internal error".
    pub message: String,
    /// For a 500: the id under which the server logged the detail, to quote in a report.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

/// What a client is told of a fault of the server: its detail may name internal hosts,
/// paths or data, so it goes only to the log, under [`ErrorDetail::request_id`].
pub const INTERNAL_MESSAGE: &str = "internal error";

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

    /// A failure of the server itself; the detail goes to the log, and the client gets
    /// [`INTERNAL_MESSAGE`] and a request id.
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
        let (message, request_id) = if self.status == StatusCode::INTERNAL_SERVER_ERROR {
            let request_id = uuid::Uuid::new_v4().simple().to_string();
            tracing::error!(%request_id, code = self.code, message = %self.message, "internal error");
            (INTERNAL_MESSAGE.to_owned(), Some(request_id))
        } else {
            if self.status.is_server_error() {
                tracing::warn!(status = %self.status, code = self.code, message = %self.message, "request failed");
            }
            (self.message, None)
        };
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code.to_owned(),
                message,
                request_id,
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
            CoordinatorError::Busy { .. } => {
                Self::unavailable("functions_busy", err.to_string(), 1)
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

#[cfg(test)]
mod tests {
    use super::*;

    async fn body(error: ApiError) -> (StatusCode, serde_json::Value) {
        let response = error.into_response();
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        (status, serde_json::from_slice(&bytes).unwrap())
    }

    #[tokio::test]
    async fn a_500_answers_a_generic_message_and_a_request_id_only() {
        let detail = "store redis://10.1.2.3:6379: tensor `q:abc:x` is corrupt";
        let (status, json) = body(ApiError::internal(detail)).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(json["error"]["code"], "internal");
        assert_eq!(json["error"]["message"], INTERNAL_MESSAGE);
        let id = json["error"]["request_id"].as_str().unwrap();
        assert_eq!(id.len(), 32);
        assert!(!json.to_string().contains("10.1.2.3"), "{json}");
        // Another 500 gets another id.
        let (_, again) = body(ApiError::internal(detail)).await;
        assert_ne!(again["error"]["request_id"], json["error"]["request_id"]);
    }

    #[tokio::test]
    async fn a_4xx_keeps_its_message_and_has_no_request_id() {
        let (status, json) = body(ApiError::invalid("invalid_text", "the text is empty")).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(json["error"]["message"], "the text is empty");
        assert!(json["error"].get("request_id").is_none());
    }

    #[tokio::test]
    async fn resident_queries_without_free_function_slots_are_a_503_to_retry() {
        let busy = CoordinatorError::Busy {
            needed: 6,
            slots: 8,
        };
        let response = ApiError::from(busy).into_response();
        assert_eq!(response.headers()["retry-after"], "1");
        let (status, json) = body(ApiError::from(CoordinatorError::Busy {
            needed: 6,
            slots: 8,
        }))
        .await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(json["error"]["code"], "functions_busy");
        assert!(
            json["error"]["message"]
                .as_str()
                .unwrap()
                .contains("no 6 function slots came free"),
            "{json}"
        );
    }
}
