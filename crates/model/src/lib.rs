//! The TFiLM-CNN text classifier of DESIGN.md §1.
//!
//! - [`ModelConfig`] (`config.json`) and [`Weights`] (`model.safetensors`), checked against
//!   each other at load;
//! - [`kernels`]: the stage kernels (embedding, conv + pool + relu over a row range with
//!   halo, block stats, the TFiLM LSTM, modulation, head), the one implementation of the
//!   maths that both the monolithic [`TfilmModel::forward`] and the serverless stages use;
//! - [`train`]: training with candle autodiff and AdamW, plus the data and metrics it needs.
//!
//! ```no_run
//! use seqless_model::TfilmModel;
//! let model = TfilmModel::load(std::path::Path::new("models/langid"))?;
//! let prediction = model.forward("Guten Morgen, wie geht es dir?".as_bytes())?;
//! println!("{} ({:.3})", prediction.label, prediction.probabilities[prediction.label_index]);
//! # Ok::<(), seqless_model::ModelError>(())
//! ```

pub mod config;
pub mod error;
pub mod kernels;
mod model;
#[cfg(feature = "test-support")]
pub mod testing;
pub mod tokenizer;
pub mod train;
pub mod weights;

pub use config::{GateActivation, LayerConfig, ModelConfig, Modulation};
pub use error::{ModelError, Result};
pub use model::{
    CONFIG_FILE, LayerSummary, Prediction, StageTimes, TfilmModel, WEIGHTS_FILE, argmax,
};
pub use weights::Weights;
