//! `seqless bench serverless`: serverless latency per plan and split count against the
//! monolithic forward measured in the same run (`seqless_bench::serverless`).

use anyhow::{Result, bail};
use rand::{Rng, SeedableRng, rngs::StdRng};
use seqless_bench::args::ServerlessBenchArgs;
use seqless_bench::serverless::{Configuration, Measured, sweep, table_header, time_queries};
use seqless_model::TfilmModel;
use seqless_plan::{PlanArgs, Splits};

use super::exec::Caller;
use crate::cli::{FunctionHost, InprocArgs, LambdaArgs, RemoteArgs, ServerlessArgs};
use seqless_bench::forward::time_runs;
use seqless_coordinator::BatchPolicy;
use seqless_coordinator::HedgeArgs;
use seqless_sim::ChooserArgs;

/// The flags of one configuration: functions in process or on the `--endpoint` platform,
/// over `--store`, the split count fixed, and memory that no split exceeds.
fn configuration(args: &ServerlessBenchArgs, config: &Configuration) -> (PlanArgs, ServerlessArgs) {
    let plan_args = PlanArgs {
        plan: config.plan,
        splits: Splits::Fixed(config.splits),
        max_splits: config.splits.max(1),
        min_rows_per_split: 1,
        memory_mb: 10_240,
    };
    let serverless = ServerlessArgs {
        store: args.store.clone(),
        key_prefix: "seqless-bench:".into(),
        ttl_secs: 120,
        platform: match args.endpoint {
            Some(_) => FunctionHost::Local,
            None => FunctionHost::Inproc,
        },
        inproc: InprocArgs {
            concurrency: args.concurrency,
            idle_timeout_secs: 600,
        },
        remote: RemoteArgs {
            endpoint: args.endpoint.clone(),
            function_prefix: seqless_functions::lambda_api::DEFAULT_FUNCTION_PREFIX.into(),
            lambda: LambdaArgs { region: None },
        },
        pricing: None,
        arch: seqless_cost::Arch::X86_64,
        hedge: HedgeArgs::default(),
        function_slots: args.function_slots,
        transfer: config.transfer,
        inline_max_bytes: args.inline_max_bytes,
        chooser: ChooserArgs::default(),
    };
    (plan_args, serverless)
}

pub fn run(args: ServerlessBenchArgs) -> Result<()> {
    let model = TfilmModel::load(&args.model)?;
    let rt = super::exec::runtime()?;
    let mut rng = StdRng::seed_from_u64(2);
    let mut configs = Vec::new();
    for &n in &args.bytes {
        for &plan in &args.plan {
            for &splits in &args.splits {
                for &transfer in &args.transfer {
                    configs.push(Configuration {
                        bytes: n.min(model.config.max_len),
                        plan,
                        splits,
                        transfer,
                    });
                }
            }
        }
    }
    let total = configs.len();
    // The monolithic time and the input of the size measured last, reused by its plans.
    let mut current: Option<(usize, Vec<u8>, f64)> = None;
    let mut measure = |config: &Configuration| -> Result<Measured> {
        let n = config.bytes;
        let (input, mono) = match &current {
            Some((size, input, mono)) if *size == n => (input.clone(), *mono),
            _ => {
                let input: Vec<u8> = (0..n).map(|_| rng.random()).collect();
                let mono = time_runs(args.runs, || model.forward(&input).map(|_| ()))?.median_ms;
                current = Some((n, input.clone(), mono));
                (input, mono)
            }
        };
        let (plan_args, serverless) = configuration(&args, config);
        let traces = rt.block_on(async {
            let coordinator = serverless
                .coordinator(
                    &args.model,
                    model.config.clone(),
                    &plan_args,
                    Caller::Command,
                    BatchPolicy::Off,
                )
                .await?;
            anyhow::Ok(time_queries(&coordinator, &input, args.runs).await?)
        })?;
        Ok(Measured::new(&traces, mono))
    };
    println!("{}", table_header());
    let (csv, failed) = sweep(
        configs,
        |config| measure(config).map_err(|e| format!("{e:#}")),
        |line| println!("{line}"),
    );
    if let Some(path) = &args.csv {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(path, csv)?;
        eprintln!("wrote {}", path.display());
    }
    if failed > 0 {
        bail!("{failed} of {total} configurations failed (marked `failed` above)");
    }
    Ok(())
}
