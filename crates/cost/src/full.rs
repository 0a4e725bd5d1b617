use serde::{Deserialize, Serialize};

use crate::fmt::count;
use crate::lambda::gb_seconds_f64;
use crate::{Arch, CostError, Pricing};

/// One stage function's share of a query, the granularity at which a trace or a
/// plan knows memory size and duration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StageUsage {
    /// The stage's name in reports (e.g. `conv`, `tfilm`, `head`).
    pub stage: String,
    /// The function's configured memory.
    pub memory_mb: u32,
    /// Invocations of this stage per query (a mean, so it may be fractional).
    pub invocations_per_query: f64,
    /// Mean billed duration per invocation, ms (each already rounded up).
    pub billed_ms: f64,
    /// Fraction of this stage's invocations that were cold starts. Per stage
    /// because wide stages (many conv splits) start cold more often than the
    /// single tfilm function.
    pub cold_start_fraction: f64,
}

/// Everything the fuller cost model needs for one period of operation. Plain
/// data, so the CLI can read it from JSON and the simulator can fill it from a
/// simulated trace.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FullCostInput {
    /// Queries served in the period.
    pub queries: u64,
    /// The functions' architecture (sets the GB-s price).
    pub arch: Arch,
    /// Per-stage invocation counts, memory and durations.
    pub stages: Vec<StageUsage>,
    /// Billed INIT duration of one cold start, ms (runtime start + model load).
    pub init_ms: u64,
    /// ElastiCache nodes running for the period.
    pub cache_nodes: u32,
    /// Hourly price of one cache node.
    pub cache_node_hourly_usd: f64,
    /// Hourly price of the master instance.
    pub master_hourly_usd: f64,
    /// Length of the period, hours (the master and cache are paid by the hour,
    /// busy or not).
    pub hours: f64,
    /// Bytes moved to and from the store per query (writes + reads, halos included).
    pub store_bytes_per_query: u64,
    /// Fraction of that traffic crossing Availability Zones (0 when the cache and
    /// functions share an AZ, the only case ElastiCache traffic is free).
    pub cross_az_fraction: f64,
    /// Everything else a deployment pays by the hour whatever the load (VPC endpoints,
    /// secrets, a NAT gateway), USD per hour, summed. Without it a stack's idle cost
    /// would be understated by exactly the parts that keep it private.
    #[serde(default)]
    pub other_hourly_usd: f64,
}

/// The prices a [`FullCost`] was computed with, kept in the result so a saved
/// report can be checked and re-derived later.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UnitPrices {
    /// USD per 1M Lambda requests.
    pub request_usd_per_million: f64,
    /// USD per GB-s for the input's architecture.
    pub gb_second_usd: f64,
    /// USD per GB crossing AZs.
    pub inter_az_usd_per_gb: f64,
    /// USD per hour of the master.
    pub master_hourly_usd: f64,
    /// USD per hour of one cache node.
    pub cache_node_hourly_usd: f64,
    /// USD per hour of everything else paid by the hour.
    pub other_hourly_usd: f64,
}

/// One stage's Lambda bill, so a report shows which stage dominates.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StageCost {
    /// Stage name, from the input.
    pub stage: String,
    /// Configured memory.
    pub memory_mb: u32,
    /// Invocations over the period.
    pub invocations: f64,
    /// Billed handler GB-s.
    pub gb_seconds: f64,
    /// Cold starts over the period.
    pub cold_starts: f64,
    /// INIT GB-s (billed or not, see [`FullCost::init_billed`]).
    pub init_gb_seconds: f64,
    /// Request fees.
    pub requests_usd: f64,
    /// Duration charges.
    pub duration_usd: f64,
    /// INIT charges.
    pub init_usd: f64,
}

