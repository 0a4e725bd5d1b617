//! `config.json`: the architecture of a TFiLM-CNN classifier (docs/design.md §1).

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{ModelError, Result};

/// The only config format this crate reads; bumped when the maths changes.
pub const FORMAT: &str = "seqless-tfilm/1";
/// Byte tokens plus the padding id 0.
pub const BYTE_VOCAB: usize = 257;

/// One convolution + TFiLM layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LayerConfig {
    /// Output channels `C_l`, also the TFiLM LSTM's hidden size.
    pub channels: usize,
    /// Convolution kernel width `k_l` (odd or even; "same" padding).
    pub kernel: usize,
    /// Max-pool size and stride `p_l` (1 means no pooling).
    pub pool: usize,
    /// TFiLM block length `b_l`, in rows of this layer's pooled output.
    pub block_len: usize,
}

impl LayerConfig {
    /// Zero rows the "same" convolution reads before the first row: `(k-1) div 2`.
    pub fn pad_left(&self) -> usize {
        Self::same_padding(self.kernel).0
    }

    /// Zero rows the "same" convolution reads after the last row: `k-1-left`.
    pub fn pad_right(&self) -> usize {
        Self::same_padding(self.kernel).1
    }

    /// `(left, right)` zero rows of a "same" convolution of width `kernel` (at least 1),
    /// PyTorch's split: the extra row of an even kernel goes on the right.
    pub fn same_padding(kernel: usize) -> (usize, usize) {
        let left = (kernel - 1) / 2;
        (left, kernel - 1 - left)
    }
}

/// How a TFiLM layer turns its LSTM output into a per-block modulation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "snake_case")]
pub enum Modulation {
    /// `gamma = h`, `beta = 0` (the reference code).
    Scale,
    /// `[gamma; beta] = affine(h)` (the paper).
    Affine,
}

/// The LSTM's gate non-linearity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "snake_case")]
pub enum GateActivation {
    /// The logistic function (PyTorch).
    Sigmoid,
    /// `clip(0.2x + 0.5, 0, 1)` (Keras 1 weights).
    #[cfg_attr(feature = "clap", value(name = "hard_sigmoid"))]
    HardSigmoid,
}

/// The whole model description, exactly the fields of docs/design.md §1.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    /// Must equal [`FORMAT`].
    pub format: String,
    /// Must be `"bytes"`.
    pub tokenizer: String,
    /// Must be 257 for the byte tokenizer.
    pub vocab_size: usize,
    /// Embedding width `E`.
    pub embed_dim: usize,
    /// The convolution + TFiLM stack, first layer first.
    pub layers: Vec<LayerConfig>,
    /// FiLM form.
    pub modulation: Modulation,
    /// LSTM gate activation.
    pub gate_activation: GateActivation,
    /// Class names, in logit order.
    pub labels: Vec<String>,
    /// Longest query accepted, in bytes.
    pub max_len: usize,
}

