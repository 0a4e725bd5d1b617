//! One synchronous invocation: get a process, hand it the event, wait for its answer
//! within the timeout, and turn what happened into Lambda's answer and billing record.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use seqless_wire::lambda::{LambdaErrorBody, Report};
use seqless_wire::{InitTimes, billed_ms};
use tokio::sync::oneshot;

use crate::errors::InvokeApiError;
use crate::faults::Drawn;
use crate::logs;
use crate::metrics::{InvocationSample, PlatformMetrics};
use crate::options::{FunctionSpec, INIT_TIMEOUT};
use crate::pool::{AcquireError, Pool};
use crate::worker::{Completion, Finished, Job};

/// What the caller gets back: Lambda's payload and headers.
pub struct Invoked {
    /// Lambda's request id.
    pub request_id: String,
    /// The result, or the error JSON when `function_error`.
    pub payload: Bytes,
    /// Whether the function failed (`X-Amz-Function-Error: Unhandled`).
    pub function_error: bool,
    /// The log tail ending with the REPORT line (which holds the billing record).
    pub log_tail: String,
    /// The process that ran it.
    pub pid: u32,
    /// The function's own split of its cold start, when it reported one.
    pub init: Option<InitTimes>,
}

/// The part of a result the platform reads: a cold instance's init split.
#[derive(serde::Deserialize)]
struct ColdResult {
    init: Option<InitTimes>,
}

fn failed(error_type: &str, message: String) -> (Bytes, bool) {
    let body = LambdaErrorBody::new(error_type, message);
    (
        Bytes::from(serde_json::to_vec(&body).unwrap_or_default()),
        true,
    )
}

/// How the wait for the process ended.
enum End {
    Finished(Finished),
    /// The process never finished its init (or the platform lost track of the job).
    Stuck {
        delivered: Option<Instant>,
        log_mark: u64,
    },
    /// The process exited before it could take the job.
    Lost,
}

/// Runs one invocation of `function` to its end.
pub async fn invoke(
    pool: &Pool,
    metrics: &PlatformMetrics,
    function: &Arc<FunctionSpec>,
    payload: Bytes,
) -> Result<Invoked, InvokeApiError> {
    let timeout = pool.options().timeout;
    let drawn = pool.faults().and_then(|f| f.draw(&function.name));
    if let Some(fault) = drawn {
        metrics.fault(&function.name, fault.as_str());
    }
    let fault = match drawn {
        Some(Drawn::Throttle) => {
            metrics.throttled(&function.name);
            return Err(InvokeApiError::TooManyRequests);
        }
        Some(Drawn::Worker(fault)) => Some(fault),
        None => None,
    };
    let acquired = match pool.acquire(function, timeout).await {
        Ok(a) => a,
        Err(AcquireError::Throttled) => {
            metrics.throttled(&function.name);
            return Err(InvokeApiError::TooManyRequests);
        }
        Err(AcquireError::Spawn(why)) => return Err(InvokeApiError::Service(why)),
    };
    let worker = acquired.worker;
    let request_id = uuid::Uuid::new_v4().to_string();
    let (done, outcome) = oneshot::channel();
    let job = Job::new(request_id.clone(), payload, timeout, fault, done);
    // The process times its handler itself (from delivery); this bounds the rest.
    let patience = timeout + INIT_TIMEOUT;
    let end = match worker.assign(job) {
        Err(_) => End::Lost,
        Ok(()) => match tokio::time::timeout(patience, outcome).await {
            Ok(Ok(finished)) => End::Finished(finished),
            Ok(Err(_)) => End::Lost,
            Err(_) => {
                let (delivered, log_mark) = worker.take_job().unwrap_or((None, 0));
                End::Stuck {
                    delivered,
                    log_mark,
                }
            }
        },
    };
    // Read before any kill: /proc forgets a process once it is reaped.
    let max_memory_used_mb = worker.max_memory_mb();
    let init = acquired.cold.then(|| worker.init_duration());
    let timed_out = || {
        failed(
            "Sandbox.Timedout",
            format!(
                "RequestId: {request_id} Error: Task timed out after {:.2} seconds",
                timeout.as_secs_f64()
            ),
        )
    };
    let exited = |status: &str| {
        failed(
            "Runtime.ExitError",
            format!("RequestId: {request_id} Error: Runtime exited with error: {status}"),
        )
    };
    let (delivered, at, log_mark, outcome, (payload, function_error)) = match end {
        End::Finished(f) => {
            let (name, reply) = match f.completion {
                Completion::Response(body) => ("success", (body, false)),
                Completion::Error(e) => (
                    "error",
                    (
                        Bytes::from(serde_json::to_vec(&e).unwrap_or_default()),
                        true,
                    ),
                ),
                Completion::Exited(status) => ("crash", exited(&status)),
                Completion::TimedOut => ("timeout", timed_out()),
            };
            (f.delivered, f.at, f.log_mark, name, reply)
        }
        End::Stuck {
            delivered,
            log_mark,
        } => (delivered, Instant::now(), log_mark, "timeout", timed_out()),
        End::Lost => (
            None,
            Instant::now(),
            0,
            "crash",
            exited("the process exited before taking the invocation"),
        ),
    };
    match outcome {
        "success" | "error" => pool.release(worker.clone()),
        _ => pool.discard(&worker),
    }
    let duration = delivered.map_or(Duration::ZERO, |d| at.saturating_duration_since(d));
    if let (Some(faults), None, "success") = (pool.faults(), fault, outcome) {
        faults.fault_free(&function.name, duration);
    }
    let report = Report {
        request_id: request_id.clone(),
        duration_ms: duration.as_secs_f64() * 1e3,
        billed_ms: billed_ms(duration),
        memory_mb: function.memory_mb,
        max_memory_used_mb,
        init_ms: init.map(|d| d.as_secs_f64() * 1e3),
    };
    let init_split = if acquired.cold && !function_error {
        serde_json::from_slice::<ColdResult>(&payload)
            .ok()
            .and_then(|r| r.init)
    } else {
        None
    };
    metrics.invocation(&InvocationSample {
        function: &function.name,
        outcome,
        duration_s: duration.as_secs_f64(),
        billed_ms: report.billed_ms,
        max_memory_mb: max_memory_used_mb,
        init_s: init.map(|d| d.as_secs_f64()),
        init_split_s: init_split
            .map(|i| (i.process_start_ms.map(|ms| ms / 1e3), i.model_load_ms / 1e3)),
    });
    let log_tail = logs::tail(
        &request_id,
        &worker.log_since(log_mark),
        &report.to_string(),
    );
    Ok(Invoked {
        request_id,
        payload,
        function_error,
        log_tail,
        pid: worker.pid,
        init: init_split,
    })
}
