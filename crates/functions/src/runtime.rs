//! The function process: the stage handler behind the Lambda Runtime API, the same binary
//! on AWS Lambda (`provided.al2023`, as `bootstrap`) and on the local platform.
//!
//! The model and store are loaded once, at init, from the environment. An init failure
//! is posted to the Runtime API's `/runtime/init/error` here, because `lambda_runtime`
//! 1.5 posts init errors only for SnapStart hooks, and the process then exits non-zero.
//! On AWS the store's password comes from Secrets Manager at init ([`crate::store_secret`]).

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use cpu_time::ProcessTime;
use lambda_runtime::{Diagnostic, LambdaEvent, service_fn};
use seqless_model::TfilmModel;
use seqless_store::{StoreOptions, open_store};

use seqless_wire::faults::{FAULT_CONTEXT_KEY, FAULTS_ENV, INJECTED_ERROR, WorkerFault};
use seqless_wire::lambda::LambdaErrorBody;
use seqless_wire::{BatchOutcome, BatchResult, FunctionEvent, InitTimes, StageResult};

use crate::error::FunctionError;
use crate::handler::{FunctionContext, handle};
pub use crate::store_secret::STORE_SECRET_ENV;
use crate::store_secret::store_url_with_secret;

/// The model directory (in the zip, a layer, or on disk locally).
pub const MODEL_ENV: &str = "SEQLESS_MODEL";
/// The store URL; Redis, since function processes share no memory.
pub const STORE_ENV: &str = "SEQLESS_STORE";
/// The store key prefix, which must match the coordinator's (default `seqless:`).
pub const KEY_PREFIX_ENV: &str = "SEQLESS_KEY_PREFIX";
/// Expiry of the keys the functions write, seconds (default 300).
pub const TTL_ENV: &str = "SEQLESS_TTL_SECS";
/// The variables a deployment sets for the function (the local platform sets the same
/// ones, bar the secret); deploy/template.yaml is checked against this list.
pub const CONFIG_ENV: [&str; 5] = [
    MODEL_ENV,
    STORE_ENV,
    STORE_SECRET_ENV,
    KEY_PREFIX_ENV,
    TTL_ENV,
];
/// The Lambda runtime the function binary targets: Amazon Linux 2023, glibc 2.34.
pub const LAMBDA_RUNTIME: &str = "provided.al2023";
/// The executable an OS-only Lambda runtime starts, with no arguments; the deployment zip
/// ships this binary under that name.
pub const LAMBDA_BOOTSTRAP: &str = "bootstrap";
/// Microseconds since the Unix epoch when the platform spawned the process, so the process
/// can tell its start-up apart from its model load (set by the local platform only).
pub const SPAWNED_AT_ENV: &str = "SEQLESS_SPAWNED_AT_US";

/// Environment variables `lambda_runtime` requires (it panics without them).
const LAMBDA_ENV: [&str; 4] = [
    "AWS_LAMBDA_RUNTIME_API",
    "AWS_LAMBDA_FUNCTION_NAME",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
    "AWS_LAMBDA_FUNCTION_VERSION",
];

/// Why the function process stopped.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// Not started by a Lambda runtime (no Runtime API to talk to).
    #[error(
        "{0} is not set: `seqless function` runs under a Lambda Runtime API (AWS Lambda, or `seqless platform` locally)"
    )]
    NotUnderLambda(&'static str),
    /// The init phase failed; it was reported to the Runtime API.
    #[error("init failed: {0}")]
    Init(FunctionError),
    /// The runtime loop ended with an error.
    #[error("lambda runtime: {0}")]
    Runtime(lambda_runtime::Error),
}

/// One function instance: the stage context and, until the first result takes them, its
/// init times.
struct Instance {
    context: FunctionContext,
    init: Mutex<Option<InitTimes>>,
    /// Whether the platform injects faults ([`FAULTS_ENV`], set by `seqless platform`
    /// only): only then does the instance act on a fault in an invocation's client context.
    faults: bool,
}

