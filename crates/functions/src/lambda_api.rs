//! The parts of the Lambda Invoke API that both of its sides here share: the local platform
//! writes them, and the `local` and `lambda` invokers read them, so one definition keeps
//! the two sides (and real AWS Lambda) in agreement.

use std::fmt;
use std::time::Duration;

use base64::Engine as _;
use seqless_plan::StageKind;
use serde::{Deserialize, Serialize};

use crate::error::{ErrorKind, FunctionError};
use crate::event::{InvocationMeta, StageResult};

/// The default prefix of the function names: `seqless-conv`, `seqless-tfilm`, ...
pub const DEFAULT_FUNCTION_PREFIX: &str = "seqless-";

/// Every stage kind, each served by its own function so that each can have its own
/// memory size (Lambda sizes memory per function).
pub const FUNCTION_KINDS: [StageKind; 4] = [
    StageKind::Conv,
    StageKind::Tfilm,
    StageKind::Head,
    StageKind::Classifier,
];

/// The function that runs stages of `kind`.
pub fn function_name(prefix: &str, kind: StageKind) -> String {
    format!("{prefix}{}", kind.as_str())
}

/// `errorType` of a handler error that may succeed when tried again.
pub const RETRYABLE_ERROR_TYPE: &str = "Retryable";
/// `errorType` of a handler error that will repeat.
pub const PERMANENT_ERROR_TYPE: &str = "Permanent";

/// A function error as Lambda returns it (and as the Runtime API takes it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// `Retryable` or `Permanent` from our handler; Lambda's own (`Runtime.ExitError`,
    /// `Sandbox.Timedout`, ...) when the platform failed the invocation.
    #[serde(rename = "errorType")]
    pub error_type: String,
    /// What happened.
    #[serde(rename = "errorMessage")]
    pub error_message: String,
}

impl ErrorBody {
    /// An error of the platform's own making, such as a crash or a timeout.
    pub fn new(error_type: &str, error_message: impl Into<String>) -> Self {
        Self {
            error_type: error_type.to_owned(),
            error_message: error_message.into(),
        }
    }

    /// Back to a [`FunctionError`]: our handler's kinds are kept; a failure of the runtime
    /// or the sandbox (a crash, a timeout) is worth a retry on a fresh instance; anything
    /// else is a function bug that would repeat.
    pub fn into_function_error(self) -> FunctionError {
        let kind = match self.error_type.as_str() {
            RETRYABLE_ERROR_TYPE => ErrorKind::Retryable,
            PERMANENT_ERROR_TYPE => ErrorKind::Permanent,
            t if t.starts_with("Runtime.") || t.starts_with("Sandbox.") => ErrorKind::Retryable,
            _ => ErrorKind::Permanent,
        };
        let message = match self.error_type.as_str() {
            RETRYABLE_ERROR_TYPE | PERMANENT_ERROR_TYPE => self.error_message,
            other => format!("{other}: {}", self.error_message),
        };
        FunctionError { kind, message }
    }
}

impl From<&FunctionError> for ErrorBody {
    fn from(err: &FunctionError) -> Self {
        let error_type = match err.kind {
            ErrorKind::Retryable => RETRYABLE_ERROR_TYPE,
            ErrorKind::Permanent => PERMANENT_ERROR_TYPE,
        };
        Self::new(error_type, err.message.clone())
    }
}

/// Lambda's `REPORT` log line, the one place where Lambda tells a caller what it billed:
/// `REPORT RequestId: ID\tDuration: 1.23 ms\tBilled Duration: 2 ms\tMemory Size: 128 MB\t`
/// `Max Memory Used: 20 MB\tInit Duration: 30.12 ms\t` (the last field only when cold).
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// The invocation's request id.
    pub request_id: String,
    /// Handler time.
    pub duration_ms: f64,
    /// What was billed for it.
    pub billed_ms: u64,
    /// The function's memory size.
    pub memory_mb: u32,
    /// Peak resident memory of the instance.
    pub max_memory_used_mb: u64,
    /// Start-up time of a cold instance; absent when warm.
    pub init_ms: Option<f64>,
}

impl Report {
    /// Billed duration as Lambda rounds it: up to the next millisecond, at least 1 ms.
    pub fn billed(duration: Duration) -> u64 {
        u64::try_from(duration.as_nanos().div_ceil(1_000_000))
            .unwrap_or(u64::MAX)
            .max(1)
    }

