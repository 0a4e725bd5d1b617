//! The embedded invoker: function instances in the master's own process.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use seqless_model::TfilmModel;
use seqless_store::TensorStore;
use seqless_wire::billed_ms;
use seqless_wire::faults::{
    Fault, FaultDice, FaultInjection, FaultSettingsError, INJECTED_ERROR, MedianWindow,
};
use seqless_wire::lambda::{DEFAULT_FUNCTION_PREFIX, LambdaErrorBody, function_name};
use tokio::sync::Semaphore;

use super::{BatchAnswer, Invoker, batch_kind};
use crate::error::FunctionError;
use crate::handler::{FunctionContext, handle};
use crate::lambda_api::api_error;
use seqless_wire::{BatchEvent, InvocationMeta, StageEvent, StageKind, StageResult};

/// Settings of the in-process pool.
#[derive(Debug, Clone)]
pub struct InprocOptions {
    /// The model directory each instance loads at its cold start.
    pub model_dir: PathBuf,
    /// Invocations running at once (Lambda's concurrency limit, here bounded by cores).
    pub concurrency: usize,
    /// How long an idle instance stays warm before it is reaped.
    pub idle_timeout: Duration,
    /// The memory size billed per invocation.
    pub memory_mb: u32,
    /// Expiry of every key the functions write.
    pub ttl: Duration,
}

struct Idle {
    context: Arc<FunctionContext>,
    since: Instant,
}

struct Pool {
    options: InprocOptions,
    store: Arc<dyn TensorStore>,
    permits: Semaphore,
    idle: Mutex<Vec<Idle>>,
    faults: Option<Faults>,
}

/// Injected faults: the seeded draw, and each stage kind's fault-free median duration,
/// which sizes a delay.
struct Faults {
    dice: FaultDice,
    medians: Mutex<HashMap<StageKind, MedianWindow>>,
}

impl Faults {
    /// The next invocation's fault; a delay is skipped (`None`) until its stage kind has a
    /// fault-free duration to take a multiple of.
    fn draw(&self, kind: StageKind) -> Option<(Fault, Duration)> {
        let fault = self.dice.roll()?;
        let delay = match fault {
            Fault::Delay => {
                let median = self
                    .medians
                    .lock()
                    .expect("medians lock")
                    .get(&kind)?
                    .median()?;
                median.mul_f64(self.dice.settings().delay_factor)
            }
            Fault::Throttle | Fault::Crash | Fault::Error => Duration::ZERO,
        };
        Some((fault, delay))
    }

    fn fault_free(&self, kind: StageKind, duration: Duration) {
        self.medians
            .lock()
            .expect("medians lock")
            .entry(kind)
            .or_default()
            .record(duration);
    }
}

impl Pool {
    fn take_warm(&self) -> Option<Arc<FunctionContext>> {
        let mut idle = self.idle.lock().expect("pool lock");
        // Most recently used first, as Lambda reuses warm environments.
        idle.pop().map(|i| i.context)
    }

    fn give_back(&self, context: Arc<FunctionContext>) {
        self.idle.lock().expect("pool lock").push(Idle {
            context,
            since: Instant::now(),
        });
    }

    fn reap(&self) -> usize {
        let mut idle = self.idle.lock().expect("pool lock");
        let before = idle.len();
        let timeout = self.options.idle_timeout;
        idle.retain(|i| i.since.elapsed() < timeout);
        before - idle.len()
    }

    /// A cold start: load the model from disk, as a fresh Lambda environment would.
    async fn start_instance(&self) -> Result<Arc<FunctionContext>, FunctionError> {
        let dir = self.options.model_dir.clone();
        let (model, fingerprint) =
            tokio::task::spawn_blocking(move || TfilmModel::load_fingerprinted(&dir))
                .await
                .map_err(|e| FunctionError::permanent(format!("instance start failed: {e}")))??;
        Ok(Arc::new(FunctionContext {
            model: Arc::new(model),
            fingerprint,
            store: self.store.clone(),
            ttl: self.options.ttl,
        }))
    }
}

/// A pool of function instances inside the master's process, with a concurrency limit,
/// lazy cold starts, warm reuse and reaping after an idle timeout.
#[derive(Clone)]
pub struct InprocInvoker {
    pool: Arc<Pool>,
}

impl InprocInvoker {
    /// Creates the pool and its reaper thread.
    pub fn new(options: InprocOptions, store: Arc<dyn TensorStore>) -> Self {
        Self::build(options, store, None)
    }

    /// A pool that injects `faults` into its invocations, as `seqless platform --faults`
    /// does (docs/platform.md, "Fault injection"): a throttle answers as Lambda's 429 and
    /// never runs; a crash runs the stage, discards the instance and answers
    /// `Runtime.ExitError`; an error runs the stage and answers a retryable error; a delay
    /// holds the stage back by a multiple of its kind's fault-free median.
    pub fn with_faults(
        options: InprocOptions,
        store: Arc<dyn TensorStore>,
        faults: FaultInjection,
    ) -> Result<Self, FaultSettingsError> {
        let dice = FaultDice::new(faults)?;
        let faults = faults.is_active().then(|| Faults {
            dice,
            medians: Mutex::default(),
        });
        Ok(Self::build(options, store, faults))
    }

