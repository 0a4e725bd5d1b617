//! The model as a differentiable candle graph, for training only.
//!
//! Inference never runs this graph: it runs [`crate::kernels`]. The two are kept equal by a
//! test that compares their logits on the same weights.

use candle_core::{D, DType, Device, Tensor, Var};
use rand::{Rng, SeedableRng, rngs::StdRng};

use crate::config::{GateActivation, ModelConfig, Modulation};
use crate::error::Result;
use crate::weights::{Weights, expected_tensors};

/// Trainable parameters, one [`Var`] per tensor of [`expected_tensors`], in that order.
pub struct TrainNet {
    config: ModelConfig,
    names: Vec<String>,
    vars: Vec<Var>,
}

/// PyTorch's default initialisation for each tensor: N(0, 1) for the embedding,
/// U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for everything else.
fn init_values(name: &str, shape: &[usize], config: &ModelConfig, rng: &mut StdRng) -> Vec<f32> {
    let n: usize = shape.iter().product();
    if name == "embedding.weight" {
        return (0..n)
            .map(|_| {
                // Box-Muller: N(0, 1) without another dependency.
                let u1: f32 = rng.random_range(f32::EPSILON..1.0);
                let u2: f32 = rng.random();
                (-2.0 * u1.ln()).sqrt() * (2.0 * std::f32::consts::PI * u2).cos()
            })
            .collect();
    }
    let layer = name
        .strip_prefix("layers.")
        .and_then(|rest| rest.split('.').next())
        .and_then(|i| i.parse::<usize>().ok());
    let fan_in = if let (Some(l), true) = (layer, name.contains(".conv.")) {
        config.in_channels(l) * config.layers[l].kernel
    } else if name.contains(".lstm.") {
        // PyTorch uses 1/sqrt(hidden) for every LSTM tensor.
        shape[0] / 4
    } else if name.starts_with("classifier") {
        config.layers.last().map_or(1, |l| l.channels)
    } else {
        // affine: C -> 2C
        shape[0] / 2
    };
    let bound = 1.0 / (fan_in.max(1) as f32).sqrt();
    let mut values: Vec<f32> = (0..n).map(|_| rng.random_range(-bound..bound)).collect();
    // Start every TFiLM layer close to a positive, nearly constant scale. Random small gammas
    // of either sign make the modulation a random sign-flip of each channel, which slows
    // learning; opening the input, cell and output gates (bias +2) gives h ~ 0.6..0.85 from
    // the first block on, and the affine form starts at gamma ~ 1, beta ~ 0.
    if name.ends_with("lstm.bias_ih") {
        let c = shape[0] / 4;
        for gate in [0, 2, 3] {
            values[gate * c..(gate + 1) * c]
                .iter_mut()
                .for_each(|v| *v += 2.0);
        }
    } else if name.ends_with("affine.weight") {
        values.iter_mut().for_each(|v| *v *= 0.1);
    } else if name.ends_with("affine.bias") {
        let c = shape[0] / 2;
        values[..c].iter_mut().for_each(|v| *v = 1.0);
        values[c..].iter_mut().for_each(|v| *v = 0.0);
    }
    values
}

impl TrainNet {
    /// Fresh parameters, repeatable for a seed.
    pub fn init(config: &ModelConfig, seed: u64) -> Result<Self> {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut names = Vec::new();
        let mut vars = Vec::new();
        for (name, shape) in expected_tensors(config) {
            let values = init_values(&name, &shape, config, &mut rng);
            vars.push(Var::from_tensor(&Tensor::from_vec(
                values,
                shape,
                &Device::Cpu,
            )?)?);
            names.push(name);
        }
        Ok(Self {
            config: config.clone(),
            names,
            vars,
        })
    }

