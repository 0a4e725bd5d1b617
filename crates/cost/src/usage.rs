//! From what queries did to what the full model prices: the invocations a trace metered,
//! averaged into per-stage usage ([`summarise`]), or one stage's usage written by hand
//! ([`StageUsage`]'s `FromStr`), and the comparison of the result with an instance.

use std::collections::BTreeMap;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::{BilledInvocation, CostError, FullCost, StageUsage};

/// The INIT duration assumed for a cold start when nothing measured one: the simulator's
/// default cold start too, so the cost model and the simulator agree.
pub const DEFAULT_INIT_MS: u64 = 250;

/// One function invocation as metered: what the bill and the usage summary need.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MeteredInvocation {
    /// Stage kind: `conv`, `tfilm`, `head` or `classifier`.
    pub stage: String,
    /// The function's configured memory.
    pub memory_mb: u32,
    /// Billed handler duration, ms (already rounded up).
    pub billed_ms: u64,
    /// Whether the invocation started a new instance.
    pub cold: bool,
    /// INIT duration of a cold start, ms.
    pub init_ms: f64,
    /// How many queries' stages ran in the invocation ([`BilledInvocation::shared_by`]).
    pub shared_by: u32,
}

impl MeteredInvocation {
    /// What Lambda bills for it: the INIT of a cold start is billed rounded up to 1 ms.
    pub fn billed(&self) -> BilledInvocation {
        BilledInvocation {
            billed_ms: self.billed_ms,
            memory_mb: self.memory_mb,
            init_billed_ms: if self.cold {
                self.init_ms.ceil() as u64
            } else {
                0
            },
            shared_by: self.shared_by,
        }
    }
}

/// One query as metered: its invocations and the bytes it moved through the store.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryUsage {
    /// Every invocation of the query.
    pub invocations: Vec<MeteredInvocation>,
    /// Bytes through the store, the input upload included.
    pub store_bytes: u64,
}

/// What metered queries say about the average query, ready for [`crate::FullCostInput`].
#[derive(Debug, Clone, PartialEq)]
pub struct UsageSummary {
    /// Queries summarised.
    pub queries: usize,
    /// Stage runs over all of them: an invocation that ran several queries' stages (a
    /// cross-query batch) counts once for each.
    pub invocations: usize,
    /// Cold starts over all of them.
    pub cold_starts: usize,
    /// Per (stage, memory) usage per query; cold-start fractions as measured.
    pub stages: Vec<StageUsage>,
    /// Mean INIT of the cold invocations, rounded up, if any were cold.
    pub init_ms: Option<u64>,
    /// Mean store bytes per query.
    pub store_bytes_per_query: u64,
}

fn invalid(field: &str, reason: String) -> CostError {
    CostError::InvalidInput {
        field: field.into(),
        reason,
    }
}

/// Averages queries into per-stage usage. Stages are grouped by kind and memory size,
/// named by kind alone unless one kind ran at several memory sizes (then `kind@MB`).
/// Refuses no queries, no invocations and an INIT that is not a finite number >= 0.
pub fn summarise(queries: &[QueryUsage]) -> Result<UsageSummary, CostError> {
    if queries.is_empty() {
        return Err(invalid("queries", "is empty; nothing to summarise".into()));
    }
    /// Sums over a stage's invocations, each weighted by the query's share of it.
    #[derive(Default)]
    struct Acc {
        count: f64,
        billed_ms: f64,
        cold: f64,
    }
    let mut groups: BTreeMap<(&str, u32), Acc> = BTreeMap::new();
    let mut init_sum = 0.0;
    let mut cold_starts = 0usize;
    let mut invocations = 0usize;
    for inv in queries.iter().flat_map(|q| &q.invocations) {
        if !(inv.init_ms.is_finite() && inv.init_ms >= 0.0) {
            return Err(invalid(
                "init_ms",
                format!(
                    "is {} for an invocation of stage {}; expected a finite number >= 0",
                    inv.init_ms, inv.stage
                ),
            ));
        }
        invocations += 1;
        let share = inv.billed().share();
        let acc = groups
            .entry((inv.stage.as_str(), inv.memory_mb))
            .or_default();
        acc.count += share;
        acc.billed_ms += share * inv.billed_ms as f64;
        if inv.cold {
            acc.cold += share;
            cold_starts += 1;
            init_sum += inv.init_ms;
        }
    }
    if invocations == 0 {
        return Err(invalid("invocations", "are none in any query".into()));
    }
    let mut per_kind: BTreeMap<&str, usize> = BTreeMap::new();
    for &(kind, _) in groups.keys() {
        *per_kind.entry(kind).or_default() += 1;
    }
    let n = queries.len();
    let stages = groups
        .iter()
        .map(|(&(kind, memory_mb), acc)| StageUsage {
            stage: if per_kind[kind] > 1 {
                format!("{kind}@{memory_mb}MB")
            } else {
                kind.to_owned()
            },
            memory_mb,
            invocations_per_query: acc.count / n as f64,
            billed_ms: acc.billed_ms / acc.count,
            cold_start_fraction: acc.cold / acc.count,
        })
        .collect();
    let store_total: u64 = queries.iter().map(|q| q.store_bytes).sum();
    Ok(UsageSummary {
        queries: n,
        invocations,
        cold_starts,
        stages,
        init_ms: (cold_starts > 0).then(|| (init_sum / cold_starts as f64).ceil() as u64),
        store_bytes_per_query: (store_total as f64 / n as f64).round() as u64,
    })
}

