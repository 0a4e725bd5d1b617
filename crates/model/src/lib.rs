//! The TFiLM-CNN text classifier of docs/design.md §1.
//!
//! - [`ModelConfig`] (`config.json`) and [`Weights`] (`model.safetensors`), checked against
//!   each other at load;
//! - [`kernels`]: the stage kernels (embedding, conv + pool + relu over a row range with
//!   halo, block stats, the TFiLM LSTM, modulation, head), the one implementation of the
//!   maths that both the monolithic [`TfilmModel::forward`] and the serverless stages use;
//! - [`ModelConfig::forward_peak_bytes`]: the forward's peak memory for a query length, an
//!   upper bound a server admits queries by;
//! - `train` (feature `train`): training with candle autodiff and AdamW, plus the data and
//!   metrics it needs. Serving never builds candle.
//!
//! ```no_run
//! use seqless_model::TfilmModel;
//! let model = TfilmModel::load(std::path::Path::new("models/langid"))?;
//! let prediction = model.forward("Guten Morgen, wie geht es dir?".as_bytes())?;
//! println!("{} ({:.3})", prediction.label, prediction.probabilities[prediction.label_index]);
//! # Ok::<(), seqless_model::ModelError>(())
//! ```

#[cfg(feature = "clap")]
mod arch_args;
pub mod config;
pub mod error;
pub mod kernels;
mod memory;
mod model;
#[cfg(feature = "test-support")]
pub mod testing;
pub mod tokenizer;
#[cfg(feature = "train")]
pub mod train;
pub mod weights;

#[cfg(feature = "clap")]
pub use arch_args::ArchArgs;
pub use config::{GateActivation, InputLenError, LayerConfig, ModelConfig, Modulation};
pub use error::{ModelError, Result};
pub use memory::FORWARD_OVERHEAD_BYTES;
pub use model::{
    CONFIG_FILE, LayerInput, LayerSummary, Prediction, StageTimes, TfilmModel, WEIGHTS_FILE,
    argmax, fingerprint,
};
pub use seqless_wire::ModelFingerprint;
pub use weights::Weights;