    /// Starts from a trained model directory: the same architecture (fine-tuning, resuming)
    /// or a narrower one of the same stack (fewer channels, a smaller embedding, shorter
    /// kernels), widened so the new net computes the old logits
    /// at step 0 (see [`super::widen`]). New units draw their initial values from `seed`.
    pub fn from_model_dir(config: &ModelConfig, dir: &std::path::Path, seed: u64) -> Result<Self> {
        let narrow_config = ModelConfig::load(&dir.join(crate::CONFIG_FILE))?;
        super::widen::check_widenable(&narrow_config, config)?;
        let path = dir.join(crate::WEIGHTS_FILE);
        // Validate names, shapes and dtypes with the same checks as inference loading.
        crate::weights::Weights::load(&path, &narrow_config)?;
        let mut tensors = candle_core::safetensors::load(&path, &Device::Cpu)?;
        let mut net = Self::init(config, seed)?;
        for (name, var) in net.names.iter().zip(net.vars.iter_mut()) {
            let narrow = tensors.remove(name).expect("validated above");
            let wide_shape = var.as_tensor().dims().to_vec();
            let values = super::widen::widen_tensor(
                &narrow.flatten_all()?.to_vec1::<f32>()?,
                narrow.dims(),
                var.as_tensor().flatten_all()?.to_vec1::<f32>()?,
                &wide_shape,
                super::widen::output_groups(name),
                &super::widen::inner_offsets(name, narrow.dims(), &wide_shape),
            );
            *var = Var::from_tensor(&Tensor::from_vec(values, wide_shape, &Device::Cpu)?)?;
        }
        Ok(net)
    }

    /// The variables, for the optimiser.
    pub fn vars(&self) -> Vec<Var> {
        self.vars.clone()
    }

    fn var(&self, name: &str) -> &Tensor {
        let i = self
            .names
            .iter()
            .position(|n| n == name)
            .expect("known tensor name");
        self.vars[i].as_tensor()
    }

    /// Copies the current parameters into the kernels' layout.
    pub fn to_weights(&self) -> Result<Weights> {
        let mut tensors = std::collections::HashMap::new();
        for (name, var) in self.names.iter().zip(&self.vars) {
            tensors.insert(
                name.clone(),
                var.as_tensor().flatten_all()?.to_vec1::<f32>()?,
            );
        }
        Ok(Weights::from_named(&self.config, |name| {
            tensors
                .remove(name)
                .expect("every expected tensor is a var")
        }))
    }

    /// Writes `model.safetensors` with the weight names of docs/design.md §1.
    pub fn save(&self, path: &std::path::Path) -> Result<()> {
        let map: std::collections::HashMap<String, Tensor> = self
            .names
            .iter()
            .cloned()
            .zip(self.vars.iter().map(|v| v.as_tensor().clone()))
            .collect();
        candle_core::safetensors::save(&map, path)?;
        Ok(())
    }

    /// Logits `[batch, labels]` for a batch of token ids `[batch, T_0]` sharing one `T_0`.
    pub fn forward(&self, ids: &Tensor) -> Result<Tensor> {
        let (batch, t0) = ids.dims2()?;
        let emb = self.var("embedding.weight");
        let mut x = emb
            .index_select(&ids.flatten_all()?, 0)?
            .reshape((batch, t0, self.config.embed_dim))?
            .transpose(1, 2)?
            .contiguous()?; // [batch, E, T]
        let mut film: Option<(Tensor, Option<Tensor>, usize)> = None;
        let mut t = t0;
        for (l, layer) in self.config.layers.iter().enumerate() {
            if let Some((gamma, beta, block_len)) = &film {
                x = modulate(&x, gamma, beta.as_ref(), *block_len)?;
            }
            let p = format!("layers.{l}");
            let c = layer.channels;
            // "same" zero padding at the sequence ends, asymmetric for even kernels.
            let padded = x.pad_with_zeros(2, layer.pad_left(), layer.pad_right())?;
            let conv = conv1d_im2col(&padded, self.var(&format!("{p}.conv.weight")), t)?
                .broadcast_add(&self.var(&format!("{p}.conv.bias")).reshape((1, c, 1))?)?;
            t /= layer.pool;
            let a = max_last(&conv.reshape((batch, c, t, layer.pool))?)?.relu()?;
            let blocks = t / layer.block_len;
            let stats = max_last(&a.reshape((batch, c, blocks, layer.block_len))?)?
                .transpose(1, 2)?
                .contiguous()?; // [batch, B, C]
            let h = self.lstm(&p, &stats, c)?; // [batch, B, C]
            let (gamma, beta) = match self.config.modulation {
                Modulation::Scale => (h, None),
                Modulation::Affine => {
                    let both = h
                        .broadcast_matmul(&self.var(&format!("{p}.tfilm.affine.weight")).t()?)?
                        .broadcast_add(self.var(&format!("{p}.tfilm.affine.bias")))?;
                    (both.narrow(2, 0, c)?, Some(both.narrow(2, c, c)?))
                }
            };
            film = Some((gamma, beta, layer.block_len));
            x = a;
        }
        let (gamma, beta, block_len) = film.expect("at least one layer");
        let g = max_last(&modulate(&x, &gamma, beta.as_ref(), block_len)?)?; // [batch, C_N]
        Ok(g.matmul(&self.var("classifier.weight").t()?)?
            .broadcast_add(self.var("classifier.bias"))?)
    }

