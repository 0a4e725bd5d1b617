//! Test support (feature `test-support`): random model directories for tests in this and
//! other crates, random architectures for their property tests, the tolerance their
//! answers are held to, and a naive, independent f64 forward pass written straight from
//! docs/design.md §1.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::Path;

use crate::config::{BYTE_VOCAB, FORMAT, parse_layers};
use crate::weights::expected_tensors;
use crate::{GateActivation, ModelConfig, ModelFingerprint, Modulation, Prediction, TfilmModel};
use proptest::prelude::*;
use rand::{Rng, SeedableRng, rngs::StdRng};
use safetensors::{Dtype, tensor::TensorView};

/// Tensors by name: PyTorch shape and values.
pub type Tensors = BTreeMap<String, (Vec<usize>, Vec<f32>)>;

/// A config with labels `l0, l1, ...` and a 1 MiB `max_len`.
pub fn config(
    embed_dim: usize,
    layers: &str,
    modulation: Modulation,
    gate: GateActivation,
    labels: usize,
) -> ModelConfig {
    ModelConfig {
        format: FORMAT.into(),
        tokenizer: "bytes".into(),
        vocab_size: BYTE_VOCAB,
        embed_dim,
        layers: parse_layers(layers).unwrap(),
        modulation,
        gate_activation: gate,
        labels: (0..labels).map(|i| format!("l{i}")).collect(),
        max_len: 1 << 20,
    }
}

/// Every tensor of the config, zero-filled.
pub fn zeros(config: &ModelConfig) -> Tensors {
    expected_tensors(config)
        .into_iter()
        .map(|(name, shape)| {
            let n = shape.iter().product();
            (name, (shape, vec![0.0; n]))
        })
        .collect()
}

/// Every tensor of the config, uniform in [-scale, scale].
pub fn random(config: &ModelConfig, seed: u64, scale: f32) -> Tensors {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut t = zeros(config);
    for (_, values) in t.values_mut() {
        for v in values.iter_mut() {
            *v = rng.random_range(-scale..scale);
        }
    }
    t
}

/// Overwrites one tensor's values.
pub fn set(t: &mut Tensors, name: &str, values: &[f32]) {
    let entry = t
        .get_mut(name)
        .unwrap_or_else(|| panic!("no tensor {name}"));
    assert_eq!(entry.1.len(), values.len(), "{name}");
    entry.1.copy_from_slice(values);
}

