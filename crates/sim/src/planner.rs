//! Choosing how to run a query: every plan kind, split count and function memory in a
//! search space, each with its predicted latency (the critical path on a warm deployment)
//! and function bill from a calibration, the Pareto frontier of the two, and the pick for
//! an objective within a latency SLO.
//!
//! Memory buys CPU on Lambda (1,769 MB is one vCPU), and the prediction follows the
//! calibration's rule: less memory than the reference slows compute in proportion, more
//! does not speed it up. Every activation is priced through the store: values sent inline
//! (`--transfer inline`) move through the Invoke API, whose cost per payload byte no
//! calibration measures yet, so the transfer dimension of the search has one value.

use seqless_cost::{Arch, Pricing, gb_seconds, query_cost};
use seqless_model::ModelConfig;
use seqless_plan::{Limits, PlanChooser, PlanKind, Splits, Transfer};
use serde::Serialize;

use crate::config::Calibration;
use crate::plan_shape::PlanShape;
use crate::predict::predict;
use crate::shape::ShapeModel;

/// What the planner tries.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchSpace {
    /// Plan kinds.
    pub plans: Vec<PlanKind>,
    /// Splits asked for (per layer; the resident plan's one count for all layers).
    pub splits: Vec<usize>,
    /// Memory of every function, MB.
    pub memory_mb: Vec<u32>,
    /// The cores the functions share, when they run on one machine (a local platform);
    /// `None` for Lambda, where each has its own.
    pub host_cores: Option<u32>,
}

impl Default for SearchSpace {
    /// The three plans at 1, 2, 4 and 8 splits, at 1,024 MB, one vCPU (1,769 MB) and
    /// two vCPUs' worth (3,538 MB).
    fn default() -> Self {
        Self {
            plans: vec![PlanKind::Fused, PlanKind::Paper, PlanKind::Resident],
            splits: vec![1, 2, 4, 8],
            memory_mb: vec![1024, 1769, 3538],
            host_cores: None,
        }
    }
}

/// One configuration and its prediction.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Candidate {
    /// Plan kind.
    pub plan: PlanKind,
    /// Splits asked for.
    pub splits: usize,
    /// Splits of the first layer as planned (fewer where the input has fewer blocks).
    pub splits_used: usize,
    /// Memory of every function, MB.
    pub memory_mb: u32,
    /// Why the planner refused it (over the memory or the store's largest value); the
    /// figures below are then zero.
    pub refused: Option<String>,
    /// Predicted latency on a warm deployment, ms.
    pub latency_ms: f64,
    /// Predicted function bill per query: requests and GB-s, USD.
    pub cost_usd: f64,
    /// Requests per query.
    pub requests: usize,
    /// GB-s per query.
    pub gb_s: f64,
    /// Bytes through the store per query.
    pub store_bytes: u64,
    /// On the Pareto frontier: no other candidate is at least as fast and as cheap, and
    /// better in one.
    pub pareto: bool,
}

impl Candidate {
    /// Whether the planner could make it.
    pub fn feasible(&self) -> bool {
        self.refused.is_none()
    }

    /// One function per layer and no sequence splits, as Gillis partitions a model: the
    /// fused plan with one split.
    pub fn is_layer_wise(&self) -> bool {
        self.plan == PlanKind::Fused && self.splits_used == 1
    }

    /// The header of the candidates table ([`Candidate::row`]).
    pub fn table_header() -> String {
        format!(
            "{:>9} {:>6} {:>6} {:>11} {:>13} {:>8} {:>9} {:>10}  frontier",
            "plan", "splits", "MB", "latency_ms", "usd/query", "requests", "GB-s", "store_MB"
        )
    }

