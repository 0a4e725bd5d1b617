//! The human summaries `seqless simulate` prints: one run against the fleet, and a sweep
//! row per load level.

use std::fmt::Write as _;

use seqless_cost::format_count as thousands;

use crate::{ArrivalProcess, LoadLevel, SimReport, SizeSweep, Sweep};

impl std::fmt::Display for ArrivalProcess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ArrivalProcess::Constant { rate_qps } => {
                write!(f, "constant arrivals at {rate_qps} q/s")
            }
            ArrivalProcess::Poisson { rate_qps } => write!(f, "poisson arrivals at {rate_qps} q/s"),
            ArrivalProcess::Bursty(_) | ArrivalProcess::Diurnal { .. } => write!(
                f,
                "{} arrivals averaging {:.1} q/s",
                if matches!(self, ArrivalProcess::Bursty(_)) {
                    "bursty"
                } else {
                    "diurnal"
                },
                self.mean_rate().unwrap_or(0.0)
            ),
            ArrivalProcess::File { path } => write!(f, "arrivals from {}", path.display()),
            ArrivalProcess::ClosedLoop { clients, think_s } => {
                write!(f, "{clients} closed-loop clients thinking {think_s} s")
            }
        }
    }
}

impl SimReport {
    /// The human summary of one run, whose query shapes came from `shape` (a description).
    pub fn render(&self, shape: &str) -> String {
        let r = self;
        let c = &r.config;
        let (s, i) = (&r.serverless.stats, &r.instances.stats);
        let mut out = String::new();
        let _ = writeln!(
            out,
            "Simulated {} s of {} (seed {}), {} queries; query shapes from {shape}",
            c.duration_s,
            c.arrivals,
            c.seed,
            thousands(s.arrived)
        );
        let fleet = format!("{} x {}", r.instances.instances, r.instances.instance_type);
        let _ = writeln!(out, "{:<24} {:>16} {:>16}", "", "serverless", fleet);
        // Each row: a figure of both deployments, formatted with `prec` decimals.
        let both = |name, prec: usize, f: fn(&crate::DeploymentStats) -> f64| {
            (name, format!("{:.prec$}", f(s)), format!("{:.prec$}", f(i)))
        };
        let rows = [
            both("throughput (q/s)", 2, |d| d.throughput_qps),
            ("completed", thousands(s.completed), thousands(i.completed)),
            both("p50 latency (ms)", 1, |d| d.latency.p50_ms),
            both("p99 latency (ms)", 1, |d| d.latency.p99_ms),
            (
                "cold starts",
                thousands(r.serverless.counts.cold_starts),
                "-".into(),
            ),
            (
                "invocations",
                thousands(r.serverless.counts.invocations),
                "-".into(),
            ),
            (
                "utilisation",
                "-".into(),
                format!("{:.1}%", r.instances.utilisation * 100.0),
            ),
            both("cost (USD)", 6, |d| d.cost_usd),
            both("cost per query (USD)", 9, |d| d.cost_per_query_usd),
            both("cost per 1M queries", 2, |d| d.cost_per_query_usd * 1e6),
        ];
        for (name, a, b) in rows {
            let _ = writeln!(out, "{name:<24} {a:>16} {b:>16}");
        }
        match r.crossover_qps {
            Some(q) => {
                let _ = writeln!(
                    out,
                    "crossover: the fleet is cheaper above a steady {q:.1} q/s (serverless below)"
                );
            }
            None => {
                let _ = writeln!(
                    out,
                    "crossover: none (the master and cache alone cost at least the fleet)"
                );
            }
        }
        let busiest: Vec<String> = r
            .serverless
            .resources
            .iter()
            .map(|u| {
                format!(
                    "{} {:.1}% ({})",
                    u.resource,
                    u.utilisation * 100.0,
                    u.capacity
                )
            })
            .collect();
        let _ = writeln!(out, "serverless shared resources: {}", busiest.join(", "));
        if let Some(name) = &r.serverless.saturated {
            let _ = writeln!(
                out,
                "serverless is limited by {name}: throughput stops growing with load here"
            );
        }
        if let Some(u) = r.break_even_utilisation {
            let _ = writeln!(
                out,
                "break-even utilisation of one {}: {:.2}% (serverless cheaper per query below it)",
                r.instances.instance_type,
                u * 100.0
            );
        }
        out
    }
}

