//! A run's results: both deployments side by side, priced, as JSON and CSV.

use std::fmt::Write as _;

use seqless_cost::{FullCost, FullCostInput, StageUsage};
use serde::Serialize;

use crate::instances::InstanceOutcome;
use crate::record::DeploymentStats;
use crate::resources::{ResourceUse, saturated};
use crate::serverless::{ServerlessCounts, ServerlessOutcome};
use crate::{SimConfig, SimError};

/// The serverless deployment's results.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ServerlessReport {
    /// Throughput, latency, timeline, cost.
    #[serde(flatten)]
    pub stats: DeploymentStats,
    /// Invocations, cold starts, throttles and store traffic.
    #[serde(flatten)]
    pub counts: ServerlessCounts,
    /// How busy each shared resource (store network and requests, master CPU) was.
    pub resources: Vec<ResourceUse>,
    /// The most utilised resource, when it was at or above [`crate::SATURATED`]: what
    /// stops serverless throughput from growing with load.
    pub saturated: Option<String>,
    /// The bill, term by term.
    pub cost: FullCost,
}

/// The instance deployment's results.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InstanceReport {
    /// Throughput, latency, timeline, cost.
    #[serde(flatten)]
    pub stats: DeploymentStats,
    /// Instance type, as priced.
    pub instance_type: String,
    /// Fleet size.
    pub instances: u32,
    /// Price of one instance per hour.
    pub hourly_usd: f64,
    /// Saturation throughput of the fleet at the trace's mean length.
    pub capacity_qps: f64,
    /// Served load relative to capacity, `throughput / capacity`: the sense of
    /// the paper's "50% utilisation" and of the break-even utilisation.
    pub utilisation: f64,
    /// Fraction of instance-time spent serving. Differs from `utilisation`
    /// because batches are small at low load (greedy batching).
    pub busy_fraction: f64,
    /// Longest the queue got.
    pub max_queue: usize,
}

/// Everything one run produced, with the configuration that produced it so a
/// saved report can be re-run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SimReport {
    /// The run's configuration.
    pub config: SimConfig,
    /// Arrivals per second over the window (serverless side for closed loops).
    pub offered_qps: f64,
    /// Serverless results.
    pub serverless: ServerlessReport,
    /// Instance results.
    pub instances: InstanceReport,
    /// Steady load (q/s) above which the instance fleet is cheaper than this
    /// serverless deployment, from its per-query and hourly costs; `None` if
    /// there is no crossing.
    pub crossover_qps: Option<f64>,
    /// Utilisation of one instance below which serverless is cheaper per query
    /// at this run's volume; `None` if serverless cost nothing.
    pub break_even_utilisation: Option<f64>,
}