    /// This candidate as a line of the table; a refused one says why.
    pub fn row(&self) -> String {
        let head = format!(
            "{:>9} {:>6} {:>6}",
            self.plan.as_str(),
            self.splits_used.max(self.splits),
            self.memory_mb
        );
        match &self.refused {
            Some(why) => format!("{head}  refused: {why}"),
            None => format!(
                "{head} {:>11.1} {:>13.9} {:>8} {:>9.4} {:>10.2}  {}",
                self.latency_ms,
                self.cost_usd,
                self.requests,
                self.gb_s,
                self.store_bytes as f64 / 1e6,
                if self.pareto { "*" } else { "" }
            ),
        }
    }
}

/// What the search is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "snake_case")]
pub enum Objective {
    /// The cheapest within the SLO.
    Cost,
    /// The fastest (within the SLO, if it is met at all).
    Latency,
}

/// Every candidate of `space` for a query of `bytes` bytes, in the space's order.
pub fn search(
    config: &ModelConfig,
    bytes: usize,
    calibration: &Calibration,
    space: &SearchSpace,
    pricing: &Pricing,
    arch: Arch,
) -> Vec<Candidate> {
    let mut candidates = Vec::new();
    for &plan in &space.plans {
        for &splits in &space.splits {
            for &memory_mb in &space.memory_mb {
                let shape = PlanShape {
                    config: config.clone(),
                    kind: plan,
                    splits: Splits::Fixed(splits),
                    limits: Limits {
                        function_memory_mb: memory_mb,
                        max_splits: splits.max(1),
                        min_rows_per_split: 1,
                        max_value_bytes: None,
                    },
                    transfer: Transfer::Store,
                };
                let mut candidate = Candidate {
                    plan,
                    splits,
                    splits_used: 0,
                    memory_mb,
                    refused: None,
                    latency_ms: 0.0,
                    cost_usd: 0.0,
                    requests: 0,
                    gb_s: 0.0,
                    store_bytes: 0,
                    pareto: false,
                };
                let predicted = shape.shape(bytes).and_then(|s| {
                    Ok((
                        s.phases.first().map_or(0, |p| p.invocations.len()),
                        predict(&s, calibration, space.host_cores)?,
                    ))
                });
                match predicted {
                    Ok((width, p)) => {
                        let cost = query_cost(pricing, arch, &p.invocations);
                        candidate.splits_used = width;
                        candidate.latency_ms = p.latency_ms;
                        candidate.cost_usd = cost.total_usd;
                        candidate.requests = p.invocations.len();
                        candidate.gb_s = p
                            .invocations
                            .iter()
                            .map(|i| gb_seconds(i.billed_ms, i.memory_mb))
                            .sum();
                        candidate.store_bytes = p.store_bytes;
                    }
                    Err(e) => candidate.refused = Some(e.0),
                }
                candidates.push(candidate);
            }
        }
    }
    mark_pareto(&mut candidates);
    candidates
}

/// Marks the feasible candidates that no other feasible one dominates (the first of equal
/// ones only).
fn mark_pareto(candidates: &mut [Candidate]) {
    let feasible: Vec<(usize, f64, f64)> = candidates
        .iter()
        .enumerate()
        .filter(|(_, c)| c.feasible())
        .map(|(i, c)| (i, c.latency_ms, c.cost_usd))
        .collect();
    for &(i, l, k) in &feasible {
        candidates[i].pareto = !feasible.iter().any(|&(j, lj, kj)| {
            (lj <= l && kj <= k && (lj < l || kj < k)) || (j < i && lj == l && kj == k)
        });
    }
}

/// No candidate meets the SLO.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error(
    "no plan meets the {slo_ms} ms SLO: the fastest is {plan} with {splits} splits at {memory_mb} MB, predicted at {latency_ms:.1} ms"
)]
pub struct SloUnmet {
    /// The SLO asked for.
    pub slo_ms: f64,
    /// The fastest candidate's plan.
    pub plan: &'static str,
    /// Its splits.
    pub splits: usize,
    /// Its memory.
    pub memory_mb: u32,
    /// Its predicted latency.
    pub latency_ms: f64,
}