/// `NAME:INVOCATIONS:MS:MB[:COLD]`: the stage name, invocations per query, mean billed
/// ms per invocation, memory in MB and, optionally, the fraction of invocations that
/// start cold (default 0). An error names the spec and the field at fault.
impl FromStr for StageUsage {
    type Err = String;

    fn from_str(spec: &str) -> Result<Self, String> {
        let parts: Vec<&str> = spec.split(':').collect();
        if !(4..=5).contains(&parts.len()) || parts[0].is_empty() {
            return Err(format!(
                "{spec:?}: expected NAME:INVOCATIONS:MS:MB[:COLD], e.g. conv:8:50:2048:0.01"
            ));
        }
        let number = |i: usize, what: &str| -> Result<f64, String> {
            let v: f64 = parts[i]
                .parse()
                .map_err(|_| format!("{spec:?}: {what} {:?} is not a number", parts[i]))?;
            if !(v.is_finite() && v >= 0.0) {
                return Err(format!(
                    "{spec:?}: {what} is {v}; expected a finite number >= 0"
                ));
            }
            Ok(v)
        };
        let memory_mb: u32 = parts[3].parse().map_err(|_| {
            format!(
                "{spec:?}: memory {:?} is not a whole number of MB",
                parts[3]
            )
        })?;
        if memory_mb == 0 {
            return Err(format!("{spec:?}: memory must be at least 1 MB"));
        }
        let cold_start_fraction = if parts.len() == 5 {
            number(4, "cold-start fraction")?
        } else {
            0.0
        };
        if cold_start_fraction > 1.0 {
            return Err(format!(
                "{spec:?}: cold-start fraction is {cold_start_fraction}; expected a number in [0, 1]"
            ));
        }
        Ok(StageUsage {
            stage: parts[0].to_string(),
            memory_mb,
            invocations_per_query: number(1, "invocations per query")?,
            billed_ms: number(2, "billed ms")?,
            cold_start_fraction,
        })
    }
}

/// The serverless bill against an instance serving the same queries.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Comparison {
    /// The instance's name.
    pub instance: String,
    /// Its price per hour.
    pub instance_hourly_usd: f64,
    /// Queries per second it serves at full use.
    pub instance_qps: f64,
    /// The utilisation below which serverless is cheaper per query; `None` when serverless
    /// costs nothing at this volume.
    pub break_even_utilisation: Option<f64>,
    /// The steady load at which the hourly bills are equal, if there is one.
    pub crossover_qps: Option<f64>,
}

impl Comparison {
    /// Compares `cost` with `instance` at `hourly_usd` serving `qps` at full use.
    pub fn new(
        cost: &FullCost,
        instance: &str,
        hourly_usd: f64,
        qps: f64,
    ) -> Result<Self, CostError> {
        let break_even = cost.break_even_utilisation(hourly_usd, qps)?;
        Ok(Self {
            instance: instance.to_owned(),
            instance_hourly_usd: hourly_usd,
            instance_qps: qps,
            break_even_utilisation: Some(break_even).filter(|u| u.is_finite()),
            crossover_qps: cost.crossover_qps(hourly_usd),
        })
    }

