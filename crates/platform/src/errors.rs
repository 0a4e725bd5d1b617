//! Refusals in the shapes Lambda gives them, so the AWS SDK and other Lambda clients read
//! them as they would read AWS's own.

use axum::Json;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

/// Why the platform could not start. Each message is complete on its own (no `source()`
/// chain to walk).
#[derive(Debug, thiserror::Error)]
pub enum PlatformError {
    /// A setting cannot work.
    #[error("{0}")]
    Options(String),
    /// The Invoke API could not listen.
    #[error("listening on {addr}: {reason}")]
    Bind {
        /// The address asked for.
        addr: std::net::SocketAddr,
        /// Why.
        reason: std::io::Error,
    },
}

impl PlatformError {
    /// Whether the caller can fix this by changing the platform's options, rather than it
    /// being the machine's fault (the address taken, no permission).
    pub fn caller_can_fix(&self) -> bool {
        matches!(self, Self::Options(_))
    }
}

/// An Invoke API refusal: the call never reached a function.
#[derive(Debug)]
pub enum InvokeApiError {
    /// No such function (404).
    ResourceNotFound(String),
    /// Every process busy and the queue full (429).
    TooManyRequests,
    /// The payload is not JSON (400).
    InvalidRequestContent(String),
    /// The payload is over Lambda's synchronous limit (413).
    RequestTooLarge(usize),
    /// A header or parameter has a value Lambda would refuse (400).
    InvalidParameterValue(String),
    /// No such operation (404).
    UnknownOperation(String),
    /// The platform itself failed, such as a function process that could not start (500).
    Service(String),
}

impl InvokeApiError {
    fn status(&self) -> StatusCode {
        match self {
            Self::ResourceNotFound(_) | Self::UnknownOperation(_) => StatusCode::NOT_FOUND,
            Self::TooManyRequests => StatusCode::TOO_MANY_REQUESTS,
            Self::InvalidRequestContent(_) | Self::InvalidParameterValue(_) => {
                StatusCode::BAD_REQUEST
            }
            Self::RequestTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Service(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The `x-amzn-ErrorType` header.
    fn error_type(&self) -> &'static str {
        match self {
            Self::ResourceNotFound(_) => "ResourceNotFoundException",
            Self::TooManyRequests => "TooManyRequestsException",
            Self::InvalidRequestContent(_) => "InvalidRequestContentException",
            Self::RequestTooLarge(_) => "RequestTooLargeException",
            Self::InvalidParameterValue(_) => "InvalidParameterValueException",
            Self::UnknownOperation(_) => "UnknownOperationException",
            Self::Service(_) => "ServiceException",
        }
    }

    /// The body's `Type`: Lambda blames the caller for every refusal but its own failure.
    fn fault(&self) -> &'static str {
        if matches!(self, Self::Service(_)) {
            "Service"
        } else {
            "User"
        }
    }

    fn message(&self) -> String {
        match self {
            Self::ResourceNotFound(arn) => format!("Function not found: {arn}"),
            Self::TooManyRequests => "Rate Exceeded.".into(),
            Self::InvalidRequestContent(why) => {
                format!("Could not parse request body into json: {why}")
            }
            Self::RequestTooLarge(limit) => format!(
                "Request must be smaller than {limit} bytes for the InvokeFunction operation"
            ),
            Self::InvalidParameterValue(why) | Self::Service(why) => why.clone(),
            Self::UnknownOperation(what) => format!("Unknown operation {what}"),
        }
    }
}

impl IntoResponse for InvokeApiError {
    fn into_response(self) -> Response {
        let mut body = serde_json::json!({ "Type": self.fault(), "message": self.message() });
        if matches!(self, Self::TooManyRequests) {
            body["Reason"] = "ReservedFunctionConcurrentInvocationLimitExceeded".into();
        }
        let mut response = (self.status(), Json(body)).into_response();
        let headers = response.headers_mut();
        headers.insert(
            "x-amzn-ErrorType",
            HeaderValue::from_static(self.error_type()),
        );
        if matches!(self, Self::TooManyRequests) {
            headers.insert("Retry-After", HeaderValue::from_static("1"));
        }
        response
    }
}

/// A Runtime API refusal, in the Runtime API's own error shape.
pub fn runtime_api_error(status: StatusCode, error_type: &str, message: &str) -> Response {
    (
        status,
        Json(serde_json::json!({ "errorType": error_type, "errorMessage": message })),
    )
        .into_response()
}