/// The fuller model's result: every term the paper had, plus those it left out,
/// so the comparison with an instance can be made honestly.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FullCost {
    /// Queries in the period.
    pub queries: u64,
    /// Period length, hours.
    pub hours: f64,
    /// Function architecture.
    pub arch: Arch,
    /// Whether INIT duration was billed (from [`crate::LambdaPricing::bill_init`]).
    pub init_billed: bool,
    /// The prices used.
    pub prices: UnitPrices,
    /// Per-stage Lambda terms.
    pub stages: Vec<StageCost>,
    /// All invocations.
    pub invocations: f64,
    /// All handler GB-s.
    pub gb_seconds: f64,
    /// All cold starts.
    pub cold_starts: f64,
    /// All INIT GB-s.
    pub init_gb_seconds: f64,
    /// Cache nodes.
    pub cache_nodes: u32,
    /// Store traffic, GB (10^9 bytes).
    pub store_gb: f64,
    /// The part of it that crossed AZs and is billed.
    pub cross_az_gb: f64,
    /// Lambda request fees.
    pub requests_usd: f64,
    /// Lambda duration.
    pub duration_usd: f64,
    /// Lambda INIT.
    pub init_usd: f64,
    /// The master instance for the period.
    pub master_usd: f64,
    /// The cache nodes for the period.
    pub cache_usd: f64,
    /// Inter-AZ store traffic.
    pub transfer_usd: f64,
    /// The other hourly charges for the period.
    pub other_usd: f64,
    /// Sum of all terms.
    pub total_usd: f64,
    /// `total_usd / queries` (0 when there were no queries).
    pub cost_per_query_usd: f64,
    /// The headline figure: `cost_per_query_usd × 10^6`.
    pub cost_per_million_queries_usd: f64,
}

fn check(field: &str, value: f64, max: Option<f64>) -> Result<(), CostError> {
    let in_range = value.is_finite() && value >= 0.0 && max.is_none_or(|m| value <= m);
    if in_range {
        return Ok(());
    }
    let bound = max.map_or("a finite number >= 0".to_string(), |m| {
        format!("a number in [0, {m}]")
    });
    Err(CostError::InvalidInput {
        field: field.to_string(),
        reason: format!("is {value}; expected {bound}"),
    })
}

impl FullCostInput {
    fn validate(&self) -> Result<(), CostError> {
        check("hours", self.hours, None)?;
        check("cache_node_hourly_usd", self.cache_node_hourly_usd, None)?;
        check("master_hourly_usd", self.master_hourly_usd, None)?;
        check("other_hourly_usd", self.other_hourly_usd, None)?;
        check("cross_az_fraction", self.cross_az_fraction, Some(1.0))?;
        for (i, s) in self.stages.iter().enumerate() {
            let field = |name: &str| format!("stages[{i}] ({}).{name}", s.stage);
            check(
                &field("invocations_per_query"),
                s.invocations_per_query,
                None,
            )?;
            check(&field("billed_ms"), s.billed_ms, None)?;
            check(
                &field("cold_start_fraction"),
                s.cold_start_fraction,
                Some(1.0),
            )?;
        }
        Ok(())
    }
}

impl FullCost {
    /// Prices a period of operation. Refuses out-of-range inputs by field name
    /// rather than producing a negative or NaN bill.
    pub fn compute(p: &Pricing, input: &FullCostInput) -> Result<FullCost, CostError> {
        input.validate()?;
        let prices = UnitPrices {
            request_usd_per_million: p.lambda.request_usd_per_million,
            gb_second_usd: p.lambda.gb_second_usd(input.arch),
            inter_az_usd_per_gb: p.data_transfer.inter_az_usd_per_gb,
            master_hourly_usd: input.master_hourly_usd,
            cache_node_hourly_usd: input.cache_node_hourly_usd,
            other_hourly_usd: input.other_hourly_usd,
        };
        let queries = input.queries as f64;
        let stages: Vec<StageCost> = input
            .stages
            .iter()
            .map(|s| {
                let invocations = queries * s.invocations_per_query;
                let gb_s = invocations * gb_seconds_f64(s.billed_ms, s.memory_mb);
                let cold_starts = invocations * s.cold_start_fraction;
                let init_gb_s = cold_starts * gb_seconds_f64(input.init_ms as f64, s.memory_mb);
                StageCost {
                    stage: s.stage.clone(),
                    memory_mb: s.memory_mb,
                    invocations,
                    gb_seconds: gb_s,
                    cold_starts,
                    init_gb_seconds: init_gb_s,
                    requests_usd: invocations * p.lambda.request_usd(),
                    duration_usd: gb_s * prices.gb_second_usd,
                    init_usd: if p.lambda.bill_init {
                        init_gb_s * prices.gb_second_usd
                    } else {
                        0.0
                    },
                }
            })
            .collect();
        let sum = |f: fn(&StageCost) -> f64| stages.iter().map(f).sum::<f64>();
        let requests_usd = sum(|s| s.requests_usd);
        let duration_usd = sum(|s| s.duration_usd);
        let init_usd = sum(|s| s.init_usd);
        let master_usd = input.master_hourly_usd * input.hours;
        let cache_usd = f64::from(input.cache_nodes) * input.cache_node_hourly_usd * input.hours;
        let store_gb = queries * input.store_bytes_per_query as f64 / 1e9;
        let cross_az_gb = store_gb * input.cross_az_fraction;
        let transfer_usd = cross_az_gb * prices.inter_az_usd_per_gb;
        let other_usd = input.other_hourly_usd * input.hours;
        let total_usd = requests_usd
            + duration_usd
            + init_usd
            + master_usd
            + cache_usd
            + transfer_usd
            + other_usd;
        let cost_per_query_usd = if input.queries == 0 {
            0.0
        } else {
            total_usd / queries
        };
        Ok(FullCost {
            queries: input.queries,
            hours: input.hours,
            arch: input.arch,
            init_billed: p.lambda.bill_init,
            invocations: sum(|s| s.invocations),
            gb_seconds: sum(|s| s.gb_seconds),
            cold_starts: sum(|s| s.cold_starts),
            init_gb_seconds: sum(|s| s.init_gb_seconds),
            prices,
            stages,
            cache_nodes: input.cache_nodes,
            store_gb,
            cross_az_gb,
            requests_usd,
            duration_usd,
            init_usd,
            master_usd,
            cache_usd,
            transfer_usd,
            other_usd,
            total_usd,
            cost_per_query_usd,
            cost_per_million_queries_usd: cost_per_query_usd * 1e6,
        })
    }

