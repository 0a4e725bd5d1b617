//! Runs at increasing load, for the throughput-versus-load figures (the
//! paper's Figures 4 and 5) and the cost crossover.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::record::{DeploymentStats, LatencyStats};
use crate::resources::ResourceUse;
use crate::{ArrivalProcess, ShapeModel, SimConfig, SimError, SimReport, run};

/// One load level of a sweep.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "value", rename_all = "snake_case")]
pub enum LoadLevel {
    /// An open arrival rate, q/s: the configured process rescaled to it
    /// ([`ArrivalProcess::with_rate`]).
    Rate(f64),
    /// Concurrent closed-loop clients (think time kept from the config if it
    /// is a closed loop, else 0), as a benchmark with N requests in flight.
    Concurrency(u32),
}

/// A deployment's figures at one load level.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PointStats {
    /// Sustained throughput, q/s.
    pub throughput_qps: f64,
    /// Queries completed.
    pub completed: u64,
    /// Queries refused at admission.
    pub rejected: u64,
    /// Latency summary.
    pub latency: LatencyStats,
    /// Cold starts (always 0 for instances).
    pub cold_starts: u64,
    /// Highest concurrency (executions or busy instances).
    pub max_concurrency: u32,
    /// Cost over the window.
    pub cost_usd: f64,
    /// Cost per completed query.
    pub cost_per_query_usd: f64,
}

impl PointStats {
    fn new(stats: &DeploymentStats, cold_starts: u64) -> Self {
        PointStats {
            throughput_qps: stats.throughput_qps,
            completed: stats.completed,
            rejected: stats.rejected,
            latency: stats.latency.clone(),
            cold_starts,
            max_concurrency: stats.max_concurrency,
            cost_usd: stats.cost_usd,
            cost_per_query_usd: stats.cost_per_query_usd,
        }
    }
}

/// Both deployments at one load level.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SweepPoint {
    /// The level asked for.
    pub level: LoadLevel,
    /// Arrivals per second actually offered (serverless side).
    pub offered_qps: f64,
    /// Serverless figures.
    pub serverless: PointStats,
    /// Instance figures.
    pub instances: PointStats,
    /// The fleet's saturation throughput at this trace's mean length.
    pub instance_capacity_qps: f64,
    /// The fleet's served load relative to its capacity.
    pub instance_utilisation: f64,
    /// How busy each resource the serverless queries share was.
    pub serverless_resources: Vec<ResourceUse>,
    /// The serverless deployment's saturated resource at this level, if any.
    pub serverless_saturated: Option<String>,
}

/// Where the serverless deployment stops scaling with load.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Saturation {
    /// The resource that saturated first.
    pub resource: String,
    /// Its capacity, in words.
    pub capacity: String,
    /// The lowest offered load swept at which it was saturated, q/s.
    pub offered_qps: f64,
    /// The serverless throughput there, q/s: about what the resource allows.
    pub throughput_qps: f64,
}

/// A whole sweep.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Sweep {
    /// Instance type of the fleet, for labels.
    pub instance_type: String,
    /// Fleet size, for labels.
    pub instances: u32,
    /// The points, in the order of the levels given.
    pub points: Vec<SweepPoint>,
    /// Offered load (q/s) where cost per query is equal, interpolated between
    /// the first two neighbouring points where serverless stops being cheaper.
    pub crossover_qps: Option<f64>,
    /// The first level at which a shared resource saturated; `None` if none did.
    pub saturation: Option<Saturation>,
}

