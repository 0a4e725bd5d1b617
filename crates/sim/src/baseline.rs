//! The instance fleets the serverless deployment is compared with, derived rather than
//! assumed (docs/simulator.md, "Instance baselines"):
//!
//! - [`cpu_measured`]: this machine's measured saturation throughput of `seqless serve`,
//!   scaled per vCPU to a priced CPU instance type, with the length dependence of the
//!   measured forward;
//! - [`gpu_roofline`]: an upper bound for a GPU instance from its published fp32 peak and
//!   memory bandwidth and the model's FLOPs and bytes per query.

use std::fmt;
use std::str::FromStr;

use seqless_model::ModelConfig;
use serde::{Deserialize, Serialize};

use crate::{InstanceConfig, SimError};

/// Which derived baseline a run compares with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum InstanceBaseline {
    /// [`cpu_measured`] on [`C5_XLARGE`].
    CpuMeasured,
    /// [`gpu_roofline`] on [`K80_DIE`] (the paper's p2.xlarge).
    GpuRoofline,
}

impl InstanceBaseline {
    /// Every baseline, in the order help texts list them.
    pub const ALL: [InstanceBaseline; 2] =
        [InstanceBaseline::CpuMeasured, InstanceBaseline::GpuRoofline];

    /// The name the CLI and the config use.
    pub fn name(self) -> &'static str {
        match self {
            InstanceBaseline::CpuMeasured => "cpu-measured",
            InstanceBaseline::GpuRoofline => "gpu-roofline",
        }
    }

    /// This baseline's fleet of one instance for `model`.
    pub fn derive(self, model: &ModelConfig) -> Result<InstanceConfig, SimError> {
        match self {
            InstanceBaseline::CpuMeasured => cpu_measured(model, &C5_XLARGE),
            InstanceBaseline::GpuRoofline => Ok(gpu_roofline(model, &K80_DIE)),
        }
    }
}

impl fmt::Display for InstanceBaseline {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for InstanceBaseline {
    type Err = SimError;

    /// Parses a baseline name; anything else is refused with the names that exist.
    fn from_str(s: &str) -> Result<Self, SimError> {
        Self::ALL
            .into_iter()
            .find(|b| b.name() == s)
            .ok_or_else(|| SimError::Config {
                field: "instances.baseline".into(),
                reason: format!(
                    "`{s}` is not a baseline; expected one of {}",
                    Self::ALL.map(|b| b.name()).join(", ")
                ),
            })
    }
}

/// One forward pass's work, counted the way a roofline needs it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ForwardCost {
    /// Convolution FLOPs, exactly [`ModelConfig::conv_flops`].
    pub conv_flops: f64,
    /// TFiLM FLOPs: per block, the LSTM step (`16 C²`: four gates over the block
    /// statistic and the hidden state, 2 FLOPs per multiply-add) and, for the affine
    /// modulation, the `C → 2C` projection (`4 C²`); per row, the FiLM itself (`2 C`).
    pub tfilm_flops: f64,
    /// The least DRAM traffic, bytes: the token ids read once, and every layer's input
    /// activation read once and its pooled output written once, in f32, as a perfectly
    /// fused kernel would. Weights are per batch, not per query ([`weight_bytes`]).
    pub activation_bytes: f64,
    /// LSTM steps that must run one after another: the sum of every layer's blocks.
    pub serial_steps: usize,
}

impl ForwardCost {
    /// All FLOPs of the query.
    pub fn flops(&self) -> f64 {
        self.conv_flops + self.tfilm_flops
    }
}

/// The work of one query of `bytes` bytes (padded to the model's alignment, as served).
/// Pooling, block statistics, activations and the classifier head are comparisons or
/// negligible and are not counted, which only lowers the bound's service time.
pub fn forward_cost(model: &ModelConfig, bytes: usize) -> ForwardCost {
    let t0 = model.padded_len(bytes);
    let lengths = model.layer_lengths(t0);
    let affine = model.modulation == seqless_model::Modulation::Affine;
    let (mut tfilm_flops, mut activation_bytes, mut serial_steps) = (0.0, t0 as f64, 0);
    let mut t_in = t0;
    for (l, (layer, &t)) in model.layers.iter().zip(&lengths).enumerate() {
        let c = layer.channels as f64;
        let blocks = t / layer.block_len;
        let per_block = 16.0 * c * c + if affine { 4.0 * c * c } else { 0.0 };
        tfilm_flops += blocks as f64 * per_block + 2.0 * t as f64 * c;
        activation_bytes += 4.0 * (t_in * model.in_channels(l) + t * layer.channels) as f64;
        serial_steps += blocks;
        t_in = t;
    }
    ForwardCost {
        conv_flops: model.conv_flops(t0),
        tfilm_flops,
        activation_bytes,
        serial_steps,
    }
}

