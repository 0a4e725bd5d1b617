//! The monolithic forward, timed as a whole and split per layer into conv, block stats,
//! LSTM and FiLM, beside two ceilings measured in the same run with the same threads: the
//! f32 GEMM throughput (which bounds the conv layers) and the LSTM's roofline (its input
//! projection at that GEMM rate, plus per block the `W_hh` GEMV from cache and the gate
//! functions). Run it inside the thread pool whose size it reports.

use std::fmt::Write as _;
use std::hint::black_box;
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng, rngs::StdRng};
use seqless_model::kernels::lstm::{self, RecurrentWeights};
use seqless_model::kernels::{self, InputRows, LstmState};
use seqless_model::{LayerSummary, ModelError, TfilmModel};
use serde::Serialize;

use crate::stats::median;
use crate::{BenchError, ms};

/// Median and minimum of a set of timings, in milliseconds.
pub struct Timing {
    /// Median.
    pub median_ms: f64,
    /// Fastest run.
    pub min_ms: f64,
}

impl Timing {
    /// The median and the fastest of `samples`, ms.
    fn of(samples: &[f64]) -> Self {
        Self {
            median_ms: median(samples).unwrap_or(f64::NAN),
            min_ms: samples.iter().copied().fold(f64::INFINITY, f64::min),
        }
    }
}

/// Times `f` once to warm up, then `runs` times (at least once).
pub fn time_runs<E>(runs: usize, mut f: impl FnMut() -> Result<(), E>) -> Result<Timing, E> {
    f()?;
    let mut samples = Vec::with_capacity(runs.max(1));
    for _ in 0..runs.max(1) {
        let start = Instant::now();
        f()?;
        samples.push(ms(start.elapsed()));
    }
    Ok(Timing::of(&samples))
}

/// Seconds per call of `f`, the fastest of `runs` batches of `reps` calls: a ceiling, so
/// the best batch, since a neighbour on the machine can only slow a batch down.
fn fastest_per_call(runs: usize, reps: usize, mut f: impl FnMut()) -> f64 {
    f();
    (0..runs.max(1))
        .map(|_| {
            let start = Instant::now();
            for _ in 0..reps {
                f();
            }
            start.elapsed().as_secs_f64() / reps as f64
        })
        .fold(f64::INFINITY, f64::min)
}

/// GFLOP/s of a square f32 GEMM of side `n`: the machine's matmul ceiling for these threads.
fn gemm_peak(n: usize, threads: usize, runs: usize) -> f64 {
    let a = vec![1.0f32; n * n];
    let b = vec![0.5f32; n * n];
    let mut c = vec![0.0f32; n * n];
    let parallelism = if threads > 1 {
        gemm::Parallelism::Rayon(threads)
    } else {
        gemm::Parallelism::None
    };
    let stride = n as isize;
    let seconds = fastest_per_call(runs, 1, || {
        // SAFETY: three disjoint row-major n x n buffers.
        unsafe {
            gemm::gemm(
                n,
                n,
                n,
                c.as_mut_ptr(),
                1,
                stride,
                false,
                a.as_ptr(),
                1,
                stride,
                b.as_ptr(),
                1,
                stride,
                0.0,
                1.0,
                false,
                false,
                false,
                parallelism,
            );
        }
    });
    2.0 * (n * n * n) as f64 / seconds / 1e9
}

/// One layer's ceiling for its LSTM, per block, from micro-kernels run on warm caches.
pub struct LstmCeiling {
    /// The `W_hh` GEMV alone, seconds.
    pub gemv_s: f64,
    /// The cell update (the `5C` gate functions and the state update) alone, seconds.
    pub gates_s: f64,
    /// Bytes of packed `W_hh` the GEMV streams.
    pub weight_bytes: usize,
}