/// The candidate for `objective` among those within `slo_ms` (all, without one). `None`
/// when no candidate is feasible at all.
pub fn pick(
    candidates: &[Candidate],
    objective: Objective,
    slo_ms: Option<f64>,
) -> Result<Option<&Candidate>, SloUnmet> {
    let feasible = candidates.iter().filter(|c| c.feasible());
    let fastest = feasible
        .clone()
        .min_by(|a, b| a.latency_ms.total_cmp(&b.latency_ms));
    let Some(fastest) = fastest else {
        return Ok(None);
    };
    let within: Vec<&Candidate> = feasible
        .filter(|c| slo_ms.is_none_or(|slo| c.latency_ms <= slo))
        .collect();
    if within.is_empty() {
        return Err(SloUnmet {
            slo_ms: slo_ms.unwrap_or(f64::INFINITY),
            plan: fastest.plan.as_str(),
            splits: fastest.splits_used,
            memory_mb: fastest.memory_mb,
            latency_ms: fastest.latency_ms,
        });
    }
    let key = |c: &&Candidate| match objective {
        Objective::Cost => (c.cost_usd, c.latency_ms),
        Objective::Latency => (c.latency_ms, c.cost_usd),
    };
    Ok(within.into_iter().min_by(|a, b| {
        key(a)
            .partial_cmp(&key(b))
            .unwrap_or(std::cmp::Ordering::Equal)
    }))
}

/// The planner as the coordinator's [`PlanChooser`]: each query runs as the pick for its
/// length, or as the fastest candidate when none meets the SLO, since a query served late
/// beats a query refused.
#[derive(Debug, Clone)]
pub struct CalibratedChooser {
    /// The model.
    pub config: ModelConfig,
    /// Stage times and overheads of the deployment.
    pub calibration: Calibration,
    /// What to try; its memory should be the deployment's, which the coordinator cannot
    /// change per query.
    pub space: SearchSpace,
    /// What to minimise.
    pub objective: Objective,
    /// The latency bound, ms.
    pub slo_ms: Option<f64>,
    /// Prices for the cost objective.
    pub pricing: Pricing,
    /// Function architecture.
    pub arch: Arch,
}

