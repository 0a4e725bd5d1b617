//! `seqless bench forward`: monolithic forward time, each layer's conv, block-stats, LSTM
//! and FiLM times, and two ceilings measured in the same run with the same threads: the
//! f32 GEMM throughput (for the conv layers) and the LSTM's roofline (its input projection
//! at that GEMM rate, plus per block the `W_hh` GEMV from cache and the gate functions).

use std::hint::black_box;
use std::time::{Duration, Instant};

use anyhow::{Result, ensure};
use rand::{Rng, SeedableRng, rngs::StdRng};
use seqless_model::kernels::lstm::{self, RecurrentWeights};
use seqless_model::kernels::{self, InputRows, LstmState};
use seqless_model::{LayerSummary, TfilmModel};

use crate::cli::BenchForwardArgs;

/// Median and minimum of a set of timings, in milliseconds.
pub struct Timing {
    /// Median.
    pub median_ms: f64,
    /// Fastest run.
    pub min_ms: f64,
}

/// Times `f` once to warm up, then `runs` times.
pub fn time_runs(runs: usize, mut f: impl FnMut() -> Result<()>) -> Result<Timing> {
    f()?;
    let mut ms = Vec::with_capacity(runs.max(1));
    for _ in 0..runs.max(1) {
        let start = Instant::now();
        f()?;
        ms.push(start.elapsed().as_secs_f64() * 1e3);
    }
    Ok(Timing {
        median_ms: median(&mut ms),
        min_ms: ms[0],
    })
}

