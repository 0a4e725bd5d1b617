//! `model.safetensors`: checked against the config, then laid out for the kernels.

use std::path::Path;

use safetensors::{Dtype, SafeTensors};

use crate::config::{BYTE_VOCAB, GateActivation, ModelConfig, Modulation};
use crate::error::{ModelError, Result};
use crate::kernels::lstm::RecurrentWeights;

/// Every tensor a config implies, with its PyTorch shape, in file order (docs/design.md §1).
///
/// Loading, training and export all derive names from this one list, so they cannot drift.
/// [`ModelConfig::validate`] refuses a config whose shapes would overflow, so a validated
/// config never makes this panic.
pub fn expected_tensors(config: &ModelConfig) -> Vec<(String, Vec<usize>)> {
    checked_tensors(config).expect("validated configs imply addressable tensor shapes")
}

/// [`expected_tensors`], or `None` when a dimension (`4 * C` rows of the LSTM) or the bytes
/// of all the tensors together do not fit in a `usize`: a `config.json` may name any sizes,
/// and validation must refuse those before anything multiplies them.
pub(crate) fn checked_tensors(config: &ModelConfig) -> Option<Vec<(String, Vec<usize>)>> {
    let mut out = vec![(
        "embedding.weight".to_string(),
        vec![BYTE_VOCAB, config.embed_dim],
    )];
    for (i, layer) in config.layers.iter().enumerate() {
        let (c, c_in, k) = (layer.channels, config.in_channels(i), layer.kernel);
        let (c2, c4) = (c.checked_mul(2)?, c.checked_mul(4)?);
        let p = format!("layers.{i}");
        out.push((format!("{p}.conv.weight"), vec![c, c_in, k]));
        out.push((format!("{p}.conv.bias"), vec![c]));
        out.push((format!("{p}.tfilm.lstm.weight_ih"), vec![c4, c]));
        out.push((format!("{p}.tfilm.lstm.weight_hh"), vec![c4, c]));
        out.push((format!("{p}.tfilm.lstm.bias_ih"), vec![c4]));
        out.push((format!("{p}.tfilm.lstm.bias_hh"), vec![c4]));
        if config.modulation == Modulation::Affine {
            out.push((format!("{p}.tfilm.affine.weight"), vec![c2, c]));
            out.push((format!("{p}.tfilm.affine.bias"), vec![c2]));
        }
    }
    let last = config.layers.last().map_or(0, |l| l.channels);
    out.push((
        "classifier.weight".to_string(),
        vec![config.labels.len(), last],
    ));
    out.push(("classifier.bias".to_string(), vec![config.labels.len()]));
    // Every element is an f32 of the weights file, which must fit in memory.
    out.iter().try_fold(0usize, |total, (_, shape)| {
        let bytes = shape.iter().try_fold(4usize, |n, &d| n.checked_mul(d))?;
        total.checked_add(bytes)
    })?;
    Some(out)
}

/// A convolution, pre-packed as the `[k * C_in, C_out]` matrix of an im2col product.
///
/// Row `j * C_in + c` holds `W[:, c, j]`, so the `k` consecutive input rows a output row
/// reads are one contiguous slice of the time-major input, and the conv is one GEMM with
/// no im2col copy.
#[derive(Debug, Clone)]
pub struct ConvWeights {
    /// `C_in`.
    pub in_channels: usize,
    /// `C_out`.
    pub out_channels: usize,
    /// `k`.
    pub kernel: usize,
    /// `[k * C_in, C_out]`, row-major.
    pub packed: Vec<f32>,
    /// `[C_out]`.
    pub bias: Vec<f32>,
}

impl ConvWeights {
    /// Packs a PyTorch `[C_out, C_in, k]` weight.
    pub fn from_pytorch(weight: &[f32], bias: Vec<f32>, shape: [usize; 3]) -> Self {
        let [c_out, c_in, k] = shape;
        let mut packed = vec![0.0; k * c_in * c_out];
        for o in 0..c_out {
            for c in 0..c_in {
                for j in 0..k {
                    packed[(j * c_in + c) * c_out + o] = weight[(o * c_in + c) * k + j];
                }
            }
        }
        Self {
            in_channels: c_in,
            out_channels: c_out,
            kernel: k,
            packed,
            bias,
        }
    }
}

/// A TFiLM layer's LSTM in PyTorch's layout (gates i, f, g, o stacked along rows).
#[derive(Debug, Clone)]
pub struct LstmWeights {
    /// Hidden size, equal to the layer's channels.
    pub hidden: usize,
    /// `[4C, C]`, row-major.
    pub weight_ih: Vec<f32>,
    /// `W_hh`, packed once here for the recurrence's GEMV.
    pub weight_hh: RecurrentWeights,
    /// `bias_ih + bias_hh`, `[4C]`: the two always appear summed.
    pub bias: Vec<f32>,
    /// Gate non-linearity.
    pub gate: GateActivation,
}

