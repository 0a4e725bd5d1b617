use std::path::PathBuf;

/// Every way a simulation can be refused or fail, each naming the file, line,
/// field or input length at fault so a CLI user can fix it without reading code. A wrapped
/// error is part of the message, not also a `source`, so a printed chain says it once.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// A file could not be read or written.
    #[error("{}: {cause}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O failure.
        cause: std::io::Error,
    },
    /// A JSON document (configuration, calibration, shape) did not parse or did
    /// not match its type; serde_json's message carries the line, column and key.
    #[error("invalid JSON in {origin}: {cause}")]
    Json {
        /// The file path, or `<string>`.
        origin: String,
        /// The parser's message.
        cause: serde_json::Error,
    },
    /// A line of a trace file (timestamps or lengths) is not usable.
    #[error("{}:{line}: {reason}", path.display())]
    TraceLine {
        /// The trace file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong with it.
        reason: String,
    },
    /// A configuration value is out of range.
    #[error("invalid simulation config: `{field}` {reason}")]
    Config {
        /// Dotted path of the field.
        field: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The shape model could not describe a query, or described one the
    /// simulator cannot run (unknown kind, memory outside Lambda's range, empty phase).
    #[error("query shape for an input of {len} bytes: {reason}")]
    Shape {
        /// The input length the shape was asked for.
        len: usize,
        /// What went wrong.
        reason: String,
    },
    /// Pricing failed (unknown instance name, bad price file).
    #[error(transparent)]
    Cost(#[from] seqless_cost::CostError),
    /// The model's config could not be read.
    #[error(transparent)]
    Model(#[from] seqless_model::ModelError),
    /// The plan flags are contradictory (more splits than the maximum).
    #[error(transparent)]
    Plan(#[from] seqless_plan::PlanError),
    /// No candidate configuration meets the latency bound asked for.
    #[error(transparent)]
    SloUnmet(#[from] crate::planner::SloUnmet),
    /// Command-line flags that contradict each other or the model; the message names them.
    #[error("{0}")]
    Flags(String),
    /// A chart could not be drawn or written.
    #[error("cannot draw {}: {reason}", path.display())]
    Plot {
        /// The output file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
}

impl SimError {
    /// Whether the caller can fix this by changing what it gave (a configuration, a trace,
    /// a calibration, a flag, a bound) rather than it being the machine's fault: a file
    /// that is not there is the caller's to fix, one that cannot be read or written is not.
    pub fn caller_can_fix(&self) -> bool {
        match self {
            Self::Io { cause, .. } => cause.kind() == std::io::ErrorKind::NotFound,
            Self::Cost(cause) => cause.caller_can_fix(),
            Self::Model(cause) => cause.caller_can_fix(),
            Self::Plot { .. } => false,
            _ => true,
        }
    }
}

/// Refuses a value that is not finite or is below `min` (`> min` when
/// `strict`), naming the field: the one range check all configuration uses.
pub(crate) fn check_range(field: &str, value: f64, min: f64, strict: bool) -> Result<(), SimError> {
    let ok = value.is_finite() && if strict { value > min } else { value >= min };
    if ok {
        return Ok(());
    }
    let relation = if strict { ">" } else { ">=" };
    Err(SimError::Config {
        field: field.to_string(),
        reason: format!("is {value}; expected a finite number {relation} {min}"),
    })
}

/// Refuses `value` for `field` unless it is finite and at least `min`.
pub(crate) fn at_least(field: &str, value: f64, min: f64) -> Result<(), SimError> {
    check_range(field, value, min, false)
}

/// Refuses `value` for `field` unless it is finite and above `min`.
pub(crate) fn above(field: &str, value: f64, min: f64) -> Result<(), SimError> {
    check_range(field, value, min, true)
}

/// A configuration read from JSON, checked before anything uses it.
pub(crate) trait Validate: serde::de::DeserializeOwned {
    /// Refuses a value out of range, naming its field.
    fn validate(&self) -> Result<(), SimError>;
}

/// Parses JSON text into a checked `T`; errors carry line and key.
pub(crate) fn parse_validated<T: Validate>(text: &str) -> Result<T, SimError> {
    let value: T = parse_json(text, "<string>")?;
    value.validate()?;
    Ok(value)
}

/// Reads a JSON file into a checked `T`; errors name the file, line and key.
pub(crate) fn load_validated<T: Validate>(path: &std::path::Path) -> Result<T, SimError> {
    let value: T = load_json(path)?;
    value.validate()?;
    Ok(value)
}

/// Reads a JSON file into `T`, naming the file in every error.
pub(crate) fn load_json<T: serde::de::DeserializeOwned>(
    path: &std::path::Path,
) -> Result<T, SimError> {
    let text = std::fs::read_to_string(path).map_err(|cause| SimError::Io {
        path: path.to_path_buf(),
        cause,
    })?;
    parse_json(&text, &path.display().to_string())
}

/// Parses JSON text into `T`; `origin` names the source in errors.
pub(crate) fn parse_json<T: serde::de::DeserializeOwned>(
    text: &str,
    origin: &str,
) -> Result<T, SimError> {
    serde_json::from_str(text).map_err(|cause| SimError::Json {
        origin: origin.to_string(),
        cause,
    })
}
