//! What stops a bench from producing its figures (a failed request inside a load run is
//! counted, not an error).

use seqless_coordinator::CoordinatorError;
use seqless_functions::FunctionError;
use seqless_model::ModelError;
use seqless_plan::PlanError;
use seqless_sim::SimError;
use seqless_store::StoreError;

/// A bench that could not run or finish.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// The parameters cannot give a measurement (zero runs, a payload under one f32).
    #[error("{0}")]
    Invalid(String),
    /// Command-line flags that cannot describe a bench; the message names them.
    #[error("{0}")]
    Flags(String),
    /// A function invocation failed (platform bench pings).
    #[error(transparent)]
    Function(#[from] FunctionError),
    /// The local platform under test could not start.
    #[cfg(feature = "platform")]
    #[error(transparent)]
    Platform(#[from] seqless_platform::PlatformError),
    /// The model refused the bench's input.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// A query of the bench could not be planned.
    #[error(transparent)]
    Plan(#[from] PlanError),
    /// A query of the bench failed (boxed: the coordinator's error is large, and every
    /// bench result carries this type).
    #[error(transparent)]
    Coordinator(Box<CoordinatorError>),
    /// The store under test failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A value the store bench read back is not the tensor it wrote.
    #[error("store bench: `{key}` read back with another shape than it was written with")]
    ReadBack {
        /// The key.
        key: String,
    },
    /// An external tool (`redis-benchmark`) or a bench worker failed.
    #[error("{tool} failed: {reason}")]
    Tool {
        /// The program or task that ran.
        tool: String,
        /// What went wrong.
        reason: String,
    },
    /// The load generator's HTTP client could not be built.
    #[error("building the HTTP client")]
    Client(#[source] reqwest::Error),
    /// Every request of a load run failed: the server is not there or refuses everything.
    #[error("every request to {url} failed; first error: {first}")]
    AllFailed {
        /// The endpoint.
        url: String,
        /// The first failure.
        first: String,
    },
    /// A chart could not be drawn or written.
    #[error(transparent)]
    Plot(#[from] SimError),
    /// A table the bench reads (a CSV another step wrote) is missing or malformed.
    #[error("{}: {reason}", path.display())]
    Table {
        /// The file.
        path: std::path::PathBuf,
        /// What is wrong with it, with the line where there is one.
        reason: String,
    },
}

impl BenchError {
    /// Whether the caller can fix this by changing what it gave (flags, a model, a store
    /// URL, a configuration) rather than it being a fault of the machine or the services
    /// measured. The wrapped errors are transparent, so this asks them.
    pub fn caller_can_fix(&self) -> bool {
        match self {
            Self::Flags(_) | Self::Plan(_) | Self::Table { .. } => true,
            #[cfg(feature = "platform")]
            Self::Platform(cause) => cause.caller_can_fix(),
            Self::Model(cause) => cause.caller_can_fix(),
            Self::Coordinator(cause) => cause.caller_can_fix(),
            Self::Store(cause) => cause.caller_can_fix(),
            Self::Plot(cause) => cause.caller_can_fix(),
            _ => false,
        }
    }
}

impl From<CoordinatorError> for BenchError {
    fn from(err: CoordinatorError) -> Self {
        Self::Coordinator(Box::new(err))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The wrapped errors are transparent, so their own sources never reach the command
    /// line's error chain: the bench error must ask them.
    #[test]
    fn wrapped_errors_say_whose_they_are() {
        let model_file = |kind: std::io::ErrorKind| ModelError::Io {
            path: "no-such-model/config.json".into(),
            cause: kind.into(),
        };
        assert!(BenchError::from(model_file(std::io::ErrorKind::NotFound)).caller_can_fix());
        assert!(
            !BenchError::from(model_file(std::io::ErrorKind::PermissionDenied)).caller_can_fix()
        );
        let bad_url = StoreError::BadUrl {
            url: "redis://127.0.0.1:99999".into(),
            reason: "port".into(),
        };
        assert!(BenchError::from(bad_url).caller_can_fix());
        let plot = SimError::Plot {
            path: "chart.svg".into(),
            reason: "disk full".into(),
        };
        assert!(!BenchError::from(plot).caller_can_fix());
        assert!(BenchError::Flags("--runs 0".into()).caller_can_fix());
        assert!(!BenchError::Invalid("no samples".into()).caller_can_fix());
    }
}