    /// Reads a REPORT line; `None` for any other line.
    pub fn parse(line: &str) -> Option<Self> {
        let rest = line.trim_end().strip_prefix("REPORT ")?;
        let mut report = Self {
            request_id: String::new(),
            duration_ms: 0.0,
            billed_ms: 0,
            memory_mb: 0,
            max_memory_used_mb: 0,
            init_ms: None,
        };
        for field in rest.split('\t').filter(|f| !f.trim().is_empty()) {
            let (name, value) = field.split_once(": ")?;
            let number = value.split_whitespace().next().unwrap_or("");
            match name.trim() {
                "RequestId" => report.request_id = value.trim().to_owned(),
                "Duration" => report.duration_ms = number.parse().ok()?,
                "Billed Duration" => report.billed_ms = number.parse().ok()?,
                "Memory Size" => report.memory_mb = number.parse().ok()?,
                "Max Memory Used" => report.max_memory_used_mb = number.parse().ok()?,
                "Init Duration" => report.init_ms = Some(number.parse().ok()?),
                // Fields Lambda may add (Restore Duration, XRAY TraceId, ...) are not billing.
                _ => {}
            }
        }
        Some(report)
    }

    /// The last REPORT line of a log tail.
    pub fn find_in_log(log: &str) -> Option<Self> {
        log.lines().rev().find_map(Self::parse)
    }

    /// What the trace needs of it.
    pub fn meta(&self) -> InvocationMeta {
        InvocationMeta {
            cold: self.init_ms.is_some(),
            init_ms: self.init_ms.unwrap_or(0.0),
            duration_ms: self.duration_ms,
            billed_ms: self.billed_ms,
            memory_mb: self.memory_mb,
        }
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "REPORT RequestId: {}\tDuration: {:.2} ms\tBilled Duration: {} ms\tMemory Size: {} MB\tMax Memory Used: {} MB\t",
            self.request_id,
            self.duration_ms,
            self.billed_ms,
            self.memory_mb,
            self.max_memory_used_mb
        )?;
        if let Some(init) = self.init_ms {
            write!(f, "Init Duration: {init:.2} ms\t")?;
        }
        Ok(())
    }
}

/// A successful Invoke API answer (HTTP 200), whichever client fetched it.
#[derive(Debug, Clone, Default)]
pub struct InvokeReply {
    /// `X-Amz-Function-Error`, set when the function failed.
    pub function_error: Option<String>,
    /// `X-Amz-Log-Result`: base64 of the log tail, ending with the REPORT line.
    pub log_result: Option<String>,
    /// The function's result or error JSON.
    pub payload: Vec<u8>,
}

impl InvokeReply {
    /// The stage's result and billing, or its error. Billing comes from the REPORT line;
    /// without one (a platform that sent no log tail) the caller's round trip stands in,
    /// at `fallback_memory_mb`.
    pub fn into_outcome(
        self,
        round_trip: Duration,
        fallback_memory_mb: u32,
    ) -> Result<(StageResult, InvocationMeta), FunctionError> {
        if self.function_error.is_some() {
            return Err(match serde_json::from_slice::<ErrorBody>(&self.payload) {
                Ok(body) => body.into_function_error(),
                Err(_) => FunctionError::permanent(format!(
                    "function failed with an unreadable error: {}",
                    String::from_utf8_lossy(&self.payload)
                )),
            });
        }
        let result: StageResult = serde_json::from_slice(&self.payload).map_err(|e| {
            FunctionError::permanent(format!("function returned a malformed result: {e}"))
        })?;
        let report = self
            .log_result
            .and_then(|b64| base64::engine::general_purpose::STANDARD.decode(b64).ok())
            .and_then(|log| Report::find_in_log(&String::from_utf8_lossy(&log)));
        let meta = match report {
            Some(report) => report.meta(),
            None => InvocationMeta {
                cold: false,
                init_ms: 0.0,
                duration_ms: round_trip.as_secs_f64() * 1e3,
                billed_ms: Report::billed(round_trip),
                memory_mb: fallback_memory_mb,
            },
        };
        Ok((result, meta))
    }
}

/// An Invoke API refusal (not a function error) as a [`FunctionError`]: throttling and
/// server-side trouble may pass, anything else the caller must fix.
pub fn api_error(function: &str, status: u16, error_type: &str, message: &str) -> FunctionError {
    let text = format!("invoking {function}: {error_type} (HTTP {status}): {message}");
    if status == 429 || status >= 500 || error_type.contains("TooManyRequests") {
        FunctionError::retryable(text)
    } else {
        FunctionError::permanent(text)
    }
}

