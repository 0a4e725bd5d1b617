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
use seqless_coordinator::{
    Coordinator, CoordinatorError, CoordinatorOptions, HedgePolicy, RetryPolicy,
};
use seqless_functions::{
    ErrorKind, FunctionError, InprocInvoker, InvocationMeta, Invoker, StageEvent, StageResult,
};
use seqless_model::testing::{RandomModel, assert_same_prediction};
use seqless_plan::PlanKind;

mod common;

use common::Fixture;

fn fixture() -> Fixture {
    Fixture::new(RandomModel::affine("5:3:2:2,4:3:1:2", 4, 7))
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

/// The fixture, its invoker wrapped to fail as a test says, and a coordinator over that.
struct Setup {
    f: Fixture,
    flaky: Arc<Flaky>,
    c: Coordinator,
}

impl Setup {
    fn new(failing: Failing, retry: RetryPolicy) -> Self {
        Self::with_deadline(failing, retry, CoordinatorOptions::default().deadline)
    }

    /// Hedging is off: these tests count every attempt, and a duplicate would be one more.
    fn with_deadline(failing: Failing, retry: RetryPolicy, deadline: Duration) -> Self {
        let f = fixture();
        let flaky = Flaky::new(f.invoker.clone(), failing);
        let options = CoordinatorOptions {
            retry,
            deadline,
            hedge: HedgePolicy::Off,
            ..common::options(PlanKind::Fused, 3)
        };
        let c = common::coordinator(&f.model, f.store.clone(), flaky.clone(), options);
        Self { f, flaky, c }
    }

    /// Runs a query that fails; checks that it failed as `retryable` says, that each stage
    /// it reached was invoked `attempts` times (so no later phase started), and that no key
    /// was left.
    async fn fails_after(&self, attempts: u32, text: &[u8], retryable: bool) -> CoordinatorError {
        let err = self.c.classify(text).await.unwrap_err();
        assert_eq!(err.is_retryable(), retryable, "{err}");
        let made = self.flaky.attempts.lock().unwrap();
        assert!(made.values().all(|&n| n == attempts), "{made:?}");
        let live = self.f.store.live_keys();
        assert!(live.is_empty(), "{live:?}");
        err
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transient_failures_are_retried_and_the_answer_is_unchanged() {
    let Setup { f, flaky, c } = Setup::new(Failing::FirstAttempts(2), common::quick_retries(4));
    let text = "a query retried stage by stage ".repeat(20);
    let want = f.model.model.forward(text.as_bytes()).unwrap();
    let got = c.classify(text.as_bytes()).await.unwrap();
    assert_same_prediction(&got.prediction, &want, "retried");
    let trace = &got.trace;
    let stages = trace.invocations.len();
    // Every stage failed twice, then succeeded on its third attempt.
    assert_eq!(trace.retries.len(), 2 * stages);
    assert_eq!(flaky.total.load(Ordering::SeqCst) as usize, 3 * stages);
    assert!(
        trace
            .retries
            .iter()
            .all(|r| r.bill.billed && r.bill.billed_ms >= 1)
    );
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
    let s = Setup::new(Failing::Always, common::quick_retries(3));
    let err = s.fails_after(3, b"never answered", true).await;
    let text = err.to_string();
    assert!(
        text.contains("failed 3 times") && text.contains("injected crash"),
        "{text}"
    );
    // Only the first phase's stages ran.
    let first_phase = s.flaky.attempts.lock().unwrap().len() as u32;
    assert_eq!(s.flaky.total.load(Ordering::SeqCst), 3 * first_phase);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn permanent_failures_are_not_retried() {
    let s = Setup::new(Failing::Permanently, common::quick_retries(4));
    let err = s.fails_after(1, b"refused", false).await;
    assert!(!err.to_string().contains("times"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_retry_starts_past_the_deadline() {
    // Backoffs of up to a second against a deadline already passed: each stage is tried
    // once, however many attempts the policy would allow.
    let retry = RetryPolicy {
        max_attempts: 1000,
        base_backoff: Duration::from_secs(1),
        max_backoff: Duration::from_secs(1),
    };
    let s = Setup::with_deadline(Failing::Always, retry, Duration::ZERO);
    s.fails_after(1, b"out of time", true).await;
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