impl ModelConfig {
    /// Reads and validates `config.json`.
    pub fn load(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|e| ModelError::io(path, e))?;
        Self::from_json(&bytes, path)
    }

    /// Reads and validates the config of a model directory, or `config.json` itself when
    /// `path` is a file: commands that need only the architecture take either.
    pub fn load_from(path: &Path) -> Result<Self> {
        if path.is_dir() {
            Self::load(&path.join(crate::CONFIG_FILE))
        } else {
            Self::load(path)
        }
    }

    /// As [`ModelConfig::load`], from the file's bytes; `path` is only used in messages.
    pub fn from_json(bytes: &[u8], path: &Path) -> Result<Self> {
        let config: Self = serde_json::from_slice(bytes).map_err(|e| ModelError::ConfigSyntax {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        config.validate()?;
        Ok(config)
    }

    /// Writes the config as pretty JSON.
    pub fn save(&self, path: &Path) -> Result<()> {
        let mut text = serde_json::to_string_pretty(self).expect("config serialises");
        text.push('\n');
        std::fs::write(path, text).map_err(|e| ModelError::io(path, e))
    }

    /// Checks every invariant the kernels rely on, naming the first field that breaks one.
    pub fn validate(&self) -> Result<()> {
        let fail = |msg: String| Err(ModelError::Config(msg));
        if self.format != FORMAT {
            return fail(format!("format must be {FORMAT:?}, got {:?}", self.format));
        }
        if self.tokenizer != "bytes" {
            return fail(format!(
                "tokenizer must be \"bytes\", got {:?}",
                self.tokenizer
            ));
        }
        if self.vocab_size != BYTE_VOCAB {
            return fail(format!(
                "vocab_size must be {BYTE_VOCAB} for the bytes tokenizer, got {}",
                self.vocab_size
            ));
        }
        if self.embed_dim == 0 {
            return fail("embed_dim must be at least 1".into());
        }
        if self.max_len == 0 {
            return fail("max_len must be at least 1".into());
        }
        if self.labels.is_empty() {
            return fail("labels must not be empty".into());
        }
        let mut seen = std::collections::HashSet::new();
        for label in &self.labels {
            if !seen.insert(label) {
                return fail(format!("label {label:?} appears twice"));
            }
        }
        if self.layers.is_empty() {
            return fail("layers must not be empty".into());
        }
        for (i, layer) in self.layers.iter().enumerate() {
            for (name, value) in [
                ("channels", layer.channels),
                ("kernel", layer.kernel),
                ("pool", layer.pool),
                ("block_len", layer.block_len),
            ] {
                if value == 0 {
                    return fail(format!("layers[{i}].{name} must be at least 1"));
                }
            }
        }
        // The alignment unit must stay representable for the longest query.
        let align = self.checked_alignment().ok_or_else(|| {
            ModelError::Config("pool sizes and block lengths overflow the alignment unit".into())
        })?;
        if self.max_len.div_ceil(align).checked_mul(align).is_none() {
            return fail("max_len overflows once padded to the alignment unit".into());
        }
        if crate::weights::checked_tensors(self).is_none() {
            return fail("the layer sizes imply more weights than memory can address".into());
        }
        Ok(())
    }

    fn checked_alignment(&self) -> Option<usize> {
        let mut unit = 1usize;
        let mut cumulative_pool = 1usize;
        for layer in &self.layers {
            cumulative_pool = cumulative_pool.checked_mul(layer.pool)?;
            unit = lcm(unit, cumulative_pool.checked_mul(layer.block_len)?)?;
        }
        Some(unit)
    }

    /// `A`: the smallest length that is a multiple of `P_l * b_l` for every layer, so every
    /// layer's length is a whole number of its blocks (docs/design.md §1 step 1).
    pub fn alignment(&self) -> usize {
        self.checked_alignment()
            .expect("validated configs have a representable alignment")
    }

    /// `T_0`: the query length after right-padding to the alignment unit.
    pub fn padded_len(&self, n_bytes: usize) -> usize {
        n_bytes.max(1).div_ceil(self.alignment()) * self.alignment()
    }

    /// Input width of layer `l` (0-based): the embedding for the first, else the previous channels.
    pub fn in_channels(&self, layer: usize) -> usize {
        if layer == 0 {
            self.embed_dim
        } else {
            self.layers[layer - 1].channels
        }
    }

    /// `T_l` for every layer given `T_0`: element `l` is the pooled output length of layer `l`.
    pub fn layer_lengths(&self, padded_len: usize) -> Vec<usize> {
        let mut t = padded_len;
        self.layers
            .iter()
            .map(|layer| {
                t /= layer.pool;
                t
            })
            .collect()
    }

    /// Multiply-add FLOPs (2 per MAC) of the convolutions for a padded length: the work
    /// that dominates the forward pass and that `bench forward` reports throughput against.
    pub fn conv_flops(&self, padded_len: usize) -> f64 {
        let mut t_in = padded_len as f64;
        let mut flops = 0.0;
        for (l, layer) in self.layers.iter().enumerate() {
            flops += 2.0 * t_in * (layer.kernel * self.in_channels(l) * layer.channels) as f64;
            t_in /= layer.pool as f64;
        }
        flops
    }

    /// Checks a query's byte length against `1..=max_len`: the one place that rule lives,
    /// for the model, the planner and the server alike.
    pub fn check_input_len(&self, n_bytes: usize) -> Result<(), InputLenError> {
        if n_bytes == 0 {
            return Err(InputLenError::Empty);
        }
        if n_bytes > self.max_len {
            return Err(InputLenError::TooLong {
                len: n_bytes,
                max_len: self.max_len,
            });
        }
        Ok(())
    }
}

/// A query length the model cannot take.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum InputLenError {
    /// No bytes at all.
    #[error("the text is empty")]
    Empty,
    /// Over the config's `max_len`.
    #[error("the text is {len} bytes, over this model's max_len of {max_len} bytes")]
    TooLong {
        /// The query's length in bytes.
        len: usize,
        /// The model's `max_len`.
        max_len: usize,
    },
}

