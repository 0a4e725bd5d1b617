//! Shared by the coordinator's integration tests: the in-process invoker that runs a random
//! model's stages ([`seqless_model::testing::RandomModel`]), and the options they start from.

#![allow(dead_code)] // Each test binary uses a different part of this module.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use seqless_coordinator::{Coordinator, CoordinatorOptions, RetryPolicy};
use seqless_functions::{InprocInvoker, InprocOptions, Invoker};
use seqless_model::testing::RandomModel;
use seqless_plan::{PlanKind, Splits};
use seqless_store::{MemoryStore, TensorStore};

/// A random model and the in-process functions that run it over a memory store.
pub struct Fixture {
    pub model: RandomModel,
    pub store: Arc<MemoryStore>,
    pub invoker: Arc<InprocInvoker>,
}

impl Fixture {
    /// `model`'s functions over a fresh memory store.
    pub fn new(model: RandomModel) -> Self {
        let store = Arc::new(MemoryStore::new());
        let invoker = invoker(model.dir.path(), store.clone());
        Self {
            model,
            store,
            invoker,
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
    invoker_with(model_dir, store, 4)
}

/// As [`invoker`], with `concurrency` instances.
pub fn invoker_with(
    model_dir: &Path,
    store: Arc<dyn TensorStore>,
    concurrency: usize,
) -> Arc<InprocInvoker> {
    let options = InprocOptions {
        concurrency,
        ..inproc_options(model_dir)
    };
    Arc::new(InprocInvoker::new(options, store))
}

/// Layers `C:k:p:b` of a random model for the property tests: up to 6 channels, kernels
/// up to 5, pools of 1 or 2, and blocks of 1 to 8 rows.
pub fn layer_spec() -> impl proptest::strategy::Strategy<Value = String> {
    use proptest::prelude::*;
    (
        1usize..7,
        1usize..6,
        1usize..3,
        prop::sample::select(vec![1usize, 2, 3, 4, 8]),
    )
        .prop_map(|(c, k, p, b)| format!("{c}:{k}:{p}:{b}"))
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

/// A coordinator of `model`'s stages on `invoker` over `store`.
pub fn coordinator(
    model: &RandomModel,
    store: Arc<dyn TensorStore>,
    invoker: Arc<dyn Invoker>,
    options: CoordinatorOptions,
) -> Coordinator {
    Coordinator::new(
        model.model.config.clone(),
        model.fingerprint.clone(),
        store,
        invoker,
        options,
    )
}

/// `max_attempts` attempts with backoffs of a few milliseconds, so tests do not wait; the
/// bound is what they test.
pub fn quick_retries(max_attempts: u32) -> RetryPolicy {
    RetryPolicy {
        max_attempts,
        base_backoff: Duration::from_millis(1),
        max_backoff: Duration::from_millis(5),
    }
}