    /// The utilisation of one instance below which this serverless deployment is
    /// cheaper per query: an instance costs `hourly / (qps × 3600 × u)` per query
    /// at utilisation `u`, which equals [`FullCost::cost_per_query_usd`] at
    /// `u* = hourly / (qps × 3600 × cost_per_query)`. The master and cache are
    /// amortised over this input's query volume. A result ≥ 1 means serverless
    /// is cheaper even at full utilisation; infinity means serverless cost nothing.
    pub fn break_even_utilisation(
        &self,
        instance_hourly_usd: f64,
        instance_queries_per_second: f64,
    ) -> Result<f64, CostError> {
        check("instance_hourly_usd", instance_hourly_usd, None)?;
        check(
            "instance_queries_per_second",
            instance_queries_per_second,
            None,
        )?;
        if instance_queries_per_second == 0.0 {
            return Err(CostError::InvalidInput {
                field: "instance_queries_per_second".into(),
                reason: "is 0; an instance that serves nothing has no break-even".into(),
            });
        }
        let instance_per_query_at_full =
            instance_hourly_usd / (instance_queries_per_second * 3600.0);
        Ok(if self.cost_per_query_usd == 0.0 {
            f64::INFINITY
        } else {
            instance_per_query_at_full / self.cost_per_query_usd
        })
    }

    /// Lambda and traffic cost per query: what grows with load, as opposed to the
    /// hourly master and cache.
    pub fn variable_cost_per_query_usd(&self) -> f64 {
        if self.queries == 0 {
            0.0
        } else {
            (self.requests_usd + self.duration_usd + self.init_usd + self.transfer_usd)
                / self.queries as f64
        }
    }

    /// The master's, cache's and other hourly charges per hour, paid whatever the load.
    pub fn fixed_usd_per_hour(&self) -> f64 {
        self.prices.master_hourly_usd
            + f64::from(self.cache_nodes) * self.prices.cache_node_hourly_usd
            + self.prices.other_hourly_usd
    }

    /// The steady load, queries per second, at which this deployment's hourly
    /// bill equals `instances_hourly_usd` (the whole fleet it is compared with):
    /// `(fleet − fixed) / (3600 × variable cost per query)`. Below it serverless is
    /// cheaper. `None` when there is no crossing: the fixed part alone costs
    /// at least the fleet, or the variable cost is zero.
    pub fn crossover_qps(&self, instances_hourly_usd: f64) -> Option<f64> {
        let margin = instances_hourly_usd - self.fixed_usd_per_hour();
        let variable = self.variable_cost_per_query_usd();
        (margin > 0.0 && variable > 0.0).then(|| margin / (3600.0 * variable))
    }