/// Bytes of the weights a batch reads once: embedding, convolutions, LSTMs and
/// modulations, in f32.
pub fn weight_bytes(model: &ModelConfig) -> f64 {
    let mut params = model.vocab_size * model.embed_dim;
    for (l, layer) in model.layers.iter().enumerate() {
        let c = layer.channels;
        params += layer.kernel * model.in_channels(l) * c + c; // conv weight and bias
        params += 2 * 4 * c * c + 2 * 4 * c; // LSTM weight_ih, weight_hh and biases
        params += 2 * c * c + 2 * c; // affine modulation (an upper figure for scale)
    }
    4.0 * params as f64
}

/// A GPU as its datasheet gives it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GpuSpec {
    /// Instance type it is rented as ([`seqless_cost::Pricing::instances`] key).
    pub instance_type: &'static str,
    /// Name, for labels.
    pub name: &'static str,
    /// Peak fp32 FLOP/s.
    pub peak_flops: f64,
    /// Peak memory bandwidth, bytes/s.
    pub bandwidth_bytes_per_s: f64,
    /// Fixed cost of one kernel launch, ms.
    pub launch_ms: f64,
    /// Largest batch served at once.
    pub max_batch: u32,
}

/// The GPU of a p2.xlarge: one GK210 die of a Tesla K80 board. NVIDIA's K80 datasheet
/// gives 8.73 TFLOP/s fp32 (with GPU Boost) and 480 GB/s for the two-die board; one die
/// is half of each (2,496 cores × 2 FLOPs × 875 MHz = 4.37 TFLOP/s). A kernel launch is
/// taken as 5 µs, the order CUDA's launch overhead is usually measured at.
pub const K80_DIE: GpuSpec = GpuSpec {
    instance_type: "p2.xlarge",
    name: "K80 (one GK210 die)",
    peak_flops: 8.73e12 / 2.0,
    bandwidth_bytes_per_s: 480e9 / 2.0,
    launch_ms: 0.005,
    max_batch: 32,
};

/// An upper bound on what one GPU instance serves: each query takes
/// `max(FLOPs / peak, bytes / bandwidth)` (per byte of input, at the model's longest
/// input, where padding and integer division no longer matter), and each batch adds its
/// kernel launches (embedding, then conv, statistics, LSTM and FiLM per layer, then the
/// head) and one read of the weights. The LSTM recurrence runs `serial_steps` dependent
/// steps that a GPU cannot spread over its cores; no time is charged for them, which
/// favours the GPU further.
pub fn gpu_roofline(model: &ModelConfig, gpu: &GpuSpec) -> InstanceConfig {
    let len = model.padded_len(model.max_len);
    let cost = forward_cost(model, len);
    let compute_ms = cost.flops() / gpu.peak_flops * 1000.0;
    let memory_ms = cost.activation_bytes / gpu.bandwidth_bytes_per_s * 1000.0;
    let launches = 2 + 4 * model.layers.len();
    InstanceConfig {
        instance_type: gpu.instance_type.into(),
        count: 1,
        max_batch: gpu.max_batch,
        batch_fixed_ms: launches as f64 * gpu.launch_ms
            + weight_bytes(model) / gpu.bandwidth_bytes_per_s * 1000.0,
        per_query_ms: 0.0,
        per_byte_ms: compute_ms.max(memory_ms) / len as f64,
        basis: format!(
            "gpu-roofline: {} at {:.2} TFLOP/s fp32 and {:.0} GB/s, {} launches of {} ms per \
             batch; an upper bound (LSTM recurrence not charged)",
            gpu.name,
            gpu.peak_flops / 1e12,
            gpu.bandwidth_bytes_per_s / 1e9,
            launches,
            gpu.launch_ms
        ),
    }
}