/// Writes tensors as an f32 safetensors file.
pub fn write_safetensors(path: &Path, tensors: &Tensors) {
    let bytes: Vec<(String, Vec<usize>, Vec<u8>)> = tensors
        .iter()
        .map(|(n, (s, v))| {
            (
                n.clone(),
                s.clone(),
                v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            )
        })
        .collect();
    let views: Vec<(String, TensorView<'_>)> = bytes
        .iter()
        .map(|(n, s, b)| {
            (
                n.clone(),
                TensorView::new(Dtype::F32, s.clone(), b).unwrap(),
            )
        })
        .collect();
    safetensors::serialize_to_file(views, None, path).unwrap();
}

/// Writes config.json and model.safetensors into `dir`.
pub fn write_model(dir: &Path, config: &ModelConfig, tensors: &Tensors) {
    std::fs::create_dir_all(dir).unwrap();
    config.save(&dir.join("config.json")).unwrap();
    write_safetensors(&dir.join("model.safetensors"), tensors);
}

/// A random model with three labels (weights uniform in ±0.8), written to a temporary
/// directory and loaded: what the stage functions of a test load, and the monolithic
/// forward pass their answers are checked against.
pub struct RandomModel {
    /// The model directory, removed when the model is dropped.
    pub dir: tempfile::TempDir,
    /// The loaded model.
    pub model: TfilmModel,
    /// Its fingerprint, which every stage event carries.
    pub fingerprint: ModelFingerprint,
}

impl RandomModel {
    /// A model of `layers` (as `--layers` reads them) over `embed`-wide embeddings.
    pub fn new(
        layers: &str,
        embed: usize,
        modulation: Modulation,
        gate: GateActivation,
        seed: u64,
    ) -> Self {
        let cfg = config(embed, layers, modulation, gate, 3);
        let dir = tempfile::tempdir().unwrap();
        write_model(dir.path(), &cfg, &random(&cfg, seed, 0.8));
        let (model, fingerprint) = TfilmModel::load_fingerprinted(dir.path()).unwrap();
        Self {
            dir,
            model,
            fingerprint,
        }
    }

    /// An `affine`, sigmoid-gated model: its second layer's conv stages modulate their
    /// input, so every stage op has work to do.
    pub fn affine(layers: &str, embed: usize, seed: u64) -> Self {
        Self::new(
            layers,
            embed,
            Modulation::Affine,
            GateActivation::Sigmoid,
            seed,
        )
    }
}

/// A random model's architecture, as [`arch_and_text`] draws it.
#[derive(Debug, Clone)]
pub struct Arch {
    /// The layers, as `--layers` reads them.
    pub layers: String,
    /// The embedding width.
    pub embed: usize,
    /// How a TFiLM layer turns its LSTM output into a per-block modulation.
    pub modulation: Modulation,
    /// The LSTM's gate non-linearity.
    pub gate: GateActivation,
    /// The seed of the random weights.
    pub seed: u64,
}

/// An architecture of `depth` layers drawn from `layer` (`c:k:p:b` each), 1 to 4 wide
/// embeddings, either modulation, either gate and any weight seed; and a text of `len`
/// random bytes to run it on.
pub fn arch_and_text(
    layer: impl Strategy<Value = String>,
    depth: Range<usize>,
    len: Range<usize>,
) -> impl Strategy<Value = (Arch, Vec<u8>)> {
    let arch = (
        prop::collection::vec(layer, depth),
        1usize..5,
        any::<bool>(),
        any::<bool>(),
        any::<u64>(),
    )
        .prop_map(|(layers, embed, affine, hard, seed)| Arch {
            layers: layers.join(","),
            embed,
            modulation: if affine {
                Modulation::Affine
            } else {
                Modulation::Scale
            },
            gate: if hard {
                GateActivation::HardSigmoid
            } else {
                GateActivation::Sigmoid
            },
            seed,
        });
    (arch, prop::collection::vec(any::<u8>(), len))
}

/// How far a split pipeline's logits may be from the monolithic forward pass's.
pub const LOGIT_TOLERANCE: f32 = 1e-4;

/// Panics unless `got` has `want`'s label and its logits within [`LOGIT_TOLERANCE`].
pub fn assert_same_prediction(got: &Prediction, want: &Prediction, what: &str) {
    assert_eq!(got.label, want.label, "{what}");
    assert_eq!(got.logits.len(), want.logits.len(), "{what}");
    for (g, w) in got.logits.iter().zip(&want.logits) {
        assert!(
            (g - w).abs() <= LOGIT_TOLERANCE,
            "{what}: {:?} vs {:?}",
            got.logits,
            want.logits
        );
    }
}

/// `count` texts, the i-th being `stem` and i repeated `repeats(i)` times: queries of
/// growing lengths that differ from each other.
pub fn texts(stem: &str, count: usize, repeats: impl Fn(usize) -> usize) -> Vec<Vec<u8>> {
    (0..count)
        .map(|i| format!("{stem} {i}; ").repeat(repeats(i)).into_bytes())
        .collect()
}

/// Per-block gamma, beta and the block length of the previous layer.
type Modulated = (Vec<Vec<f64>>, Vec<Vec<f64>>, usize);

fn act(gate: GateActivation, x: f64) -> f64 {
    match gate {
        GateActivation::Sigmoid => 1.0 / (1.0 + (-x).exp()),
        GateActivation::HardSigmoid => (0.2 * x + 0.5).clamp(0.0, 1.0),
    }
}

/// docs/design.md §1 in f64 with plain loops over `[t][c]` vectors: slow, obvious, independent
/// of the kernels (no tiling, no packing, no block-stat shortcut in the head).
pub fn naive_logits(config: &ModelConfig, t: &Tensors, bytes: &[u8]) -> Vec<f64> {
    let get = |name: &str| -> Vec<f64> { t[name].1.iter().map(|&v| f64::from(v)).collect() };
    let t0 = config.padded_len(bytes.len());
    let e = config.embed_dim;
    let emb = get("embedding.weight");
    let mut x: Vec<Vec<f64>> = (0..t0)
        .map(|i| {
            let id = bytes.get(i).map_or(0, |&b| b as usize + 1);
            emb[id * e..(id + 1) * e].to_vec()
        })
        .collect();
    let mut mod_prev: Option<Modulated> = None;
    for (l, layer) in config.layers.iter().enumerate() {
        let p = format!("layers.{l}");
        if let Some((gamma, beta, b)) = &mod_prev {
            for (ti, row) in x.iter_mut().enumerate() {
                for (c, v) in row.iter_mut().enumerate() {
                    *v = gamma[ti / b][c] * *v + beta[ti / b][c];
                }
            }
        }
        let (c_out, c_in, k) = (layer.channels, config.in_channels(l), layer.kernel);
        let w = get(&format!("{p}.conv.weight"));
        let bias = get(&format!("{p}.conv.bias"));
        let left = layer.pad_left();
        let len = x.len();
        let conv: Vec<Vec<f64>> = (0..len)
            .map(|ti| {
                (0..c_out)
                    .map(|o| {
                        let mut s = bias[o];
                        for j in 0..k {
                            let src = ti as isize + j as isize - left as isize;
                            if src < 0 || src >= len as isize {
                                continue;
                            }
                            for c in 0..c_in {
                                s += w[(o * c_in + c) * k + j] * x[src as usize][c];
                            }
                        }
                        s
                    })
                    .collect()
            })
            .collect();
        let a: Vec<Vec<f64>> = conv
            .chunks(layer.pool)
            .map(|g| {
                (0..c_out)
                    .map(|o| g.iter().map(|r| r[o]).fold(f64::MIN, f64::max).max(0.0))
                    .collect()
            })
            .collect();
        let blocks = a.len() / layer.block_len;
        let w_ih = get(&format!("{p}.tfilm.lstm.weight_ih"));
        let w_hh = get(&format!("{p}.tfilm.lstm.weight_hh"));
        let b_ih = get(&format!("{p}.tfilm.lstm.bias_ih"));
        let b_hh = get(&format!("{p}.tfilm.lstm.bias_hh"));
        let (mut h, mut cell) = (vec![0.0; c_out], vec![0.0; c_out]);
        let (mut gamma, mut beta) = (Vec::new(), Vec::new());
        for j in 0..blocks {
            let s: Vec<f64> = (0..c_out)
                .map(|o| {
                    (0..layer.block_len)
                        .map(|r| a[j * layer.block_len + r][o])
                        .fold(f64::MIN, f64::max)
                })
                .collect();
            let gates: Vec<f64> = (0..4 * c_out)
                .map(|g| {
                    let mut z = b_ih[g] + b_hh[g];
                    for c in 0..c_out {
                        z += w_ih[g * c_out + c] * s[c] + w_hh[g * c_out + c] * h[c];
                    }
                    z
                })
                .collect();
            for c in 0..c_out {
                let i = act(config.gate_activation, gates[c]);
                let f = act(config.gate_activation, gates[c_out + c]);
                let g = gates[2 * c_out + c].tanh();
                let o = act(config.gate_activation, gates[3 * c_out + c]);
                cell[c] = f * cell[c] + i * g;
                h[c] = o * cell[c].tanh();
            }
            match config.modulation {
                Modulation::Scale => {
                    gamma.push(h.clone());
                    beta.push(vec![0.0; c_out]);
                }
                Modulation::Affine => {
                    let aw = get(&format!("{p}.tfilm.affine.weight"));
                    let ab = get(&format!("{p}.tfilm.affine.bias"));
                    let out: Vec<f64> = (0..2 * c_out)
                        .map(|r| ab[r] + (0..c_out).map(|c| aw[r * c_out + c] * h[c]).sum::<f64>())
                        .collect();
                    gamma.push(out[..c_out].to_vec());
                    beta.push(out[c_out..].to_vec());
                }
            }
        }
        mod_prev = Some((gamma, beta, layer.block_len));
        x = a;
    }
    let (gamma, beta, b) = mod_prev.unwrap();
    let c_n = x[0].len();
    let g: Vec<f64> = (0..c_n)
        .map(|c| {
            (0..x.len())
                .map(|ti| gamma[ti / b][c] * x[ti][c] + beta[ti / b][c])
                .fold(f64::MIN, f64::max)
        })
        .collect();
    let cw = get("classifier.weight");
    let cb = get("classifier.bias");
    (0..config.labels.len())
        .map(|k| cb[k] + (0..c_n).map(|c| cw[k * c_n + c] * g[c]).sum::<f64>())
        .collect()
}
