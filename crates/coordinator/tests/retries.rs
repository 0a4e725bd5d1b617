//! The coordinator's retries: transient stage failures are tried again and the query still
//! equals the monolithic forward pass, with the failed attempts and their cost in the
//! trace; permanent failures fail at once; retries stop at the attempt bound and at the
//! deadline; and every outcome deletes the query's keys.
//!
//! The failures come from a wrapper around the real in-process invoker that lets the real
//! handler run (so the failed attempt has written its outputs, as a crash after the work
//! would) and then reports an error, the at-least-once case retries must survive.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use seqless_coordinator::{Coordinator, CoordinatorOptions, RetryPolicy};
use seqless_functions::{
    ErrorKind, FunctionError, InprocInvoker, InprocOptions, InvocationMeta, Invoker,
    ModelFingerprint, StageEvent, StageResult,
};
use seqless_model::testing::{config, random, write_model};
use seqless_model::{GateActivation, Modulation, TfilmModel};
use seqless_plan::{PlanKind, Splits};
use seqless_store::MemoryStore;

struct Fixture {
    _dir: tempfile::TempDir,
    model: TfilmModel,
    fingerprint: ModelFingerprint,
    store: Arc<MemoryStore>,
    invoker: Arc<InprocInvoker>,
}

fn fixture() -> Fixture {
    let cfg = config(
        4,
        "5:3:2:2,4:3:1:2",
        Modulation::Affine,
        GateActivation::Sigmoid,
        3,
    );
    let dir = tempfile::tempdir().unwrap();
    write_model(dir.path(), &cfg, &random(&cfg, 7, 0.8));
    let (model, fingerprint) = TfilmModel::load_fingerprinted(dir.path()).unwrap();
    let store = Arc::new(MemoryStore::new());
    let invoker = Arc::new(InprocInvoker::new(
        InprocOptions {
            model_dir: dir.path().to_path_buf(),
            concurrency: 4,
            idle_timeout: Duration::from_secs(60),
            memory_mb: 512,
            ttl: Duration::from_secs(60),
        },
        store.clone(),
    ));
    Fixture {
        _dir: dir,
        model,
        fingerprint,
        store,
        invoker,
    }
}

/// How the wrapper fails each stage.
#[derive(Clone, Copy)]
enum Failing {
    /// The first `n` attempts of every stage fail retryably, after running.
    FirstAttempts(u32),
    /// Every attempt fails retryably, after running.
    Always,
    /// Every attempt fails permanently, before running.
    Permanently,
}

/// The real in-process invoker, whose answers are replaced by failures as `failing` says.
struct Flaky {
    inner: Arc<InprocInvoker>,
    failing: Failing,
    /// Attempts so far, by stage (kind, layer, split).
    attempts: Mutex<HashMap<(String, usize, usize), u32>>,
    total: AtomicU32,
}

impl Flaky {
    fn new(inner: Arc<InprocInvoker>, failing: Failing) -> Arc<Self> {
        Arc::new(Self {
            inner,
            failing,
            attempts: Mutex::default(),
            total: AtomicU32::new(0),
        })
    }
}

#[async_trait]
impl Invoker for Flaky {
    async fn invoke(
        &self,
        event: &StageEvent,
    ) -> Result<(StageResult, InvocationMeta), FunctionError> {
        self.total.fetch_add(1, Ordering::SeqCst);
        let stage = &event.stage;
        let attempt = {
            let mut attempts = self.attempts.lock().unwrap();
            let n = attempts
                .entry((stage.kind.as_str().to_owned(), stage.layer, stage.split))
                .or_default();
            *n += 1;
            *n
        };
        let fail_after_running = match self.failing {
            Failing::FirstAttempts(n) => attempt <= n,
            Failing::Always => true,
            Failing::Permanently => {
                return Err(FunctionError::permanent("injected permanent failure"));
            }
        };
        let (result, meta) = self.inner.invoke(event).await?;
        if fail_after_running {
            // As a crash after the work: the outputs are written, the answer is lost.
            Err(FunctionError::retryable("injected crash after the work").billed(meta))
        } else {
            Ok((result, meta))
        }
    }
    async fn ready(&self) -> Result<(), FunctionError> {
        self.inner.ready().await
    }
    fn describe(&self) -> String {
        "flaky".into()
    }
}

fn coordinator(f: &Fixture, invoker: Arc<Flaky>, retry: RetryPolicy) -> Coordinator {
    coordinator_with_deadline(f, invoker, retry, CoordinatorOptions::default().deadline)
}

fn coordinator_with_deadline(
    f: &Fixture,
    invoker: Arc<Flaky>,
    retry: RetryPolicy,
    deadline: Duration,
) -> Coordinator {
    Coordinator::new(
        f.model.config.clone(),
        f.fingerprint.clone(),
        f.store.clone(),
        invoker,
        CoordinatorOptions {
            plan: PlanKind::Fused,
            splits: Splits::Fixed(3),
            retry,
            deadline,
            ..CoordinatorOptions::default()
        },
    )
}

