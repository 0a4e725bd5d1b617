//! `seqless simulate`: the discrete-event simulator of docs/simulator.md, serverless
//! functions against a fleet of instances on one seeded trace, with an optional load
//! sweep, the report files and the plots.

use seqless_cost::format_count as thousands;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use seqless_model::{CONFIG_FILE, ModelConfig};
use seqless_plan::{Limits, Plan, PlanKind, Splits, StageOp, plan};
use seqless_sim::{
    ArrivalProcess, Invocation, LengthDistribution, LoadLevel, Phase, QueryShape, ShapeError,
    ShapeModel, SimConfig, SimReport, Sweep, SyntheticShape,
};

use crate::cli::SimulateArgs;

const F32: u64 = 4;
/// Bytes per token id of the stored input (`Plan::stored_bytes` counts 2 per row).
const TOKEN_BYTES: u64 = 2;

/// The real planner as the simulator's [`ShapeModel`], so a simulation runs the stage
/// graph `seqless classify --mode serverless` would run for the same model and flags.
///
/// Each plan phase becomes one sim [`Phase`] with one [`Invocation`] per stage:
/// - `kind` is `stage.kind.as_str()` (`conv`, `tfilm`, `head`, `classifier`), which must
///   have a calibration entry;
/// - `rows` is the work the calibration is per-row for, as in [`SyntheticShape`]: for a
///   conv stage the input rows it covers (its output rows × the layer's pool), for
///   `tfilm` and `head` the layer's blocks (LSTM steps), for `classifier` the rows of the
///   last activation;
/// - `bytes_out` is `stage.write_bytes`;
/// - `bytes_in` is estimated from the keys the stage reads: a conv stage reads its input
///   rows, halos included (2 bytes per token id on layer 0, `C_{l-1}` f32s per row
///   after), plus the FiLM blocks it applies; serial stages read whole keys, whose sizes
///   are those their writers wrote. Tensor headers are ignored;
/// - `memory_mb` is the one function memory size (`--memory-mb`), which is also the
///   plan's memory bound.
#[derive(Debug, Clone)]
pub struct PlanShape {
    /// The model's `config.json`.
    pub config: ModelConfig,
    /// Which stage graph.
    pub kind: PlanKind,
    /// Conv functions per layer.
    pub splits: Splits,
    /// Memory bound and split limits.
    pub limits: Limits,
}

impl PlanShape {
    /// Translates one plan into a query shape (see the type's documentation).
    pub fn shape_of_plan(&self, plan: &Plan) -> QueryShape {
        let memory_mb = self.limits.function_memory_mb;
        let mut key_bytes: HashMap<&str, u64> = HashMap::new();
        let mut phases = Vec::with_capacity(plan.phases.len());
        for stages in &plan.phases {
            let mut invocations = Vec::with_capacity(stages.len());
            for stage in stages {
                let layer = &plan.layers[stage.layer];
                let read = |keys: &[String], sizes: &HashMap<&str, u64>| -> u64 {
                    keys.iter()
                        .map(|k| sizes.get(k.as_str()).copied().unwrap_or(0))
                        .sum()
                };
                let (rows, bytes_in) = match &stage.op {
                    StageOp::Conv {
                        input,
                        film,
                        out_rows,
                        ..
                    } => {
                        let row_bytes = if stage.layer == 0 {
                            TOKEN_BYTES
                        } else {
                            self.config.in_channels(stage.layer) as u64 * F32
                        };
                        let rows_read: usize = input.iter().map(|s| s.rows.len()).sum();
                        let film_bytes = film.as_ref().map_or(0, |f| {
                            f.blocks.len() as u64
                                * self.config.in_channels(stage.layer) as u64
                                * F32
                        });
                        let pool = self.config.layers[stage.layer].pool;
                        (
                            out_rows.len() * pool,
                            rows_read as u64 * row_bytes + film_bytes,
                        )
                    }
                    StageOp::Tfilm { block_max, .. } => (layer.blocks, read(block_max, &key_bytes)),
                    StageOp::Head {
                        block_max,
                        block_min,
                    } => (
                        layer.blocks,
                        read(block_max, &key_bytes) + read(block_min, &key_bytes),
                    ),
                    StageOp::PaperTfilm { activations, .. } => {
                        (layer.blocks, read(activations, &key_bytes))
                    }
                    StageOp::Classifier { activation } => (
                        layer.rows,
                        read(std::slice::from_ref(activation), &key_bytes),
                    ),
                };
                invocations.push(Invocation {
                    kind: stage.kind.as_str().to_string(),
                    rows,
                    bytes_in,
                    bytes_out: stage.write_bytes,
                    memory_mb,
                });
            }
            // Record what this phase wrote, for the phases that read it.
            for stage in stages {
                let c = self.config.layers[stage.layer].channels as u64;
                match &stage.op {
                    StageOp::Conv {
                        out_rows,
                        write_activation,
                        write_max,
                        write_min,
                        ..
                    } => {
                        let blocks =
                            (out_rows.len() / self.config.layers[stage.layer].block_len) as u64;
                        if let Some(k) = write_activation {
                            key_bytes.insert(k, out_rows.len() as u64 * c * F32);
                        }
                        for k in [write_max, write_min].into_iter().flatten() {
                            key_bytes.insert(k, blocks * c * F32);
                        }
                    }
                    StageOp::Tfilm { write_h: k, .. } | StageOp::PaperTfilm { write_x: k, .. } => {
                        key_bytes.insert(k, stage.write_bytes);
                    }
                    StageOp::Head { .. } | StageOp::Classifier { .. } => {}
                }
            }
            phases.push(Phase { invocations });
        }
        QueryShape { phases }
    }
}