impl InputLenError {
    /// A stable machine-readable name, as the HTTP API reports it.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Empty => "empty_text",
            Self::TooLong { .. } => "text_too_long",
        }
    }
}

fn gcd(a: usize, b: usize) -> usize {
    if b == 0 { a } else { gcd(b, a % b) }
}

fn lcm(a: usize, b: usize) -> Option<usize> {
    (a / gcd(a, b)).checked_mul(b)
}

/// Parses a layer stack written as `C:k:p:b,...` (the `--layers` flag of `train`).
pub fn parse_layers(spec: &str) -> Result<Vec<LayerConfig>> {
    spec.split(',')
        .map(|part| {
            let fields: Vec<&str> = part.trim().split(':').collect();
            let numbers: Option<Vec<usize>> = fields.iter().map(|f| f.parse().ok()).collect();
            match numbers.as_deref() {
                Some(&[channels, kernel, pool, block_len])
                    if [channels, kernel, pool, block_len].iter().all(|&v| v > 0) =>
                {
                    Ok(LayerConfig {
                        channels,
                        kernel,
                        pool,
                        block_len,
                    })
                }
                _ => Err(ModelError::Config(format!(
                    "layer {part:?} is not C:k:p:b with four positive integers"
                ))),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn config(layers: &str) -> ModelConfig {
        ModelConfig {
            format: FORMAT.into(),
            tokenizer: "bytes".into(),
            vocab_size: BYTE_VOCAB,
            embed_dim: 4,
            layers: parse_layers(layers).unwrap(),
            modulation: Modulation::Scale,
            gate_activation: GateActivation::Sigmoid,
            labels: vec!["a".into(), "b".into()],
            max_len: 1 << 20,
        }
    }

    #[test]
    fn alignment_is_lcm_of_cumulative_pool_times_block() {
        // P = 2, 4, 4: units 2*3=6, 4*4=16, 4*5=20 -> lcm 240.
        let c = config("8:3:2:3,8:3:2:4,8:3:1:5");
        assert_eq!(c.alignment(), 240);
        assert_eq!(c.padded_len(1), 240);
        assert_eq!(c.padded_len(240), 240);
        assert_eq!(c.padded_len(241), 480);
        assert_eq!(c.layer_lengths(480), vec![240, 120, 120]);
    }

    #[test]
    fn same_padding_follows_pytorch_for_even_kernels() {
        let c = config("8:4:1:1");
        assert_eq!((c.layers[0].pad_left(), c.layers[0].pad_right()), (1, 2));
        let c = config("8:5:1:1");
        assert_eq!((c.layers[0].pad_left(), c.layers[0].pad_right()), (2, 2));
    }

    #[test]
    fn validation_names_the_field() {
        let mut c = config("8:3:2:3");
        c.layers[0].pool = 0;
        let err = c.validate().unwrap_err().to_string();
        assert!(err.contains("layers[0].pool"), "{err}");
        let mut c = config("8:3:2:3");
        c.labels.push("a".into());
        assert!(c.validate().unwrap_err().to_string().contains("\"a\""));
        let mut c = config("8:3:2:3");
        c.format = "other".into();
        assert!(c.validate().unwrap_err().to_string().contains("format"));
    }

    #[test]
    fn layer_spec_parsing_rejects_garbage() {
        assert_eq!(parse_layers("64:3:2:16").unwrap()[0].channels, 64);
        assert!(parse_layers("64:3:2").is_err());
        assert!(parse_layers("64:0:2:1").is_err());
        assert!(parse_layers("a:b:c:d").is_err());
    }

    #[test]
    fn input_length_limits() {
        let mut c = config("8:3:2:3");
        c.max_len = 10;
        assert_eq!(c.check_input_len(0), Err(InputLenError::Empty));
        let long = c.check_input_len(11).unwrap_err();
        assert_eq!(
            long,
            InputLenError::TooLong {
                len: 11,
                max_len: 10
            }
        );
        assert_eq!(long.code(), "text_too_long");
        assert!(long.to_string().contains("max_len of 10"), "{long}");
        assert!(c.check_input_len(10).is_ok());
    }
}
