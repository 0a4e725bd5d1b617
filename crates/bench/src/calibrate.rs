//! `seqless bench calibrate`: measures what the simulator needs (per-stage compute as a
//! function of rows, the store's round trip and bandwidth, cold start, warm overhead) on
//! the real system, as a [`Calibration`].

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cpu_time::ProcessTime;
use seqless_coordinator::{Coordinator, InvocationRecord};
use seqless_plan::plan;
use seqless_sim::{
    Calibration, MasterCpu, PlanShape, QueryShape, ShapeModel, StageCalibration, StoreCalibration,
};
use seqless_store::{QueryId, StoredTensor, TensorStore};

use crate::load::texts;
use crate::stats::median;
use crate::{BenchError, ms};

/// Round trips timed for the store's latency.
const PINGS: usize = 50;
/// Payload of the bandwidth probe.
const PROBE_BYTES: usize = 1 << 20;
/// How many times the probe is written and read.
const PROBES: usize = 9;

/// What the runs measured, before fitting.
#[derive(Default)]
struct Samples {
    /// (rows, compute ms) per stage kind.
    compute: BTreeMap<String, Vec<(usize, f64)>>,
    /// The function process's CPU over the compute, per stage kind, where the process
    /// measured it.
    cpu_per_compute: BTreeMap<String, Vec<f64>>,
    /// (invocations, CPU ms of this process) per timed query whose functions ran in
    /// processes of their own, so that this process did only the master's work.
    master_cpu: Vec<(usize, f64)>,
    /// Start-up time of every cold invocation.
    cold_ms: Vec<f64>,
    /// Coordinator round trip minus handler time, for warm invocations alone in a phase.
    overhead_ms: Vec<f64>,
}

impl Samples {
    /// Adds one query's invocations, matched to the shape the simulator would use. A
    /// warm-up query (`timed` false) gives only its cold starts.
    ///
    /// The first query of a size can start instances cold, and even in a warm instance
    /// it is the first to touch buffers of that size: its compute is slower than the
    /// same stage's in a long run, and with a few runs per size such samples pulled the
    /// fitted lines well above what a long run takes.
    ///
    /// The overhead is taken from phases of one invocation only: in a wider phase the
    /// round trip also holds the wait for a free instance when the platform runs fewer
    /// at once than the phase has (as on a small machine), which is queueing, not what
    /// the platform adds to one invocation.
    fn add(
        &mut self,
        shape: &QueryShape,
        invocations: &[InvocationRecord],
        master_cpu_ms: f64,
        timed: bool,
    ) {
        if timed && invocations.iter().all(|ran| ran.cpu_ms.is_some()) {
            self.master_cpu.push((invocations.len(), master_cpu_ms));
        }
        let mut ran = invocations.iter();
        for phase in &shape.phases {
            let alone = phase.invocations.len() == 1;
            for (planned, ran) in phase.invocations.iter().zip(ran.by_ref()) {
                if ran.cold {
                    self.cold_ms.push(ran.init_ms);
                }
                if !timed || ran.cold {
                    continue;
                }
                self.compute
                    .entry(planned.kind.clone())
                    .or_default()
                    .push((planned.rows, ran.compute_ms));
                if let Some(cpu_ms) = ran.cpu_ms.filter(|_| ran.compute_ms > 0.0) {
                    self.cpu_per_compute
                        .entry(planned.kind.clone())
                        .or_default()
                        .push(cpu_ms / ran.compute_ms);
                }
                if alone {
                    self.overhead_ms
                        .push((ran.round_trip_ms - ran.duration_ms).max(0.0));
                }
            }
        }
    }
}

/// The store's round trip (median PING) and its single-stream bandwidth (1 MB tensors
/// written and read back, round trips taken out).
async fn measure_store(store: &Arc<dyn TensorStore>) -> Result<StoreCalibration, BenchError> {
    let mut pings = Vec::with_capacity(PINGS);
    for _ in 0..PINGS {
        let t = Instant::now();
        store.ping().await?;
        pings.push(ms(t.elapsed()));
    }
    let rtt_ms = median(&pings).unwrap_or(0.0);
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
    let per_transfer = median(&transfers).unwrap_or(0.0);
    let bandwidth_mb_per_s = PROBE_BYTES as f64 / 1e6 / ((per_transfer - rtt_ms).max(1e-3) / 1e3);
    Ok(StoreCalibration {
        rtt_ms,
        bandwidth_mb_per_s,
    })
}

/// The queries a calibration times.
#[derive(Debug, Clone, Copy)]
pub struct Queries<'a> {
    /// Their lengths, bytes.
    pub sizes: &'a [usize],
    /// Timed queries per size, after one untimed warm-up.
    pub runs: usize,
    /// The text they are cut from, as `bench load` cuts its queries ([`texts`]); `None`
    /// for its random words. Stage times depend on the text (random bytes make the
    /// LSTM half as slow again as words do), so it should be what will be served.
    pub corpus: Option<&'a str>,
}

