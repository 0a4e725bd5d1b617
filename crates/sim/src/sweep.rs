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

/// Where the serverless deployment stops scaling: the first point swept at which one of
/// its shared resources saturated.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Saturation {
    /// The resource that saturated first.
    pub resource: String,
    /// Its capacity, in words.
    pub capacity: String,
    /// The point: the offered load in q/s (a load sweep) or the input length in bytes (a
    /// size sweep).
    pub at: f64,
    /// The serverless throughput there, in q/s or bytes/s: about what the resource allows.
    pub served: f64,
}

impl Saturation {
    /// The first of `points` (saturated resource, resources, point, throughput) whose
    /// resource saturated.
    fn first<'a>(
        points: impl IntoIterator<Item = (&'a Option<String>, &'a [ResourceUse], f64, f64)>,
    ) -> Option<Self> {
        points
            .into_iter()
            .find_map(|(name, resources, at, served)| {
                let name = name.as_ref()?;
                let used = resources.iter().find(|r| &r.resource == name)?;
                Some(Saturation {
                    resource: name.clone(),
                    capacity: used.capacity.clone(),
                    at,
                    served,
                })
            })
    }
}

/// A whole sweep.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Sweep {
    /// What was swept, for titles: the query lengths and arrivals
    /// ([`describe_lengths`], [`describe_arrivals`]); a caller may prepend the model.
    pub context: String,
    /// Instance type of the fleet, for labels.
    pub instance_type: String,
    /// Where the fleet's service times come from ([`crate::InstanceConfig::basis`]).
    pub instance_basis: String,
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

/// The query lengths in a few words, for titles.
pub fn describe_lengths(lengths: &crate::LengthDistribution) -> String {
    use crate::LengthDistribution as L;
    match lengths {
        L::Fixed { bytes } => format!("{bytes} B queries"),
        L::Uniform {
            min_bytes,
            max_bytes,
        } => format!("{min_bytes}-{max_bytes} B queries"),
        L::LogNormal { median_bytes, .. } => format!("log-normal lengths, median {median_bytes} B"),
        L::File { path } => format!("lengths from {}", path.display()),
    }
}

/// The arrival process in a few words, for titles of runs at one load.
pub fn describe_arrivals(arrivals: &ArrivalProcess) -> String {
    match arrivals {
        ArrivalProcess::Constant { rate_qps } => format!("constant {rate_qps} q/s"),
        ArrivalProcess::Poisson { rate_qps } => format!("Poisson {rate_qps} q/s"),
        ArrivalProcess::Bursty(_) => "bursty arrivals".into(),
        ArrivalProcess::Diurnal { mean_rate_qps, .. } => {
            format!("diurnal, mean {mean_rate_qps} q/s")
        }
        ArrivalProcess::File { path } => format!("arrivals from {}", path.display()),
        ArrivalProcess::ClosedLoop { think_s, .. } => format!("closed loop, think {think_s} s"),
    }
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
            serverless: PointStats::new(&r.serverless.stats, r.serverless.counts.cold_starts),
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
    let saturation = Saturation::first(points.iter().map(|p| {
        let served = p.serverless.throughput_qps;
        (
            &p.serverless_saturated,
            &p.serverless_resources[..],
            p.offered_qps,
            served,
        )
    }));
    Ok(Sweep {
        context: format!(
            "{}, {} arrivals",
            describe_lengths(&config.lengths),
            match levels.first() {
                Some(LoadLevel::Concurrency(_)) => "closed-loop",
                _ => match config.arrivals {
                    ArrivalProcess::Constant { .. } => "constant",
                    ArrivalProcess::Poisson { .. } => "Poisson",
                    _ => "rescaled",
                },
            }
        ),
        instance_type: config.instances.instance_type.clone(),
        instance_basis: config.instances.basis.clone(),
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

/// One fleet of a [`SizeSweep`] at one length.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FleetPoint {
    /// The fleet's label (its baseline), the prefix of its CSV columns.
    pub label: String,
    /// Its legend entry: size, instance type and label.
    pub legend: String,
    /// Its figures.
    pub stats: PointStats,
    /// Input bytes classified per second.
    pub bytes_per_s: f64,
    /// Its saturation throughput at this length, q/s.
    pub capacity_qps: f64,
    /// Served load relative to capacity.
    pub utilisation: f64,
}

/// Every deployment at one input length of a [`SizeSweep`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SizePoint {
    /// Every query's length, bytes.
    pub bytes: usize,
    /// Arrivals per second actually offered.
    pub offered_qps: f64,
    /// Serverless figures.
    pub serverless: PointStats,
    /// Input bytes the serverless deployment classified per second.
    pub serverless_bytes_per_s: f64,
    /// How busy each resource the serverless queries share was.
    pub serverless_resources: Vec<ResourceUse>,
    /// The serverless deployment's saturated resource at this length, if any.
    pub serverless_saturated: Option<String>,
    /// The calibrated compute of the query's TFiLM (and head) stages, which run one
    /// after another whatever the parallelism: no serverless query finishes sooner. `None`
    /// when the calibration has neither stage.
    pub tfilm_floor_ms: Option<f64>,
    /// Each fleet, in the order given.
    pub fleets: Vec<FleetPoint>,
}

/// Throughput and latency against input length at one load: the paper's "throughput
/// against input size" reading of its Figures 4 and 5.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SizeSweep {
    /// The load, for titles ([`describe_arrivals`]); a caller may prepend the model.
    pub context: String,
    /// The points, in the order of the lengths given.
    pub points: Vec<SizePoint>,
    /// The shortest length at which a shared resource saturated; `None` if none did.
    pub saturation: Option<Saturation>,
}

