//! The simulator's command lines (the `clap` feature): a simulation (a configuration file
//! with flags on top, the shape model, the compared fleet and the sweeps) and a planner
//! search. The flags live beside the configuration they change, so a new field and its
//! flag are checked together.

use std::path::PathBuf;

use clap::Args;
use seqless_cost::{Arch, Pricing};
use seqless_model::ModelConfig;
use seqless_plan::{PlanArgs, PlanKind, Transfer};
use seqless_wire::lambda::parse_memory_mb;

use crate::planner::{CalibratedChooser, Candidate, Objective, SearchSpace, pick, search};
use crate::{
    Calibration, InstanceBaseline, InstanceConfig, LengthDistribution, LoadLevel, PlanShape,
    ShapeModel, SimConfig, SimError, SimReport, SizeSweep, Sweep, SyntheticShape,
};

/// `seqless simulate`'s flags.
#[derive(Debug, Args)]
pub struct SimulateArgs {
    /// A SimConfig JSON (docs/simulator.md); missing fields take their defaults.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Seed of every random choice (overrides the config's).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Length of the arrival window, seconds.
    #[arg(long)]
    pub duration_s: Option<f64>,
    /// Time after the window for queries in flight to finish, seconds.
    #[arg(long)]
    pub drain_s: Option<f64>,
    /// Arrival process: constant or poisson (at --rate), or JSON such as
    /// '{"kind":"bursty","on_rate_qps":500,"off_rate_qps":0,"on_s":5,"off_s":25}'.
    #[arg(long)]
    pub arrivals: Option<String>,
    /// Mean arrival rate, q/s (rescales the configured process, keeping its shape).
    #[arg(long)]
    pub rate: Option<f64>,
    /// Length distribution as JSON, such as '{"kind":"log_normal","median_bytes":4096,"sigma":1}'.
    #[arg(long)]
    pub lengths: Option<String>,
    /// Every query this many bytes long.
    #[arg(long, conflicts_with = "lengths")]
    pub length_bytes: Option<usize>,
    /// Number of instances in the compared fleet.
    #[arg(long)]
    pub instances: Option<u32>,
    /// A pricing TOML overriding the config's prices.
    #[arg(long)]
    pub pricing: Option<PathBuf>,
    /// Cache nodes of the store (`serverless.cache_nodes`); 0 when every value travels
    /// inline.
    #[arg(long)]
    pub cache_nodes: Option<u32>,
    /// How the functions' values move (with --model): store, or inline, where the values
    /// the coordinator would send in the invocations take no store traffic.
    #[arg(long, value_enum, default_value = "store", requires = "model")]
    pub transfer: Transfer,
    /// Cross-query batching in the functions: up to this many queries' stages in one
    /// invocation (`serverless.batching.max`; 1: off), as `serve --batch-max` does.
    #[arg(long)]
    pub batch_max: Option<u32>,
    /// The longest a stage waits for company in a batch, ms (`serverless.batching.wait_ms`).
    #[arg(long)]
    pub batch_wait_ms: Option<f64>,
    /// Also run at these arrival rates, q/s, comma-separated (throughput-vs-load).
    #[arg(long, value_delimiter = ',')]
    pub sweep: Vec<f64>,
    /// Also run with these numbers of closed-loop clients, comma-separated.
    #[arg(long, value_delimiter = ',', conflicts_with = "sweep")]
    pub sweep_clients: Vec<u32>,
    /// Directory for report.json, timeline.csv, queries.csv, sweep.json/.csv and the plots.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Print the report JSON instead of the summary.
    #[arg(long)]
    pub json: bool,
    /// Query shapes from this SyntheticShape JSON instead of the default synthetic model.
    #[arg(long, conflicts_with = "model")]
    pub shape: Option<PathBuf>,
    /// A calibration JSON (from `seqless bench calibrate`) replacing the config's.
    #[arg(long)]
    pub calibration: Option<PathBuf>,
    /// Query shapes from the real planner over this model directory (or config.json).
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// The instance fleet compared (docs/simulator.md, "Instance baselines"):
    /// `gpu-roofline` (the default with --model; an upper bound for a p2.xlarge),
    /// `cpu-measured` (this machine's `seqless serve` throughput scaled to a c5.xlarge), or
    /// `config` (the --config file's `instances`, the default without --model).
    #[arg(long, value_parser = ["gpu-roofline", "cpu-measured", "config"])]
    pub instance: Option<String>,
    /// Also run at each of these input lengths, bytes, comma-separated, at the configured
    /// load (bytes classified per second against input size), serverless against both
    /// derived baselines. Needs --model.
    #[arg(long, value_delimiter = ',')]
    pub sweep_bytes: Vec<usize>,
    /// With --model: the stage graph.
    #[command(flatten)]
    pub plan: PlanArgs,
}

