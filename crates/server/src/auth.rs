//! Optional bearer-token authentication. The token comes from the environment or a file,
//! never from a command-line argument (which any user can read in `ps`), and is compared in
//! constant time so response timing does not reveal how much of a guess was right.

use std::path::Path;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq;

use crate::error::ApiError;

/// The environment variable [`ApiToken::from_env_or_file`] reads.
pub const TOKEN_ENV: &str = "SEQLESS_API_TOKEN";

/// The secret every protected request must present as `Authorization: Bearer <token>`.
#[derive(Clone)]
pub struct ApiToken(Arc<str>);

impl std::fmt::Debug for ApiToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiToken(***)")
    }
}

/// Why no token could be loaded.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// The token file could not be read.
    #[error("reading the API token file {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The file or variable holds nothing but whitespace.
    #[error("the API token from {0} is empty")]
    Empty(String),
}

impl ApiToken {
    /// A token from a string, trimmed of surrounding whitespace (files end in a newline).
    pub fn new(token: &str, source: &str) -> Result<Self, TokenError> {
        let token = token.trim();
        if token.is_empty() {
            return Err(TokenError::Empty(source.to_owned()));
        }
        Ok(Self(Arc::from(token)))
    }

    /// The token in `file` if given, else in `$SEQLESS_API_TOKEN` if set, else none (auth off).
    pub fn from_env_or_file(file: Option<&Path>) -> Result<Option<Self>, TokenError> {
        if let Some(path) = file {
            let text = std::fs::read_to_string(path).map_err(|source| TokenError::Read {
                path: path.display().to_string(),
                source,
            })?;
            return Self::new(&text, &path.display().to_string()).map(Some);
        }
        match std::env::var(TOKEN_ENV) {
            Ok(text) => Self::new(&text, TOKEN_ENV).map(Some),
            Err(_) => Ok(None),
        }
    }

    /// Whether `presented` is the token, in time independent of where they differ (a length
    /// mismatch returns early, revealing the length only).
    pub fn matches(&self, presented: &[u8]) -> bool {
        bool::from(self.0.as_bytes().ct_eq(presented))
    }

    /// The secret itself, for a client that must send it (`seqless bench load`).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// Middleware: passes requests carrying the token, answers others 401 with
/// `WWW-Authenticate: Bearer`.
pub async fn require_token(
    State(token): State<ApiToken>,
    request: Request,
    next: Next,
) -> Response {
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| bearer_credentials(v.as_bytes()));
    match presented {
        Some(p) if token.matches(p) => next.run(request).await,
        Some(_) => unauthorized("the bearer token is not valid"),
        None => unauthorized("this server requires `Authorization: Bearer <token>`"),
    }
}

/// The credentials of a `Bearer` authorization. The scheme name is case-insensitive
/// (RFC 7235 §2.1), and some clients send `bearer`.
fn bearer_credentials(value: &[u8]) -> Option<&[u8]> {
    let (scheme, rest) = value.split_at_checked(7)?;
    (scheme.eq_ignore_ascii_case(b"bearer ")).then_some(rest)
}

fn unauthorized(message: &str) -> Response {
    let mut response = ApiError::new(
        axum::http::StatusCode::UNAUTHORIZED,
        "unauthorized",
        message,
    )
    .into_response();
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"seqless\""),
    );
    response
}