impl ShapeModel for PlanShape {
    fn shape(&self, input_len: usize) -> Result<QueryShape, ShapeError> {
        let plan = plan(
            &self.config,
            input_len,
            self.kind,
            self.splits,
            &self.limits,
        )
        .map_err(|e| ShapeError(e.to_string()))?;
        Ok(self.shape_of_plan(&plan))
    }
}

/// Loads a model's `config.json` from a model directory (or the file itself).
pub fn load_model_config(path: &Path) -> Result<ModelConfig> {
    let file = if path.is_dir() {
        path.join(CONFIG_FILE)
    } else {
        path.to_path_buf()
    };
    ModelConfig::load(&file).with_context(|| format!("loading model config {}", file.display()))
}

/// The arrival process's mean rate, q/s, where it has one.
fn mean_rate(arrivals: &ArrivalProcess) -> Option<f64> {
    match arrivals {
        ArrivalProcess::Constant { rate_qps } | ArrivalProcess::Poisson { rate_qps } => {
            Some(*rate_qps)
        }
        ArrivalProcess::Bursty {
            on_rate_qps,
            off_rate_qps,
            on_s,
            off_s,
        } => Some((on_rate_qps * on_s + off_rate_qps * off_s) / (on_s + off_s)),
        ArrivalProcess::Diurnal { mean_rate_qps, .. } => Some(*mean_rate_qps),
        ArrivalProcess::File { .. } | ArrivalProcess::ClosedLoop { .. } => None,
    }
}

/// Parses `--arrivals`: a JSON [`ArrivalProcess`], or the bare kind `constant` or
/// `poisson` at `rate` (from `--rate`, else the configured process's mean rate).
fn parse_arrivals(
    spec: &str,
    current: &ArrivalProcess,
    rate: Option<f64>,
) -> Result<ArrivalProcess> {
    let spec = spec.trim();
    if spec.starts_with('{') {
        return serde_json::from_str(spec).with_context(|| {
            format!("--arrivals {spec}: not an arrival process (see docs/simulator.md, Workload)")
        });
    }
    let rate = rate.or_else(|| mean_rate(current)).with_context(|| {
        format!("--arrivals {spec} needs --rate: the configured arrivals have no mean rate")
    })?;
    Ok(match spec {
        "constant" => ArrivalProcess::Constant { rate_qps: rate },
        "poisson" => ArrivalProcess::Poisson { rate_qps: rate },
        other => bail!(
            "--arrivals {other:?}: expected constant, poisson, or a JSON object such as \
             '{{\"kind\":\"bursty\",\"on_rate_qps\":500,\"off_rate_qps\":0,\"on_s\":5,\"off_s\":25}}'"
        ),
    })
}

