//! The `lambda` invoker: stage functions on AWS Lambda through the Invoke API of the AWS
//! SDK (standard credential chain). An endpoint override points the same SDK at the local
//! platform, which is how the tests exercise this path.

use std::time::Instant;

use async_trait::async_trait;
use aws_config::BehaviorVersion;
use aws_config::Region;
use aws_sdk_lambda::config::ProvideCredentials;
use aws_sdk_lambda::config::http::HttpResponse;
use aws_sdk_lambda::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::{InvocationType, LogType};
use aws_smithy_http_client::tls;

use super::{BatchAnswer, InvokeOptions, Invoker, invoke_batch_with};
use crate::error::FunctionError;
use crate::lambda_api::{InvokeReply, api_error};
use seqless_wire::lambda::function_name;
use seqless_wire::{BatchEvent, InvocationMeta, StageEvent, StageKind, StageResult};

/// What to do when the SDK's credential chain finds nothing.
const NO_CREDENTIALS: &str = "no AWS credentials found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE, or run where an instance or task role applies";

/// The region when neither `--region` nor the environment or profile names one.
const DEFAULT_REGION: &str = "us-east-1";

/// Invokes functions through `aws-sdk-lambda`.
pub struct LambdaInvoker {
    client: aws_sdk_lambda::Client,
    endpoint: Option<String>,
    options: InvokeOptions,
}

/// A refusal by Lambda (throttling, unknown function) or a failure to reach it.
fn sdk_error<E>(function: &str, err: SdkError<E, HttpResponse>) -> FunctionError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    match &err {
        SdkError::ServiceError(service) => api_error(
            function,
            service.raw().status().as_u16(),
            service.err().code().unwrap_or("error"),
            service.err().message().unwrap_or(""),
        ),
        SdkError::ConstructionFailure(_) => FunctionError::permanent(format!(
            "invoking {function}: {}",
            DisplayErrorContext(&err)
        )),
        _ => FunctionError::retryable(format!(
            "invoking {function}: {}",
            DisplayErrorContext(&err)
        )),
    }
}

impl LambdaInvoker {
    /// Loads the AWS configuration (credentials, region: `region`, else the environment
    /// and profile, else `us-east-1`) and builds the client; `endpoint` overrides Lambda's.
    pub async fn connect(
        endpoint: Option<&str>,
        region: Option<&str>,
        options: InvokeOptions,
    ) -> Result<Self, FunctionError> {
        // rustls with ring: the SDK's default client would build aws-lc-sys from C.
        let http = aws_smithy_http_client::Builder::new()
            .tls_provider(tls::Provider::Rustls(
                tls::rustls_provider::CryptoMode::Ring,
            ))
            .build_https();
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .http_client(http)
            .timeout_config(
                aws_config::timeout::TimeoutConfig::builder()
                    .operation_timeout(options.timeout)
                    .build(),
            );
        if let Some(region) = region {
            loader = loader.region(Region::new(region.to_owned()));
        }
        // The loader's own region chain (environment, profile, IMDS) uses the client above.
        let shared = loader.load().await;
        // Resolved once here, so a machine without credentials is told so in one line at
        // startup rather than by the SDK's error chain at the first invocation.
        let credentials = match shared.credentials_provider() {
            Some(provider) => provider.provide_credentials().await.ok(),
            None => None,
        };
        if credentials.is_none() {
            return Err(FunctionError::permanent(NO_CREDENTIALS));
        }
        let mut config = aws_sdk_lambda::config::Builder::from(&shared);
        if shared.region().is_none() {
            config = config.region(Region::new(DEFAULT_REGION));
        }
        if let Some(url) = endpoint {
            config = config.endpoint_url(url);
        }
        Ok(Self {
            client: aws_sdk_lambda::Client::from_conf(config.build()),
            endpoint: endpoint.map(str::to_owned),
            options,
        })
    }
}

impl LambdaInvoker {
    /// One synchronous invocation of the function of `kind` with `event`.
    async fn call<T: serde::de::DeserializeOwned>(
        &self,
        kind: StageKind,
        event: &impl serde::Serialize,
    ) -> Result<(T, InvocationMeta), FunctionError> {
        let function = function_name(&self.options.function_prefix, kind);
        let body = serde_json::to_vec(event)
            .map_err(|e| FunctionError::permanent(format!("encoding the event: {e}")))?;
        let started = Instant::now();
        let output = self
            .client
            .invoke()
            .function_name(&function)
            .invocation_type(InvocationType::RequestResponse)
            .log_type(LogType::Tail)
            .payload(Blob::new(body))
            .send()
            .await
            .map_err(|e| sdk_error(&function, e))?;
        InvokeReply {
            function_error: output.function_error,
            log_result: output.log_result,
            payload: output.payload.map(Blob::into_inner).unwrap_or_default(),
        }
        .into_outcome(started.elapsed(), self.options.fallback_memory_mb)
    }
}

#[async_trait]
impl Invoker for LambdaInvoker {
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
        self.client
            .get_function()
            .function_name(&function)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| sdk_error(&function, e))
    }

    fn describe(&self) -> String {
        match &self.endpoint {
            Some(url) => format!("lambda ({url})"),
            None => "lambda".to_owned(),
        }
    }
}