impl Sweep {
    /// The human summary of the sweep, one row per load level.
    pub fn render(&self) -> String {
        let sweep = self;
        let mut out = format!(
            "\nSweep against {} x {}\n{:>10} {:>10} | {:>10} {:>10} {:>12} | {:>10} {:>10} {:>12}\n",
            sweep.instances,
            sweep.instance_type,
            "level",
            "offered",
            "sl q/s",
            "sl p99 ms",
            "sl $/query",
            "inst q/s",
            "inst p99",
            "inst $/query"
        );
        for p in &sweep.points {
            let level = match p.level {
                LoadLevel::Rate(r) => format!("{r} q/s"),
                LoadLevel::Concurrency(n) => format!("{n} cl"),
            };
            let _ = writeln!(
                out,
                "{:>10} {:>10.2} | {:>10.2} {:>10.1} {:>12.9} | {:>10.2} {:>10.1} {:>12.9}",
                level,
                p.offered_qps,
                p.serverless.throughput_qps,
                p.serverless.latency.p99_ms,
                p.serverless.cost_per_query_usd,
                p.instances.throughput_qps,
                p.instances.latency.p99_ms,
                p.instances.cost_per_query_usd
            );
        }
        match &sweep.saturation {
            Some(s) => {
                let _ = writeln!(
                    out,
                    "serverless saturates first at {} ({}): from {:.1} q/s offered, serving {:.1} q/s",
                    s.resource, s.capacity, s.at, s.served
                );
            }
            None => {
                let _ = writeln!(
                    out,
                    "serverless: no shared resource saturated within the levels swept"
                );
            }
        }
        match sweep.crossover_qps {
            Some(q) => {
                let _ = writeln!(
                    out,
                    "sweep crossover: cost per query equal at {q:.1} q/s offered"
                );
            }
            None => {
                let _ = writeln!(out, "sweep crossover: none within the levels swept");
            }
        }
        out
    }
}

impl SizeSweep {
    /// The human summary of the size sweep: one row per length, bytes/s and p99 of
    /// serverless and of every fleet.
    pub fn render(&self) -> String {
        let mut out = format!("\nSize sweep at {}\n{:>9} |", self.context, "bytes");
        let labels: Vec<String> = std::iter::once("serverless".to_string())
            .chain(
                self.points
                    .first()
                    .into_iter()
                    .flat_map(|p| p.fleets.iter().map(|f| f.legend.clone())),
            )
            .collect();
        for label in &labels {
            let _ = write!(out, " {:>26} |", format!("{label} MB/s, p99 ms"));
        }
        out += " saturated\n";
        for p in &self.points {
            let _ = write!(out, "{:>9} |", p.bytes);
            let sides = std::iter::once((p.serverless_bytes_per_s, &p.serverless))
                .chain(p.fleets.iter().map(|f| (f.bytes_per_s, &f.stats)));
            for (bytes_per_s, s) in sides {
                let _ = write!(
                    out,
                    " {:>26} |",
                    format!("{:.3}, {:.1}", bytes_per_s / 1e6, s.latency.p99_ms)
                );
            }
            let _ = writeln!(out, " {}", p.serverless_saturated.as_deref().unwrap_or("-"));
        }
        match &self.saturation {
            Some(s) => {
                let _ = writeln!(
                    out,
                    "serverless saturates first at {} ({}): from {} bytes, serving {:.3} MB/s",
                    s.resource,
                    s.capacity,
                    s.at,
                    s.served / 1e6
                );
            }
            None => {
                let _ = writeln!(
                    out,
                    "serverless: no shared resource saturated within the lengths swept"
                );
            }
        }
        out
    }
}