impl LstmCeiling {
    fn measure(model: &TfilmModel, layer: usize, runs: usize) -> Self {
        let lstm = &model.weights.layers[layer].lstm;
        let packed: &RecurrentWeights = &lstm.weight_hh;
        let c = packed.hidden();
        let mut rng = StdRng::seed_from_u64(2);
        let h: Vec<f32> = (0..c).map(|_| rng.random_range(-1.0..1.0)).collect();
        let gates: Vec<f32> = (0..packed.padded_rows())
            .map(|_| rng.random_range(-3.0..3.0))
            .collect();
        let reps = 256;
        let mut out = gates.clone();
        let gemv_s = fastest_per_call(runs, reps, || {
            packed.gemv_accumulate(black_box(&h), black_box(&mut out));
        });
        let mut state = LstmState::zero(c);
        let gates_s = fastest_per_call(runs, reps, || {
            lstm::cell_step(lstm.gate, black_box(&gates), black_box(&mut state));
        });
        Self {
            gemv_s,
            gates_s,
            weight_bytes: packed.padded_rows() * c * 4,
        }
    }

    /// Milliseconds for `blocks` blocks: the input projection (`2 * 4C * C` FLOPs a block)
    /// at the GEMM peak, plus the serial GEMV and cell update of every block.
    fn lstm_ms(&self, blocks: usize, hidden: usize, gemm_gflops: f64) -> f64 {
        let projection_s = 8.0 * (hidden * hidden * blocks) as f64 / (gemm_gflops * 1e9);
        (projection_s + blocks as f64 * (self.gemv_s + self.gates_s)) * 1e3
    }
}

/// The ceilings of one model on this machine: measured once, shared by every input size.
pub struct Ceilings {
    /// f32 GEMM 1024³ throughput, GFLOP/s.
    pub gemm_gflops: f64,
    /// Per layer.
    pub lstm: Vec<LstmCeiling>,
    threads: usize,
    runs: usize,
}

impl Ceilings {
    /// Measures the ceilings with `threads` threads, the fastest of `runs` batches each.
    pub fn measure(model: &TfilmModel, threads: usize, runs: usize) -> Self {
        let gemm_gflops = gemm_peak(1024, threads, runs);
        let lstm = (0..model.config.layers.len())
            .map(|l| LstmCeiling::measure(model, l, runs))
            .collect();
        Self {
            gemm_gflops,
            lstm,
            threads,
            runs,
        }
    }

    /// The ceilings, one line each.
    pub fn render(&self) -> String {
        let mut out = format!(
            "f32 GEMM 1024^3 on {} thread(s): {:.1} GFLOP/s (fastest of {})\n",
            self.threads, self.gemm_gflops, self.runs
        );
        for (l, c) in self.lstm.iter().enumerate() {
            let _ = writeln!(
                out,
                "LSTM roofline, layer {l}: W_hh GEMV {:.2} us ({:.1} GB/s from cache), \
                 cell update {:.2} us, per block (fastest of {})",
                c.gemv_s * 1e6,
                c.weight_bytes as f64 / c.gemv_s / 1e9,
                c.gates_s * 1e6,
                self.runs
            );
        }
        out
    }

