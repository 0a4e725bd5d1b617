//! `seqless simulate`: the discrete-event simulator of docs/simulator.md, serverless
//! functions against a fleet of instances on one seeded trace, with an optional load
//! sweep, the report files and the plots.

use std::path::Path;

use anyhow::{Context, Result};
use seqless_model::{CONFIG_FILE, ModelConfig};
use seqless_sim::{
    InstanceBaseline, InstanceConfig, LengthDistribution, LoadLevel, PlanShape, ShapeModel,
    SimConfig, SyntheticShape,
};

use crate::cli::SimulateArgs;
use crate::commands::usage;

/// Loads a model's `config.json` from a model directory (or the file itself).
pub fn load_model_config(path: &Path) -> Result<ModelConfig> {
    let file = if path.is_dir() {
        path.join(CONFIG_FILE)
    } else {
        path.to_path_buf()
    };
    ModelConfig::load(&file).with_context(|| format!("loading model config {}", file.display()))
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
        config.arrivals = config.arrivals.with_spec(spec, args.rate)?;
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
        config.pricing = seqless_cost::Pricing::load(path)?;
    }
    if let Some(path) = &args.calibration {
        config.calibration = seqless_sim::Calibration::load(path)
            .with_context(|| format!("loading calibration {}", path.display()))?;
    }
    Ok(config)
}

/// The fleet `--instance` selects for `model` (`None`: keep the config's), with the
/// fleet size of `count`.
fn baseline_fleet(
    args: &SimulateArgs,
    model: Option<&ModelConfig>,
    count: u32,
) -> Result<Option<InstanceConfig>> {
    let name = match (args.instance.as_deref(), model) {
        (Some("config"), _) | (None, None) => return Ok(None),
        (Some(name), None) => {
            usage!("--instance {name} needs --model: the baselines are derived from the model")
        }
        (Some(name), Some(_)) => name,
        (None, Some(_)) => InstanceBaseline::GpuRoofline.name(),
    };
    let model = model.expect("a baseline is only chosen with a model");
    let baseline: InstanceBaseline = name.parse()?;
    let mut fleet = baseline
        .derive(model)
        .with_context(|| format!("--instance {name}"))?;
    fleet.count = count;
    Ok(Some(fleet))
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
        let plan_name = args.plan.plan.as_str();
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

/// Runs `seqless simulate`.
pub fn run(args: SimulateArgs) -> Result<()> {
    let mut config = build_config(&args)?;
    let (shape, shape_label) = shape_model(&args, &mut config)?;
    let model = args.model.as_deref().map(load_model_config).transpose()?;
    if let Some(fleet) = baseline_fleet(&args, model.as_ref(), config.instances.count)? {
        config.instances = fleet;
    }
    if !args.sweep_bytes.is_empty() && model.is_none() {
        usage!("--sweep-bytes needs --model: its fleets are derived from the model");
    }
    if let Some(&bad) = args
        .sweep_bytes
        .iter()
        .find(|&&b| b == 0 || b > config.max_len)
    {
        usage!(
            "--sweep-bytes {bad}: every length must be 1 to the model's max_len ({})",
            config.max_len
        );
    }
    config.validate().context("checking the configuration")?;
    let report = seqless_sim::run(&config, shape.as_ref()).context("simulating")?;
    let levels: Vec<LoadLevel> = if !args.sweep.is_empty() {
        args.sweep.iter().map(|&r| LoadLevel::Rate(r)).collect()
    } else {
        args.sweep_clients
            .iter()
            .map(|&n| LoadLevel::Concurrency(n))
            .collect()
    };
    let mut sweep = if levels.is_empty() {
        None
    } else {
        Some(seqless_sim::sweep(&config, shape.as_ref(), &levels).context("sweeping load")?)
    };
    if let Some(sweep) = sweep.as_mut() {
        sweep.context = format!("{shape_label}; {}", sweep.context);
    }
    let sizes = match &model {
        Some(model) if !args.sweep_bytes.is_empty() => {
            let count = config.instances.count;
            let fleets = InstanceBaseline::ALL
                .into_iter()
                .map(|b| {
                    let mut fleet = b
                        .derive(model)
                        .with_context(|| format!("--sweep-bytes: the {b} fleet"))?;
                    fleet.count = count;
                    Ok((b.name().replace('-', "_"), fleet))
                })
                .collect::<Result<Vec<_>>>()?;
            let mut sizes =
                seqless_sim::size_sweep(&config, shape.as_ref(), &fleets, &args.sweep_bytes)
                    .context("sweeping input size")?;
            sizes.context = format!("{shape_label}; {}", sizes.context);
            Some(sizes)
        }
        _ => None,
    };
    let written = match &args.out {
        Some(dir) => seqless_sim::write_outputs(dir, &report, sweep.as_ref(), sizes.as_ref())?,
        None => Vec::new(),
    };
    if args.json {
        println!("{}", report.to_json());
        return Ok(());
    }
    print!("{}", report.render(&shape_label));
    if let Some(sweep) = &sweep {
        print!("{}", sweep.render());
    }
    if let Some(sizes) = &sizes {
        print!("{}", sizes.render());
    }
    if !written.is_empty() {
        println!("\nwrote:");
        for path in written {
            println!("  {}", path.display());
        }
    }
    Ok(())
}