impl PlanChooser for CalibratedChooser {
    fn choose(&self, input_len: usize) -> Result<(PlanKind, usize), String> {
        let all = search(
            &self.config,
            input_len,
            &self.calibration,
            &self.space,
            &self.pricing,
            self.arch,
        );
        let chosen = match pick(&all, self.objective, self.slo_ms) {
            Ok(chosen) => chosen,
            Err(_) => pick(&all, Objective::Latency, None).ok().flatten(),
        };
        match chosen {
            Some(c) => Ok((c.plan, c.splits)),
            None => Err(format!(
                "the planner has no feasible plan for {input_len} bytes: {}",
                all.iter()
                    .find_map(|c| c.refused.clone())
                    .unwrap_or_else(|| "its search space is empty".into())
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn candidate(plan: PlanKind, latency_ms: f64, cost_usd: f64) -> Candidate {
        Candidate {
            plan,
            splits: 2,
            splits_used: 2,
            memory_mb: 1769,
            refused: None,
            latency_ms,
            cost_usd,
            requests: 3,
            gb_s: 0.1,
            store_bytes: 10,
            pareto: false,
        }
    }

    #[test]
    fn the_frontier_keeps_what_nothing_beats_and_the_pick_follows_the_objective() {
        let mut all = vec![
            candidate(PlanKind::Fused, 100.0, 3.0),
            candidate(PlanKind::Paper, 150.0, 4.0), // beaten by the first on both
            candidate(PlanKind::Resident, 60.0, 5.0),
            candidate(PlanKind::Fused, 300.0, 1.0),
            Candidate {
                refused: Some("over the memory".into()),
                ..candidate(PlanKind::Paper, 0.0, 0.0)
            },
        ];
        mark_pareto(&mut all);
        let frontier: Vec<bool> = all.iter().map(|c| c.pareto).collect();
        assert_eq!(frontier, [true, false, true, true, false]);
        let cheapest = pick(&all, Objective::Cost, None).unwrap().unwrap();
        assert_eq!(cheapest.cost_usd, 1.0);
        let within = pick(&all, Objective::Cost, Some(120.0)).unwrap().unwrap();
        assert_eq!(within.cost_usd, 3.0);
        let fastest = pick(&all, Objective::Latency, Some(120.0))
            .unwrap()
            .unwrap();
        assert_eq!(fastest.latency_ms, 60.0);
        let err = pick(&all, Objective::Cost, Some(50.0)).unwrap_err();
        assert_eq!((err.plan, err.latency_ms), ("resident", 60.0));
        assert!(err.to_string().contains("the fastest is resident"), "{err}");
        assert_eq!(pick(&all[4..], Objective::Cost, None).unwrap(), None);
    }

    #[test]
    fn search_tries_every_point_and_predicts_the_plans_bytes() {
        use seqless_model::{GateActivation, Modulation};
        let config = seqless_model::testing::config(
            4,
            "8:3:2:4,6:3:1:4",
            Modulation::Scale,
            GateActivation::Sigmoid,
            2,
        );
        let space = SearchSpace {
            plans: vec![PlanKind::Fused, PlanKind::Resident],
            splits: vec![1, 4],
            memory_mb: vec![1024, 1769],
            host_cores: None,
        };
        let all = search(
            &config,
            20_000,
            &Calibration::default(),
            &space,
            &Pricing::default(),
            Arch::X86_64,
        );
        assert_eq!(all.len(), 8);
        assert!(all.iter().all(Candidate::feasible));
        assert!(all.iter().any(|c| c.pareto));
        let fused = &all[2]; // fused, 4 splits, 1,024 MB
        let resident = &all[6];
        assert_eq!((fused.splits_used, resident.splits_used), (4, 4));
        assert!(resident.store_bytes < fused.store_bytes);
        // Less memory than a vCPU is slower.
        assert!(all[0].latency_ms > all[1].latency_ms);
        assert!(all.iter().filter(|c| c.is_layer_wise()).count() == 2);
    }

    #[test]
    fn the_chooser_takes_the_planners_pick_and_the_fastest_past_the_slo() {
        use seqless_model::{GateActivation, Modulation};
        let config = seqless_model::testing::config(
            4,
            "8:3:2:4,6:3:1:4",
            Modulation::Scale,
            GateActivation::Sigmoid,
            2,
        );
        let space = SearchSpace {
            memory_mb: vec![1769],
            ..SearchSpace::default()
        };
        let chooser = |objective, slo_ms| CalibratedChooser {
            config: config.clone(),
            calibration: Calibration::default(),
            space: space.clone(),
            objective,
            slo_ms,
            pricing: Pricing::default(),
            arch: Arch::X86_64,
        };
        for bytes in [100, 20_000, 300_000] {
            let all = search(
                &config,
                bytes,
                &Calibration::default(),
                &space,
                &Pricing::default(),
                Arch::X86_64,
            );
            for objective in [Objective::Cost, Objective::Latency] {
                let want = pick(&all, objective, None).unwrap().unwrap();
                let got = chooser(objective, None).choose(bytes).unwrap();
                assert_eq!(got, (want.plan, want.splits), "{bytes} {objective:?}");
            }
            let fastest = pick(&all, Objective::Latency, None).unwrap().unwrap();
            let late = chooser(Objective::Cost, Some(0.001)).choose(bytes).unwrap();
            assert_eq!(late, (fastest.plan, fastest.splits), "{bytes}");
        }
        let empty = CalibratedChooser {
            space: SearchSpace {
                plans: Vec::new(),
                ..space.clone()
            },
            ..chooser(Objective::Cost, None)
        };
        let err = empty.choose(1_000).unwrap_err();
        assert!(err.contains("no feasible plan for 1000 bytes"), "{err}");
    }
}
