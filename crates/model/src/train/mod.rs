//! Training: data files, the differentiable network, the AdamW loop and metrics.

pub mod data;
pub mod metrics;
pub mod net;
#[cfg(feature = "clap")]
mod train_args;
pub mod trainer;
pub mod widen;

pub use data::{Example, load_examples, write_jsonl};
pub use metrics::Evaluation;
pub use net::TrainNet;
#[cfg(feature = "clap")]
pub use train_args::{InitArgs, TrainArgs, check_out_dir};
pub use trainer::{EpochReport, Quiet, TrainOptions, TrainProgress, TrainReport, evaluate, train};