/// The `C -> 2C` linear map of the "affine" modulation.
#[derive(Debug, Clone)]
pub struct AffineWeights {
    /// `[2C, C]`, row-major; rows `0..C` give gamma, `C..2C` give beta.
    pub weight: Vec<f32>,
    /// `[2C]`.
    pub bias: Vec<f32>,
}

/// One convolution + TFiLM layer's parameters.
#[derive(Debug, Clone)]
pub struct LayerWeights {
    /// The convolution.
    pub conv: ConvWeights,
    /// The TFiLM LSTM.
    pub lstm: LstmWeights,
    /// Present exactly when the modulation is "affine".
    pub affine: Option<AffineWeights>,
}

/// All parameters of a model, immutable once loaded and shared by every stage.
#[derive(Debug, Clone)]
pub struct Weights {
    /// `[257, E]`.
    pub embedding: Vec<f32>,
    /// One entry per layer.
    pub layers: Vec<LayerWeights>,
    /// `[n_labels, C_N]`.
    pub classifier_weight: Vec<f32>,
    /// `[n_labels]`.
    pub classifier_bias: Vec<f32>,
}

impl Weights {
    /// Reads a safetensors file and refuses any tensor that is missing, extra, not f32 or of
    /// the wrong shape, naming it.
    pub fn load(path: &Path, config: &ModelConfig) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|e| ModelError::io(path, e))?;
        Self::from_safetensors(&bytes, path, config)
    }

    /// As [`Weights::load`], from bytes already in memory; `path` is only used in messages.
    pub fn from_safetensors(bytes: &[u8], path: &Path, config: &ModelConfig) -> Result<Self> {
        let file = SafeTensors::deserialize(bytes).map_err(|e| ModelError::SafeTensors {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        let expected = expected_tensors(config);
        let weights_error = |tensor: &str, reason: String| ModelError::Weights {
            path: path.to_path_buf(),
            tensor: tensor.to_string(),
            reason,
        };
        let mut extra: Vec<String> = file
            .names()
            .into_iter()
            .filter(|name| !expected.iter().any(|(e, _)| e == *name))
            .map(str::to_string)
            .collect();
        extra.sort();
        if let Some(name) = extra.first() {
            return Err(weights_error(
                name,
                "not part of this config's model".into(),
            ));
        }
        let mut tensors = std::collections::HashMap::new();
        for (name, shape) in &expected {
            let view = file
                .tensor(name)
                .map_err(|_| weights_error(name, format!("missing (expected shape {shape:?})")))?;
            if view.dtype() != Dtype::F32 {
                return Err(weights_error(
                    name,
                    format!("dtype is {:?}, expected F32", view.dtype()),
                ));
            }
            if view.shape() != shape.as_slice() {
                return Err(weights_error(
                    name,
                    format!("shape is {:?}, expected {shape:?}", view.shape()),
                ));
            }
            let values: Vec<f32> = view
                .data()
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect();
            if let Some(bad) = values.iter().position(|v| !v.is_finite()) {
                return Err(weights_error(name, format!("element {bad} is not finite")));
            }
            tensors.insert(name.clone(), values);
        }
        Ok(Self::from_named(config, |name| {
            tensors
                .remove(name)
                .expect("every expected tensor was checked")
        }))
    }

    /// Builds the kernel layout from tensors fetched by name in PyTorch layout; the names
    /// and shapes are those of [`expected_tensors`].
    pub fn from_named(config: &ModelConfig, mut take: impl FnMut(&str) -> Vec<f32>) -> Self {
        let layers = config
            .layers
            .iter()
            .enumerate()
            .map(|(i, layer)| {
                let p = format!("layers.{i}");
                let c = layer.channels;
                let conv = ConvWeights::from_pytorch(
                    &take(&format!("{p}.conv.weight")),
                    take(&format!("{p}.conv.bias")),
                    [c, config.in_channels(i), layer.kernel],
                );
                let bias_ih = take(&format!("{p}.tfilm.lstm.bias_ih"));
                let bias_hh = take(&format!("{p}.tfilm.lstm.bias_hh"));
                let lstm = LstmWeights {
                    hidden: c,
                    weight_ih: take(&format!("{p}.tfilm.lstm.weight_ih")),
                    weight_hh: RecurrentWeights::pack(
                        &take(&format!("{p}.tfilm.lstm.weight_hh")),
                        c,
                    ),
                    bias: bias_ih.iter().zip(&bias_hh).map(|(a, b)| a + b).collect(),
                    gate: config.gate_activation,
                };
                let affine = (config.modulation == Modulation::Affine).then(|| AffineWeights {
                    weight: take(&format!("{p}.tfilm.affine.weight")),
                    bias: take(&format!("{p}.tfilm.affine.bias")),
                });
                LayerWeights { conv, lstm, affine }
            })
            .collect();
        Self {
            embedding: take("embedding.weight"),
            layers,
            classifier_weight: take("classifier.weight"),
            classifier_bias: take("classifier.bias"),
        }
    }
}
