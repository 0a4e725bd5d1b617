//! The `local` invoker: stage functions invoked through the Lambda Invoke API over plain
//! HTTP, as served by `seqless platform`.

use std::time::Instant;

use async_trait::async_trait;

use super::{BatchAnswer, InvokeOptions, Invoker, invoke_batch_with};
use crate::error::FunctionError;
use crate::lambda_api::{InvokeReply, api_error, api_error_message};
use seqless_wire::lambda::function_name;
use seqless_wire::{
    BatchEvent, FunctionEvent, InvocationMeta, Ping, StageEvent, StageKind, StageResult,
};

/// Invokes functions on a Lambda-compatible endpoint over HTTP, reusing connections.
pub struct LocalInvoker {
    client: reqwest::Client,
    endpoint: String,
    options: InvokeOptions,
}

impl LocalInvoker {
    /// A client for the Invoke API at `endpoint`, such as `http://127.0.0.1:9000` (no
    /// request is made yet).
    pub fn new(endpoint: &str, options: InvokeOptions) -> Result<Self, FunctionError> {
        let client = reqwest::Client::builder()
            .timeout(options.timeout)
            .build()
            .map_err(|e| FunctionError::permanent(format!("building the HTTP client: {e}")))?;
        Ok(Self {
            client,
            endpoint: endpoint.trim_end_matches('/').to_owned(),
            options,
        })
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.endpoint)
    }

    async fn refusal(function: &str, response: reqwest::Response) -> FunctionError {
        let status = response.status().as_u16();
        let error_type = response
            .headers()
            .get("x-amzn-ErrorType")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("error")
            .to_owned();
        let body = response.bytes().await.unwrap_or_default();
        api_error(function, status, &error_type, &api_error_message(&body))
    }

    /// A request that got no answer: a refused or reset connection, a timeout, a body cut
    /// short, all of which may pass; but a request that could not even be built (a bad
    /// endpoint URL) will fail the same way again.
    fn unreachable(&self, function: &str, err: &reqwest::Error) -> FunctionError {
        let message = format!("invoking {function} at {}: {err}", self.endpoint);
        if err.is_builder() {
            FunctionError::permanent(message)
        } else {
            FunctionError::retryable(message)
        }
    }

    /// Invokes the function of `kind` with a no-op [`Ping`]: the platform's own round trip
    /// (and, on a fresh process, its cold start).
    pub async fn ping(
        &self,
        kind: StageKind,
        ping: Ping,
    ) -> Result<(StageResult, InvocationMeta), FunctionError> {
        self.call(kind, &FunctionEvent::ping_json(ping)).await
    }

    async fn call<T: serde::de::DeserializeOwned>(
        &self,
        kind: StageKind,
        event: &impl serde::Serialize,
    ) -> Result<(T, InvocationMeta), FunctionError> {
        let function = function_name(&self.options.function_prefix, kind);
        let body = serde_json::to_vec(event)
            .map_err(|e| FunctionError::permanent(format!("encoding the event: {e}")))?;
        let started = Instant::now();
        let response = self
            .client
            .post(self.url(&format!("/2015-03-31/functions/{function}/invocations")))
            .header("X-Amz-Log-Type", "Tail")
            .header("Content-Type", "application/json")
            .body(body)
            .send()
            .await
            .map_err(|e| self.unreachable(&function, &e))?;
        if response.status() != reqwest::StatusCode::OK {
            return Err(Self::refusal(&function, response).await);
        }
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let function_error = header("X-Amz-Function-Error");
        let log_result = header("X-Amz-Log-Result");
        let payload = response
            .bytes()
            .await
            .map_err(|e| self.unreachable(&function, &e))?
            .to_vec();
        InvokeReply {
            function_error,
            log_result,
            payload,
        }
        .into_outcome(started.elapsed(), self.options.fallback_memory_mb)
    }
}

#[async_trait]
impl Invoker for LocalInvoker {
    async fn invoke(
        &self,
        event: &StageEvent,
    ) -> Result<(StageResult, InvocationMeta), FunctionError> {
        self.call(event.stage.kind, event).await
    }

    async fn invoke_batch(&self, batch: &BatchEvent) -> Result<BatchAnswer, FunctionError> {
        invoke_batch_with(batch, |kind| self.call(kind, batch)).await
    }

    fn takes_batches(&self) -> bool {
        true
    }

    async fn ready(&self) -> Result<(), FunctionError> {
        let function = function_name(&self.options.function_prefix, StageKind::Conv);
        let response = self
            .client
            .get(self.url(&format!("/2015-03-31/functions/{function}")))
            .send()
            .await
            .map_err(|e| self.unreachable(&function, &e))?;
        if response.status().is_success() {
            Ok(())
        } else {
            Err(Self::refusal(&function, response).await)
        }
    }

    fn describe(&self) -> String {
        format!("local ({})", self.endpoint)
    }
}
