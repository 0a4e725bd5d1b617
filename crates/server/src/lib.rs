//! The master node as an HTTP service (`seqless serve`).
//!
//! A [`Service`] puts an [`Engine`] (the monolithic model, optionally with dynamic
//! [`Batching`], or a serverless [`Coordinator`](seqless_coordinator::Coordinator) with any
//! store and platform) behind an axum router ([`router`]) with:
//!
//! - `POST /v1/classify`, `POST /v1/classify/batch`, `GET /v1/models`, `GET /healthz`,
//!   `GET /readyz`, `GET /metrics` (OpenMetrics text), `GET /openapi.json` ([`document`]);
//! - [`ServiceLimits`]: body size (413), in-flight bound (503 + `Retry-After`), a memory
//!   budget over each query's estimated peak ([`MemoryLimits`]: a bounded queue, then 503 +
//!   `Retry-After`; 413 for a query over the whole budget), per-request deadline (504),
//!   batch size (422);
//! - one JSON error shape for every failure ([`ApiError`]), including axum's own rejections,
//!   unknown routes (404) and methods (405), and panics (500);
//! - optional bearer-token auth ([`ApiToken`]) on everything but `/healthz`;
//! - graceful shutdown ([`serve`], [`shutdown_signal`]) that drains admitted queries.

mod admission;
mod api;
mod auth;
mod batcher;
mod engine;
mod error;
#[cfg(feature = "clap")]
mod limits_args;
mod metrics;
mod openapi;
mod routes;
mod serve;
mod service;

pub use admission::{DEFAULT_BUDGET_FRACTION, MemoryLimits, machine_memory_bytes};
pub use api::{BatchRequest, BatchResponse, ClassifyRequest, ClassifyResponse, ModelsResponse};
pub use auth::{ApiToken, TOKEN_ENV, TokenError};
pub use batcher::Batching;
pub use engine::Engine;
pub use error::ApiError;
#[cfg(feature = "clap")]
pub use limits_args::LimitsArgs;
pub use metrics::Metrics;
pub use openapi::{ApiDoc, document};
pub use routes::router;
pub use serve::{serve, shutdown_signal};
pub use service::{Service, ServiceLimits};
