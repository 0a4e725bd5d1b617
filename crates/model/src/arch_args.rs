//! The architecture flags of a command line, as one clap group that becomes a
//! [`ModelConfig`].

use clap::Args;

use crate::config::{BYTE_VOCAB, FORMAT, parse_layers};
use crate::{GateActivation, ModelConfig, Modulation, Result};

/// A model architecture, as `train` and `init` take it.
#[derive(Debug, Args)]
pub struct ArchArgs {
    /// Embedding width E.
    #[arg(long, default_value_t = 32)]
    pub embed_dim: usize,
    /// Layers as C:k:p:b,... (channels, kernel, pool, block length).
    #[arg(long, default_value = "64:5:2:8,64:3:2:8")]
    pub layers: String,
    /// FiLM form: scale (gamma only) or affine (gamma and beta).
    #[arg(long, value_enum, default_value = "scale")]
    pub modulation: Modulation,
    /// LSTM gate activation.
    #[arg(long, value_enum, default_value = "sigmoid")]
    pub gate: GateActivation,
    /// Longest query the trained model accepts, in bytes.
    #[arg(long, default_value_t = 1 << 20)]
    pub max_len: usize,
}

impl ArchArgs {
    /// The byte-tokenized config of this architecture for a label set, validated.
    pub fn config(&self, labels: Vec<String>) -> Result<ModelConfig> {
        let config = ModelConfig {
            format: FORMAT.into(),
            tokenizer: "bytes".into(),
            vocab_size: BYTE_VOCAB,
            embed_dim: self.embed_dim,
            layers: parse_layers(&self.layers)?,
            modulation: self.modulation,
            gate_activation: self.gate,
            labels,
            max_len: self.max_len,
        };
        config.validate()?;
        Ok(config)
    }
}