/// The configuration the flags describe: `--config` (or the defaults) with every given
/// flag applied on top.
pub fn build_config(args: &SimulateArgs) -> Result<SimConfig> {
    let mut config = match &args.config {
        Some(path) => SimConfig::load(path)
            .with_context(|| format!("loading simulation config {}", path.display()))?,
        None => SimConfig::default(),
    };
    if let Some(seed) = args.seed {
        config.seed = seed;
    }
    if let Some(d) = args.duration_s {
        config.duration_s = d;
    }
    if let Some(d) = args.drain_s {
        config.drain_s = d;
    }
    if let Some(spec) = &args.arrivals {
        config.arrivals = parse_arrivals(spec, &config.arrivals, args.rate)?;
    } else if let Some(rate) = args.rate {
        config.arrivals = config.arrivals.with_rate(rate).context("--rate")?;
    }
    if let Some(spec) = &args.lengths {
        config.lengths = serde_json::from_str::<LengthDistribution>(spec).with_context(|| {
            format!("--lengths {spec}: not a length distribution (see docs/simulator.md)")
        })?;
    }
    if let Some(bytes) = args.length_bytes {
        config.lengths = LengthDistribution::Fixed { bytes };
    }
    if let Some(n) = args.instances {
        config.instances.count = n;
    }
    if let Some(path) = &args.pricing {
        config.pricing = super::cost::load_pricing(Some(path))?;
    }
    if let Some(path) = &args.calibration {
        config.calibration = seqless_sim::Calibration::load(path)
            .with_context(|| format!("loading calibration {}", path.display()))?;
    }
    Ok(config)
}

/// The shape model the flags select: the real planner over `--model`, a
/// [`SyntheticShape`] from `--shape FILE`, or the default synthetic shape. With a model,
/// `config.max_len` is lowered to the model's so no sampled query is refused.
fn shape_model(
    args: &SimulateArgs,
    config: &mut SimConfig,
) -> Result<(Box<dyn ShapeModel>, String)> {
    if let Some(dir) = &args.model {
        let model = load_model_config(dir)?;
        config.max_len = config.max_len.min(model.max_len);
        let limits = args.plan.limits()?;
        let plan_name = match args.plan.plan {
            PlanKind::Fused => "fused",
            PlanKind::Paper => "paper",
        };
        let label = format!(
            "the {plan_name} plan of {} at {} MB",
            dir.display(),
            args.plan.memory_mb
        );
        let shape = PlanShape {
            config: model,
            kind: args.plan.plan,
            splits: args.plan.splits,
            limits,
        };
        return Ok((Box::new(shape), label));
    }
    if let Some(path) = &args.shape {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading shape {}", path.display()))?;
        let shape: SyntheticShape = serde_json::from_str(&text).with_context(|| {
            format!(
                "shape {} is not a SyntheticShape (see docs/simulator.md)",
                path.display()
            )
        })?;
        return Ok((
            Box::new(shape),
            format!("the synthetic shape in {}", path.display()),
        ));
    }
    Ok((
        Box::new(SyntheticShape::default()),
        "the default synthetic shape".into(),
    ))
}

fn describe_arrivals(a: &ArrivalProcess) -> String {
    match a {
        ArrivalProcess::Constant { rate_qps } => format!("constant arrivals at {rate_qps} q/s"),
        ArrivalProcess::Poisson { rate_qps } => format!("poisson arrivals at {rate_qps} q/s"),
        ArrivalProcess::Bursty { .. } | ArrivalProcess::Diurnal { .. } => format!(
            "{} arrivals averaging {:.1} q/s",
            if matches!(a, ArrivalProcess::Bursty { .. }) {
                "bursty"
            } else {
                "diurnal"
            },
            mean_rate(a).unwrap_or(0.0)
        ),
        ArrivalProcess::File { path } => format!("arrivals from {}", path.display()),
        ArrivalProcess::ClosedLoop { clients, think_s } => {
            format!("{clients} closed-loop clients thinking {think_s} s")
        }
    }
}

