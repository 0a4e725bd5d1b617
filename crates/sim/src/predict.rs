//! One query's latency and function bill on an idle, warm deployment, from a calibration,
//! without simulating load: the critical path through its phases, each invocation timed
//! as the simulator times it when nothing queues (no cold start, no wait for the store's
//! network or the master). What a planner compares configurations by.

use seqless_cost::{BilledInvocation, billed_ms};

use crate::config::Calibration;
use crate::shape::{Invocation, QueryShape, ShapeError};

/// An invocation's warm times from a calibration, ms.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct InvocationTimes {
    /// What the caller sees beyond the handler (the Invoke API round trip); not billed.
    pub overhead_ms: f64,
    /// Store reads and writes on an uncontended store.
    pub io_ms: f64,
    /// Compute at the function's CPU share.
    pub compute_ms: f64,
}

impl InvocationTimes {
    /// The handler's time, which Lambda bills.
    pub fn handler_ms(&self) -> f64 {
        self.io_ms + self.compute_ms
    }
}

impl Calibration {
    /// How long `inv` takes on a warm instance: its stage's fitted compute at the
    /// function's CPU share (below [`Calibration::cpu_reference_mb`] a function gets a
    /// proportionally smaller share, above it no more), one store round trip plus transfer
    /// each way that moves bytes, and the warm overhead. Fails when the stage kind has no
    /// calibration or the memory is outside Lambda's limits.
    pub fn times(&self, inv: &Invocation) -> Result<InvocationTimes, String> {
        let stage = self.stages.get(&inv.kind).ok_or_else(|| {
            let known: Vec<&str> = self.stages.keys().map(String::as_str).collect();
            format!(
                "stage kind `{}` has no calibration (calibrated: {})",
                inv.kind,
                known.join(", ")
            )
        })?;
        let limits = &self.limits;
        if !(limits.min_memory_mb..=limits.max_memory_mb).contains(&inv.memory_mb) {
            return Err(format!(
                "{} MB for `{}` is outside Lambda's {}..={} MB",
                inv.memory_mb, inv.kind, limits.min_memory_mb, limits.max_memory_mb
            ));
        }
        let io_ms = |bytes: u64| {
            if bytes == 0 {
                0.0
            } else {
                self.store.rtt_ms + bytes as f64 / (self.store.bandwidth_mb_per_s * 1e3)
            }
        };
        let cpu_share = (f64::from(inv.memory_mb) / f64::from(self.cpu_reference_mb)).min(1.0);
        Ok(InvocationTimes {
            overhead_ms: self.warm_overhead_ms,
            io_ms: io_ms(inv.bytes_in) + io_ms(inv.bytes_out),
            compute_ms: stage.compute_ms(inv.rows) / cpu_share,
        })
    }
}

/// A query's predicted latency and what Lambda bills for it.
#[derive(Debug, Clone, PartialEq)]
pub struct Predicted {
    /// From the first invocation sent to the last answer, ms.
    pub latency_ms: f64,
    /// One entry per request (a chain is one), with its billed time.
    pub invocations: Vec<BilledInvocation>,
    /// Bytes through the store.
    pub store_bytes: u64,
}