/// Reads the message out of an Invoke API error body (`message` or `Message`).
pub fn api_error_message(body: &[u8]) -> String {
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| {
            ["message", "Message", "errorMessage"]
                .iter()
                .find_map(|k| v.get(k).and_then(|m| m.as_str()).map(str::to_owned))
        })
        .unwrap_or_else(|| String::from_utf8_lossy(body).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_lines_round_trip_and_parse_real_lambda_output() {
        let report = Report {
            request_id: "8f5a".into(),
            duration_ms: 2.434,
            billed_ms: 3,
            memory_mb: 128,
            max_memory_used_mb: 18,
            init_ms: Some(26.94),
        };
        let line = report.to_string();
        let parsed = Report::parse(&line).unwrap();
        assert_eq!(parsed.request_id, "8f5a");
        assert_eq!(parsed.billed_ms, 3);
        assert_eq!(parsed.init_ms, Some(26.94));
        // A line as AWS Lambda writes it for a warm invocation.
        let real = "REPORT RequestId: 3604209a-e9a3-11e6-939a-754dd98c7be3\tDuration: 12.34 ms\tBilled Duration: 13 ms\tMemory Size: 128 MB\tMax Memory Used: 18 MB\t";
        let warm = Report::parse(real).unwrap();
        assert!(!warm.meta().cold);
        assert_eq!(warm.duration_ms, 12.34);
        assert_eq!(warm.memory_mb, 128);
        let log = format!("START RequestId: x\nsome output\nEND RequestId: x\n{real}\n");
        assert_eq!(Report::find_in_log(&log), Some(warm));
        assert_eq!(Report::parse("START RequestId: x Version: $LATEST"), None);
        assert_eq!(
            Report::parse("REPORT RequestId: x\tDuration: abc ms\t"),
            None
        );
    }

    #[test]
    fn billed_duration_rounds_up_to_a_millisecond() {
        assert_eq!(Report::billed(Duration::from_micros(1)), 1);
        assert_eq!(Report::billed(Duration::from_micros(1000)), 1);
        assert_eq!(Report::billed(Duration::from_micros(1001)), 2);
        assert_eq!(Report::billed(Duration::ZERO), 1);
    }

    #[test]
    fn error_kinds_survive_the_wire_and_platform_failures_are_retryable() {
        let err = FunctionError::permanent("bad event");
        assert_eq!(ErrorBody::from(&err).into_function_error(), err);
        let err = FunctionError::retryable("store down");
        assert_eq!(ErrorBody::from(&err).into_function_error(), err);
        let crash = ErrorBody::new("Runtime.ExitError", "signal: killed").into_function_error();
        assert_eq!(crash.kind, ErrorKind::Retryable);
        assert!(crash.message.contains("Runtime.ExitError"));
        let other = ErrorBody::new("alloc::string::String", "boom").into_function_error();
        assert_eq!(other.kind, ErrorKind::Permanent);
        assert_eq!(
            api_error("f", 429, "TooManyRequestsException", "Rate Exceeded.").kind,
            ErrorKind::Retryable
        );
        assert_eq!(
            api_error("f", 404, "ResourceNotFoundException", "no").kind,
            ErrorKind::Permanent
        );
    }

    #[test]
    fn replies_become_results_or_errors() {
        let log = base64::engine::general_purpose::STANDARD.encode(
            "REPORT RequestId: r\tDuration: 5.00 ms\tBilled Duration: 5 ms\tMemory Size: 256 MB\tMax Memory Used: 20 MB\tInit Duration: 9.50 ms\t\n",
        );
        let ok = InvokeReply {
            function_error: None,
            log_result: Some(log),
            payload: br#"{"compute_ms":1.0,"bytes_in":2,"bytes_out":3}"#.to_vec(),
        };
        let (result, meta) = ok.into_outcome(Duration::from_millis(7), 1).unwrap();
        assert_eq!(result.bytes_out, 3);
        assert!(meta.cold);
        assert_eq!((meta.memory_mb, meta.billed_ms), (256, 5));
        let no_log = InvokeReply {
            payload: br#"{"compute_ms":1.0,"bytes_in":2,"bytes_out":3}"#.to_vec(),
            ..InvokeReply::default()
        };
        let (_, meta) = no_log.into_outcome(Duration::from_millis(7), 64).unwrap();
        assert_eq!((meta.memory_mb, meta.billed_ms, meta.cold), (64, 7, false));
        let failed = InvokeReply {
            function_error: Some("Unhandled".into()),
            log_result: None,
            payload: br#"{"errorType":"Retryable","errorMessage":"store: timed out"}"#.to_vec(),
        };
        let err = failed.into_outcome(Duration::ZERO, 1).unwrap_err();
        assert_eq!(err, FunctionError::retryable("store: timed out"));
        let garbage = InvokeReply {
            payload: b"not json".to_vec(),
            ..InvokeReply::default()
        };
        assert!(garbage.into_outcome(Duration::ZERO, 1).is_err());
    }
}
