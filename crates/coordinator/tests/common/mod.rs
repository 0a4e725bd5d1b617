//! Shared by the coordinator's integration tests: a random model and the in-process
//! invoker that runs its stages.

#![allow(dead_code)] // Each test binary uses a different part of this module.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use seqless_coordinator::CoordinatorOptions;
use seqless_functions::{InprocInvoker, InprocOptions, ModelFingerprint};
use seqless_model::testing::{config, random, write_model};
use seqless_model::{GateActivation, Modulation, TfilmModel};
use seqless_plan::{PlanKind, Splits};
use seqless_store::TensorStore;

/// A random model with three labels, written to a temporary directory and loaded.
pub struct RandomModel {
    pub dir: tempfile::TempDir,
    pub model: TfilmModel,
    pub fingerprint: ModelFingerprint,
}

impl RandomModel {
    pub fn new(
        layers: &str,
        embed: usize,
        modulation: Modulation,
        gate: GateActivation,
        seed: u64,
    ) -> Self {
        let cfg = config(embed, layers, modulation, gate, 3);
        let dir = tempfile::tempdir().unwrap();
        write_model(dir.path(), &cfg, &random(&cfg, seed, 0.8));
        let (model, fingerprint) = TfilmModel::load_fingerprinted(dir.path()).unwrap();
        Self {
            dir,
            model,
            fingerprint,
        }
    }
}

/// In-process functions of the model in `model_dir`: 4 instances of 512 MB, kept a minute
/// when idle, writing values that live a minute.
pub fn inproc_options(model_dir: &Path) -> InprocOptions {
    InprocOptions {
        model_dir: model_dir.to_path_buf(),
        concurrency: 4,
        idle_timeout: Duration::from_secs(60),
        memory_mb: 512,
        ttl: Duration::from_secs(60),
    }
}

/// An invoker with [`inproc_options`] over `store`.
pub fn invoker(model_dir: &Path, store: Arc<dyn TensorStore>) -> Arc<InprocInvoker> {
    Arc::new(InprocInvoker::new(inproc_options(model_dir), store))
}

/// Coordinator options for `plan` with `splits` conv functions per layer.
pub fn options(plan: PlanKind, splits: usize) -> CoordinatorOptions {
    CoordinatorOptions {
        plan,
        splits: Splits::Fixed(splits),
        ..CoordinatorOptions::default()
    }
}

/// A runtime for the property tests, whose cases are synchronous.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}