/// A CPU instance type and its vCPUs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CpuSpec {
    /// Instance type ([`seqless_cost::Pricing::instances`] key).
    pub instance_type: &'static str,
    /// vCPUs.
    pub vcpus: u32,
}

/// A c5.xlarge: 4 vCPUs of an AVX-512 Xeon, like the machine the figures were measured on.
pub const C5_XLARGE: CpuSpec = CpuSpec {
    instance_type: "c5.xlarge",
    vcpus: 4,
};

/// One model's measured serving throughput on this machine, and the length dependence of
/// its forward.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CpuMeasurement {
    /// Which model, for messages.
    pub model: &'static str,
    /// `layers` of its config (`channels:kernel:pool:block_len`, comma-separated), which
    /// identifies it together with `embed_dim`.
    pub layers: &'static str,
    /// Its embedding width.
    pub embed_dim: usize,
    /// The highest queries/s `seqless bench load` measured against `seqless serve`.
    pub qps: f64,
    /// The query length it was measured at, bytes.
    pub bytes: usize,
    /// vCPUs of the machine it was measured on (the client shared them).
    pub vcpus: u32,
    /// Where `qps` comes from.
    pub source: &'static str,
    /// vCPU time per input byte, ms.
    pub per_byte_vcpu_ms: f64,
    /// Where `per_byte_vcpu_ms` comes from: the monolithic forward measured at several
    /// lengths (`monolithic_ms` of `seqless bench serverless`, on `vcpus` threads), whose
    /// least-squares slope times `vcpus` it is. `None`: measured at `bytes` only, and
    /// the whole query time is taken as proportional to the length.
    pub forward_source: Option<&'static str>,
}

/// `models/langid` behind `seqless serve --batch-max 8 --batch-wait-ms 2` (docs/serve.md).
pub const LANGID_SERVE: CpuMeasurement = CpuMeasurement {
    model: "models/langid",
    layers: "256:5:2:16",
    embed_dim: 32,
    qps: 52.05,
    bytes: 4096,
    vcpus: 2,
    source: "docs/results/load-monolithic-batched.csv",
    per_byte_vcpu_ms: 2.0 * (1645.185 - 122.521) / (1_048_576.0 - 65_536.0),
    forward_source: Some("docs/results/serverless-memory.csv"),
};

/// The seed code's scale behind `seqless serve` (docs/results.md). Its forward was
/// measured at 80,000 bytes only; with no pooling its FLOPs are proportional to the
/// length, which is what taking the time as proportional assumes.
pub const SEED_SCALE_SERVE: CpuMeasurement = CpuMeasurement {
    model: "the seed scale (seqless init --embed-dim 256 --layers 256:3:1:32 x 3)",
    layers: "256:3:1:32,256:3:1:32,256:3:1:32",
    embed_dim: 256,
    qps: 0.45,
    bytes: 80_000,
    vcpus: 2,
    source: "docs/results/load-seed-scale-monolithic.csv",
    per_byte_vcpu_ms: 2.0 / 0.45 * 1000.0 / 80_000.0,
    forward_source: None,
};

/// The measurements [`cpu_measured`] knows.
pub const CPU_MEASUREMENTS: [CpuMeasurement; 2] = [LANGID_SERVE, SEED_SCALE_SERVE];

impl CpuMeasurement {
    /// Whether `model` is the model this was measured with (same layers and embedding).
    pub fn matches(&self, model: &ModelConfig) -> bool {
        let layers: Vec<String> = model
            .layers
            .iter()
            .map(|l| format!("{}:{}:{}:{}", l.channels, l.kernel, l.pool, l.block_len))
            .collect();
        model.embed_dim == self.embed_dim && layers.join(",") == self.layers
    }

    /// vCPU time one query of `bytes` bytes takes, ms: the measured machine's
    /// `vcpus / qps` at the measured length, moved along the per-byte slope.
    pub fn vcpu_ms(&self, bytes: f64) -> f64 {
        self.fixed_vcpu_ms() + self.per_byte_vcpu_ms * bytes
    }

    /// The part of [`Self::vcpu_ms`] that does not grow with the length (request
    /// handling, tokenising, the client's share of the cores).
    pub fn fixed_vcpu_ms(&self) -> f64 {
        f64::from(self.vcpus) / self.qps * 1000.0 - self.per_byte_vcpu_ms * self.bytes as f64
    }
}

