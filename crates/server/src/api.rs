//! The request and response bodies of the HTTP API, with their OpenAPI schemas.

use std::collections::BTreeMap;

use base64::Engine as _;
use seqless_model::ModelConfig;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::ApiError;

/// `POST /v1/classify`: one text, as UTF-8 or as base64 of any bytes (exactly one of the two).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClassifyRequest {
    /// The text, UTF-8.
    #[schema(min_length = 1)]
    pub text: Option<String>,
    /// The text as standard base64 (with padding), for bytes that are not UTF-8.
    #[schema(min_length = 1)]
    pub text_base64: Option<String>,
    /// Include the serverless trace (every invocation, bytes, billing) in the reply.
    #[serde(default)]
    pub trace: bool,
}

/// `POST /v1/classify/batch`: several texts, as UTF-8 or as base64 (exactly one of the two
/// lists), classified concurrently and answered in order.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchRequest {
    /// The texts, UTF-8.
    #[schema(min_items = 1)]
    pub texts: Option<Vec<String>>,
    /// The texts as standard base64 (with padding).
    #[schema(min_items = 1)]
    pub texts_base64: Option<Vec<String>>,
    /// Include each text's serverless trace.
    #[serde(default)]
    pub trace: bool,
}

/// A classified text.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ClassifyResponse {
    /// The most likely label.
    pub label: String,
    /// Every label's probability (softmax of the logits).
    pub probabilities: BTreeMap<String, f32>,
    /// Time from admission to the answer at this server, in ms (queueing and batching
    /// included).
    pub latency_ms: f64,
    /// Function invocations the query took; 0 in monolithic mode, which runs no functions.
    pub invocations: u64,
    /// Estimated function cost of the query in USD; 0 in monolithic mode, where the server
    /// itself is the cost.
    pub cost_usd: f64,
    /// `monolithic` or `serverless`: how this server executes queries.
    pub mode: String,
    /// With `"trace": true` in serverless mode: the coordinator's trace (plan, splits, every
    /// invocation with stage, cold/warm, durations and bytes, totals, cost breakdown).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub trace: Option<serde_json::Value>,
}

/// The results of a batch, in the order of the request's texts.
#[derive(Debug, Serialize, ToSchema)]
pub struct BatchResponse {
    /// One result per text, in order.
    pub results: Vec<ClassifyResponse>,
}

/// `GET /v1/models`: what this server serves.
#[derive(Debug, Serialize, ToSchema)]
pub struct ModelsResponse {
    /// The served models (one).
    pub models: Vec<ModelInfo>,
}

/// One served model and how it is executed.
#[derive(Debug, Serialize, ToSchema)]
pub struct ModelInfo {
    /// The model directory's name.
    pub name: String,
    /// Class labels, in logit order.
    pub labels: Vec<String>,
    /// Longest accepted text, in bytes.
    pub max_len: usize,
    /// The model's `config.json`.
    #[schema(value_type = Object)]
    pub config: ModelConfig,
    /// `monolithic` or `serverless`.
    pub mode: String,
    /// Serverless only: plan kind, splits, limits, store and platform.
    #[schema(value_type = Option<Object>)]
    pub plan: Option<serde_json::Value>,
}

/// `GET /healthz` and `GET /readyz` when all is well.
#[derive(Debug, Serialize, ToSchema)]
pub struct StatusResponse {
    /// `ok` (process up) or `ready` (dependencies answer).
    pub status: String,
    /// Readiness only: each dependency checked and its state.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub checks: BTreeMap<String, String>,
}

/// Decodes the one input a request carries (`what` names the fields in messages).
fn one_of<T>(plain: Option<T>, encoded: Option<T>, what: [&str; 2]) -> Result<Input<T>, ApiError> {
    match (plain, encoded) {
        (Some(t), None) => Ok(Input::Plain(t)),
        (None, Some(t)) => Ok(Input::Base64(t)),
        (Some(_), Some(_)) => Err(ApiError::invalid(
            "invalid_request",
            format!("give either `{}` or `{}`, not both", what[0], what[1]),
        )),
        (None, None) => Err(ApiError::invalid(
            "invalid_request",
            format!("missing field: give `{}` or `{}`", what[0], what[1]),
        )),
    }
}

enum Input<T> {
    Plain(T),
    Base64(T),
}

fn decode_base64(text: &str) -> Result<Vec<u8>, ApiError> {
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .map_err(|e| ApiError::invalid("bad_base64", format!("not standard base64: {e}")))
}

impl ClassifyRequest {
    /// The query's bytes.
    pub fn bytes(self) -> Result<Vec<u8>, ApiError> {
        match one_of(self.text, self.text_base64, ["text", "text_base64"])? {
            Input::Plain(t) => Ok(t.into_bytes()),
            Input::Base64(t) => decode_base64(&t).map_err(|e| e.at("text_base64")),
        }
    }
}

impl BatchRequest {
    /// Every query's bytes, in order.
    pub fn bytes(self) -> Result<Vec<Vec<u8>>, ApiError> {
        match one_of(self.texts, self.texts_base64, ["texts", "texts_base64"])? {
            Input::Plain(texts) => Ok(texts.into_iter().map(String::into_bytes).collect()),
            Input::Base64(texts) => texts
                .iter()
                .enumerate()
                .map(|(i, t)| decode_base64(t).map_err(|e| e.at(&format!("texts_base64[{i}]"))))
                .collect(),
        }
    }
}
