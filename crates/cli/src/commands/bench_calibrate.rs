//! `seqless bench calibrate`: measures what the simulator needs (per-stage compute as a
//! function of rows, the store's round trip and bandwidth, cold start, warm overhead) on
//! the real system and writes it as a `seqless simulate --calibration` file.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use rand::{Rng, SeedableRng, rngs::StdRng};
use seqless_coordinator::{Coordinator, InvocationRecord};
use seqless_plan::plan;
use seqless_sim::{Calibration, ShapeModel, StageCalibration, StoreCalibration};
use seqless_store::{QueryId, StoredTensor, TensorStore};

use super::simulate::PlanShape;
use crate::cli::BenchCalibrateArgs;

/// Round trips timed for the store's latency.
const PINGS: usize = 50;
/// Payload of the bandwidth probe, and how many times it is written and read.
const PROBE_BYTES: usize = 1 << 20;
const PROBES: usize = 9;

/// What the runs measured, before fitting.
#[derive(Default)]
struct Samples {
    /// (rows, compute ms) per stage kind.
    compute: BTreeMap<String, Vec<(usize, f64)>>,
    /// Start-up time of every cold invocation.
    cold_ms: Vec<f64>,
    /// Coordinator round trip minus handler time, for warm invocations alone in a phase.
    overhead_ms: Vec<f64>,
}

impl Samples {
    /// Adds one query's invocations, matched to the shape the simulator would use.
    ///
    /// The overhead is taken from phases of one invocation only: in a wider phase the
    /// round trip also holds the wait for a free instance when the platform runs fewer
    /// at once than the phase has (as on a small machine), which is queueing, not what
    /// the platform adds to one invocation.
    fn add(&mut self, shape: &seqless_sim::QueryShape, invocations: &[InvocationRecord]) {
        let mut ran = invocations.iter();
        for phase in &shape.phases {
            let alone = phase.invocations.len() == 1;
            for (planned, ran) in phase.invocations.iter().zip(ran.by_ref()) {
                self.compute
                    .entry(planned.kind.clone())
                    .or_default()
                    .push((planned.rows, ran.compute_ms));
                if ran.cold {
                    self.cold_ms.push(ran.init_ms);
                } else if alone {
                    self.overhead_ms
                        .push((ran.round_trip_ms - ran.duration_ms).max(0.0));
                }
            }
        }
    }
}

fn median(mut xs: Vec<f64>) -> Option<f64> {
    xs.sort_by(f64::total_cmp);
    (!xs.is_empty()).then(|| xs[xs.len() / 2])
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// The store's round trip (median PING) and its single-stream bandwidth (1 MB tensors
/// written and read back, round trips taken out).
async fn measure_store(store: &Arc<dyn TensorStore>) -> Result<StoreCalibration> {
    let mut pings = Vec::with_capacity(PINGS);
    for _ in 0..PINGS {
        let t = Instant::now();
        store.ping().await?;
        pings.push(ms(t.elapsed()));
    }
    let rtt_ms = median(pings).unwrap_or(0.0);
    let elems = PROBE_BYTES / 4;
    let probe = StoredTensor::f32(vec![elems], vec![0.5; elems])?;
    let key = QueryId::new().key("calibrate/probe");
    let mut transfers = Vec::with_capacity(2 * PROBES);
    for _ in 0..PROBES {
        let t = Instant::now();
        store.put(&key, &probe, Duration::from_secs(60)).await?;
        transfers.push(ms(t.elapsed()));
        let t = Instant::now();
        store.get(&key).await?;
        transfers.push(ms(t.elapsed()));
    }
    store.delete(std::slice::from_ref(&key)).await?;
    let per_transfer = median(transfers).unwrap_or(0.0);
    let bandwidth_mb_per_s = PROBE_BYTES as f64 / 1e6 / ((per_transfer - rtt_ms).max(1e-3) / 1e3);
    Ok(StoreCalibration {
        rtt_ms,
        bandwidth_mb_per_s,
    })
}

/// Runs queries of every size (the first of each can start instances cold) and
/// collects what their traces say.
async fn measure_stages(
    coordinator: &Coordinator,
    shape: &PlanShape,
    sizes: &[usize],
    runs: usize,
) -> Result<Samples> {
    let mut rng = StdRng::seed_from_u64(11);
    let mut samples = Samples::default();
    for &n in sizes {
        let input: Vec<u8> = (0..n).map(|_| rng.random()).collect();
        let query_shape = shape.shape(n).map_err(|e| anyhow::anyhow!("{e}"))?;
        for _ in 0..=runs {
            let result = coordinator.classify(&input).await?;
            samples.add(&query_shape, &result.trace.invocations);
        }
        eprintln!("calibrate: {n} bytes done ({} runs)", runs + 1);
    }
    Ok(samples)
}

/// Runs `seqless bench calibrate`.
pub fn run(args: BenchCalibrateArgs) -> Result<()> {
    if args.bytes.is_empty() || args.bytes.contains(&0) {
        bail!("--bytes needs one or more sizes of at least 1 byte");
    }
    let config = super::simulate::load_model_config(&args.model)?;
    if let Some(&n) = args.bytes.iter().find(|&&n| n > config.max_len) {
        bail!(
            "--bytes {n} is over the model's max_len of {}",
            config.max_len
        );
    }
    let rt = super::exec::runtime()?;
    let calibration = rt.block_on(async {
        let coordinator =
            super::exec::coordinator(&args.model, config.clone(), &args.plan, &args.serverless)
                .await?;
        let options = coordinator.options();
        let shape = PlanShape {
            config: config.clone(),
            kind: options.plan,
            splits: options.splits,
            limits: options.limits,
        };
        // Plan every size up front, so a bad split or memory setting fails before timing.
        for &n in &args.bytes {
            plan(&config, n, options.plan, options.splits, &options.limits)?;
        }
        let store = measure_store(coordinator.store()).await?;
        let samples = measure_stages(&coordinator, &shape, &args.bytes, args.runs).await?;
        let stages = samples
            .compute
            .iter()
            .filter_map(|(kind, points)| Some((kind.clone(), StageCalibration::fit(points)?)))
            .collect();
        let defaults = Calibration::default();
        let cold_start_ms = median(samples.cold_ms).unwrap_or_else(|| {
            eprintln!(
                "calibrate: no cold start seen (the platform was warm); keeping {} ms",
                defaults.cold_start_ms
            );
            defaults.cold_start_ms
        });
        anyhow::Ok(Calibration {
            stages,
            store,
            cold_start_ms,
            warm_overhead_ms: median(samples.overhead_ms).unwrap_or(0.0),
            ..defaults
        })
    })?;
    let json = serde_json::to_string_pretty(&calibration)? + "\n";
    std::fs::write(&args.out, &json).with_context(|| format!("writing {}", args.out.display()))?;
    println!("{json}");
    eprintln!(
        "wrote {} (use it with `seqless simulate --calibration {}`)",
        args.out.display(),
        args.out.display()
    );
    Ok(())
}