/// The calibrated compute of the serial stages (kinds `tfilm` and `head`) of a query of
/// `len` bytes: per phase, the longest such invocation, summed over phases.
pub fn tfilm_floor_ms(
    config: &SimConfig,
    shape_model: &dyn ShapeModel,
    len: usize,
) -> Result<Option<f64>, SimError> {
    let shape = shape_model
        .shape(len)
        .map_err(|e| SimError::Shape { len, reason: e.0 })?;
    let mut floor = None;
    for phase in &shape.phases {
        let serial = phase
            .invocations
            .iter()
            .filter_map(|inv| {
                let stage = ["tfilm", "head"]
                    .contains(&inv.kind.as_str())
                    .then(|| config.calibration.stages.get(&inv.kind))??;
                Some(stage.compute_ms(inv.rows))
            })
            .fold(None, |m: Option<f64>, t| Some(m.map_or(t, |m| m.max(t))));
        if let Some(t) = serial {
            floor = Some(floor.unwrap_or(0.0) + t);
        }
    }
    Ok(floor)
}

/// Runs `config` at every length in `lengths` (each query exactly that long, the
/// configured arrivals unchanged), serverless against each of `fleets`.
pub fn size_sweep(
    config: &SimConfig,
    shape_model: &dyn ShapeModel,
    fleets: &[(String, crate::InstanceConfig)],
    lengths: &[usize],
) -> Result<SizeSweep, SimError> {
    let mut points = Vec::with_capacity(lengths.len());
    for &bytes in lengths {
        if bytes == 0 || bytes > config.max_len {
            return Err(SimError::Config {
                field: "sweep_bytes".into(),
                reason: format!("has {bytes}; expected 1 to max_len ({})", config.max_len),
            });
        }
        let mut c = config.clone();
        c.lengths = crate::LengthDistribution::Fixed { bytes };
        let mut serverless = None;
        let mut fleet_points = Vec::with_capacity(fleets.len());
        for (label, fleet) in fleets {
            c.instances = fleet.clone();
            let r = run(&c, shape_model)?;
            let b = bytes as f64;
            fleet_points.push(FleetPoint {
                label: label.clone(),
                legend: format!("{} x {} ({label})", fleet.count, fleet.instance_type),
                stats: PointStats::new(&r.instances.stats, 0),
                bytes_per_s: r.instances.stats.throughput_qps * b,
                capacity_qps: r.instances.capacity_qps,
                utilisation: r.instances.utilisation,
            });
            serverless.get_or_insert(r);
        }
        let Some(r) = serverless else {
            return Err(SimError::Config {
                field: "instances".into(),
                reason: "a size sweep needs at least one fleet".into(),
            });
        };
        points.push(SizePoint {
            bytes,
            offered_qps: r.offered_qps,
            serverless: PointStats::new(&r.serverless.stats, r.serverless.counts.cold_starts),
            serverless_bytes_per_s: r.serverless.stats.throughput_qps * bytes as f64,
            serverless_resources: r.serverless.resources,
            serverless_saturated: r.serverless.saturated,
            tfilm_floor_ms: tfilm_floor_ms(&c, shape_model, bytes)?,
            fleets: fleet_points,
        });
    }
    let saturation = Saturation::first(points.iter().map(|p| {
        let served = p.serverless_bytes_per_s;
        (
            &p.serverless_saturated,
            &p.serverless_resources[..],
            p.bytes as f64,
            served,
        )
    }));
    Ok(SizeSweep {
        context: describe_arrivals(&config.arrivals),
        points,
        saturation,
    })
}

impl SizeSweep {
    /// The sweep as pretty JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("SizeSweep holds only numbers and strings")
    }

    /// One row per length: throughput (q/s and bytes/s) and latency of serverless and of
    /// every fleet, the TFiLM floor, and the serverless resources' utilisation.
    pub fn to_csv(&self) -> String {
        let mut out = String::from("bytes,offered_qps");
        let first = self.points.first();
        let mut sides = vec!["serverless".to_string()];
        sides.extend(
            first
                .into_iter()
                .flat_map(|p| p.fleets.iter().map(|f| f.label.clone())),
        );
        for side in &sides {
            for col in [
                "throughput_qps",
                "bytes_per_s",
                "p50_ms",
                "p99_ms",
                "cost_per_query_usd",
            ] {
                let _ = write!(out, ",{side}_{col}");
            }
        }
        for f in first.into_iter().flat_map(|p| &p.fleets) {
            let _ = write!(out, ",{}_capacity_qps", f.label);
        }
        out += ",tfilm_floor_ms";
        for r in first.into_iter().flat_map(|p| &p.serverless_resources) {
            let _ = write!(out, ",serverless_{}_utilisation", r.resource);
        }
        out += ",serverless_saturated\n";
        let cols = |out: &mut String, s: &PointStats, bytes_per_s: f64| {
            let _ = write!(
                out,
                ",{},{},{},{},{}",
                s.throughput_qps,
                bytes_per_s,
                s.latency.p50_ms,
                s.latency.p99_ms,
                s.cost_per_query_usd
            );
        };
        for p in &self.points {
            let _ = write!(out, "{},{}", p.bytes, p.offered_qps);
            cols(&mut out, &p.serverless, p.serverless_bytes_per_s);
            for f in &p.fleets {
                cols(&mut out, &f.stats, f.bytes_per_s);
            }
            for f in &p.fleets {
                let _ = write!(out, ",{}", f.capacity_qps);
            }
            match p.tfilm_floor_ms {
                Some(t) => {
                    let _ = write!(out, ",{t}");
                }
                None => out.push(','),
            }
            for r in &p.serverless_resources {
                let _ = write!(out, ",{}", r.utilisation);
            }
            let _ = writeln!(out, ",{}", p.serverless_saturated.as_deref().unwrap_or(""));
        }
        out
    }
}
