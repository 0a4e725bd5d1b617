//! The caller's side of the Lambda Invoke API, shared by the `local` and `lambda` invokers:
//! reading a reply into a result and its billing, and classifying refusals. The shapes on
//! the wire are in [`seqless_wire::lambda`].

use std::time::Duration;

use base64::Engine as _;
pub use seqless_wire::lambda::DEFAULT_FUNCTION_PREFIX;
use seqless_wire::lambda::{LambdaErrorBody, Report};
use seqless_wire::{InvocationMeta, billed_ms};

use crate::error::FunctionError;

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
    /// The function's answer (a [`StageResult`], or a batch's) and billing, or its error (with the billing of the failed run,
    /// where the platform sent a REPORT line). Billing comes from the REPORT line; without
    /// one (a platform that sent no log tail) the caller's round trip stands in, at
    /// `fallback_memory_mb`.
    pub fn into_outcome<T: serde::de::DeserializeOwned>(
        self,
        round_trip: Duration,
        fallback_memory_mb: u32,
    ) -> Result<(T, InvocationMeta), FunctionError> {
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
                billed_ms: billed_ms(round_trip),
                memory_mb: fallback_memory_mb,
                shared_by: 1,
            },
        };
        if self.function_error.is_some() {
            let err = match serde_json::from_slice::<LambdaErrorBody>(&self.payload) {
                Ok(body) => body.into(),
                Err(_) => FunctionError::permanent(format!(
                    "function failed with an unreadable error: {}",
                    String::from_utf8_lossy(&self.payload)
                )),
            };
            return Err(err.billed(meta));
        }
        let result: T = serde_json::from_slice(&self.payload).map_err(|e| {
            FunctionError::permanent(format!("function returned a malformed result: {e}"))
                .billed(meta.clone())
        })?;
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
    use crate::ErrorKind;
    use seqless_wire::StageResult;

    #[test]
    fn throttling_is_retryable_and_unknown_functions_are_not() {
        assert_eq!(
            api_error("f", 429, "TooManyRequestsException", "Rate Exceeded.").kind(),
            ErrorKind::Retryable
        );
        assert_eq!(
            api_error("f", 404, "ResourceNotFoundException", "no").kind(),
            ErrorKind::Permanent
        );
        assert_eq!(api_error_message(br#"{"Message":"gone"}"#), "gone");
        assert_eq!(api_error_message(b"plain"), "plain");
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
        let (result, meta): (StageResult, _) =
            ok.into_outcome(Duration::from_millis(7), 1).unwrap();
        assert_eq!(result.bytes_out, 3);
        assert!(meta.cold);
        assert_eq!((meta.memory_mb, meta.billed_ms), (256, 5));
        let no_log = InvokeReply {
            payload: br#"{"compute_ms":1.0,"bytes_in":2,"bytes_out":3}"#.to_vec(),
            ..InvokeReply::default()
        };
        let (_, meta): (StageResult, _) =
            no_log.into_outcome(Duration::from_millis(7), 64).unwrap();
        assert_eq!((meta.memory_mb, meta.billed_ms, meta.cold), (64, 7, false));
        let failed = InvokeReply {
            function_error: Some("Unhandled".into()),
            log_result: None,
            payload: br#"{"errorType":"Retryable","errorMessage":"store: timed out"}"#.to_vec(),
        };
        let err = failed
            .into_outcome::<StageResult>(Duration::from_millis(3), 64)
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Retryable);
        assert_eq!(err.to_string(), "store: timed out");
        // The failed run was billed, so a retrying caller can count it.
        let billing = err.billing().expect("a function error is billed");
        assert_eq!((billing.billed_ms, billing.memory_mb), (3, 64));
        let garbage = InvokeReply {
            payload: b"not json".to_vec(),
            ..InvokeReply::default()
        };
        assert!(
            garbage
                .into_outcome::<StageResult>(Duration::ZERO, 1)
                .is_err()
        );
    }
}