/// The human summary of one run.
pub fn render_report(r: &SimReport, shape: &str) -> String {
    let c = &r.config;
    let (s, i) = (&r.serverless.stats, &r.instances.stats);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Simulated {} s of {} (seed {}), {} queries; query shapes from {shape}",
        c.duration_s,
        describe_arrivals(&c.arrivals),
        c.seed,
        thousands(s.arrived)
    );
    let fleet = format!("{} x {}", r.instances.instances, r.instances.instance_type);
    let _ = writeln!(out, "{:<24} {:>16} {:>16}", "", "serverless", fleet);
    let row = |out: &mut String, name: &str, a: String, b: String| {
        let _ = writeln!(out, "{name:<24} {a:>16} {b:>16}");
    };
    row(
        &mut out,
        "throughput (q/s)",
        format!("{:.2}", s.throughput_qps),
        format!("{:.2}", i.throughput_qps),
    );
    row(
        &mut out,
        "completed",
        thousands(s.completed),
        thousands(i.completed),
    );
    row(
        &mut out,
        "p50 latency (ms)",
        format!("{:.1}", s.latency.p50_ms),
        format!("{:.1}", i.latency.p50_ms),
    );
    row(
        &mut out,
        "p99 latency (ms)",
        format!("{:.1}", s.latency.p99_ms),
        format!("{:.1}", i.latency.p99_ms),
    );
    row(
        &mut out,
        "cold starts",
        thousands(r.serverless.cold_starts),
        "-".into(),
    );
    row(
        &mut out,
        "invocations",
        thousands(r.serverless.invocations),
        "-".into(),
    );
    row(
        &mut out,
        "utilisation",
        "-".into(),
        format!("{:.1}%", r.instances.utilisation * 100.0),
    );
    row(
        &mut out,
        "cost (USD)",
        format!("{:.6}", s.cost_usd),
        format!("{:.6}", i.cost_usd),
    );
    row(
        &mut out,
        "cost per query (USD)",
        format!("{:.9}", s.cost_per_query_usd),
        format!("{:.9}", i.cost_per_query_usd),
    );
    row(
        &mut out,
        "cost per 1M queries",
        format!("{:.2}", s.cost_per_query_usd * 1e6),
        format!("{:.2}", i.cost_per_query_usd * 1e6),
    );
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

/// The human summary of a sweep, one row per load level.
pub fn render_sweep(sweep: &Sweep) -> String {
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

/// Writes `contents` to `dir/name`, naming the file in any error; returns the path.
fn write(dir: &Path, name: &str, contents: &str) -> Result<PathBuf> {
    let path = dir.join(name);
    std::fs::write(&path, contents).with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

/// Writes the report, CSVs and plots into `dir`; returns what was written.
fn write_outputs(dir: &Path, report: &SimReport, sweep: Option<&Sweep>) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)
        .with_context(|| format!("creating output directory {}", dir.display()))?;
    let mut written = vec![
        write(dir, "report.json", &(report.to_json() + "\n"))?,
        write(dir, "timeline.csv", &report.timeline_csv())?,
        write(dir, "queries.csv", &report.queries_csv())?,
    ];
    let plot = |name: &str,
                draw: &dyn Fn(&Path) -> Result<(), seqless_sim::SimError>|
     -> Result<PathBuf> {
        let path = dir.join(name);
        draw(&path).with_context(|| format!("plotting {}", path.display()))?;
        Ok(path)
    };
    written.push(plot("cost_vs_utilisation.svg", &|p| {
        seqless_sim::plot::cost_vs_utilisation(report, p)
    })?);
    written.push(plot("timeline.svg", &|p| {
        seqless_sim::plot::timeline(report, p)
    })?);
    if let Some(sweep) = sweep {
        written.push(write(dir, "sweep.json", &(sweep.to_json() + "\n"))?);
        written.push(write(dir, "sweep.csv", &sweep.to_csv())?);
        for name in ["throughput_vs_load.svg", "throughput_vs_load.png"] {
            written.push(plot(name, &|p| {
                seqless_sim::plot::throughput_vs_load(sweep, p)
            })?);
        }
        written.push(plot("latency_vs_load.svg", &|p| {
            seqless_sim::plot::latency_vs_load(sweep, p)
        })?);
    }
    Ok(written)
}