/// What one `seqless simulate` computed: the run at the configured load, and the sweeps
/// the flags asked for.
#[derive(Debug)]
pub struct Simulated {
    /// The run at the configured load.
    pub report: SimReport,
    /// The same at other loads (`--sweep`, `--sweep-clients`).
    pub sweep: Option<Sweep>,
    /// The same at other input lengths (`--sweep-bytes`).
    pub sizes: Option<SizeSweep>,
    /// Which shape model served the queries, in words.
    pub shape_label: String,
}

impl SimulateArgs {
    /// Runs the simulation the flags describe, refusing contradictory flags before any work.
    pub fn simulate(&self) -> Result<Simulated, SimError> {
        let mut config = self.config()?;
        let model = self
            .model
            .as_deref()
            .map(ModelConfig::load_from)
            .transpose()?;
        let (shape, shape_label) = self.shape_model(model.as_ref(), &mut config)?;
        if let Some(fleet) = self.fleet(model.as_ref(), config.instances.count)? {
            config.instances = fleet;
        }
        if !self.sweep_bytes.is_empty() && model.is_none() {
            return Err(flag(
                "--sweep-bytes needs --model: its fleets are derived from the model",
            ));
        }
        if let Some(&bad) = self
            .sweep_bytes
            .iter()
            .find(|&&b| b == 0 || b > config.max_len)
        {
            return Err(flag(format!(
                "--sweep-bytes {bad}: every length must be 1 to the model's max_len ({})",
                config.max_len
            )));
        }
        config.validate()?;
        let report = crate::run(&config, shape.as_ref())?;
        let levels: Vec<LoadLevel> = if !self.sweep.is_empty() {
            self.sweep.iter().map(|&r| LoadLevel::Rate(r)).collect()
        } else {
            self.sweep_clients
                .iter()
                .map(|&n| LoadLevel::Concurrency(n))
                .collect()
        };
        let sweep = if levels.is_empty() {
            None
        } else {
            let mut sweep = crate::sweep(&config, shape.as_ref(), &levels)?;
            sweep.context = format!("{shape_label}; {}", sweep.context);
            Some(sweep)
        };
        let sizes = match &model {
            Some(model) if !self.sweep_bytes.is_empty() => {
                let fleets = InstanceBaseline::ALL
                    .into_iter()
                    .map(|b| {
                        let mut fleet = b.derive(model)?;
                        fleet.count = config.instances.count;
                        Ok((b.name().replace('-', "_"), fleet))
                    })
                    .collect::<Result<Vec<_>, SimError>>()?;
                let mut sizes =
                    crate::size_sweep(&config, shape.as_ref(), &fleets, &self.sweep_bytes)?;
                sizes.context = format!("{shape_label}; {}", sizes.context);
                Some(sizes)
            }
            _ => None,
        };
        Ok(Simulated {
            report,
            sweep,
            sizes,
            shape_label,
        })
    }

    /// The configuration the flags describe: `--config` (or the defaults) with every given
    /// flag applied on top.
    pub fn config(&self) -> Result<SimConfig, SimError> {
        let mut config = match &self.config {
            Some(path) => SimConfig::load(path)?,
            None => SimConfig::default(),
        };
        if let Some(seed) = self.seed {
            config.seed = seed;
        }
        if let Some(d) = self.duration_s {
            config.duration_s = d;
        }
        if let Some(d) = self.drain_s {
            config.drain_s = d;
        }
        if let Some(spec) = &self.arrivals {
            config.arrivals = config.arrivals.with_spec(spec, self.rate)?;
        } else if let Some(rate) = self.rate {
            config.arrivals = config.arrivals.with_rate(rate)?;
        }
        if let Some(spec) = &self.lengths {
            config.lengths = serde_json::from_str::<LengthDistribution>(spec).map_err(|e| {
                flag(format!(
                    "--lengths {spec}: not a length distribution (see docs/simulator.md): {e}"
                ))
            })?;
        }
        if let Some(bytes) = self.length_bytes {
            config.lengths = LengthDistribution::Fixed { bytes };
        }
        if let Some(n) = self.instances {
            config.instances.count = n;
        }
        if let Some(n) = self.cache_nodes {
            config.serverless.cache_nodes = n;
        }
        if let Some(max) = self.batch_max {
            config.serverless.batching.max = max;
        }
        if let Some(ms) = self.batch_wait_ms {
            config.serverless.batching.wait_ms = ms;
        }
        if let Some(path) = &self.pricing {
            config.pricing = seqless_cost::Pricing::load(path)?;
        }
        if let Some(path) = &self.calibration {
            config.calibration = Calibration::load(path)?;
        }
        Ok(config)
    }

