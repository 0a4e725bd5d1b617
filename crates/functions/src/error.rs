//! Function errors that say whether trying again can help.

use serde::{Deserialize, Serialize};

/// Whether a failed invocation is worth retrying.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// Transient: the store or platform was unreachable, slow or overloaded.
    Retryable,
    /// The event or the data is wrong; the same call will fail again.
    Permanent,
}

/// A stage function's failure, serialisable so it can cross the Lambda Invoke API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{message}")]
pub struct FunctionError {
    /// Retry or not.
    pub kind: ErrorKind,
    /// What happened, naming the stage and key where known.
    pub message: String,
}

impl FunctionError {
    /// A failure that will repeat.
    pub fn permanent(message: impl Into<String>) -> Self {
        Self {
            kind: ErrorKind::Permanent,
            message: message.into(),
        }
    }

    /// A failure that may not repeat.
    pub fn retryable(message: impl Into<String>) -> Self {
        Self {
            kind: ErrorKind::Retryable,
            message: message.into(),
        }
    }
}

impl From<seqless_store::StoreError> for FunctionError {
    fn from(err: seqless_store::StoreError) -> Self {
        let kind = if err.is_retryable() {
            ErrorKind::Retryable
        } else {
            ErrorKind::Permanent
        };
        Self {
            kind,
            message: format!("store: {err}"),
        }
    }
}

impl From<seqless_model::ModelError> for FunctionError {
    fn from(err: seqless_model::ModelError) -> Self {
        Self::permanent(format!("model: {err}"))
    }
}