/// The median (upper middle for an even count); sorts `values`.
fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
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
    let seconds = fastest_per_call(runs, 1, || {
        // SAFETY: three disjoint row-major n x n buffers.
        unsafe {
            gemm::gemm(
                n,
                n,
                n,
                c.as_mut_ptr(),
                1,
                n as isize,
                false,
                a.as_ptr(),
                1,
                n as isize,
                b.as_ptr(),
                1,
                n as isize,
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
struct LstmCeiling {
    /// The `W_hh` GEMV alone, seconds.
    gemv_s: f64,
    /// The cell update (the `5C` gate functions and the state update) alone, seconds.
    gates_s: f64,
    /// Bytes of packed `W_hh` the GEMV streams.
    weight_bytes: usize,
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
fn profile_layers(model: &TfilmModel, input: &[u8]) -> Result<(Vec<f32>, Vec<LayerTimes>)> {
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

/// Medians over the runs of one input size.
struct ForwardTiming {
    whole: Timing,
    /// Per layer: conv, stats, LSTM, FiLM medians in milliseconds.
    layers: Vec<[f64; 4]>,
}

/// Times `runs` forward passes (after a warm-up), each followed by a stage-by-stage walk
/// for the per-layer split, so the headline figure is the real forward's own time.
fn time_forward(model: &TfilmModel, input: &[u8], runs: usize) -> Result<ForwardTiming> {
    let (walked, _) = profile_layers(model, input)?;
    let forward = model.forward(input)?.logits;
    ensure!(
        walked == forward,
        "the stage-by-stage walk gave logits {walked:?}, the forward {forward:?}"
    );
    let mut samples = Vec::with_capacity(runs.max(1));
    let whole = time_runs(runs, || {
        model.forward(input)?;
        samples.push(profile_layers(model, input)?.1);
        Ok(())
    })?;
    samples.remove(0); // the warm-up run
    let layers = (0..model.config.layers.len())
        .map(|l| {
            let field = |f: fn(&LayerTimes) -> Duration| {
                let mut ms: Vec<f64> = samples
                    .iter()
                    .map(|s| f(&s[l]).as_secs_f64() * 1e3)
                    .collect();
                median(&mut ms)
            };
            [
                field(|t| t.conv),
                field(|t| t.stats),
                field(|t| t.lstm),
                field(|t| t.film),
            ]
        })
        .collect();
    Ok(ForwardTiming { whole, layers })
}

pub fn run(args: BenchForwardArgs) -> Result<()> {
    let model = TfilmModel::load(&args.model)?;
    let threads = args.threads.max(1);
    let pool = super::thread_pool(Some(threads))?;
    let peak = pool.install(|| gemm_peak(1024, threads, args.runs));
    let ceilings: Vec<LstmCeiling> = (0..model.config.layers.len())
        .map(|l| pool.install(|| LstmCeiling::measure(&model, l, args.runs)))
        .collect();
    if !args.json {
        println!(
            "f32 GEMM 1024^3 on {threads} thread(s): {peak:.1} GFLOP/s (fastest of {})",
            args.runs
        );
        for (l, ceiling) in ceilings.iter().enumerate() {
            println!(
                "LSTM roofline, layer {l}: W_hh GEMV {:.2} us ({:.1} GB/s from cache), \
                 cell update {:.2} us, per block (fastest of {})",
                ceiling.gemv_s * 1e6,
                ceiling.weight_bytes as f64 / ceiling.gemv_s / 1e9,
                ceiling.gates_s * 1e6,
                args.runs
            );
        }
    }
    let mut rng = StdRng::seed_from_u64(1);
    for &n in &args.bytes {
        let input: Vec<u8> = (0..n).map(|_| rng.random()).collect();
        let timing = pool.install(|| time_forward(&model, &input, args.runs))?;
        let padded = model.config.padded_len(n);
        let lengths = model.config.layer_lengths(padded);
        let layers: Vec<serde_json::Value> = timing
            .layers
            .iter()
            .enumerate()
            .map(|(l, &[conv, stats, lstm_ms, film])| {
                let cfg = &model.config.layers[l];
                let blocks = lengths[l] / cfg.block_len;
                let roofline = ceilings[l].lstm_ms(blocks, cfg.channels, peak);
                serde_json::json!({
                    "layer": l, "blocks": blocks, "conv_ms": conv, "stats_ms": stats,
                    "lstm_ms": lstm_ms, "film_ms": film, "lstm_roofline_ms": roofline,
                    "lstm_fraction_of_roofline": roofline / lstm_ms,
                })
            })
            .collect();
        let total =
            |key: &str| -> f64 { layers.iter().map(|v| v[key].as_f64().unwrap_or(0.0)).sum() };
        let (conv_ms, lstm_ms, roofline_ms) = (
            total("conv_ms"),
            total("lstm_ms"),
            total("lstm_roofline_ms"),
        );
        let (stats_ms, film_ms) = (total("stats_ms"), total("film_ms"));
        let flops = model.config.conv_flops(padded);
        // Two rates: the conv layers alone (what the GEMM peak bounds), and the conv FLOPs
        // over the whole forward (what a user of the model gets).
        let conv_gflops = flops / (conv_ms * 1e-3) / 1e9;
        let overall_gflops = flops / (timing.whole.median_ms * 1e-3) / 1e9;
        let mb_s = n as f64 / (timing.whole.median_ms * 1e-3) / 1e6;
        if args.json {
            println!(
                "{}",
                serde_json::json!({
                    "bytes": n, "median_ms": timing.whole.median_ms, "min_ms": timing.whole.min_ms,
                    "conv_ms": conv_ms, "tfilm_ms": stats_ms + lstm_ms + film_ms,
                    "stats_ms": stats_ms, "lstm_ms": lstm_ms, "film_ms": film_ms,
                    "lstm_roofline_ms": roofline_ms,
                    "lstm_fraction_of_roofline": roofline_ms / lstm_ms,
                    "bytes_per_s": mb_s * 1e6, "conv_gflop_s": conv_gflops,
                    "conv_fraction_of_peak": conv_gflops / peak,
                    "overall_gflop_s": overall_gflops, "fraction_of_peak": overall_gflops / peak,
                    "gemm_peak_gflop_s": peak, "threads": args.threads, "layers": layers,
                })
            );
            continue;
        }
        println!(
            "\n{n} bytes: forward median {:.2} ms (min {:.2}), {mb_s:.2} MB/s; conv {conv_gflops:.1} \
             GFLOP/s, {:.0}% of the GEMM peak",
            timing.whole.median_ms,
            timing.whole.min_ms,
            100.0 * conv_gflops / peak
        );
        println!(
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
        for v in &layers {
            println!(
                "{:>6} {:>7} {:>10.2} {:>10.2} {:>10.2} {:>10.2} {:>12.2} {:>11.0}%",
                v["layer"],
                v["blocks"],
                v["conv_ms"].as_f64().unwrap_or(0.0),
                v["stats_ms"].as_f64().unwrap_or(0.0),
                v["lstm_ms"].as_f64().unwrap_or(0.0),
                v["film_ms"].as_f64().unwrap_or(0.0),
                v["lstm_roofline_ms"].as_f64().unwrap_or(0.0),
                100.0 * v["lstm_fraction_of_roofline"].as_f64().unwrap_or(0.0)
            );
        }
    }
    if !args.json {
        println!(
            "\nMedians of {} runs. Stage times come from a stage-by-stage walk after each \
             forward; FiLM includes modulating the next layer's input. roofline_ms is the \
             LSTM's input projection at the GEMM peak plus, per block, the W_hh GEMV and \
             the cell update above; of_roofline is roofline_ms over lstm_ms.",
            args.runs
        );
    }
    Ok(())
}