    fn build(options: InprocOptions, store: Arc<dyn TensorStore>, faults: Option<Faults>) -> Self {
        let pool = Arc::new(Pool {
            permits: Semaphore::new(options.concurrency.max(1)),
            idle: Mutex::new(Vec::new()),
            options,
            store,
            faults,
        });
        spawn_reaper(Arc::downgrade(&pool));
        Self { pool }
    }

    /// Instances currently warm and idle.
    pub fn idle_instances(&self) -> usize {
        self.pool.idle.lock().expect("pool lock").len()
    }
}

/// Reaps idle instances from a plain thread, so the pool needs no runtime to be built and
/// the thread ends once the pool is dropped.
fn spawn_reaper(pool: Weak<Pool>) {
    let period = pool.upgrade().map_or(Duration::from_secs(1), |p| {
        (p.options.idle_timeout / 2).clamp(Duration::from_millis(20), Duration::from_secs(5))
    });
    std::thread::Builder::new()
        .name("seqless-reaper".into())
        .spawn(move || {
            loop {
                std::thread::sleep(period);
                let Some(pool) = pool.upgrade() else { break };
                let reaped = pool.reap();
                if reaped > 0 {
                    tracing::debug!(reaped, "reaped idle function instances");
                }
            }
        })
        .expect("spawning the reaper thread");
}

impl InprocInvoker {
    /// One invocation of the function of `kind`: a throttle or a slot, a warm or cold
    /// instance, then `work` on it, billed as a whole, with the fault drawn for it.
    async fn run<T, F, Fut>(
        &self,
        kind: StageKind,
        work: F,
    ) -> Result<(T, InvocationMeta), FunctionError>
    where
        F: FnOnce(Arc<FunctionContext>) -> Fut,
        Fut: Future<Output = Result<T, FunctionError>>,
    {
        let pool = &self.pool;
        let fault = pool.faults.as_ref().and_then(|f| f.draw(kind));
        if let Some((Fault::Throttle, _)) = fault {
            let function = function_name(DEFAULT_FUNCTION_PREFIX, kind);
            return Err(api_error(
                &function,
                429,
                "TooManyRequestsException",
                "Rate Exceeded.",
            ));
        }
        let _permit = pool
            .permits
            .acquire()
            .await
            .map_err(|_| FunctionError::retryable("the in-process invoker is shutting down"))?;
        let (context, cold, init_ms) = match pool.take_warm() {
            Some(context) => (context, false, 0.0),
            None => {
                let start = Instant::now();
                let context = pool.start_instance().await?;
                (context, true, start.elapsed().as_secs_f64() * 1e3)
            }
        };
        let start = Instant::now();
        if let Some((Fault::Delay, delay)) = fault {
            tokio::time::sleep(delay).await;
        }
        let result = work(context.clone()).await;
        let duration = start.elapsed();
        let meta = InvocationMeta {
            cold,
            init_ms,
            duration_ms: duration.as_secs_f64() * 1e3,
            billed_ms: billed_ms(duration),
            memory_mb: pool.options.memory_mb,
            shared_by: 1,
        };
        // Crash and error come after the work, as on the platform: the outputs are
        // written and the answer is lost.
        let result = match fault.map(|(f, _)| f) {
            Some(Fault::Crash) => {
                // The instance is discarded (not given back), as a crashed environment is.
                drop(context);
                let body = LambdaErrorBody::new(
                    "Runtime.ExitError",
                    "Error: Runtime exited with error: signal: 6 (SIGABRT) (injected fault)",
                );
                return Err(FunctionError::from(body).billed(meta));
            }
            Some(Fault::Error) => Err(FunctionError::retryable(INJECTED_ERROR)),
            _ => result,
        };
        pool.give_back(context);
        match result {
            Ok(result) => {
                if let (Some(faults), None) = (&pool.faults, fault) {
                    faults.fault_free(kind, duration);
                }
                Ok((result, meta))
            }
            Err(err) => Err(err.billed(meta)),
        }
    }
}

#[async_trait]
impl Invoker for InprocInvoker {
    async fn invoke(
        &self,
        event: &StageEvent,
    ) -> Result<(StageResult, InvocationMeta), FunctionError> {
        let event = event.clone();
        self.run(event.stage.kind, |context| async move {
            handle(&context, event).await
        })
        .await
    }

    /// The stages run one after another on one instance, as in a function process.
    async fn invoke_batch(&self, batch: &BatchEvent) -> Result<BatchAnswer, FunctionError> {
        let events = batch.batch.clone();
        self.run(batch_kind(batch)?, |context| async move {
            let mut outcomes = Vec::with_capacity(events.len());
            for event in events {
                outcomes.push(handle(&context, event).await);
            }
            Ok(outcomes)
        })
        .await
    }

    fn takes_batches(&self) -> bool {
        true
    }

    async fn ready(&self) -> Result<(), FunctionError> {
        Ok(self.pool.store.ping().await?)
    }

    fn describe(&self) -> String {
        format!("inproc (concurrency {})", self.pool.options.concurrency)
    }

    fn concurrency(&self) -> Option<usize> {
        Some(self.pool.options.concurrency.max(1))
    }

    /// The handler runs in the invocation's future and writes from it, so dropping the
    /// future stops the stage; its instance is dropped with it, as a killed one would be.
    fn stops_when_dropped(&self) -> bool {
        true
    }
}
