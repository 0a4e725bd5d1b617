//! The crate's one error type.

use crate::tensor::DType;

/// Everything that can go wrong when storing or loading a tensor.
///
/// Callers (stage functions, the coordinator) mostly need to know two things:
/// which key or store was involved, so the message is actionable, and whether
/// trying again can help ([`StoreError::is_retryable`]), so a function platform can
/// tell a transient outage from a bug.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The key does not exist: never written, already expired, or deleted.
    #[error(
        "tensor `{key}` not found (never written, expired or deleted); check that the coordinator and the functions use the same --store and --key-prefix"
    )]
    NotFound {
        /// The key as the caller named it (without the store's key prefix).
        key: String,
    },

    /// The bytes under the key are not a valid tensor blob: truncated, bit-flipped,
    /// written by something else, or not even a Redis string.
    #[error("tensor `{key}` is corrupt: {reason}")]
    Corrupt {
        /// The key as the caller named it (or `<blob>` for [`crate::StoredTensor::decode`]).
        key: String,
        /// What check failed.
        reason: String,
    },

    /// The tensor holds another element type than the caller asked for.
    #[error("tensor has dtype {found}, expected {expected}")]
    DTypeMismatch {
        /// The dtype the caller asked for.
        expected: DType,
        /// The dtype the tensor holds.
        found: DType,
    },

    /// The tensor's shape is not the one the caller's plan expects.
    #[error("tensor `{key}` has shape {found:?}, expected {expected:?}")]
    ShapeMismatch {
        /// The key the tensor was read from.
        key: String,
        /// The shape the caller expected.
        expected: Vec<usize>,
        /// The shape the tensor has.
        found: Vec<usize>,
    },

    /// A row range outside the tensor (or with `start > end`).
    #[error("rows {start}..{end} are out of range for tensor `{key}`, which has {rows} rows")]
    RowRange {
        /// The key that was read.
        key: String,
        /// First requested row.
        start: usize,
        /// One past the last requested row.
        end: usize,
        /// Rows (dimension 0) the tensor has.
        rows: usize,
    },

    /// Arguments that can never succeed: a shape that does not match the data, too
    /// many dimensions, a zero TTL.
    #[error("invalid tensor store input: {reason}")]
    InvalidInput {
        /// What was wrong.
        reason: String,
    },

    /// The store cannot be reached right now (connection refused or dropped, cluster
    /// reconfiguring, server loading). Retrying later may succeed.
    #[error("tensor store {store} is unavailable: {reason}")]
    Unavailable {
        /// The store's description (URL with any password masked).
        store: String,
        /// The underlying failure.
        reason: String,
    },

    /// The store did not answer within the operation timeout.
    #[error("tensor store {store}: {op} timed out")]
    Timeout {
        /// The store's description (URL with any password masked).
        store: String,
        /// The operation and its time limit, e.g. "GET q:…:x (limit 5s)".
        op: String,
    },

    /// The store answered with an error that retrying will not fix (authentication,
    /// permissions, value too large, out of memory with `noeviction`).
    #[error("tensor store {store} refused the request: {reason}")]
    Rejected {
        /// The store's description (URL with any password masked).
        store: String,
        /// The server's message.
        reason: String,
    },

    /// The store URL cannot be used.
    #[error("bad tensor store URL `{url}`: {reason}")]
    BadUrl {
        /// The URL with any password masked.
        url: String,
        /// What was wrong with it.
        reason: String,
    },
}

impl StoreError {
    /// Whether the caller can fix this by changing what it gave (the URL, a key, a TTL,
    /// a tensor) rather than it being the store's or the network's fault.
    pub fn caller_can_fix(&self) -> bool {
        matches!(self, Self::BadUrl { .. } | Self::InvalidInput { .. })
    }

    /// Whether the same operation may succeed if tried again later: true for
    /// [`StoreError::Unavailable`] and [`StoreError::Timeout`], false for everything
    /// that is a property of the data or the request.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Unavailable { .. } | Self::Timeout { .. })
    }

    pub(crate) fn corrupt(key: &str, reason: impl Into<String>) -> Self {
        Self::Corrupt {
            key: key.to_owned(),
            reason: reason.into(),
        }
    }

    pub(crate) fn invalid(reason: impl Into<String>) -> Self {
        Self::InvalidInput {
            reason: reason.into(),
        }
    }
}