    /// The bill as an aligned text table, one row per term, then per stage, for
    /// `seqless cost`.
    pub fn render(&self) -> String {
        let p = &self.prices;
        let hours = format!("{:.3} h", self.hours);
        let init_note = if self.init_billed {
            ""
        } else {
            " (not billed)"
        };
        let hourly = |term: &str, price: f64, usd: f64| {
            (
                term.to_string(),
                hours.clone(),
                format!("${price} per h"),
                usd,
            )
        };
        let rows = [
            (
                "Lambda requests".to_string(),
                format!("{} invocations", count(self.invocations.round() as u64)),
                format!("${} per 1M", p.request_usd_per_million),
                self.requests_usd,
            ),
            (
                "Lambda duration".to_string(),
                format!("{:.3} GB-s ({})", self.gb_seconds, self.arch),
                format!("${} per GB-s", p.gb_second_usd),
                self.duration_usd,
            ),
            (
                format!("Lambda INIT{init_note}"),
                format!(
                    "{} cold starts, {:.3} GB-s",
                    count(self.cold_starts.round() as u64),
                    self.init_gb_seconds
                ),
                format!("${} per GB-s", p.gb_second_usd),
                self.init_usd,
            ),
            hourly("Master instance", p.master_hourly_usd, self.master_usd),
            (
                "ElastiCache".to_string(),
                format!("{} node(s) x {hours}", self.cache_nodes),
                format!("${} per node-h", p.cache_node_hourly_usd),
                self.cache_usd,
            ),
            (
                "Store traffic".to_string(),
                format!(
                    "{:.3} GB, {:.3} GB cross-AZ",
                    self.store_gb, self.cross_az_gb
                ),
                format!("${} per cross-AZ GB", p.inter_az_usd_per_gb),
                self.transfer_usd,
            ),
            hourly("Other hourly", p.other_hourly_usd, self.other_usd),
        ];
        let mut out = format!(
            "{:<26} {:<36} {:<24} {:>14}\n",
            "term", "quantity", "unit price", "USD"
        );
        for (term, quantity, unit, usd) in &rows {
            out += &format!("{term:<26} {quantity:<36} {unit:<24} {usd:>14.6}\n");
        }
        out += &format!("{:<88} {:>14.6}\n", "total", self.total_usd);
        out += &format!(
            "{:<88} {:>14.9}\n",
            format!("per query ({} queries)", count(self.queries)),
            self.cost_per_query_usd
        );
        out += &format!(
            "{:<88} {:>14.6}\n",
            "per million queries", self.cost_per_million_queries_usd
        );
        out += "\nper stage\n";
        for s in &self.stages {
            out += &format!(
                "  {:<12} {:>6} MB {:>16} inv {:>14.3} GB-s {:>10} cold  ${:.6}\n",
                s.stage,
                s.memory_mb,
                count(s.invocations.round() as u64),
                s.gb_seconds,
                count(s.cold_starts.round() as u64),
                s.requests_usd + s.duration_usd + s.init_usd
            );
        }
        out += "\nNot billed: ElastiCache requests, same-AZ store traffic.\n\
                Not modelled: the free tier, tiered GB-s discounts, ephemeral storage \
                above 512 MB, CloudWatch Logs charges; NAT gateways, VPC endpoints and \
                secrets only when given as other hourly charges.\n";
        out
    }

    /// The bill as pretty JSON for scripts and saved reports.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("FullCost holds only numbers and strings")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::paper_cost;

    fn paper_input() -> FullCostInput {
        FullCostInput {
            queries: 1_800_000,
            arch: Arch::X86_64,
            stages: vec![StageUsage {
                stage: "paper".into(),
                memory_mb: 3008,
                invocations_per_query: 10.0,
                billed_ms: 0.0,
                cold_start_fraction: 0.0,
            }],
            init_ms: 0,
            cache_nodes: 1,
            cache_node_hourly_usd: 0.156,
            master_hourly_usd: 0.188,
            hours: 1.0,
            store_bytes_per_query: 0,
            cross_az_fraction: 0.0,
            other_hourly_usd: 0.0,
        }
    }

    #[test]
    fn agrees_with_the_paper_when_its_extra_terms_are_zero() {
        let cost = FullCost::compute(&Pricing::default(), &paper_input()).unwrap();
        let paper = paper_cost();
        assert!((cost.requests_usd - paper.lambda_requests_usd).abs() < 1e-9);
        assert!((cost.total_usd - paper.serverless_usd).abs() < 1e-9);
        assert_eq!(
            cost.duration_usd + cost.init_usd + cost.transfer_usd + cost.other_usd,
            0.0
        );
        // Serverless is cheaper than a p2.xlarge (1000 q/s at full) below ~11.4% use.
        let u = cost.break_even_utilisation(0.9, 1000.0).unwrap();
        assert!(
            (u - 0.9 / (3600.0 * 1000.0 * 3.944 / 1.8e6)).abs() < 1e-12,
            "{u}"
        );
        assert!((u - 0.1141).abs() < 1e-3, "{u}");
    }

