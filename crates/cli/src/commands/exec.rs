//! Turning execution flags into a running coordinator.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use seqless_coordinator::{BatchPolicy, Coordinator, CoordinatorOptions};
use seqless_cost::Pricing;
use seqless_functions::{InprocInvoker, InprocOptions, InvokeOptions, Invoker, LocalInvoker};
use seqless_model::ModelConfig;
use seqless_plan::{PlanArgs, PlanChooser, PlanKind, Splits};
use seqless_store::{StoreOptions, TensorStore, open_store, open_store_lazily};

use super::usage;
use crate::cli::{FunctionHost, ServerlessArgs};

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

/// Who the coordinator serves, which decides what a store that is down at startup means
/// and how long a query may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caller {
    /// A one-shot command: a store that is down is a failure now, and queries have the
    /// coordinator's default deadline.
    Command,
    /// A service that answers within `deadline`: a store that is down makes it not ready
    /// until the store comes up, and the coordinator stops retrying before the deadline,
    /// so a query that cannot finish in time (the store down, say) ends with the error
    /// that says why (503 naming the store) rather than only the server's 504. The margin,
    /// a quarter of the deadline and at most 2 s, is for the deletion of the query's keys
    /// that follows a failure, which the store itself retries.
    Service {
        /// The server's deadline for a query.
        deadline: Duration,
    },
}

impl Caller {
    /// The coordinator's deadline for one query.
    fn deadline(self) -> Duration {
        match self {
            Self::Command => CoordinatorOptions::default().deadline,
            Self::Service { deadline } => deadline - (deadline / 4).min(Duration::from_secs(2)),
        }
    }
}

/// Opens the store named by a URL with the given key prefix.
async fn store_when(url: &str, key_prefix: &str, caller: Caller) -> Result<Arc<dyn TensorStore>> {
    let options = StoreOptions {
        key_prefix: key_prefix.to_string(),
        ..StoreOptions::default()
    };
    Ok(match caller {
        Caller::Command => open_store(url, options).await?,
        Caller::Service { .. } => open_store_lazily(url, options).await?,
    })
}

/// Upper bound on one invocation through the Invoke API: Lambda's longest timeout.
const INVOKE_TIMEOUT: Duration = Duration::from_secs(900);

/// The functions on another host (`--platform local` or `lambda`), connected before the
/// store so that a refusal of the host's own settings comes first; `None` for in-process
/// functions, which need the store ([`inproc`]).
async fn remote_invoker(
    plan: &PlanArgs,
    args: &ServerlessArgs,
) -> Result<Option<Arc<dyn Invoker>>> {
    let invoke = InvokeOptions {
        function_prefix: args.remote.function_prefix.clone(),
        fallback_memory_mb: plan.memory_mb,
        timeout: INVOKE_TIMEOUT,
    };
    let endpoint = args.remote.endpoint.as_deref();
    Ok(match args.platform {
        FunctionHost::Local => {
            let endpoint = endpoint.context("--platform local needs --endpoint")?;
            Some(Arc::new(LocalInvoker::new(endpoint, invoke)?))
        }
        #[cfg(feature = "aws")]
        FunctionHost::Lambda => {
            let region = args.remote.lambda.region.as_deref();
            match seqless_functions::LambdaInvoker::connect(endpoint, region, invoke).await {
                Ok(invoker) => Some(Arc::new(invoker)),
                // It fails only on what the user configures: credentials.
                Err(missing) => usage!("{missing}"),
            }
        }
        #[cfg(not(feature = "aws"))]
        FunctionHost::Lambda => usage!(
            "--platform lambda needs the `aws` feature: build with `cargo build --release -p seqless --features aws`"
        ),
        FunctionHost::Inproc => None,
    })
}

