//! The request and response bodies of the HTTP API, with their OpenAPI schemas.

use std::collections::BTreeMap;

use base64::Engine as _;
use seqless_model::ModelConfig;
use serde::{Deserialize, Serialize};
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{
    AdditionalProperties, ArrayBuilder, KnownFormat, ObjectBuilder, OneOfBuilder, Schema,
    SchemaFormat, Type,
};
use utoipa::{PartialSchema, ToSchema};

use crate::error::ApiError;

/// `POST /v1/classify`: one text, as UTF-8 or as base64 of any bytes (exactly one of the two).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClassifyRequest {
    /// The text, UTF-8.
    #[serde(default, deserialize_with = "present")]
    pub text: Option<String>,
    /// The text as standard base64 (with padding), for bytes that are not UTF-8.
    #[serde(default, deserialize_with = "present")]
    pub text_base64: Option<String>,
    /// Include the serverless trace (every invocation, bytes, billing) in the reply.
    #[serde(default)]
    pub trace: bool,
}

/// `POST /v1/classify/batch`: several texts, as UTF-8 or as base64 (exactly one of the two
/// lists), classified concurrently and answered in order.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchRequest {
    /// The texts, UTF-8.
    #[serde(default, deserialize_with = "present")]
    pub texts: Option<Vec<String>>,
    /// The texts as standard base64 (with padding).
    #[serde(default, deserialize_with = "present")]
    pub texts_base64: Option<Vec<String>>,
    /// Include each text's serverless trace.
    #[serde(default)]
    pub trace: bool,
}

/// A request body that must be a JSON object, as the OpenAPI document says. serde's derived
/// structs also accept an array of their fields in order, which would take `["hi"]` for
/// `{"text": "hi"}`; this refuses anything but an object (422), then reads the fields.
#[derive(Debug)]
pub struct Object<T>(pub T);

impl<'de, T: serde::de::DeserializeOwned> Deserialize<'de> for Object<T> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let fields = serde_json::Map::<String, serde_json::Value>::deserialize(deserializer)?;
        T::deserialize(serde_json::Value::Object(fields))
            .map(Object)
            .map_err(serde::de::Error::custom)
    }
}

/// An optional field that, when present, must hold a value: `null` is refused like any
/// other wrong type, as the OpenAPI document says.
fn present<'de, D: serde::Deserializer<'de>, T: Deserialize<'de>>(
    deserializer: D,
) -> Result<Option<T>, D::Error> {
    T::deserialize(deserializer).map(Some)
}

/// The schema of a request that carries its input in exactly one of two fields (plain or
/// base64) plus an optional `trace` flag, and nothing else: a `oneOf` of the two shapes, so
/// the document refuses exactly what the server refuses.
fn one_input_schema(
    plain: (&str, &str),
    encoded: (&str, &str),
    item: &dyn Fn(bool) -> RefOr<Schema>,
) -> RefOr<Schema> {
    let shape = |(field, description): (&str, &str), base64: bool| {
        ObjectBuilder::new()
            .property(field, item(base64))
            .required(field)
            .property(
                "trace",
                ObjectBuilder::new()
                    .schema_type(Type::Boolean)
                    .default(Some(false.into()))
                    .description(Some(
                        "Include the serverless trace (invocations, bytes, billing) in the reply.",
                    )),
            )
            .additional_properties(Some(AdditionalProperties::<Schema>::FreeForm(false)))
            .description(Some(description))
    };
    OneOfBuilder::new()
        .item(shape(plain, false))
        .item(shape(encoded, true))
        .into()
}

/// A non-empty string; base64 ones are marked `format: byte`.
fn text_schema(base64: bool) -> RefOr<Schema> {
    let mut text = ObjectBuilder::new()
        .schema_type(Type::String)
        .min_length(Some(1));
    if base64 {
        text = text.format(Some(SchemaFormat::KnownFormat(KnownFormat::Byte)));
    }
    text.into()
}

impl PartialSchema for ClassifyRequest {
    fn schema() -> RefOr<Schema> {
        one_input_schema(
            ("text", "The text, UTF-8."),
            (
                "text_base64",
                "The text's bytes as standard base64, for bytes that are not UTF-8.",
            ),
            &text_schema,
        )
    }
}

impl ToSchema for ClassifyRequest {}

impl BatchRequest {
    /// The schema, with the server's bound on texts per batch when known.
    pub fn schema_with_max(max_texts: Option<usize>) -> RefOr<Schema> {
        one_input_schema(
            ("texts", "The texts, UTF-8."),
            ("texts_base64", "The texts' bytes as standard base64."),
            &|base64| {
                ArrayBuilder::new()
                    .items(text_schema(base64))
                    .min_items(Some(1))
                    .max_items(max_texts)
                    .into()
            },
        )
    }
}

impl PartialSchema for BatchRequest {
    fn schema() -> RefOr<Schema> {
        Self::schema_with_max(None)
    }
}

impl ToSchema for BatchRequest {}

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