/// The critical path and bill of `shape` on a warm, idle deployment. A phase lasts as long
/// as its slowest invocation with its overhead; a chain's later invocations start with their
/// phase and carry no overhead, and a chain is billed from its first start to its last end.
/// With `host_cores`, the functions share that many cores (a local platform on one
/// machine): a phase of W invocations computes W / cores times slower when W is more.
pub fn predict(
    shape: &QueryShape,
    calibration: &Calibration,
    host_cores: Option<u32>,
) -> Result<Predicted, ShapeError> {
    let mut now = 0.0;
    let mut chains: std::collections::BTreeMap<usize, f64> = Default::default();
    let ends = shape.chain_ends();
    let mut invocations = Vec::new();
    let mut store_bytes = 0;
    for (p, phase) in shape.phases.iter().enumerate() {
        let mut longest: f64 = 0.0;
        let sharing = host_cores.map_or(1.0, |cores| {
            (phase.invocations.len() as f64 / f64::from(cores.max(1))).max(1.0)
        });
        for inv in &phase.invocations {
            let mut times = calibration
                .times(inv)
                .map_err(|e| ShapeError(format!("phase {p}: {e}")))?;
            times.compute_ms *= sharing;
            store_bytes += inv.bytes_in + inv.bytes_out;
            let resumed = inv.chain.is_some_and(|c| chains.contains_key(&c));
            let overhead = if resumed { 0.0 } else { times.overhead_ms };
            longest = longest.max(overhead + times.handler_ms());
            let end = now + times.handler_ms();
            let billed_from = match inv.chain {
                None => Some(now),
                Some(c) => {
                    let from = *chains.entry(c).or_insert(now);
                    (ends.get(&c) == Some(&p)).then_some(from)
                }
            };
            if let Some(from) = billed_from {
                invocations.push(BilledInvocation {
                    billed_ms: billed_ms(std::time::Duration::from_secs_f64((end - from) / 1e3)),
                    memory_mb: inv.memory_mb,
                    init_billed_ms: 0,
                    shared_by: 1,
                });
            }
        }
        now += longest;
    }
    Ok(Predicted {
        latency_ms: now,
        invocations,
        store_bytes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::StageCalibration;
    use crate::shape::Phase;

    /// Compute of 1 ms per 1,000 rows and nothing fixed, a free store, 10 ms of overhead.
    fn calibration() -> Calibration {
        let stage = StageCalibration {
            a_ms: 0.0,
            b_ms_per_row: 0.001,
            spread: Vec::new(),
            medians: Vec::new(),
            cpu_per_compute: None,
        };
        let mut c = Calibration {
            warm_overhead_ms: 10.0,
            ..Calibration::default()
        };
        c.stages = [
            ("conv".to_string(), stage.clone()),
            ("tfilm".to_string(), stage),
        ]
        .into();
        c
    }

    fn inv(kind: &str, rows: usize, chain: Option<usize>) -> Invocation {
        Invocation {
            kind: kind.into(),
            rows,
            bytes_in: 0,
            bytes_out: 0,
            memory_mb: 1769,
            chain,
        }
    }

    #[test]
    fn phases_add_up_and_a_chain_is_billed_across_its_waits() {
        // Two chained splits of 20 and 40 ms, a 5 ms serial stage, the splits again.
        let shape = QueryShape {
            phases: vec![
                Phase {
                    invocations: vec![inv("conv", 20_000, Some(0)), inv("conv", 40_000, Some(1))],
                },
                Phase {
                    invocations: vec![inv("tfilm", 5_000, None)],
                },
                Phase {
                    invocations: vec![inv("conv", 20_000, Some(0)), inv("conv", 40_000, Some(1))],
                },
            ],
        };
        let p = predict(&shape, &calibration(), None).unwrap();
        // 10 + 40, then 10 + 5, then 40 with no overhead: the chains are running.
        assert!((p.latency_ms - 105.0).abs() < 1e-9, "{}", p.latency_ms);
        let billed: Vec<u64> = p.invocations.iter().map(|i| i.billed_ms).collect();
        // The serial stage, then each chain from its start (0) to its end in phase 3,
        // which starts at 65 ms: 65 + 20 and 65 + 40.
        assert_eq!(billed, [5, 85, 105]);
        let unchained = QueryShape {
            phases: shape
                .phases
                .iter()
                .map(|ph| Phase {
                    invocations: ph
                        .invocations
                        .iter()
                        .map(|i| Invocation {
                            chain: None,
                            ..i.clone()
                        })
                        .collect(),
                })
                .collect(),
        };
        let q = predict(&unchained, &calibration(), None).unwrap();
        assert!((q.latency_ms - 115.0).abs() < 1e-9, "{}", q.latency_ms);
        assert_eq!(q.invocations.len(), 5);
        let mut bad = shape.clone();
        bad.phases[1].invocations[0].kind = "lstm".into();
        let err = predict(&bad, &calibration(), None).unwrap_err();
        // On one core the two splits of a phase take turns: 60 ms of compute each phase.
        let shared = predict(&shape, &calibration(), Some(1)).unwrap();
        assert!(
            (shared.latency_ms - (10.0 + 80.0 + 15.0 + 80.0)).abs() < 1e-9,
            "{}",
            shared.latency_ms
        );
        assert!(
            err.0
                .contains("phase 1: stage kind `lstm` has no calibration"),
            "{err}"
        );
    }
}