/// In-process functions over `store`.
fn inproc(
    model_dir: &Path,
    plan: &PlanArgs,
    args: &ServerlessArgs,
    store: Arc<dyn TensorStore>,
) -> Arc<dyn Invoker> {
    Arc::new(InprocInvoker::new(
        InprocOptions {
            model_dir: model_dir.to_path_buf(),
            concurrency: args.inproc.concurrency.unwrap_or_else(|| {
                match (plan.plan, plan.splits) {
                    (PlanKind::Resident, Splits::Fixed(n)) => cores().max(n + 2),
                    (PlanKind::Resident, Splits::Auto) => cores().max(plan.max_splits + 2),
                    _ => cores(),
                }
            }),
            idle_timeout: Duration::from_secs(args.inproc.idle_timeout_secs),
            memory_mb: plan.memory_mb,
            ttl: Duration::from_secs(args.ttl_secs.max(1)),
        },
        store,
    ))
}

impl ServerlessArgs {
    /// Builds the master for a model directory: store, platform and plan settings, for
    /// `caller`, with stages of concurrent queries sharing invocations under `batch`.
    pub async fn coordinator(
        &self,
        model_dir: &Path,
        config: ModelConfig,
        plan: &PlanArgs,
        caller: Caller,
        batch: BatchPolicy,
    ) -> Result<Coordinator> {
        // Every refusal of the flags comes before a connection is tried.
        let limits = plan.limits()?;
        let pricing = Pricing::load_or_default(self.pricing.as_deref())?;
        let mut chooser =
            (self.chooser).chooser(&config, limits.function_memory_mb, &pricing, self.arch)?;
        if self.platform == FunctionHost::Local && self.remote.endpoint.is_none() {
            usage!(
                "--platform local needs --endpoint http://HOST:PORT (start one with `seqless platform`)"
            );
        }
        if self.platform != FunctionHost::Inproc && self.store == "memory" {
            usage!(
                "--platform {} with --store memory: function processes share no memory with this one, so stages could not read each other's tensors; give a shared store such as --store redis://127.0.0.1:6379",
                self.platform.name()
            );
        }
        let slo = self
            .chooser
            .slo_ms
            .map(|ms| Duration::from_secs_f64(ms / 1e3));
        if let (BatchPolicy::Window { window, .. }, Some(slo)) = (batch, slo)
            && window > slo
        {
            usage!(
                "--batch-wait-ms {} is longer than --plan-slo-ms {}: a stage waiting that long for company would miss the SLO by itself; give a wait under the SLO",
                window.as_millis(),
                slo.as_secs_f64() * 1e3
            );
        }
        let remote = remote_invoker(plan, self).await?;
        let store = store_when(&self.store, &self.key_prefix, caller).await?;
        let ttl = Duration::from_secs(self.ttl_secs.max(1));
        let platform = remote.unwrap_or_else(|| inproc(model_dir, plan, self, store.clone()));
        let mut options = CoordinatorOptions {
            plan: plan.plan,
            splits: plan.splits,
            limits,
            ttl,
            pricing,
            arch: self.arch,
            hedge: self.hedge.policy(),
            deadline: caller.deadline(),
            function_slots: self.function_slots,
            transfer: self.transfer,
            inline_max_bytes: self.inline_max_bytes,
            batch,
            slo,
            ..CoordinatorOptions::default()
        };
        let beside = options.resident_slots_beside_splits();
        let slots = options.function_slots.or_else(|| platform.concurrency());
        // The planner picks the resident plan only where its splits can all run at once.
        if let (Some(chooser), Some(slots)) = (&mut chooser, slots)
            && slots <= beside
        {
            chooser.space.plans.retain(|&p| p != PlanKind::Resident);
        }
        options.chooser = chooser.map(|c| Arc::new(c) as Arc<dyn PlanChooser>);
        if let (PlanKind::Resident, Some(slots)) = (plan.plan, slots)
            && slots <= beside
        {
            usage!(
                "the resident plan holds {} function slots beside its splits (a serial stage{}), so it needs at least {}, and {slots} are allowed; raise --function-slots or --concurrency",
                beside,
                if beside > 1 { " and a hedge" } else { "" },
                beside + 1
            );
        }
        let fingerprint = seqless_model::fingerprint(model_dir)?;
        Ok(Coordinator::new(
            config,
            fingerprint,
            store,
            platform,
            options,
        ))
    }
}