    #[test]
    fn every_term_is_priced() {
        let mut input = paper_input();
        input.stages = vec![
            StageUsage {
                stage: "conv".into(),
                memory_mb: 2048,
                invocations_per_query: 8.0,
                billed_ms: 50.0,
                cold_start_fraction: 0.01,
            },
            StageUsage {
                stage: "tfilm".into(),
                memory_mb: 512,
                invocations_per_query: 2.0,
                billed_ms: 5.0,
                cold_start_fraction: 0.0,
            },
        ];
        input.queries = 1000;
        input.init_ms = 300;
        input.store_bytes_per_query = 2_000_000;
        input.cross_az_fraction = 0.5;
        let p = Pricing::default();
        let c = FullCost::compute(&p, &input).unwrap();
        let gb_s_price = 0.0000166667;
        let conv_gb_s = 8000.0 * 2.0 * 0.05;
        let tfilm_gb_s = 2000.0 * 0.5 * 0.005;
        assert!((c.gb_seconds - (conv_gb_s + tfilm_gb_s)).abs() < 1e-9);
        assert!((c.duration_usd - (conv_gb_s + tfilm_gb_s) * gb_s_price).abs() < 1e-12);
        assert!((c.cold_starts - 80.0).abs() < 1e-9);
        assert!((c.init_usd - 80.0 * 2.0 * 0.3 * gb_s_price).abs() < 1e-12);
        assert!((c.store_gb - 2.0).abs() < 1e-12);
        assert!((c.transfer_usd - 1.0 * 0.01).abs() < 1e-12);
        assert!((c.cost_per_million_queries_usd - c.total_usd / 1000.0 * 1e6).abs() < 1e-6);
        let fixed = 0.188 + 0.156;
        assert!((c.fixed_usd_per_hour() - fixed).abs() < 1e-12);
        let v = c.variable_cost_per_query_usd();
        let x = c.crossover_qps(0.9).unwrap();
        assert!((3600.0 * x * v + fixed - 0.9).abs() < 1e-9);
        assert_eq!(c.crossover_qps(0.3), None);
        let table = c.render();
        for term in [
            "Lambda requests",
            "Lambda duration",
            "Lambda INIT",
            "Master",
            "ElastiCache",
            "Store traffic",
            "per million",
            "conv",
            "tfilm",
        ] {
            assert!(table.contains(term), "{term} missing:\n{table}");
        }
        let json: serde_json::Value = serde_json::from_str(&c.to_json()).unwrap();
        assert_eq!(json["stages"][0]["stage"], "conv");
        assert_eq!(json["arch"], "x86_64");
    }

    #[test]
    fn other_hourly_charges_are_fixed_costs() {
        let mut input = paper_input();
        input.hours = 2.0;
        let base = FullCost::compute(&Pricing::default(), &input).unwrap();
        input.other_hourly_usd = 0.03;
        let c = FullCost::compute(&Pricing::default(), &input).unwrap();
        assert!((c.other_usd - 0.06).abs() < 1e-12);
        assert!((c.total_usd - base.total_usd - 0.06).abs() < 1e-12);
        assert!((c.fixed_usd_per_hour() - base.fixed_usd_per_hour() - 0.03).abs() < 1e-12);
        // They grow with time, not with load.
        assert_eq!(
            c.variable_cost_per_query_usd(),
            base.variable_cost_per_query_usd()
        );
        assert!(c.render().contains("Other hourly"));
        input.other_hourly_usd = -1.0;
        let err = FullCost::compute(&Pricing::default(), &input)
            .unwrap_err()
            .to_string();
        assert!(err.contains("other_hourly_usd"), "{err}");
    }

    #[test]
    fn bad_input_is_refused_by_field() {
        let mut input = paper_input();
        input.stages[0].cold_start_fraction = 1.5;
        let err = FullCost::compute(&Pricing::default(), &input)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("stages[0] (paper).cold_start_fraction"),
            "{err}"
        );
        let mut input = paper_input();
        input.hours = -1.0;
        let err = FullCost::compute(&Pricing::default(), &input)
            .unwrap_err()
            .to_string();
        assert!(err.contains("hours"), "{err}");
        let c = FullCost::compute(&Pricing::default(), &paper_input()).unwrap();
        assert!(c.break_even_utilisation(0.9, 0.0).is_err());
    }

    #[test]
    fn input_reads_from_json_and_refuses_unknown_fields() {
        let json = serde_json::to_string(&paper_input()).unwrap();
        let back: FullCostInput = serde_json::from_str(&json).unwrap();
        assert_eq!(back, paper_input());
        let bad = json.replacen("\"hours\"", "\"hourz\"", 1);
        let err = serde_json::from_str::<FullCostInput>(&bad)
            .unwrap_err()
            .to_string();
        assert!(err.contains("hourz"), "{err}");
    }
}