    /// Times `runs` forward passes of `input` (after a warm-up), each followed by a
    /// stage-by-stage walk for the per-layer split, so the headline figure is the real
    /// forward's own time. The walk must give the forward's logits exactly.
    pub fn time(&self, model: &TfilmModel, input: &[u8]) -> Result<ForwardRow, BenchError> {
        let (walked, _) = profile_layers(model, input)?;
        let forward = model.forward(input)?.logits;
        if walked != forward {
            return Err(BenchError::Invalid(format!(
                "the stage-by-stage walk gave logits {walked:?}, the forward {forward:?}"
            )));
        }
        // Only the forward is timed. Each timed run is followed by an untimed stage-by-stage
        // walk, so that both see the same state of the machine.
        model.forward(input)?;
        let mut forward_ms = Vec::with_capacity(self.runs.max(1));
        let mut samples = Vec::with_capacity(self.runs.max(1));
        for _ in 0..self.runs.max(1) {
            let start = Instant::now();
            model.forward(input)?;
            forward_ms.push(ms(start.elapsed()));
            samples.push(profile_layers(model, input)?.1);
        }
        let whole = Timing::of(&forward_ms);
        let padded = model.config.padded_len(input.len());
        let lengths = model.config.layer_lengths(padded);
        let layers: Vec<LayerRow> = model
            .config
            .layers
            .iter()
            .enumerate()
            .map(|(l, cfg)| {
                let field = |f: fn(&LayerTimes) -> Duration| {
                    let values: Vec<f64> = samples.iter().map(|s| ms(f(&s[l]))).collect();
                    median(&values).unwrap_or(f64::NAN)
                };
                let blocks = lengths[l] / cfg.block_len;
                let lstm_ms = field(|t| t.lstm);
                let roofline = self.lstm[l].lstm_ms(blocks, cfg.channels, self.gemm_gflops);
                LayerRow {
                    layer: l,
                    blocks,
                    conv_ms: field(|t| t.conv),
                    stats_ms: field(|t| t.stats),
                    lstm_ms,
                    film_ms: field(|t| t.film),
                    lstm_roofline_ms: roofline,
                    lstm_fraction_of_roofline: roofline / lstm_ms,
                }
            })
            .collect();
        let total = |f: fn(&LayerRow) -> f64| -> f64 { layers.iter().map(f).sum() };
        let (conv_ms, stats_ms, lstm_ms, film_ms, roofline_ms) = (
            total(|r| r.conv_ms),
            total(|r| r.stats_ms),
            total(|r| r.lstm_ms),
            total(|r| r.film_ms),
            total(|r| r.lstm_roofline_ms),
        );
        let flops = model.config.conv_flops(padded);
        // Two rates: the conv layers alone (what the GEMM peak bounds), and the conv FLOPs
        // over the whole forward (what a user of the model gets).
        let conv_gflop_s = flops / (conv_ms * 1e-3) / 1e9;
        let overall_gflop_s = flops / (whole.median_ms * 1e-3) / 1e9;
        Ok(ForwardRow {
            bytes: input.len(),
            median_ms: whole.median_ms,
            min_ms: whole.min_ms,
            conv_ms,
            tfilm_ms: stats_ms + lstm_ms + film_ms,
            stats_ms,
            lstm_ms,
            film_ms,
            lstm_roofline_ms: roofline_ms,
            lstm_fraction_of_roofline: roofline_ms / lstm_ms,
            bytes_per_s: input.len() as f64 / (whole.median_ms * 1e-3),
            conv_gflop_s,
            conv_fraction_of_peak: conv_gflop_s / self.gemm_gflops,
            overall_gflop_s,
            fraction_of_peak: overall_gflop_s / self.gemm_gflops,
            gemm_peak_gflop_s: self.gemm_gflops,
            threads: self.threads,
            layers,
        })
    }
}

/// What the per-layer columns mean, printed under the tables.
pub const FOOTNOTE: &str = "Stage times come from a stage-by-stage walk after each forward; \
    FiLM includes modulating the next layer's input. roofline_ms is the LSTM's input \
    projection at the GEMM peak plus, per block, the W_hh GEMV and the cell update above; \
    of_roofline is roofline_ms over lstm_ms.";

/// One input size's medians.
#[derive(Debug, Serialize)]
pub struct ForwardRow {
    /// Input bytes.
    pub bytes: usize,
    /// The whole forward, median of the runs.
    pub median_ms: f64,
    /// The fastest forward.
    pub min_ms: f64,
    /// Conv layers, summed over layers.
    pub conv_ms: f64,
    /// Block stats, LSTM and FiLM, summed over layers.
    pub tfilm_ms: f64,
    /// Block stats.
    pub stats_ms: f64,
    /// The LSTMs.
    pub lstm_ms: f64,
    /// FiLM (gamma/beta and modulation).
    pub film_ms: f64,
    /// The LSTMs' rooflines.
    pub lstm_roofline_ms: f64,
    /// `lstm_roofline_ms / lstm_ms`.
    pub lstm_fraction_of_roofline: f64,
    /// Input bytes per second of the whole forward.
    pub bytes_per_s: f64,
    /// Conv FLOPs over conv time.
    pub conv_gflop_s: f64,
    /// `conv_gflop_s` over the GEMM peak.
    pub conv_fraction_of_peak: f64,
    /// Conv FLOPs over the whole forward's time.
    pub overall_gflop_s: f64,
    /// `overall_gflop_s` over the GEMM peak.
    pub fraction_of_peak: f64,
    /// The GEMM peak of the same run.
    pub gemm_peak_gflop_s: f64,
    /// Threads the run used.
    pub threads: usize,
    /// Per layer.
    pub layers: Vec<LayerRow>,
}

