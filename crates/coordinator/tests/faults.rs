//! Fault injection in the in-process invoker, and the coordinator surviving it with its
//! retries alone (it is not told the settings): seeded throttles, crashes, function errors
//! and stragglers, and still every query equals the monolithic forward pass and leaves no
//! key behind.

use std::sync::Arc;
use std::time::Duration;

use futures_util::future::join_all;
use seqless_coordinator::{Coordinator, CoordinatorOptions, RetryPolicy};
use seqless_functions::{InprocInvoker, InprocOptions};
use seqless_model::testing::{RandomModel, assert_same_prediction, texts};
use seqless_plan::PlanKind;
use seqless_store::MemoryStore;
use seqless_wire::faults::{FaultInjection, INJECTED_ERROR};

mod common;

struct Fixture {
    model: RandomModel,
    store: Arc<MemoryStore>,
}

fn fixture() -> Fixture {
    Fixture {
        model: RandomModel::affine("6:3:2:4,5:4:1:2", 4, 13),
        store: Arc::new(MemoryStore::new()),
    }
}

fn faulty(f: &Fixture, faults: FaultInjection) -> Arc<InprocInvoker> {
    let options = common::inproc_options(f.model.dir.path());
    Arc::new(InprocInvoker::with_faults(options, f.store.clone(), faults).unwrap())
}

fn coordinator(
    f: &Fixture,
    invoker: Arc<InprocInvoker>,
    plan: PlanKind,
    retry: RetryPolicy,
) -> Coordinator {
    let options = CoordinatorOptions {
        retry,
        ..common::options(plan, 3)
    };
    common::coordinator(&f.model, f.store.clone(), invoker, options)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queries_survive_injected_faults_with_the_monolithic_answer() {
    let f = fixture();
    let faults: FaultInjection =
        "seed=17,error=0.1,crash=0.02,throttle=0.05,delay=0.05,delay-factor=3"
            .parse()
            .unwrap();
    let invoker = faulty(&f, faults);
    let texts = texts("query under injected faults", 24, |i| 5 + 7 * i);
    let mut retries = Vec::new();
    // A resident split that crashes is run again and rebuilds its rows from the store:
    // the input, its neighbours' edges and each layer's TFiLM output stay there.
    for plan in [PlanKind::Fused, PlanKind::Paper, PlanKind::Resident] {
        let c = coordinator(&f, invoker.clone(), plan, RetryPolicy::default());
        for batch in texts.chunks(6) {
            let answers = join_all(batch.iter().map(|t| c.classify(t))).await;
            for (text, answer) in batch.iter().zip(answers) {
                let got = answer.unwrap_or_else(|e| panic!("{plan:?}: {e}"));
                let want = f.model.model.forward(text).unwrap();
                assert_same_prediction(&got.prediction, &want, &format!("{plan:?}"));
                retries.extend(got.trace.retries);
            }
        }
    }
    // The faults happened, each kind as the caller sees it on Lambda: a throttle (never
    // ran, not billed), a crash (`Runtime.ExitError`, billed) and a function error.
    let seen = |needle: &str| retries.iter().filter(|r| r.error.contains(needle)).count();
    assert!(seen("TooManyRequestsException") > 0, "{retries:#?}");
    assert!(seen("Runtime.ExitError") > 0, "{retries:#?}");
    assert!(seen(INJECTED_ERROR) > 0, "{retries:#?}");
    for r in &retries {
        assert_eq!(r.bill.billed, !r.error.contains("TooManyRequests"), "{r:?}");
    }
    assert!(f.store.live_keys().is_empty(), "{:?}", f.store.live_keys());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_fault_alone_reaches_the_caller_as_lambda_shows_it() {
    let f = fixture();
    let text = b"every invocation fails the same way";
    for (spec, needle, retryable) in [
        ("throttle=1", "TooManyRequestsException (HTTP 429)", true),
        ("crash=1", "Runtime.ExitError", true),
        ("error=1", INJECTED_ERROR, true),
    ] {
        let invoker = faulty(&f, format!("seed=1,{spec}").parse().unwrap());
        let c = coordinator(
            &f,
            invoker.clone(),
            PlanKind::Fused,
            common::quick_retries(3),
        );
        let err = c.classify(text).await.unwrap_err();
        assert_eq!(err.is_retryable(), retryable, "{spec}: {err}");
        let message = err.to_string();
        assert!(
            message.contains(needle) && message.contains("failed 3 times"),
            "{spec}: {message}"
        );
        if spec == "crash=1" {
            // A crashed instance is discarded, never reused.
            assert_eq!(invoker.idle_instances(), 0, "{spec}");
        } else if spec == "error=1" {
            // An instance that answered an error is kept warm, as Lambda keeps it.
            assert!(invoker.idle_instances() > 0, "{spec}");
        }
        assert!(f.store.live_keys().is_empty(), "{spec}");
    }
    // Stragglers are slow, not wrong.
    let invoker = faulty(&f, "seed=2,delay=1,delay-factor=2".parse().unwrap());
    let c = coordinator(&f, invoker, PlanKind::Fused, RetryPolicy::none());
    for _ in 0..2 {
        let got = c.classify(text).await.unwrap();
        assert_eq!(
            got.prediction.label,
            f.model.model.forward(text).unwrap().label
        );
        assert!(got.trace.retries.is_empty());
    }
}

#[test]
fn bad_settings_are_refused_with_the_setting_named() {
    let f = fixture();
    let options = InprocOptions {
        concurrency: 1,
        idle_timeout: Duration::from_secs(1),
        ..common::inproc_options(f.model.dir.path())
    };
    let bad = FaultInjection {
        crash_rate: 1.5,
        ..FaultInjection::default()
    };
    let err = InprocInvoker::with_faults(options, f.store.clone(), bad)
        .err()
        .expect("refused")
        .to_string();
    assert!(err.contains("crash rate 1.5"), "{err}");
}