/// Short backoffs, so the tests do not wait; the bound is what is under test.
fn quick(max_attempts: u32) -> RetryPolicy {
    RetryPolicy {
        max_attempts,
        base_backoff: Duration::from_millis(1),
        max_backoff: Duration::from_millis(5),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transient_failures_are_retried_and_the_answer_is_unchanged() {
    let f = fixture();
    let text = "a query retried stage by stage ".repeat(20);
    let want = f.model.forward(text.as_bytes()).unwrap();
    let flaky = Flaky::new(f.invoker.clone(), Failing::FirstAttempts(2));
    let c = coordinator(&f, flaky.clone(), quick(4));
    let got = c.classify(text.as_bytes()).await.unwrap();
    assert_eq!(got.prediction.label, want.label);
    for (g, w) in got.prediction.logits.iter().zip(&want.logits) {
        assert!(
            (g - w).abs() <= 1e-4,
            "{:?} vs {:?}",
            got.prediction.logits,
            want.logits
        );
    }
    let trace = &got.trace;
    let stages = trace.invocations.len();
    // Every stage failed twice, then succeeded on its third attempt.
    assert_eq!(trace.retries.len(), 2 * stages);
    assert_eq!(flaky.total.load(Ordering::SeqCst) as usize, 3 * stages);
    assert!(trace.retries.iter().all(|r| r.billed && r.billed_ms >= 1));
    assert!(
        trace
            .retries
            .iter()
            .all(|r| r.error.contains("injected crash")),
        "{:?}",
        trace.retries
    );
    // The failed attempts are billed: they are part of the price, and their share is shown.
    assert!(trace.retry_cost_usd > 0.0 && trace.retry_cost_usd < trace.cost_usd);
    assert_eq!(trace.usage().invocations.len(), 3 * stages);
    assert!(f.store.live_keys().is_empty(), "{:?}", f.store.live_keys());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_stop_at_the_attempt_bound() {
    let f = fixture();
    let flaky = Flaky::new(f.invoker.clone(), Failing::Always);
    let c = coordinator(&f, flaky.clone(), quick(3));
    let err = c.classify(b"never answered").await.unwrap_err();
    assert!(err.is_retryable(), "{err}");
    let text = err.to_string();
    assert!(
        text.contains("failed 3 times") && text.contains("injected crash"),
        "{text}"
    );
    // The first phase's stages each ran three times; no later phase started.
    let first_phase = flaky.attempts.lock().unwrap().len() as u32;
    assert_eq!(flaky.total.load(Ordering::SeqCst), 3 * first_phase);
    assert!(f.store.live_keys().is_empty(), "{:?}", f.store.live_keys());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn permanent_failures_are_not_retried() {
    let f = fixture();
    let flaky = Flaky::new(f.invoker.clone(), Failing::Permanently);
    let c = coordinator(&f, flaky.clone(), quick(4));
    let err = c.classify(b"refused").await.unwrap_err();
    assert!(!err.is_retryable(), "{err}");
    assert!(!err.to_string().contains("times"), "{err}");
    let attempts = flaky.attempts.lock().unwrap();
    assert!(attempts.values().all(|&n| n == 1), "{attempts:?}");
    assert!(f.store.live_keys().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_retry_starts_past_the_deadline() {
    let f = fixture();
    let flaky = Flaky::new(f.invoker.clone(), Failing::Always);
    // Backoffs of up to a second against a deadline already passed: each stage is tried
    // once, however many attempts the policy would allow.
    let retry = RetryPolicy {
        max_attempts: 1000,
        base_backoff: Duration::from_secs(1),
        max_backoff: Duration::from_secs(1),
    };
    let c = coordinator_with_deadline(&f, flaky.clone(), retry, Duration::ZERO);
    let err = c.classify(b"out of time").await.unwrap_err();
    assert!(err.is_retryable(), "{err}");
    let attempts = flaky.attempts.lock().unwrap();
    assert!(attempts.values().all(|&n| n == 1), "{attempts:?}");
    assert!(f.store.live_keys().is_empty());
}

#[test]
fn backoff_is_full_jitter_under_a_doubling_cap() {
    let policy = RetryPolicy {
        max_attempts: 10,
        base_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(100),
    };
    for (retry, cap_ms) in [(1, 10), (2, 20), (3, 40), (4, 80), (5, 100), (40, 100)] {
        let draws: Vec<Duration> = (0..200).map(|_| policy.backoff(retry)).collect();
        let cap = Duration::from_millis(cap_ms);
        assert!(draws.iter().all(|d| *d <= cap), "retry {retry}: {draws:?}");
        // Jittered: spread over the range, not one fixed wait.
        assert!(draws.iter().any(|d| *d < cap / 2), "retry {retry}");
        assert!(draws.iter().any(|d| *d > cap / 2), "retry {retry}");
    }
    assert_eq!(RetryPolicy::none().max_attempts, 1);
    assert_eq!(RetryPolicy::default().max_attempts, 6);
    assert_eq!(
        CoordinatorOptions::default().deadline,
        Duration::from_secs(30)
    );
    assert_eq!(ErrorKind::Retryable, FunctionError::retryable("x").kind());
}