/// One layer's medians at one input size.
#[derive(Debug, Serialize)]
pub struct LayerRow {
    /// 0-based layer.
    pub layer: usize,
    /// TFiLM blocks in the layer.
    pub blocks: usize,
    /// Conv.
    pub conv_ms: f64,
    /// Block stats.
    pub stats_ms: f64,
    /// LSTM.
    pub lstm_ms: f64,
    /// FiLM.
    pub film_ms: f64,
    /// The LSTM's roofline.
    pub lstm_roofline_ms: f64,
    /// `lstm_roofline_ms / lstm_ms`.
    pub lstm_fraction_of_roofline: f64,
}

impl ForwardRow {
    /// A headline and a per-layer table.
    pub fn render(&self) -> String {
        let mut out = format!(
            "{} bytes: forward median {:.2} ms (min {:.2}), {:.2} MB/s; conv {:.1} GFLOP/s, \
             {:.0}% of the GEMM peak\n",
            self.bytes,
            self.median_ms,
            self.min_ms,
            self.bytes_per_s / 1e6,
            self.conv_gflop_s,
            100.0 * self.conv_fraction_of_peak
        );
        let _ = writeln!(
            out,
            "{:>6} {:>7} {:>10} {:>10} {:>10} {:>10} {:>12} {:>12}",
            "layer",
            "blocks",
            "conv_ms",
            "stats_ms",
            "lstm_ms",
            "film_ms",
            "roofline_ms",
            "of_roofline"
        );
        for r in &self.layers {
            let _ = writeln!(
                out,
                "{:>6} {:>7} {:>10.2} {:>10.2} {:>10.2} {:>10.2} {:>12.2} {:>11.0}%",
                r.layer,
                r.blocks,
                r.conv_ms,
                r.stats_ms,
                r.lstm_ms,
                r.film_ms,
                r.lstm_roofline_ms,
                100.0 * r.lstm_fraction_of_roofline
            );
        }
        out
    }
}

/// Where one layer's time goes in a forward pass.
#[derive(Clone, Copy, Default)]
struct LayerTimes {
    conv: Duration,
    stats: Duration,
    lstm: Duration,
    /// Gamma/beta from the LSTM output, and modulating the next layer's input with them.
    film: Duration,
}

/// Runs `f`, adding its wall time to `into`.
fn timed<T>(into: &mut Duration, f: impl FnOnce() -> T) -> T {
    let start = Instant::now();
    let out = f();
    *into += start.elapsed();
    out
}

/// The forward pass of [`TfilmModel::forward`] walked stage by stage through the same
/// public stage functions, timing each; returns the logits so a caller can check the walk
/// against the forward.
fn profile_layers(
    model: &TfilmModel,
    input: &[u8],
) -> Result<(Vec<f32>, Vec<LayerTimes>), ModelError> {
    let padded_len = model.config.padded_len(input.len());
    let mut times = vec![LayerTimes::default(); model.config.layers.len()];
    let mut x = model.embed(input)?;
    let mut total_rows = padded_len;
    let mut last: Option<LayerSummary> = None;
    for (l, cfg) in model.config.layers.iter().enumerate() {
        if let Some(prev) = &last {
            timed(&mut times[l - 1].film, || prev.film.apply(&mut x, 0))?;
        }
        let t = &mut times[l];
        let out_len = total_rows / cfg.pool;
        let rows = InputRows {
            rows: &x,
            start: 0,
            total_rows,
        };
        let a = timed(&mut t.conv, || model.conv_stage(l, rows, 0..out_len))?;
        let stats = timed(&mut t.stats, || {
            kernels::block_stats(&a, cfg.channels, cfg.block_len)
        })?;
        let h = timed(&mut t.lstm, || model.lstm_stage(l, &stats.max));
        let film = timed(&mut t.film, || model.film_from_lstm(l, h));
        last = Some(LayerSummary { stats, film });
        x = a;
        total_rows = out_len;
    }
    let last = last.expect("validated configs have at least one layer");
    Ok((model.head(&last, padded_len)?.logits, times))
}
