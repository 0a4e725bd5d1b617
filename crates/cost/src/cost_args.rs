//! The full cost model as a command line gives it (the `clap` feature): per-stage usage
//! from a trace or by hand, the period, the hourly nodes by name and the instance compared.
//! The flags live beside [`FullCostInput`], so a new input and its flag are checked
//! together.

use std::path::PathBuf;

use clap::Args;

use crate::{
    Arch, Comparison, CostError, DEFAULT_INIT_MS, FullCost, FullCostInput, Pricing, StageUsage,
    UsageSummary,
};

/// `seqless cost`'s flags.
///
/// `--paper` reproduces fixed figures and takes only `--json`; every other flag belongs to
/// the full model (the `full_model` group) and is refused beside it.
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("full_model").multiple(true)))]
pub struct CostArgs {
    /// Reproduce the paper's arithmetic exactly ($3.944 serverless against $0.9), term by term.
    #[arg(long, conflicts_with = "full_model")]
    pub paper: bool,
    /// Print JSON (the FullCost, plus a `comparison` with the instance; or the paper's terms).
    #[arg(long)]
    pub json: bool,
    /// Per-stage usage from a trace: the output of `seqless classify --mode serverless --json`
    /// (one or more queries, JSON lines or a JSON array).
    #[arg(long, group = "full_model")]
    pub trace: Option<PathBuf>,
    /// Per-stage usage by hand, NAME:INVOCATIONS_PER_QUERY:BILLED_MS:MEMORY_MB[:COLD_FRACTION];
    /// repeat for each stage.
    #[arg(long, group = "full_model", conflicts_with = "trace")]
    pub stage: Vec<String>,
    /// Queries served in the period.
    #[arg(long, group = "full_model", default_value_t = 1_000_000)]
    pub queries: u64,
    /// Length of the period, hours (the master and cache nodes are paid by the hour).
    #[arg(long, group = "full_model", default_value_t = 1.0)]
    pub hours: f64,
    /// Function architecture.
    #[arg(long, group = "full_model", value_enum, default_value = "x86_64")]
    pub arch: Arch,
    /// A pricing TOML overriding the embedded AWS prices.
    #[arg(long, group = "full_model")]
    pub pricing: Option<PathBuf>,
    /// ElastiCache node type (a key of the price list's [instances]).
    #[arg(long, group = "full_model", default_value = "cache.m5.large")]
    pub cache_node: String,
    /// Number of cache nodes.
    #[arg(long, group = "full_model", default_value_t = 1)]
    pub cache_nodes: u32,
    /// Instance type of the master (a key of the price list's [instances]).
    #[arg(long, group = "full_model", default_value = "paper-master")]
    pub master: String,
    /// Another hourly charge of the deployment, a key of the price list's [instances]
    /// times a count, such as vpc-interface-endpoint-az:2 (repeatable).
    #[arg(long, value_name = "NAME[:COUNT]")]
    pub hourly: Vec<String>,
    /// Billed INIT of one cold start, ms [default: the trace's mean, else 250].
    #[arg(long, group = "full_model")]
    pub init_ms: Option<u64>,
    /// Fraction of every stage's invocations that start cold [default: the trace's, or the
    /// --stage field].
    #[arg(long, group = "full_model")]
    pub cold_start_fraction: Option<f64>,
    /// Store bytes (reads + writes) per query [default: the trace's, else 0].
    #[arg(long, group = "full_model")]
    pub store_bytes_per_query: Option<u64>,
    /// Fraction of store traffic crossing Availability Zones (billed per GB).
    #[arg(long, group = "full_model", default_value_t = 0.0)]
    pub cross_az_fraction: f64,
    /// Instance to compare with (a key of the price list's [instances]).
    #[arg(long, group = "full_model", default_value = "p2.xlarge")]
    pub instance: String,
    /// Hourly price of that instance [default: its price in the price list].
    #[arg(long, group = "full_model")]
    pub instance_hourly: Option<f64>,
    /// Queries per second the instance serves at full use (the paper's p2.xlarge: 1,000).
    #[arg(long, group = "full_model", default_value_t = 1000.0)]
    pub instance_qps: f64,
}

impl CostArgs {
    /// The full model's inputs. `measured` is the summary of the `--trace` file, which the
    /// caller reads (traces belong to the coordinator); without a trace, the usage comes from
    /// the `--stage` flags.
    pub fn input(
        &self,
        pricing: &Pricing,
        measured: Option<&UsageSummary>,
    ) -> Result<FullCostInput, CostError> {
        let mut stages = match (measured, self.stage.is_empty()) {
            (Some(summary), true) => summary.stages.clone(),
            (None, false) => self
                .stage
                .iter()
                .map(|s| {
                    s.parse()
                        .map_err(|e| CostError::Flags(format!("--stage {e}")))
                })
                .collect::<Result<Vec<StageUsage>, _>>()?,
            (Some(_), false) => {
                return Err(CostError::Flags(
                    "give either --trace or --stage, not both".into(),
                ));
            }
            (None, true) => {
                return Err(CostError::Flags(
                    "the full cost model needs per-stage usage: --trace FILE (the output of \
                     `seqless classify --mode serverless --json`) or --stage \
                     NAME:INVOCATIONS:MS:MB[:COLD] (repeatable); or --paper for the paper's \
                     arithmetic"
                        .into(),
                ));
            }
        };
        if let Some(fraction) = self.cold_start_fraction {
            if !(fraction.is_finite() && (0.0..=1.0).contains(&fraction)) {
                return Err(CostError::Flags(format!(
                    "--cold-start-fraction is {fraction}; expected a number in [0, 1]"
                )));
            }
            for s in &mut stages {
                s.cold_start_fraction = fraction;
            }
        }
        Ok(FullCostInput {
            queries: self.queries,
            arch: self.arch,
            stages,
            init_ms: self
                .init_ms
                .or(measured.and_then(|m| m.init_ms))
                .unwrap_or(DEFAULT_INIT_MS),
            cache_nodes: self.cache_nodes,
            cache_node_hourly_usd: named("--cache-node", pricing.hourly(&self.cache_node))?,
            master_hourly_usd: named("--master", pricing.hourly(&self.master))?,
            hours: self.hours,
            store_bytes_per_query: self
                .store_bytes_per_query
                .or(measured.map(|m| m.store_bytes_per_query))
                .unwrap_or(0),
            cross_az_fraction: self.cross_az_fraction,
            other_hourly_usd: named("--hourly", pricing.hourly_charges(&self.hourly))?,
        })
    }

    /// `cost` against the `--instance` at its listed or `--instance-hourly` price.
    pub fn comparison(&self, pricing: &Pricing, cost: &FullCost) -> Result<Comparison, CostError> {
        let hourly_usd = match self.instance_hourly {
            Some(usd) => usd,
            None => named("--instance", pricing.hourly(&self.instance))?,
        };
        named(
            "break-even against --instance-hourly / --instance-qps",
            Comparison::new(cost, &self.instance, hourly_usd, self.instance_qps),
        )
    }
}

/// Names the flag whose value a pricing error is about.
fn named<T>(flag: &str, result: Result<T, CostError>) -> Result<T, CostError> {
    result.map_err(|cause| CostError::InFlag {
        flag: flag.into(),
        cause: Box::new(cause),
    })
}