    /// The fleet `--instance` selects for `model` (`None`: keep the config's), with the
    /// fleet size of `count`.
    fn fleet(
        &self,
        model: Option<&ModelConfig>,
        count: u32,
    ) -> Result<Option<InstanceConfig>, SimError> {
        let baseline = match (self.instance.as_deref(), model) {
            (Some("config"), _) | (None, None) => return Ok(None),
            (Some(name), None) => {
                return Err(flag(format!(
                    "--instance {name} needs --model: the baselines are derived from the model"
                )));
            }
            (Some(name), Some(_)) => name.parse()?,
            (None, Some(_)) => InstanceBaseline::GpuRoofline,
        };
        let model = model.expect("a baseline is only chosen with a model");
        let mut fleet = baseline.derive(model)?;
        fleet.count = count;
        Ok(Some(fleet))
    }

    /// The shape model the flags select, and its name in words: the real planner over
    /// `--model`, a [`SyntheticShape`] from `--shape FILE`, or the default synthetic shape.
    /// With a model, `config.max_len` is lowered to the model's so no sampled query is
    /// refused.
    fn shape_model(
        &self,
        model: Option<&ModelConfig>,
        config: &mut SimConfig,
    ) -> Result<(Box<dyn ShapeModel>, String), SimError> {
        if let (Some(dir), Some(model)) = (&self.model, model) {
            config.max_len = config.max_len.min(model.max_len);
            let label = format!(
                "the {} plan of {} at {} MB",
                self.plan.plan.as_str(),
                dir.display(),
                self.plan.memory_mb
            );
            let shape = PlanShape {
                config: model.clone(),
                kind: self.plan.plan,
                splits: self.plan.splits,
                limits: self.plan.limits()?,
                transfer: self.transfer,
            };
            return Ok((Box::new(shape), label));
        }
        let Some(path) = &self.shape else {
            return Ok((
                Box::new(SyntheticShape::default()),
                "the default synthetic shape".into(),
            ));
        };
        let text = std::fs::read_to_string(path).map_err(|cause| SimError::Io {
            path: path.clone(),
            cause,
        })?;
        let shape: SyntheticShape =
            serde_json::from_str(&text).map_err(|cause| SimError::Json {
                origin: format!(
                    "shape {} (a SyntheticShape, see docs/simulator.md)",
                    path.display()
                ),
                cause,
            })?;
        Ok((
            Box::new(shape),
            format!("the synthetic shape in {}", path.display()),
        ))
    }
}

/// `seqless plan`'s flags.
#[derive(Debug, Args)]
pub struct PlannerArgs {
    /// Model directory (or its config.json); only the config is read.
    #[arg(long)]
    pub model: PathBuf,
    /// Query length in bytes.
    #[arg(long)]
    pub bytes: usize,
    /// A calibration from `seqless bench calibrate` (default: the simulator's placeholders).
    #[arg(long)]
    pub calibration: Option<PathBuf>,
    /// Latency bound, ms: only configurations predicted within it are picked.
    #[arg(long)]
    pub slo_ms: Option<f64>,
    /// What the pick minimises within the SLO.
    #[arg(long, value_enum, default_value = "cost")]
    pub objective: Objective,
    /// Plans to consider, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "fused,paper,resident")]
    pub plans: Vec<PlanKind>,
    /// Split counts to consider, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,2,4,8")]
    pub splits: Vec<usize>,
    /// Function memory sizes to consider, MB, comma-separated (128 to 10,240).
    #[arg(long, value_delimiter = ',', default_value = "1024,1769,3538", value_parser = parse_memory_mb)]
    pub memory_mb: Vec<u32>,
    /// The functions share this many cores (a local platform on one machine); by default
    /// each has its own, as on Lambda.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    pub host_cores: Option<u32>,
    /// A pricing TOML overriding the default AWS prices.
    #[arg(long)]
    pub pricing: Option<PathBuf>,
    /// Function architecture for prices.
    #[arg(long, value_enum, default_value = "x86_64")]
    pub arch: Arch,
    /// Print JSON: every candidate and the pick.
    #[arg(long)]
    pub json: bool,
}