/// A CPU instance from this machine's measurement, scaled linearly per vCPU (an
/// assumption: `cpu.vcpus` vCPUs serve `cpu.vcpus / vcpus` times the measured
/// throughput). A batch of `n` queries spread over the vCPUs takes
/// `Σ vcpu_ms(len) / vcpus`, so the fleet's capacity is `vcpus / vcpu_ms(len)`.
/// Refused for a model with no measurement.
pub fn cpu_measured(model: &ModelConfig, cpu: &CpuSpec) -> Result<InstanceConfig, SimError> {
    let m = CPU_MEASUREMENTS
        .iter()
        .find(|m| m.matches(model))
        .ok_or_else(|| SimError::Config {
            field: "instances.baseline".into(),
            reason: format!(
                "cpu-measured has measurements of {} only; measure this model with `seqless \
                 bench load` against `seqless serve` and give its instances in --config",
                CPU_MEASUREMENTS.map(|m| m.model).join(" and ")
            ),
        })?;
    let v = f64::from(cpu.vcpus);
    Ok(InstanceConfig {
        instance_type: cpu.instance_type.into(),
        count: 1,
        max_batch: cpu.vcpus,
        batch_fixed_ms: 0.0,
        per_query_ms: m.fixed_vcpu_ms() / v,
        per_byte_ms: m.per_byte_vcpu_ms / v,
        basis: format!(
            "cpu-measured: {} q/s at {} bytes on {} vCPUs ({}), {:.6} vCPU-ms per byte ({}), \
             scaled linearly to the {} vCPUs of a {}",
            m.qps,
            m.bytes,
            m.vcpus,
            m.source,
            m.per_byte_vcpu_ms,
            m.forward_source
                .unwrap_or("time proportional to length, measured at that length only"),
            cpu.vcpus,
            cpu.instance_type
        ),
    })
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn model(dir: &str) -> ModelConfig {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        ModelConfig::load(&root.join(dir).join("config.json")).unwrap()
    }

    /// The seed code's scale, as `seqless init --embed-dim 256 --layers 256:3:1:32 x 3`.
    fn seed_scale() -> ModelConfig {
        let mut m = model("models/langid");
        m.embed_dim = 256;
        let layer = seqless_model::LayerConfig {
            channels: 256,
            kernel: 3,
            pool: 1,
            block_len: 32,
        };
        m.layers = vec![layer; 3];
        m.max_len = 131_072;
        m
    }

    fn read(rel: &str) -> String {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        std::fs::read_to_string(root.join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
    }

    #[test]
    fn flop_accounting_matches_the_models_conv_flops() {
        for m in [model("models/langid"), seed_scale()] {
            for bytes in [1, 1000, 4096, 80_000] {
                let cost = forward_cost(&m, bytes);
                assert_eq!(cost.conv_flops, m.conv_flops(m.padded_len(bytes)));
                assert!(cost.tfilm_flops > 0.0 && cost.activation_bytes > bytes as f64);
            }
        }
        // One 256-channel layer, pool 2, block 16, affine: per padded byte, the conv's
        // 2·5·32·256 FLOPs, the LSTM and modulation's 20·256² per 32 bytes and the FiLM's
        // 2·256 per 2 bytes.
        let m = model("models/langid");
        let t = m.padded_len(65_536) as f64;
        let cost = forward_cost(&m, 65_536);
        assert_eq!(cost.conv_flops, t * 2.0 * 5.0 * 32.0 * 256.0);
        assert_eq!(
            cost.tfilm_flops,
            t / 32.0 * 20.0 * 256.0 * 256.0 + t * 256.0
        );
        assert_eq!(cost.serial_steps, 65_536 / 32);
    }

    #[test]
    fn the_gpu_bounds_capacity_falls_as_queries_grow() {
        for m in [model("models/langid"), seed_scale()] {
            let gpu = gpu_roofline(&m, &K80_DIE);
            let mut last = f64::INFINITY;
            for bytes in [1024.0, 4096.0, 65_536.0, 1_048_576.0] {
                let q = gpu.capacity_qps(bytes);
                assert!(q < last, "{bytes}: {q} q/s, not below {last}");
                last = q;
            }
            // Bytes per second can never beat the die's peak FLOP rate.
            let flops_per_byte = forward_cost(&m, m.max_len).flops() / m.max_len as f64;
            let bytes_per_s = gpu.capacity_qps(m.max_len as f64) * m.max_len as f64;
            assert!(bytes_per_s * flops_per_byte <= K80_DIE.peak_flops * 1.001);
        }
        // The seed scale's 94 GFLOP query at 80,000 bytes takes at least 21 ms on one die.
        let seed = gpu_roofline(&seed_scale(), &K80_DIE);
        let per_query_ms = seed.batch_ms(32, 32.0 * 80_000.0) / 32.0;
        assert!(per_query_ms > 21.0, "{per_query_ms}");
    }

    #[test]
    fn cpu_baselines_match_their_files_and_refuse_unknown_models() {
        for m in CPU_MEASUREMENTS {
            // qps is the highest throughput in the load CSV.
            let csv = read(m.source);
            let header: Vec<&str> = csv.lines().next().unwrap().split(',').collect();
            let col = header.iter().position(|h| *h == "qps").unwrap();
            let best = csv
                .lines()
                .skip(1)
                .map(|l| l.split(',').nth(col).unwrap().parse::<f64>().unwrap())
                .fold(0.0, f64::max);
            assert_eq!(best, m.qps, "{}", m.source);
            // per_byte_vcpu_ms is the slope of the forward's medians times the threads it
            // ran on, or the whole query's time spread over its bytes.
            let slope = match m.forward_source {
                Some(source) => {
                    let csv = read(source);
                    let header: Vec<&str> = csv.lines().next().unwrap().split(',').collect();
                    let at = |name| header.iter().position(|h| *h == name).unwrap();
                    let (b, ms) = (at("bytes"), at("monolithic_ms"));
                    let mut samples: Vec<(f64, f64)> = csv
                        .lines()
                        .skip(1)
                        .map(|l| {
                            let f: Vec<&str> = l.split(',').collect();
                            (f[b].parse().unwrap(), f[ms].parse().unwrap())
                        })
                        .collect();
                    samples.sort_by(|x, y| x.partial_cmp(y).unwrap());
                    samples.dedup();
                    assert!(samples.len() >= 2, "{source}");
                    let n = samples.len() as f64;
                    let (mx, my) = samples
                        .iter()
                        .fold((0.0, 0.0), |(a, c), (x, y)| (a + x / n, c + y / n));
                    let sxy: f64 = samples.iter().map(|(x, y)| (x - mx) * (y - my)).sum();
                    let sxx: f64 = samples.iter().map(|(x, _)| (x - mx).powi(2)).sum();
                    f64::from(m.vcpus) * sxy / sxx
                }
                None => f64::from(m.vcpus) / m.qps * 1000.0 / m.bytes as f64,
            };
            assert!(
                ((m.per_byte_vcpu_ms - slope) / slope).abs() < 1e-9,
                "{}: slope {slope}, constant {}",
                m.model,
                m.per_byte_vcpu_ms
            );
            assert!(m.fixed_vcpu_ms() >= 0.0, "{}", m.model);
        }
        // At the measured length, a c5.xlarge serves 4/2 of the measured throughput.
        let cpu = cpu_measured(&model("models/langid"), &C5_XLARGE).unwrap();
        let q = cpu.capacity_qps(LANGID_SERVE.bytes as f64);
        assert!((q - 2.0 * LANGID_SERVE.qps).abs() < 1e-9, "{q}");
        cpu_measured(&seed_scale(), &C5_XLARGE).unwrap();
        let mut other = model("models/langid");
        other.layers[0].channels = 128;
        let err = cpu_measured(&other, &C5_XLARGE).unwrap_err().to_string();
        assert!(
            err.contains("instances.baseline") && err.contains("models/langid"),
            "{err}"
        );
        let err = "tpu-dream"
            .parse::<InstanceBaseline>()
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("instances.baseline") && err.contains("cpu-measured, gpu-roofline"),
            "{err}"
        );
        for b in InstanceBaseline::ALL {
            assert_eq!(b.name().parse::<InstanceBaseline>().unwrap(), b);
        }
    }
}
