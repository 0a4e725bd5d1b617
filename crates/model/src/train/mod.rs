//! Training: data files, the differentiable network, the AdamW loop and metrics.

pub mod data;
pub mod metrics;
pub mod net;
pub mod trainer;
pub mod widen;

pub use data::{Example, load_examples, write_jsonl};
pub use metrics::Evaluation;
pub use net::TrainNet;
pub use trainer::{EpochReport, Quiet, TrainOptions, TrainProgress, TrainReport, evaluate, train};
