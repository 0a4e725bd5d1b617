//! Turning execution flags into a running coordinator.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use seqless_coordinator::{Coordinator, CoordinatorOptions};
use seqless_cost::Pricing;
use seqless_functions::{
    InprocInvoker, InprocOptions, InvokeOptions, Invoker, LambdaInvoker, LocalInvoker,
};
use seqless_model::ModelConfig;
use seqless_plan::Limits;
use seqless_store::{StoreOptions, TensorStore, open_store};

use crate::cli::ExecArgs;

/// A multi-threaded runtime for the commands that do I/O.
pub fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

/// Cores of this machine, the default function concurrency.
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Opens the store named by a URL with the given key prefix.
pub async fn store(url: &str, key_prefix: &str) -> Result<Arc<dyn TensorStore>> {
    let options = StoreOptions {
        key_prefix: key_prefix.to_string(),
        ..StoreOptions::default()
    };
    Ok(open_store(url, options).await?)
}

/// Upper bound on one invocation through the Invoke API: Lambda's longest timeout.
const INVOKE_TIMEOUT: Duration = Duration::from_secs(900);

/// Where the functions run, from `--platform` and its flags.
pub async fn platform(
    model_dir: &Path,
    args: &ExecArgs,
    store: Arc<dyn TensorStore>,
) -> Result<Arc<dyn Invoker>> {
    let invoke = InvokeOptions {
        function_prefix: args.function_prefix.clone(),
        fallback_memory_mb: args.memory_mb,
        timeout: INVOKE_TIMEOUT,
    };
    Ok(match args.platform.as_str() {
        "local" => {
            let Some(endpoint) = &args.endpoint else {
                bail!(
                    "--platform local needs --endpoint http://HOST:PORT (start one with `seqless platform`)"
                );
            };
            Arc::new(LocalInvoker::new(endpoint, invoke)?)
        }
        "lambda" => Arc::new(
            LambdaInvoker::connect(args.endpoint.as_deref(), args.region.as_deref(), invoke)
                .await?,
        ),
        _ => Arc::new(InprocInvoker::new(
            InprocOptions {
                model_dir: model_dir.to_path_buf(),
                concurrency: args.concurrency.unwrap_or_else(cores),
                idle_timeout: Duration::from_secs(args.idle_timeout_secs),
                memory_mb: args.memory_mb,
                ttl: Duration::from_secs(args.ttl_secs.max(1)),
            },
            store,
        )),
    })
}

/// Builds the master for a model directory: store, platform and plan settings.
pub async fn coordinator(
    model_dir: &Path,
    config: ModelConfig,
    args: &ExecArgs,
) -> Result<Coordinator> {
    if args.platform != "inproc" && args.store == "memory" {
        bail!(
            "--platform {} with --store memory: function processes share no memory with this one, so stages could not read each other's tensors; give a shared store such as --store redis://127.0.0.1:6379",
            args.platform
        );
    }
    let store = store(&args.store, &args.key_prefix).await?;
    let ttl = Duration::from_secs(args.ttl_secs.max(1));
    let platform = platform(model_dir, args, store.clone()).await?;
    let pricing = match &args.pricing {
        Some(path) => Pricing::load(path)
            .with_context(|| format!("loading prices from {}", path.display()))?,
        None => Pricing::default(),
    };
    let options = CoordinatorOptions {
        plan: args.plan,
        splits: args.splits,
        limits: Limits {
            function_memory_mb: args.memory_mb,
            max_splits: args.max_splits,
            min_rows_per_split: args.min_rows_per_split,
            max_value_bytes: None,
        },
        ttl,
        pricing,
        arch: args.arch,
    };
    let fingerprint = seqless_model::fingerprint(model_dir)?;
    Ok(Coordinator::new(
        config,
        fingerprint,
        store,
        platform,
        options,
    ))
}