/// Runs `seqless simulate`.
pub fn run(args: SimulateArgs) -> Result<()> {
    let mut config = build_config(&args)?;
    let (shape, shape_label) = shape_model(&args, &mut config)?;
    let report = seqless_sim::run(&config, shape.as_ref()).context("simulating")?;
    let levels: Vec<LoadLevel> = if !args.sweep.is_empty() {
        args.sweep.iter().map(|&r| LoadLevel::Rate(r)).collect()
    } else {
        args.sweep_clients
            .iter()
            .map(|&n| LoadLevel::Concurrency(n))
            .collect()
    };
    let sweep = if levels.is_empty() {
        None
    } else {
        Some(seqless_sim::sweep(&config, shape.as_ref(), &levels).context("sweeping load")?)
    };
    let written = match &args.out {
        Some(dir) => write_outputs(dir, &report, sweep.as_ref())?,
        None => Vec::new(),
    };
    if args.json {
        println!("{}", report.to_json());
        return Ok(());
    }
    print!("{}", render_report(&report, &shape_label));
    if let Some(sweep) = &sweep {
        print!("{}", render_sweep(sweep));
    }
    if !written.is_empty() {
        println!("\nwrote:");
        for path in written {
            println!("  {}", path.display());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> ModelConfig {
        serde_json::from_str(
            r#"{"format":"seqless-tfilm/1","tokenizer":"bytes","vocab_size":257,"embed_dim":4,
            "layers":[{"channels":8,"kernel":3,"pool":2,"block_len":4},
                      {"channels":6,"kernel":3,"pool":2,"block_len":4}],
            "modulation":"scale","gate_activation":"sigmoid","labels":["a","b"],"max_len":100000}"#,
        )
        .unwrap()
    }

    fn shape(kind: PlanKind) -> PlanShape {
        PlanShape {
            config: config(),
            kind,
            splits: Splits::Fixed(4),
            limits: Limits {
                function_memory_mb: 1769,
                ..Limits::default()
            },
        }
    }

    #[test]
    fn plan_phases_map_to_sim_phases_with_consistent_bytes() {
        for kind in [PlanKind::Fused, PlanKind::Paper] {
            let model = shape(kind);
            let p = plan(&model.config, 10_000, kind, model.splits, &model.limits).unwrap();
            let s = model.shape(10_000).unwrap();
            assert_eq!(s.phases.len(), p.phases.len());
            for (sim, stages) in s.phases.iter().zip(&p.phases) {
                assert_eq!(sim.invocations.len(), stages.len());
                for (inv, stage) in sim.invocations.iter().zip(stages) {
                    assert_eq!(inv.kind, stage.kind.as_str());
                    assert_eq!(inv.bytes_out, stage.write_bytes);
                    assert_eq!(inv.memory_mb, 1769);
                    assert!(inv.rows > 0 && inv.bytes_in > 0, "{kind:?} {inv:?}");
                }
            }
            // Layer 0's convs read at least every token id once (halos add a little).
            let first: u64 = s.phases[0].invocations.iter().map(|i| i.bytes_in).sum();
            assert!(first >= 2 * p.padded_len as u64, "{first}");
            let rows: usize = s.phases[0].invocations.iter().map(|i| i.rows).sum();
            assert_eq!(rows, p.padded_len);
            // Everything written is read by a later stage, except in the last phase.
            let written: u64 = s
                .phases
                .iter()
                .flat_map(|ph| &ph.invocations)
                .map(|i| i.bytes_out)
                .sum();
            let read_by_serial: u64 = s
                .phases
                .iter()
                .flat_map(|ph| &ph.invocations)
                .filter(|i| i.kind != "conv")
                .map(|i| i.bytes_in)
                .sum();
            assert!(
                read_by_serial > 0 && read_by_serial <= written,
                "{read_by_serial} {written}"
            );
        }
        let err = shape(PlanKind::Fused).shape(100_001).unwrap_err();
        assert!(!err.0.is_empty());
    }
}