    fn lstm(&self, prefix: &str, stats: &Tensor, c: usize) -> Result<Tensor> {
        let (batch, blocks, _) = stats.dims3()?;
        let w_ih = self.var(&format!("{prefix}.tfilm.lstm.weight_ih")).t()?;
        let w_hh = self.var(&format!("{prefix}.tfilm.lstm.weight_hh")).t()?;
        let bias = (self.var(&format!("{prefix}.tfilm.lstm.bias_ih"))
            + self.var(&format!("{prefix}.tfilm.lstm.bias_hh")))?;
        // Input projections for every block at once; only the recurrence is sequential.
        let projected = stats.broadcast_matmul(&w_ih)?.broadcast_add(&bias)?; // [batch, B, 4C]
        let mut h = Tensor::zeros((batch, c), DType::F32, &Device::Cpu)?;
        let mut cell = h.clone();
        let mut outputs = Vec::with_capacity(blocks);
        for j in 0..blocks {
            let gates = (projected.narrow(1, j, 1)?.squeeze(1)? + h.matmul(&w_hh)?)?;
            let act = |z: Tensor| -> Result<Tensor> {
                Ok(match self.config.gate_activation {
                    GateActivation::Sigmoid => candle_nn::ops::sigmoid(&z)?,
                    GateActivation::HardSigmoid => z.affine(0.2, 0.5)?.clamp(0f32, 1f32)?,
                })
            };
            let i = act(gates.narrow(1, 0, c)?)?;
            let f = act(gates.narrow(1, c, c)?)?;
            let g = gates.narrow(1, 2 * c, c)?.tanh()?;
            let o = act(gates.narrow(1, 3 * c, c)?)?;
            cell = ((f * cell)? + (i * g)?)?;
            h = (o * cell.tanh()?)?;
            outputs.push(h.clone());
        }
        Ok(Tensor::stack(&outputs, 1)?)
    }
}

/// The maximum over the last dimension, with the gradient going to one maximal element.
///
/// candle's `max` sends the full gradient to every element equal to the maximum, and
/// padding makes exact ties common (identical all-zero windows give identical activations),
/// so a tie of three would count its gradient three times. Gathering at the argmax is the
/// subgradient PyTorch's max pooling uses.
fn max_last(x: &Tensor) -> Result<Tensor> {
    let at = x.argmax_keepdim(D::Minus1)?;
    Ok(x.gather(&at, D::Minus1)?.squeeze(D::Minus1)?)
}

/// Cross-correlation of `padded` `[batch, C_in, T + k - 1]` with `weight` `[C_out, C_in, k]`,
/// as one matrix product over the k shifted views (im2col).
///
/// candle 0.11's CPU `conv1d` backward returned wrong weight and input gradients for this
/// graph (the `gradients_match_finite_differences` test catches it), which held the shipped
/// model's training accuracy near 0.94; narrow, stack and matmul have exact gradients.
fn conv1d_im2col(padded: &Tensor, weight: &Tensor, t: usize) -> Result<Tensor> {
    let (batch, c_in, _) = padded.dims3()?;
    let (c_out, _, k) = weight.dims3()?;
    let shifted: Vec<Tensor> = (0..k)
        .map(|j| padded.narrow(2, j, t))
        .collect::<candle_core::Result<_>>()?;
    // [batch, C_in, k, T] -> [batch, C_in * k, T], matching the weight's [C_out, C_in * k].
    let columns = Tensor::stack(&shifted, 2)?.reshape((batch, c_in * k, t))?;
    Ok(weight
        .reshape((c_out, c_in * k))?
        .broadcast_matmul(&columns)?)
}

/// `gamma[block(t)] * a[t] + beta[block(t)]` on `[batch, C, T]` with per-block `[batch, B, C]`.
fn modulate(a: &Tensor, gamma: &Tensor, beta: Option<&Tensor>, block_len: usize) -> Result<Tensor> {
    let (batch, c, t) = a.dims3()?;
    let blocks = t / block_len;
    let per_block = |v: &Tensor| v.transpose(1, 2).and_then(|v| v.unsqueeze(3));
    let mut x = a
        .reshape((batch, c, blocks, block_len))?
        .broadcast_mul(&per_block(gamma)?)?;
    if let Some(beta) = beta {
        x = x.broadcast_add(&per_block(beta)?)?;
    }
    Ok(x.reshape((batch, c, t))?)
}