    /// The break-even lines printed under the bill.
    pub fn render(&self) -> String {
        let instance_per_million = self.instance_hourly_usd / (self.instance_qps * 3600.0) * 1e6;
        let mut out = format!(
            "Against {} (${}/h, {} q/s at full use: ${:.4} per million queries at 100%):\n",
            self.instance, self.instance_hourly_usd, self.instance_qps, instance_per_million
        );
        out += &match self.break_even_utilisation {
            None => {
                "  break-even utilisation: none (serverless costs nothing at this volume)\n".into()
            }
            Some(u) if u >= 1.0 => format!(
                "  break-even utilisation: {:.1}%: serverless is cheaper per query even at full use\n",
                u * 100.0
            ),
            Some(u) => format!(
                "  break-even utilisation: {:.2}%: below it serverless is cheaper per query, above it the instance\n",
                u * 100.0
            ),
        };
        out += &match self.crossover_qps {
            Some(qps) => {
                format!("  hourly bills equal at a steady {qps:.1} q/s (serverless cheaper below)\n")
            }
            None => {
                "  hourly bills never equal: the master and cache alone cost at least the instance\n"
                    .into()
            }
        };
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stage_specs_parse_and_refuse_clearly() {
        let s: StageUsage = "conv:8:50:2048:0.01".parse().unwrap();
        assert_eq!(s.stage, "conv");
        assert_eq!(s.memory_mb, 2048);
        assert_eq!(s.invocations_per_query, 8.0);
        assert_eq!(s.billed_ms, 50.0);
        assert_eq!(s.cold_start_fraction, 0.01);
        let head: StageUsage = "head:1:5:512".parse().unwrap();
        assert_eq!(head.cold_start_fraction, 0.0);
        for bad in [
            "conv",
            "conv:8:50",
            "conv:x:50:1024",
            "conv:8:50:0",
            "conv:8:50:1024:2",
            ":1:1:1",
        ] {
            let err = bad.parse::<StageUsage>().unwrap_err();
            assert!(err.contains(&format!("{bad:?}")), "{bad}: {err}");
        }
    }

    fn inv(stage: &str, memory_mb: u32, billed_ms: u64, cold: bool) -> MeteredInvocation {
        MeteredInvocation {
            stage: stage.into(),
            memory_mb,
            billed_ms,
            cold,
            init_ms: if cold { 99.5 } else { 0.0 },
            shared_by: 1,
        }
    }

    #[test]
    fn queries_average_per_stage_and_memory() {
        let queries = vec![
            QueryUsage {
                invocations: vec![
                    inv("conv", 1024, 10, true),
                    inv("conv", 1024, 20, false),
                    inv("head", 512, 3, false),
                ],
                store_bytes: 100,
            },
            QueryUsage {
                invocations: vec![inv("conv", 1024, 30, false), inv("head", 256, 1, false)],
                store_bytes: 30,
            },
        ];
        let s = summarise(&queries).unwrap();
        assert_eq!((s.queries, s.invocations, s.cold_starts), (2, 5, 1));
        assert_eq!(s.init_ms, Some(100));
        assert_eq!(s.store_bytes_per_query, (100 + 30) / 2);
        let names: Vec<&str> = s.stages.iter().map(|s| s.stage.as_str()).collect();
        assert_eq!(names, ["conv", "head@256MB", "head@512MB"]);
        assert_eq!(s.stages[0].invocations_per_query, 1.5);
        assert_eq!(s.stages[0].billed_ms, 20.0);
        assert!((s.stages[0].cold_start_fraction - 1.0 / 3.0).abs() < 1e-12);

        assert!(summarise(&[]).is_err());
        let mut bad = queries[0].clone();
        bad.invocations[0].init_ms = f64::NAN;
        assert!(
            summarise(&[bad])
                .unwrap_err()
                .to_string()
                .contains("init_ms")
        );
    }

    #[test]
    fn a_cold_invocation_bills_its_init_rounded_up() {
        assert_eq!(inv("conv", 1024, 10, true).billed().init_billed_ms, 100);
        assert_eq!(inv("conv", 1024, 10, false).billed().init_billed_ms, 0);
    }
}
