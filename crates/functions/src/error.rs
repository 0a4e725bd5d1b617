//! Function errors that say whether trying again can help.

use seqless_model::ModelError;
use seqless_store::StoreError;
use seqless_wire::lambda::{LambdaErrorBody, PERMANENT_ERROR_TYPE, RETRYABLE_ERROR_TYPE};
use seqless_wire::{InvocationMeta, MalformedEvent, ModelFingerprint};
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

/// A stage function's failure. Each message is complete on its own (no `source()` chain to
/// walk), because across the Lambda Invoke API only the text and the [`ErrorKind`] travel.
#[derive(Debug, thiserror::Error)]
pub enum FunctionError {
    /// The store refused or could not be reached; retryable when the store says so. A
    /// missing key's message says what usually causes it (another store or key prefix).
    #[error("{0}")]
    Store(StoreError),
    /// The model could not be loaded, or refused the stage's data.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// The event is not a stage or ping event.
    #[error(transparent)]
    Malformed(#[from] MalformedEvent),
    /// The coordinator planned the stage for another model than the one this function loaded.
    #[error(
        "coordinator and functions were started with different models: the event was planned for {coordinator}, this function loaded {function}; start both from the same model directory (redeploy the functions after changing the model)"
    )]
    ModelMismatch {
        /// The coordinator's model, from the event.
        coordinator: ModelFingerprint,
        /// The function's own model.
        function: ModelFingerprint,
    },
    /// Any other failure: the stage's own checks, the platform, the Invoke API, or an error
    /// a function process reported over it.
    #[error("{message}")]
    Failed {
        /// Retry or not.
        kind: ErrorKind,
        /// What happened, naming the stage and key where known.
        message: String,
    },
    /// A failure after the function ran: the platform billed it (a crash, a timeout, the
    /// handler's own error), so a caller that tries again can count what the failed
    /// attempt cost. A throttled or unreachable invocation never ran and is not wrapped.
    #[error("{cause}")]
    Billed {
        /// The failure itself.
        cause: Box<FunctionError>,
        /// What the platform billed for the failed invocation.
        meta: InvocationMeta,
    },
}

impl From<StoreError> for FunctionError {
    fn from(err: StoreError) -> Self {
        Self::Store(err)
    }
}

impl FunctionError {
    /// A failure that will repeat.
    pub fn permanent(message: impl Into<String>) -> Self {
        Self::Failed {
            kind: ErrorKind::Permanent,
            message: message.into(),
        }
    }

    /// A failure that may not repeat.
    pub fn retryable(message: impl Into<String>) -> Self {
        Self::Failed {
            kind: ErrorKind::Retryable,
            message: message.into(),
        }
    }

    /// The failure with what the platform billed for it.
    pub fn billed(self, meta: InvocationMeta) -> Self {
        Self::Billed {
            cause: Box::new(self),
            meta,
        }
    }

    /// What the platform billed for the failed invocation, where it ran at all.
    pub fn billing(&self) -> Option<&InvocationMeta> {
        match self {
            Self::Billed { meta, .. } => Some(meta),
            _ => None,
        }
    }

    /// Whether trying again can help.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::Store(err) if err.is_retryable() => ErrorKind::Retryable,
            Self::Failed { kind, .. } => *kind,
            Self::Billed { cause, .. } => cause.kind(),
            Self::Store(_) | Self::Model(_) | Self::Malformed(_) | Self::ModelMismatch { .. } => {
                ErrorKind::Permanent
            }
        }
    }
}

impl From<&FunctionError> for LambdaErrorBody {
    fn from(err: &FunctionError) -> Self {
        let error_type = match err.kind() {
            ErrorKind::Retryable => RETRYABLE_ERROR_TYPE,
            ErrorKind::Permanent => PERMANENT_ERROR_TYPE,
        };
        Self::new(error_type, err.to_string())
    }
}

impl From<LambdaErrorBody> for FunctionError {
    /// Our handler's kinds are kept; a failure of the runtime or the sandbox (a crash, a
    /// timeout) is worth a retry on a fresh instance; anything else is a function bug that
    /// would repeat.
    fn from(body: LambdaErrorBody) -> Self {
        let kind = match body.error_type.as_str() {
            RETRYABLE_ERROR_TYPE => ErrorKind::Retryable,
            PERMANENT_ERROR_TYPE => ErrorKind::Permanent,
            t if t.starts_with("Runtime.") || t.starts_with("Sandbox.") => ErrorKind::Retryable,
            _ => ErrorKind::Permanent,
        };
        let message = match body.error_type.as_str() {
            RETRYABLE_ERROR_TYPE | PERMANENT_ERROR_TYPE => body.error_message,
            other => format!("{other}: {}", body.error_message),
        };
        Self::Failed { kind, message }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(err: &FunctionError) -> FunctionError {
        FunctionError::from(LambdaErrorBody::from(err))
    }

    #[test]
    fn error_kinds_and_messages_survive_the_wire() {
        for err in [
            FunctionError::permanent("bad event"),
            FunctionError::retryable("store down"),
            FunctionError::from(StoreError::NotFound { key: "k".into() }),
        ] {
            let back = round_trip(&err);
            assert_eq!(back.kind(), err.kind());
            assert_eq!(back.to_string(), err.to_string());
        }
    }

    #[test]
    fn platform_failures_are_retryable_and_foreign_errors_permanent() {
        let crash =
            FunctionError::from(LambdaErrorBody::new("Runtime.ExitError", "signal: killed"));
        assert_eq!(crash.kind(), ErrorKind::Retryable);
        assert_eq!(crash.to_string(), "Runtime.ExitError: signal: killed");
        let other = FunctionError::from(LambdaErrorBody::new("alloc::string::String", "boom"));
        assert_eq!(other.kind(), ErrorKind::Permanent);
    }

    #[test]
    fn a_missing_key_says_what_to_check() {
        let err = FunctionError::from(StoreError::NotFound {
            key: "q:1:act".into(),
        });
        assert_eq!(err.kind(), ErrorKind::Permanent);
        let text = err.to_string();
        assert!(
            text.contains("q:1:act") && text.contains("--key-prefix"),
            "{text}"
        );
    }
}
