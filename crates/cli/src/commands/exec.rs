//! Turning execution flags into a running coordinator.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use seqless_coordinator::{Coordinator, CoordinatorOptions};
use seqless_cost::Pricing;
use seqless_functions::{InprocOptions, InprocPlatform};
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

/// Builds the master for a model directory: store, platform and plan settings.
pub async fn coordinator(
    model_dir: &Path,
    config: ModelConfig,
    args: &ExecArgs,
) -> Result<Coordinator> {
    let store = store(&args.store, &args.key_prefix).await?;
    let ttl = Duration::from_secs(args.ttl_secs.max(1));
    let platform = InprocPlatform::new(
        InprocOptions {
            model_dir: model_dir.to_path_buf(),
            concurrency: args.concurrency.unwrap_or_else(cores),
            idle_timeout: Duration::from_secs(args.idle_timeout_secs),
            memory_mb: args.memory_mb,
            ttl,
        },
        store.clone(),
    );
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
        },
        ttl,
        pricing,
        arch: args.arch,
    };
    Ok(Coordinator::new(config, store, Arc::new(platform), options))
}
