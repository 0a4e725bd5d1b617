//! The parts of the Lambda Invoke and Runtime APIs that both of their sides here share: the
//! local platform writes them, and the function process and the invokers read them, so one
//! definition keeps the sides (and real AWS Lambda) in agreement.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::event::InvocationMeta;
use crate::stage::StageKind;

/// The default prefix of the function names: `seqless-conv`, `seqless-tfilm`, ...
pub const DEFAULT_FUNCTION_PREFIX: &str = "seqless-";

/// Lambda's memory sizes, MB: the only ones a function can be given, so the only ones
/// priced or emulated.
pub const MEMORY_MB: std::ops::RangeInclusive<u32> = 128..=10_240;

/// The default function memory: 1,769 MB is where Lambda gives a function one full vCPU,
/// which the compute-bound stages use (and the simulator's calibration assumes).
pub const DEFAULT_MEMORY_MB: u32 = 1769;

/// Parses a function memory size, MB, refusing one outside Lambda's sizes ([`MEMORY_MB`]).
pub fn parse_memory_mb(s: &str) -> Result<u32, String> {
    let mb: i64 = s
        .parse()
        .map_err(|_| format!("{s:?} is not a whole number of MB"))?;
    match u32::try_from(mb) {
        Ok(mb) if MEMORY_MB.contains(&mb) => Ok(mb),
        _ => Err(format!(
            "{mb} MB is outside Lambda's {} to {} MB",
            MEMORY_MB.start(),
            MEMORY_MB.end()
        )),
    }
}

/// Every stage kind, each served by its own function so that each can have its own
/// memory size (Lambda sizes memory per function).
pub const FUNCTION_KINDS: [StageKind; 5] = [
    StageKind::Conv,
    StageKind::Resident,
    StageKind::Tfilm,
    StageKind::Head,
    StageKind::Classifier,
];

/// The largest request and the largest response of a synchronous invocation (Lambda's
/// 6 MB: 6,291,456 bytes).
pub const MAX_SYNC_PAYLOAD_BYTES: usize = 6 * 1024 * 1024;

/// `errorType` of a synchronous invocation whose response exceeded
/// [`MAX_SYNC_PAYLOAD_BYTES`]; the function ran and is billed.
pub const RESPONSE_TOO_LARGE: &str = "Function.ResponseSizeTooLarge";

/// The function that runs stages of `kind`.
pub fn function_name(prefix: &str, kind: StageKind) -> String {
    format!("{prefix}{}", kind.as_str())
}

/// Billed duration as Lambda rounds it: up to the next whole millisecond, and at least
/// 1 ms. The one rounding rule of the platform, the invokers, the cost model and the
/// simulator.
pub fn billed_ms(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos().div_ceil(1_000_000))
        .unwrap_or(u64::MAX)
        .max(1)
}

/// `errorType` of a handler error that may succeed when tried again.
pub const RETRYABLE_ERROR_TYPE: &str = "Retryable";
/// `errorType` of a handler error that will repeat.
pub const PERMANENT_ERROR_TYPE: &str = "Permanent";

/// A function error as Lambda returns it (and as the Runtime API takes it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LambdaErrorBody {
    /// [`RETRYABLE_ERROR_TYPE`] or [`PERMANENT_ERROR_TYPE`] from our handler; Lambda's own
    /// (`Runtime.ExitError`, `Sandbox.Timedout`, ...) when the platform failed the
    /// invocation.
    #[serde(rename = "errorType")]
    pub error_type: String,
    /// What happened.
    #[serde(rename = "errorMessage")]
    pub error_message: String,
}

impl LambdaErrorBody {
    /// An error body of the given type.
    pub fn new(error_type: &str, error_message: impl Into<String>) -> Self {
        Self {
            error_type: error_type.to_owned(),
            error_message: error_message.into(),
        }
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
            shared_by: 1,
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
        assert_eq!(billed_ms(Duration::from_micros(1)), 1);
        assert_eq!(billed_ms(Duration::from_micros(1000)), 1);
        assert_eq!(billed_ms(Duration::from_micros(1001)), 2);
        assert_eq!(billed_ms(Duration::from_millis(250)), 250);
        assert_eq!(billed_ms(Duration::ZERO), 1);
        assert_eq!(billed_ms(Duration::MAX), u64::MAX);
    }

    #[test]
    fn function_names_follow_the_prefix_and_the_stage_kind() {
        let names: Vec<String> = FUNCTION_KINDS
            .iter()
            .map(|&k| function_name(DEFAULT_FUNCTION_PREFIX, k))
            .collect();
        assert_eq!(
            names,
            [
                "seqless-conv",
                "seqless-resident",
                "seqless-tfilm",
                "seqless-head",
                "seqless-classifier"
            ]
        );
    }
}
