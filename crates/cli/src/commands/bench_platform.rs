//! `seqless bench platform`: the local Lambda platform's own costs. Cold start (spawn to
//! first response, split into process start and model load), warm invoke overhead (a
//! no-op ping's round trip), and serverless latency on it against the in-process platform
//! measured in the same run, both over the same Redis.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use rand::{Rng, SeedableRng, rngs::StdRng};
use seqless_bench::platform::Figures;
use seqless_bench::serverless::time_queries;
use seqless_bench::stats::median;
use seqless_coordinator::{Coordinator, CoordinatorOptions};
use seqless_functions::lambda_api::DEFAULT_FUNCTION_PREFIX;
use seqless_functions::{InprocInvoker, InprocOptions, InvokeOptions, Invoker, LocalInvoker, Ping};
use seqless_model::TfilmModel;
use seqless_plan::{Limits, PlanKind, Splits, StageKind};
use seqless_platform::{PlatformOptions, PlatformServer};

use crate::cli::BenchPlatformArgs;

fn platform_options(args: &BenchPlatformArgs, model_dir: &Path) -> Result<PlatformOptions> {
    Ok(PlatformOptions {
        listen: "127.0.0.1:0".parse()?,
        model_dir: std::path::absolute(model_dir)?,
        store_url: args.store.clone(),
        key_prefix: "seqless-bench:".into(),
        ttl_secs: 120,
        worker_exe: std::env::current_exe()?,
        function_prefix: DEFAULT_FUNCTION_PREFIX.into(),
        max_concurrency: 8,
        queue_bound: 256,
        idle_timeout: Duration::from_secs(600),
        timeout: Duration::from_secs(120),
        memory_mb: 1024,
        function_memory: Default::default(),
    })
}

fn client(platform: &PlatformServer) -> Result<LocalInvoker> {
    Ok(LocalInvoker::new(
        &platform.endpoint(),
        InvokeOptions {
            function_prefix: DEFAULT_FUNCTION_PREFIX.into(),
            fallback_memory_mb: 1024,
            timeout: Duration::from_secs(120),
        },
    )?)
}

/// Cold starts: a fresh platform per sample, so the ping meets no process.
async fn cold_starts(args: &BenchPlatformArgs, figures: &mut Figures) -> Result<()> {
    let (mut total, mut init, mut process, mut model) = (vec![], vec![], vec![], vec![]);
    for _ in 0..args.runs.max(1) {
        let platform = PlatformServer::start(platform_options(args, &args.model)?).await?;
        let started = Instant::now();
        let outcome = client(&platform)?
            .ping(StageKind::Conv, Ping::default())
            .await;
        let round_trip = seqless_bench::ms(started.elapsed());
        platform.shutdown().await;
        let (result, meta) = outcome?;
        let Some(split) = result.init.filter(|_| meta.cold) else {
            bail!("the first ping of a fresh platform was not a cold start");
        };
        total.push(round_trip);
        init.push(meta.init_ms);
        process.push(split.process_start_ms.unwrap_or(f64::NAN));
        model.push(split.model_load_ms);
    }
    for (name, samples) in [
        ("cold_start_round_trip", total),
        ("cold_init_duration", init),
        ("cold_process_start", process),
        ("cold_model_load", model),
    ] {
        println!("{}", figures.add(name, 0, &samples, None));
    }
    Ok(())
}

async fn coordinator(
    args: &BenchPlatformArgs,
    model: &TfilmModel,
    invoker: Arc<dyn Invoker>,
) -> Result<Coordinator> {
    let store = super::exec::store(&args.store, "seqless-bench:").await?;
    let options = CoordinatorOptions {
        plan: PlanKind::Fused,
        splits: Splits::Fixed(args.splits),
        limits: Limits {
            function_memory_mb: 10_240,
            max_splits: args.splits.max(1),
            min_rows_per_split: 1,
            max_value_bytes: None,
        },
        ttl: Duration::from_secs(120),
        ..CoordinatorOptions::default()
    };
    Ok(Coordinator::new(
        model.config.clone(),
        seqless_model::fingerprint(&args.model)?,
        store,
        invoker,
        options,
    ))
}

pub fn run(args: BenchPlatformArgs) -> Result<()> {
    if args.store == "memory" {
        bail!("--store memory: function processes share no memory; give a redis:// URL");
    }
    let model = TfilmModel::load(&args.model)?;
    let mut figures = Figures::default();
    println!("{}", Figures::table_header());
    super::exec::runtime()?.block_on(async {
        cold_starts(&args, &mut figures).await?;
        let platform = PlatformServer::start(platform_options(&args, &args.model)?).await?;
        let local = client(&platform)?;
        local.ping(StageKind::Conv, Ping::default()).await?;
        let mut warm = Vec::new();
        for _ in 0..args.runs.max(1) * 10 {
            let started = Instant::now();
            local.ping(StageKind::Conv, Ping::default()).await?;
            warm.push(seqless_bench::ms(started.elapsed()));
        }
        println!("{}", figures.add("warm_ping_round_trip", 0, &warm, None));
        let store = super::exec::store(&args.store, "seqless-bench:").await?;
        let inproc: Arc<dyn Invoker> = Arc::new(InprocInvoker::new(
            InprocOptions {
                model_dir: args.model.clone(),
                concurrency: 8,
                idle_timeout: Duration::from_secs(600),
                memory_mb: 1024,
                ttl: Duration::from_secs(120),
            },
            store,
        ));
        let on_inproc = coordinator(&args, &model, inproc).await?;
        let on_local = coordinator(&args, &model, Arc::new(client(&platform)?)).await?;
        let mut rng = StdRng::seed_from_u64(5);
        for &n in &args.bytes {
            let n = n.min(model.config.max_len);
            let input: Vec<u8> = (0..n).map(|_| rng.random()).collect();
            let (base, _) = time_queries(&on_inproc, &input, args.runs).await?;
            let (local, _) = time_queries(&on_local, &input, args.runs).await?;
            let line = figures.add("serverless_local_vs_inproc", n, &local, median(&base));
            println!("{line}");
        }
        platform.shutdown().await;
        anyhow::Ok(())
    })?;
    if let Some(path) = &args.csv {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(path, figures.csv())?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}