/// Measures `coordinator`'s system: the store, then `runs + 1` queries of every size
/// (the first of each a warm-up, which can start instances cold), fitted into a
/// calibration.
/// Every size is planned before anything is timed, so a bad split or memory setting
/// fails at once. `progress` receives a line per size done, and a note when no cold
/// start was seen (the default cold start is kept then).
pub async fn calibrate(
    coordinator: &Coordinator,
    queries: &Queries<'_>,
    mut progress: impl FnMut(&str),
) -> Result<Calibration, BenchError> {
    let Queries { sizes, runs, .. } = *queries;
    let options = coordinator.options();
    let config = coordinator.config();
    if sizes.is_empty() || sizes.contains(&0) {
        return Err(BenchError::Invalid(
            "calibration needs one or more sizes of at least 1 byte".into(),
        ));
    }
    if runs == 0 {
        return Err(BenchError::Flags(
            "--runs must be at least 1: each size's first query is an untimed warm-up".into(),
        ));
    }
    for &n in sizes {
        plan(config, n, options.plan, options.splits, &options.limits)?;
    }
    let shape = PlanShape {
        config: config.clone(),
        kind: options.plan,
        splits: options.splits,
        limits: options.limits,
        transfer: options.transfer,
    };
    let store = measure_store(coordinator.store()).await?;
    let mut samples = Samples::default();
    for &n in sizes {
        let texts = texts(queries.corpus, n);
        let query_shape = shape
            .shape(n)
            .map_err(|e| BenchError::Invalid(e.to_string()))?;
        for (run, text) in (0..=runs).zip(texts.iter().cycle()) {
            let cpu = ProcessTime::now();
            let result = coordinator.classify(text.as_bytes()).await?;
            let cpu_ms = ms(cpu.elapsed());
            samples.add(&query_shape, &result.trace.invocations, cpu_ms, run > 0);
        }
        progress(&format!("calibrate: {n} bytes done ({} runs)", runs + 1));
    }
    let stages = samples
        .compute
        .iter()
        .filter_map(|(kind, points)| {
            let mut stage = StageCalibration::fit(points)?;
            stage.cpu_per_compute = samples
                .cpu_per_compute
                .get(kind)
                .and_then(|ratios| median(ratios));
            Some((kind.clone(), stage))
        })
        .collect();
    let defaults = Calibration::default();
    let cold_start_ms = median(&samples.cold_ms).unwrap_or_else(|| {
        progress(&format!(
            "calibrate: no cold start seen (the platform was warm); keeping {} ms",
            defaults.cold_start_ms
        ));
        defaults.cold_start_ms
    });
    let mut cold_start_samples_ms = samples.cold_ms;
    cold_start_samples_ms.sort_by(f64::total_cmp);
    Ok(Calibration {
        stages,
        store,
        cold_start_ms,
        cold_start_samples_ms,
        warm_overhead_ms: median(&samples.overhead_ms).unwrap_or(0.0),
        master: MasterCpu::fit(&samples.master_cpu),
        ..defaults
    })
}

#[cfg(test)]
mod tests {
    use seqless_plan::StageKind;
    use seqless_sim::{Invocation, Phase};

    use super::*;

    fn one_conv(rows: usize) -> QueryShape {
        QueryShape {
            phases: vec![Phase {
                invocations: vec![Invocation {
                    kind: "conv".into(),
                    rows,
                    ..Invocation::default()
                }],
            }],
        }
    }

    fn ran(cold: bool, compute_ms: f64) -> InvocationRecord {
        InvocationRecord {
            stage: StageKind::Conv,
            layer: 0,
            split: 0,
            cold,
            init_ms: if cold { 25.0 } else { 0.0 },
            duration_ms: compute_ms + 1.0,
            billed_ms: 0,
            memory_mb: 1024,
            batch: 1,
            compute_ms,
            wait_ms: 0.0,
            cpu_ms: None,
            bytes_in: 0,
            bytes_out: 0,
            inline_in: 0,
            inline_out: 0,
            round_trip_ms: compute_ms + 1.5,
        }
    }

    #[test]
    fn warm_ups_and_cold_invocations_give_cold_starts_but_no_compute() {
        let shape = one_conv(4096);
        let mut samples = Samples::default();
        samples.add(&shape, &[ran(true, 9.0)], 1.0, false);
        samples.add(&shape, &[ran(false, 7.0)], 1.0, false);
        samples.add(&shape, &[ran(true, 8.0)], 1.0, true);
        samples.add(&shape, &[ran(false, 3.0)], 1.0, true);
        assert_eq!(samples.cold_ms, [25.0, 25.0]);
        assert_eq!(samples.compute["conv"], [(4096, 3.0)]);
        assert_eq!(samples.overhead_ms, [0.5]);
    }

    #[test]
    fn process_cpu_gives_cpu_per_compute_and_the_master_share() {
        let shape = one_conv(4096);
        let mut samples = Samples::default();
        let with_cpu = |cold, compute_ms, cpu_ms| InvocationRecord {
            cpu_ms: Some(cpu_ms),
            ..ran(cold, compute_ms)
        };
        samples.add(&shape, &[with_cpu(false, 4.0, 6.0)], 0.7, true);
        samples.add(&shape, &[with_cpu(false, 2.0, 5.0)], 0.9, true);
        // Untimed, or with a function that shares this process: no master figure.
        samples.add(&shape, &[with_cpu(false, 4.0, 6.0)], 5.0, false);
        samples.add(&shape, &[ran(false, 4.0)], 5.0, true);
        assert_eq!(samples.cpu_per_compute["conv"], [1.5, 2.5]);
        assert_eq!(samples.master_cpu, [(1, 0.7), (1, 0.9)]);
    }
}
