//! The model crate's single error type.

use std::path::PathBuf;

/// Everything that can go wrong while loading, running or training a model.
///
/// Each variant names the offending file, tensor or field, so a refusal can be acted on
/// without reading the source. A wrapped error is part of the message and not also exposed
/// as [`std::error::Error::source`], so a printed chain says each cause once.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// A file could not be read or written.
    #[error("{path}: {cause}")]
    Io {
        /// The file involved.
        path: PathBuf,
        /// The underlying I/O error.
        cause: std::io::Error,
    },
    /// `config.json` is not valid JSON or does not match the schema.
    #[error("{path}: invalid model config: {reason}")]
    ConfigSyntax {
        /// The config file.
        path: PathBuf,
        /// What the parser said.
        reason: String,
    },
    /// The config parsed but describes an impossible model.
    #[error("invalid model config: {0}")]
    Config(String),
    /// The weights file does not match the config.
    #[error("{path}: tensor `{tensor}`: {reason}")]
    Weights {
        /// The safetensors file.
        path: PathBuf,
        /// The tensor name that is missing, extra or malformed.
        tensor: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The safetensors container itself is unreadable.
    #[error("{path}: not a valid safetensors file: {reason}")]
    SafeTensors {
        /// The safetensors file.
        path: PathBuf,
        /// What the parser said.
        reason: String,
    },
    /// The query cannot be classified as given.
    #[error("invalid input: {0}")]
    Input(String),
    /// The query's length is outside what the model takes.
    #[error(transparent)]
    InputLen(#[from] crate::config::InputLenError),
    /// A stage kernel was called with buffers that disagree with the model.
    #[error("stage kernel called with inconsistent shapes: {0}")]
    Shape(String),
    /// A data file for training or evaluation is malformed.
    #[error("{path}:{line}: {reason}")]
    Data {
        /// The data file.
        path: PathBuf,
        /// The 1-based line number (0 when the problem concerns the whole file).
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// Command-line flags that cannot train; the message names them.
    #[error("{0}")]
    Flags(String),
    /// An error from candle while training or saving.
    #[cfg(feature = "train")]
    #[error("tensor library: {0}")]
    Candle(#[from] candle_core::Error),
}

/// Shorthand used throughout the crate.
pub type Result<T, E = ModelError> = std::result::Result<T, E>;

impl ModelError {
    /// Whether the caller can fix this by changing what it gave (a path, a config, weights,
    /// data, a text, a flag) rather than it being the machine's fault: a file that is not
    /// there is the caller's to fix, one that cannot be read is not.
    pub fn caller_can_fix(&self) -> bool {
        match self {
            Self::Io { cause, .. } => cause.kind() == std::io::ErrorKind::NotFound,
            Self::Shape(_) => false,
            #[cfg(feature = "train")]
            Self::Candle(_) => false,
            _ => true,
        }
    }

    pub(crate) fn io(path: impl Into<PathBuf>, cause: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            cause,
        }
    }
}