/// Prices both outcomes and puts them side by side.
pub(crate) fn assemble(
    config: &SimConfig,
    serverless: ServerlessOutcome,
    instances: InstanceOutcome,
) -> Result<SimReport, SimError> {
    let p = &config.pricing;
    let hours = config.duration_s / 3600.0;
    // Per-query figures are over completed queries; with none completed the
    // whole bill is shown as one query's.
    let basis = |stats: &DeploymentStats| stats.completed.max(1);
    let s_basis = basis(&serverless.stats);
    let stages = serverless
        .functions
        .iter()
        .map(|f| {
            let n = f.invocations.max(1) as f64;
            StageUsage {
                stage: format!("{}@{}MB", f.kind, f.memory_mb),
                memory_mb: f.memory_mb,
                invocations_per_query: f.invocations as f64 / s_basis as f64,
                billed_ms: f.billed_ms as f64 / n,
                cold_start_fraction: f.cold_starts as f64 / n,
            }
        })
        .collect();
    let cost_input = FullCostInput {
        queries: s_basis,
        arch: config.serverless.arch,
        stages,
        init_ms: serverless.init_billed_ms,
        cache_nodes: config.serverless.cache_nodes,
        cache_node_hourly_usd: p.hourly(&config.serverless.cache_node)?,
        master_hourly_usd: p.hourly(&config.serverless.master_instance)?
            * f64::from(config.serverless.master.count),
        hours,
        store_bytes_per_query: (serverless.counts.store_bytes as f64 / s_basis as f64).round()
            as u64,
        cross_az_fraction: config.serverless.cross_az_fraction,
        other_hourly_usd: 0.0,
    };
    let cost = FullCost::compute(p, &cost_input)?;
    let mut s_stats = serverless.stats;
    s_stats.cost_usd = cost.total_usd;
    s_stats.cost_per_query_usd = cost.cost_per_query_usd;

    let inst = &config.instances;
    let hourly_usd = p.hourly(&inst.instance_type)?;
    let fleet_hourly = f64::from(inst.count) * hourly_usd;
    let capacity_qps = inst.capacity_qps(instances.mean_len);
    let mut i_stats = instances.stats;
    i_stats.cost_usd = fleet_hourly * hours;
    i_stats.cost_per_query_usd = i_stats.cost_usd / basis(&i_stats) as f64;
    let window_us = config.duration_s * 1e6;
    let busy_fraction = instances.busy_us as f64 / (f64::from(inst.count) * window_us);
    let utilisation = i_stats.throughput_qps / capacity_qps;
    let break_even = cost
        .break_even_utilisation(hourly_usd, capacity_qps / f64::from(inst.count))
        .ok()
        .filter(|u| u.is_finite());
    Ok(SimReport {
        config: config.clone(),
        offered_qps: s_stats.arrived as f64 / config.duration_s,
        crossover_qps: cost.crossover_qps(fleet_hourly),
        break_even_utilisation: break_even,
        serverless: ServerlessReport {
            stats: s_stats,
            counts: serverless.counts,
            saturated: saturated(&serverless.resources).map(|r| r.resource.clone()),
            resources: serverless.resources,
            cost,
        },
        instances: InstanceReport {
            stats: i_stats,
            instance_type: inst.instance_type.clone(),
            instances: inst.count,
            hourly_usd,
            capacity_qps,
            utilisation,
            busy_fraction,
            max_queue: instances.max_queue,
        },
    })
}

impl SimReport {
    /// The report as pretty JSON: byte-identical for identical configurations.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("SimReport holds only numbers and strings")
    }

    /// Both timelines as CSV, one row per bucket, for plotting elsewhere.
    pub fn timeline_csv(&self) -> String {
        let (s, i) = (
            &self.serverless.stats.timeline,
            &self.instances.stats.timeline,
        );
        let mut out = String::from(
            "t_s,serverless_arrivals,serverless_completions,serverless_throughput_qps,\
             serverless_max_concurrency,instances_arrivals,instances_completions,\
             instances_throughput_qps,instances_busy\n",
        );
        let bucket_s = self.config.timeline_bucket_s;
        for k in 0..s.len().max(i.len()) {
            let cells = |p: Option<&crate::TimelinePoint>| {
                p.map_or("0,0,0,0".to_string(), |p| {
                    format!(
                        "{},{},{},{}",
                        p.arrivals, p.completions, p.throughput_qps, p.max_concurrency
                    )
                })
            };
            let _ = writeln!(
                out,
                "{},{},{}",
                k as f64 * bucket_s,
                cells(s.get(k)),
                cells(i.get(k))
            );
        }
        out
    }

    /// Every query of both deployments as CSV (`deployment,id,arrival_s,len,
    /// latency_ms,cold`; latency empty if in flight at the end).
    pub fn queries_csv(&self) -> String {
        let mut out = String::from("deployment,id,arrival_s,len,latency_ms,cold,rejected\n");
        for (name, stats) in [
            ("serverless", &self.serverless.stats),
            ("instances", &self.instances.stats),
        ] {
            for q in &stats.queries {
                let latency = q.latency_ms.map(|l| l.to_string()).unwrap_or_default();
                let _ = writeln!(
                    out,
                    "{name},{},{},{},{latency},{},{}",
                    q.id, q.arrival_s, q.len, q.cold, q.rejected
                );
            }
        }
        out
    }
}