impl Instance {
    /// The fault the platform drew for this invocation, if it injects faults.
    fn fault(&self, context: &lambda_runtime::Context) -> Option<WorkerFault> {
        if !self.faults {
            return None;
        }
        let text = context
            .client_context
            .as_ref()?
            .custom
            .get(FAULT_CONTEXT_KEY)?;
        match text.parse() {
            Ok(fault) => Some(fault),
            Err(e) => {
                tracing::warn!(error = %e, "ignoring a fault this function does not know");
                None
            }
        }
    }
}

fn micros_since_epoch(t: SystemTime) -> Option<u64> {
    t.duration_since(UNIX_EPOCH)
        .ok()
        .and_then(|d| u64::try_from(d.as_micros()).ok())
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// Reads the environment and loads the model and store: the instance's cold start.
async fn init() -> Result<FunctionContext, FunctionError> {
    let model_dir = env(MODEL_ENV).map(PathBuf::from).ok_or_else(|| {
        FunctionError::permanent(format!("{MODEL_ENV} is not set (the model directory)"))
    })?;
    let mut store_url = env(STORE_ENV).ok_or_else(|| {
        FunctionError::permanent(format!("{STORE_ENV} is not set (the Redis URL)"))
    })?;
    if store_url == "memory" {
        return Err(FunctionError::permanent(format!(
            "{STORE_ENV}=memory: function processes share no memory; give a redis:// URL"
        )));
    }
    let ttl_secs = match env(TTL_ENV) {
        Some(v) => v.parse::<u64>().map_err(|_| {
            FunctionError::permanent(format!("{TTL_ENV}={v:?} is not a number of seconds"))
        })?,
        None => 300,
    };
    if let Some(secret_id) = env(STORE_SECRET_ENV) {
        store_url = store_url_with_secret(&store_url, &secret_id).await?;
    }
    let options = StoreOptions {
        key_prefix: env(KEY_PREFIX_ENV).unwrap_or_else(|| StoreOptions::default().key_prefix),
        ..StoreOptions::default()
    };
    let load = {
        let dir = model_dir.clone();
        tokio::task::spawn_blocking(move || TfilmModel::load_fingerprinted(&dir))
    };
    let (model, store) = tokio::join!(load, open_store(&store_url, options));
    let (model, fingerprint) =
        model.map_err(|e| FunctionError::permanent(format!("model load task failed: {e}")))??;
    tracing::info!(model = %model_dir.display(), %fingerprint, "model loaded");
    Ok(FunctionContext {
        model: Arc::new(model),
        fingerprint,
        store: store?,
        ttl: Duration::from_secs(ttl_secs.max(1)),
    })
}

/// Posts an init failure where Lambda expects it, so the caller sees the reason rather
/// than a bare exit.
async fn report_init_error(error: &FunctionError) {
    let body = match serde_json::to_vec(&LambdaErrorBody::from(error)) {
        Ok(body) => body,
        Err(e) => {
            tracing::error!(error = %e, "could not encode the init error");
            return;
        }
    };
    let sent = async {
        let client = lambda_runtime_api_client::Client::builder().build()?;
        let request = lambda_runtime_api_client::build_request()
            .method("POST")
            .uri("/2018-06-01/runtime/init/error")
            .header("Lambda-Runtime-Function-Error-Type", "Runtime.InitError")
            .header("Content-Type", "application/json")
            .body(lambda_runtime_api_client::body::Body::from(body))?;
        client.call(request).await?;
        Ok::<(), lambda_runtime_api_client::BoxError>(())
    };
    if let Err(e) = sent.await {
        tracing::error!(error = %e, "could not report the init error to the Runtime API");
    }
}

/// What the function answers: a stage's result, with a ping's padding if it asked for
/// some, or a batch's outcomes.
#[derive(serde::Serialize)]
#[serde(untagged)]
enum Answer {
    Stage {
        #[serde(flatten)]
        result: StageResult,
        #[serde(skip_serializing_if = "Option::is_none")]
        padding: Option<String>,
    },
    Batch(BatchResult),
}

/// A stage's result with the CPU this process spent on it since `cpu`.
fn with_cpu(result: StageResult, cpu: ProcessTime) -> StageResult {
    StageResult {
        cpu_ms: Some(cpu.elapsed().as_secs_f64() * 1e3),
        ..result
    }
}

async fn invoke(
    instance: &Instance,
    event: serde_json::Value,
    fault: Option<WorkerFault>,
) -> Result<Answer, Diagnostic> {
    let to_diagnostic = |err: FunctionError| {
        let body = LambdaErrorBody::from(&err);
        Diagnostic {
            error_type: body.error_type,
            error_message: body.error_message,
        }
    };
    if let Some(WorkerFault::Delay(delay)) = fault {
        tracing::info!(?delay, "injected fault: holding the invocation back");
        tokio::time::sleep(delay).await;
    }
    // This process serves one invocation at a time, so its CPU clock over the invocation
    // is the invocation's CPU, every thread included.
    let cpu = ProcessTime::now();
    let event = FunctionEvent::from_json(event).map_err(|e| to_diagnostic(e.into()))?;
    let mut padding = None;
    let mut batch = None;
    let outcome = match event {
        FunctionEvent::Ping(ping) => {
            tokio::time::sleep(Duration::from_millis(ping.hold_ms)).await;
            padding = (ping.reply_bytes > 0).then(|| "x".repeat(ping.reply_bytes));
            Ok(StageResult::default())
        }
        FunctionEvent::Stage(event) => handle(&instance.context, *event)
            .await
            .map(|result| with_cpu(result, cpu)),
        FunctionEvent::Batch(events) => {
            let mut outcomes = Vec::with_capacity(events.batch.len());
            for event in events.batch {
                let cpu = ProcessTime::now();
                outcomes.push(match handle(&instance.context, event).await {
                    Ok(result) => BatchOutcome::Ok(with_cpu(result, cpu)),
                    Err(err) => BatchOutcome::Error(LambdaErrorBody::from(&err)),
                });
            }
            batch = Some(outcomes);
            Ok(StageResult::default())
        }
    };
    // Crash and error come after the work, as the harder case for the caller: the outputs
    // are written and the answer is lost, so a retry runs the stage again over them.
    match fault {
        Some(WorkerFault::Crash) => {
            tracing::warn!("injected fault: the process aborts before answering");
            std::process::abort();
        }
        Some(WorkerFault::Error) => {
            return Err(to_diagnostic(FunctionError::retryable(INJECTED_ERROR)));
        }
        Some(WorkerFault::Delay(_)) | None => {}
    }
    let init = instance.init.lock().map(|mut i| i.take()).unwrap_or(None);
    if let Some(outcomes) = batch {
        return Ok(Answer::Batch(BatchResult {
            batch: outcomes,
            init,
        }));
    }
    let mut result = outcome.map_err(to_diagnostic)?;
    result.init = init;
    Ok(Answer::Stage { result, padding })
}

/// Runs the function process until the Runtime API goes away. Call from a Tokio runtime.
pub async fn run() -> Result<(), RuntimeError> {
    let entered = SystemTime::now();
    let started = Instant::now();
    if let Some(missing) = LAMBDA_ENV.iter().find(|v| env(v).is_none()) {
        let err = RuntimeError::NotUnderLambda(missing);
        if env(LAMBDA_ENV[0]).is_some() {
            report_init_error(&FunctionError::permanent(err.to_string())).await;
        }
        return Err(err);
    }
    let process_start_ms = env(SPAWNED_AT_ENV)
        .and_then(|v| v.parse::<u64>().ok())
        .zip(micros_since_epoch(entered))
        .map(|(spawned, entered)| entered.saturating_sub(spawned) as f64 / 1e3);
    let context = match init().await {
        Ok(context) => context,
        Err(err) => {
            report_init_error(&err).await;
            return Err(RuntimeError::Init(err));
        }
    };
    let init = InitTimes {
        process_start_ms,
        model_load_ms: started.elapsed().as_secs_f64() * 1e3,
    };
    tracing::info!(?init, "function instance initialised");
    let instance = Arc::new(Instance {
        context,
        init: Mutex::new(Some(init)),
        faults: env(FAULTS_ENV).is_some(),
    });
    lambda_runtime::run(service_fn(move |event: LambdaEvent<serde_json::Value>| {
        let instance = instance.clone();
        async move {
            let fault = instance.fault(&event.context);
            invoke(&instance, event.payload, fault).await
        }
    }))
    .await
    .map_err(RuntimeError::Runtime)
}