/// Runs `config` once per level, with everything but the load unchanged
/// (same seed), so differences between points come from load alone.
pub fn sweep(
    config: &SimConfig,
    shape_model: &dyn ShapeModel,
    levels: &[LoadLevel],
) -> Result<Sweep, SimError> {
    let mut points = Vec::with_capacity(levels.len());
    for &level in levels {
        let mut c = config.clone();
        c.arrivals = match level {
            LoadLevel::Rate(r) => config.arrivals.with_rate(r)?,
            LoadLevel::Concurrency(clients) => ArrivalProcess::ClosedLoop {
                clients,
                think_s: match config.arrivals {
                    ArrivalProcess::ClosedLoop { think_s, .. } => think_s,
                    _ => 0.0,
                },
            },
        };
        let r: SimReport = run(&c, shape_model)?;
        points.push(SweepPoint {
            level,
            offered_qps: r.offered_qps,
            serverless: PointStats::new(&r.serverless.stats, r.serverless.cold_starts),
            instances: PointStats::new(&r.instances.stats, 0),
            instance_capacity_qps: r.instances.capacity_qps,
            instance_utilisation: r.instances.utilisation,
            serverless_resources: r.serverless.resources,
            serverless_saturated: r.serverless.saturated,
        });
    }
    let crossover_qps = points.windows(2).find_map(|w| {
        let gap = |p: &SweepPoint| p.serverless.cost_per_query_usd - p.instances.cost_per_query_usd;
        let (g0, g1) = (gap(&w[0]), gap(&w[1]));
        (g0 <= 0.0 && g1 > 0.0).then(|| {
            let (x0, x1) = (w[0].offered_qps, w[1].offered_qps);
            x0 + (x1 - x0) * (-g0) / (g1 - g0)
        })
    });
    let saturation = points.iter().find_map(|p| {
        let name = p.serverless_saturated.as_ref()?;
        let resource = p
            .serverless_resources
            .iter()
            .find(|r| &r.resource == name)?;
        Some(Saturation {
            resource: name.clone(),
            capacity: resource.capacity.clone(),
            offered_qps: p.offered_qps,
            throughput_qps: p.serverless.throughput_qps,
        })
    });
    Ok(Sweep {
        instance_type: config.instances.instance_type.clone(),
        instances: config.instances.count,
        points,
        crossover_qps,
        saturation,
    })
}

impl Sweep {
    /// The sweep as pretty JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("Sweep holds only numbers and strings")
    }

    /// One row per level, both deployments' throughput, latency and cost.
    pub fn to_csv(&self) -> String {
        let mut out = String::from("level_kind,level,offered_qps");
        for side in ["serverless", "instances"] {
            for col in [
                "throughput_qps",
                "p50_ms",
                "p95_ms",
                "p99_ms",
                "max_ms",
                "cold_starts",
                "cost_per_query_usd",
            ] {
                let _ = write!(out, ",{side}_{col}");
            }
        }
        out += ",instance_capacity_qps,instance_utilisation";
        let resources: Vec<&str> = self
            .points
            .first()
            .map(|p| {
                p.serverless_resources
                    .iter()
                    .map(|r| r.resource.as_str())
                    .collect()
            })
            .unwrap_or_default();
        for name in &resources {
            let _ = write!(out, ",serverless_{name}_utilisation");
        }
        out += ",serverless_saturated\n";
        for p in &self.points {
            let (kind, level) = match p.level {
                LoadLevel::Rate(r) => ("rate", r),
                LoadLevel::Concurrency(c) => ("concurrency", f64::from(c)),
            };
            let _ = write!(out, "{kind},{level},{}", p.offered_qps);
            for s in [&p.serverless, &p.instances] {
                let l = &s.latency;
                let _ = write!(
                    out,
                    ",{},{},{},{},{},{},{}",
                    s.throughput_qps,
                    l.p50_ms,
                    l.p95_ms,
                    l.p99_ms,
                    l.max_ms,
                    s.cold_starts,
                    s.cost_per_query_usd
                );
            }
            let _ = write!(
                out,
                ",{},{}",
                p.instance_capacity_qps, p.instance_utilisation
            );
            for r in &p.serverless_resources {
                let _ = write!(out, ",{}", r.utilisation);
            }
            let _ = writeln!(out, ",{}", p.serverless_saturated.as_deref().unwrap_or(""));
        }
        out
    }
}
