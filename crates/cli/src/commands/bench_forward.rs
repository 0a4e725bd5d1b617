//! `seqless bench forward`: monolithic forward time and achieved GFLOP/s, against the
//! machine's f32 GEMM throughput measured in the same run with the same threads.

use std::time::Instant;

use anyhow::Result;
use rand::{Rng, SeedableRng, rngs::StdRng};
use seqless_model::{StageTimes, TfilmModel};

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
    ms.sort_by(f64::total_cmp);
    Ok(Timing {
        median_ms: ms[ms.len() / 2],
        min_ms: ms[0],
    })
}

/// GFLOP/s of a square f32 GEMM of side `n`: the machine's matmul ceiling for these threads.
///
/// The fastest run, not the median: a ceiling is what the machine can do, and on a shared
/// machine a neighbour can only slow a run down (medians of 76 to 108 GFLOP/s were seen).
fn gemm_peak(n: usize, threads: usize, runs: usize) -> Result<f64> {
    let a = vec![1.0f32; n * n];
    let b = vec![0.5f32; n * n];
    let mut c = vec![0.0f32; n * n];
    let parallelism = if threads > 1 {
        gemm::Parallelism::Rayon(threads)
    } else {
        gemm::Parallelism::None
    };
    let timing = time_runs(runs, || {
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
        Ok(())
    })?;
    Ok(2.0 * (n * n * n) as f64 / (timing.min_ms * 1e-3) / 1e9)
}

/// Medians of one input size's runs: the whole forward and its conv and TFiLM parts.
struct ForwardTiming {
    whole: Timing,
    conv_ms: f64,
    tfilm_ms: f64,
}

fn time_forward(model: &TfilmModel, input: &[u8], runs: usize) -> Result<ForwardTiming> {
    let mut samples = Vec::with_capacity(runs.max(1));
    let whole = time_runs(runs, || {
        let (_, times) = model.forward_profiled(input)?;
        samples.push(times);
        Ok(())
    })?;
    samples.remove(0); // the warm-up run
    let median = |f: fn(&StageTimes) -> f64| {
        let mut v: Vec<f64> = samples.iter().map(f).collect();
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    Ok(ForwardTiming {
        whole,
        conv_ms: median(|t| t.conv.as_secs_f64() * 1e3),
        tfilm_ms: median(|t| t.tfilm.as_secs_f64() * 1e3),
    })
}

pub fn run(args: BenchForwardArgs) -> Result<()> {
    let model = TfilmModel::load(&args.model)?;
    let pool = super::thread_pool(Some(args.threads.max(1)))?;
    let peak = pool.install(|| gemm_peak(1024, args.threads.max(1), args.runs))?;
    if !args.json {
        println!(
            "f32 GEMM 1024^3 on {} thread(s): {peak:.1} GFLOP/s (fastest of {})",
            args.threads, args.runs
        );
        println!(
            "{:>10} {:>10} {:>10} {:>10} {:>10} {:>12} {:>12} {:>8}",
            "bytes",
            "median_ms",
            "min_ms",
            "conv_ms",
            "tfilm_ms",
            "MB/s",
            "conv_GFLOP/s",
            "of_peak"
        );
    }
    let mut rng = StdRng::seed_from_u64(1);
    for &n in &args.bytes {
        let input: Vec<u8> = (0..n).map(|_| rng.random()).collect();
        let timing = pool.install(|| time_forward(&model, &input, args.runs))?;
        let flops = model.config.conv_flops(model.config.padded_len(n));
        // Two rates: the conv layers alone (what the GEMM peak bounds), and the conv FLOPs
        // over the whole forward (what a user of the model gets).
        let conv_gflops = flops / (timing.conv_ms * 1e-3) / 1e9;
        let overall_gflops = flops / (timing.whole.median_ms * 1e-3) / 1e9;
        let mb_s = n as f64 / (timing.whole.median_ms * 1e-3) / 1e6;
        if args.json {
            println!(
                "{}",
                serde_json::json!({
                    "bytes": n, "median_ms": timing.whole.median_ms, "min_ms": timing.whole.min_ms,
                    "conv_ms": timing.conv_ms, "tfilm_ms": timing.tfilm_ms,
                    "bytes_per_s": mb_s * 1e6, "conv_gflop_s": conv_gflops,
                    "conv_fraction_of_peak": conv_gflops / peak,
                    "overall_gflop_s": overall_gflops, "fraction_of_peak": overall_gflops / peak,
                    "gemm_peak_gflop_s": peak, "threads": args.threads,
                })
            );
        } else {
            println!(
                "{n:>10} {:>10.2} {:>10.2} {:>10.2} {:>10.2} {mb_s:>12.2} {conv_gflops:>12.1} {:>7.0}%",
                timing.whole.median_ms,
                timing.whole.min_ms,
                timing.conv_ms,
                timing.tfilm_ms,
                100.0 * conv_gflops / peak
            );
        }
    }
    if !args.json {
        println!(
            "conv_GFLOP/s counts the conv layers' FLOPs over their own time; of_peak compares it \
             with the GEMM line above"
        );
    }
    Ok(())
}