/// What one `seqless plan` found: every candidate, and the one picked.
#[derive(Debug)]
pub struct Planned {
    /// Every plan, split count and memory size tried, refused ones included.
    pub candidates: Vec<Candidate>,
    /// The pick; `None` when no candidate can run the query.
    pub pick: Option<Candidate>,
    /// The calibration the predictions used.
    pub calibration: Calibration,
}

impl PlannerArgs {
    /// Predicts every candidate the flags allow and picks one for the objective within
    /// the SLO; an SLO no candidate meets is an error naming the fastest.
    pub fn plan(&self) -> Result<Planned, SimError> {
        if self.bytes == 0 {
            return Err(flag("--bytes 0: a query has at least 1 byte"));
        }
        if let Some(slo) = self.slo_ms.filter(|s| !(s.is_finite() && *s > 0.0)) {
            return Err(flag(format!(
                "--slo-ms {slo}: give a positive number of milliseconds"
            )));
        }
        let config = ModelConfig::load_from(&self.model)?;
        config
            .check_input_len(self.bytes)
            .map_err(|e| flag(format!("--bytes {}: {e}", self.bytes)))?;
        let calibration = match &self.calibration {
            Some(path) => Calibration::load(path)?,
            None => Calibration::default(),
        };
        let pricing = Pricing::load_or_default(self.pricing.as_deref())?;
        let space = SearchSpace {
            plans: self.plans.clone(),
            splits: self.splits.clone(),
            memory_mb: self.memory_mb.clone(),
            host_cores: self.host_cores,
        };
        let candidates = search(
            &config,
            self.bytes,
            &calibration,
            &space,
            &pricing,
            self.arch,
        );
        let pick = pick(&candidates, self.objective, self.slo_ms)?.cloned();
        Ok(Planned {
            candidates,
            pick,
            calibration,
        })
    }
}

fn flag(reason: impl Into<String>) -> SimError {
    SimError::Flags(reason.into())
}

/// The planner choosing each served query's plan and split count (`classify` and `serve`
/// in serverless mode), instead of one `--plan` and `--splits` for every length.
#[derive(Debug, Clone, Default, Args)]
#[group(id = "chooser_args")]
pub struct ChooserArgs {
    /// Choose each query's plan and split count with the planner (as `seqless plan` does)
    /// from this calibration (`seqless bench calibrate`), for the query's length, instead
    /// of --plan and --splits.
    #[arg(long = "plan-calibration", conflicts_with_all = ["plan", "splits"])]
    pub calibration: Option<PathBuf>,
    /// The latency bound the pick must meet, ms; a query no plan meets runs the fastest.
    /// It also bounds how long a stage waits in a cross-query batch (`serve --batch-max`).
    #[arg(long = "plan-slo-ms")]
    pub slo_ms: Option<f64>,
    /// What the pick minimises within the SLO: cost (the default) or latency.
    #[arg(long = "plan-objective", value_enum)]
    pub objective: Option<Objective>,
}

impl ChooserArgs {
    /// The planner the flags ask for, over functions of `memory_mb` (which a query cannot
    /// change), or `None` without `--plan-calibration`; a bad SLO or calibration is refused.
    pub fn chooser(
        &self,
        config: &ModelConfig,
        memory_mb: u32,
        pricing: &Pricing,
        arch: Arch,
    ) -> Result<Option<CalibratedChooser>, SimError> {
        if let Some(slo) = self.slo_ms.filter(|s| !(s.is_finite() && *s > 0.0)) {
            return Err(flag(format!(
                "--plan-slo-ms {slo}: give a positive number of milliseconds"
            )));
        }
        let Some(path) = &self.calibration else {
            return Ok(None);
        };
        Ok(Some(CalibratedChooser {
            config: config.clone(),
            calibration: Calibration::load(path)?,
            space: SearchSpace {
                memory_mb: vec![memory_mb],
                ..SearchSpace::default()
            },
            objective: self.objective.unwrap_or(Objective::Cost),
            slo_ms: self.slo_ms,
            pricing: pricing.clone(),
            arch,
        }))
    }
}
