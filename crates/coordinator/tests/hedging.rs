//! Hedged invocations against stragglers: a stage held back far behind its siblings (an
//! injected delay of many times its function's median) gets a duplicate, the first answer
//! wins, and the answer still equals the monolithic forward pass. The hedge and what its
//! loser cost are in the trace; a loser that dropping cannot stop (a platform's) is awaited
//! before the query's keys are deleted; with hedging off nothing is duplicated.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use seqless_coordinator::{
    Coordinator, CoordinatorOptions, HedgePolicy, HedgeRecord, HedgeWinner, LoserFate,
};
use seqless_functions::{
    FunctionError, InprocInvoker, InprocOptions, InvocationMeta, Invoker, StageEvent, StageResult,
};
use seqless_model::testing::{RandomModel, assert_same_prediction, texts};
use seqless_plan::{PlanKind, StageKind};
use seqless_store::MemoryStore;
use seqless_wire::faults::FaultInjection;

mod common;

use common::Fixture;

/// One in ten invocations straggles by 300 times its function's median: far past any
/// threshold, so that a straggling conv stage is always hedged.
const STRAGGLERS: &str = "seed=11,delay=0.1,delay-factor=300";

/// Duplicates at 3x the siblings' median, from 5 ms: above the jitter of a stage of this
/// small model, far below the stragglers' delay; as many as there are stragglers.
const HEDGE: HedgePolicy = HedgePolicy::After {
    factor: 3.0,
    floor: Duration::from_millis(5),
    budget: 1.0,
};

/// The model's functions, with the stragglers injected.
fn fixture() -> Fixture {
    let model = RandomModel::affine("6:3:2:4,5:4:1:2", 4, 31);
    let store = Arc::new(MemoryStore::new());
    let faults: FaultInjection = STRAGGLERS.parse().unwrap();
    let options = common::inproc_options(model.dir.path());
    let invoker = InprocInvoker::with_faults(options, store.clone(), faults).unwrap();
    Fixture {
        model,
        store,
        invoker: Arc::new(invoker),
    }
}

fn coordinator(f: &Fixture, invoker: Arc<dyn Invoker>, hedge: HedgePolicy) -> Coordinator {
    let options = CoordinatorOptions {
        hedge,
        ..common::options(PlanKind::Fused, 3)
    };
    common::coordinator(&f.model, f.store.clone(), invoker, options)
}

/// Runs `count` queries one after another, checks each against the monolithic forward
/// pass and the store for keys left, and returns every hedge.
async fn hedges_of(f: &Fixture, c: &Coordinator, count: usize) -> Vec<HedgeRecord> {
    let mut hedges = Vec::new();
    for text in texts("a query among stragglers", count, |i| 20 + i) {
        let got = c.classify(&text).await.unwrap();
        let want = f.model.model.forward(&text).unwrap();
        assert_same_prediction(&got.prediction, &want, "hedged");
        assert!(f.store.live_keys().is_empty(), "{:?}", f.store.live_keys());
        let trace = &got.trace;
        let lost: usize = trace.hedges.iter().filter(|h| h.bill.billed).count();
        // The losers are billed: in the price, with their share shown, and in the usage.
        assert_eq!(
            trace.usage().invocations.len(),
            trace.invocations.len() + trace.retries.iter().filter(|r| r.bill.billed).count() + lost
        );
        if lost > 0 {
            assert!(trace.hedge_cost_usd > 0.0 && trace.hedge_cost_usd < trace.cost_usd);
        } else {
            assert_eq!(trace.hedge_cost_usd, 0.0);
        }
        hedges.extend(trace.hedges.iter().cloned());
    }
    hedges
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_straggling_stage_is_hedged_and_the_duplicate_answers() {
    let f = fixture();
    let c = coordinator(&f, f.invoker.clone(), HEDGE);
    let hedges = hedges_of(&f, &c, 40).await;
    // Only conv stages have siblings to be measured against.
    assert!(hedges.iter().all(|h| !h.stage.is_serial()), "{hedges:#?}");
    let won = hedges
        .iter()
        .filter(|h| h.winner == HedgeWinner::Duplicate)
        .count();
    assert!(won > 0, "no duplicate answered first: {hedges:#?}");
    for h in &hedges {
        assert!(h.after_ms >= 5.0, "{h:?}");
        // In process, the loser is stopped when the winner answers.
        if matches!(h.winner, HedgeWinner::Original | HedgeWinner::Duplicate) {
            assert_eq!(h.loser, LoserFate::Cancelled, "{h:?}");
            assert!(h.bill.billed && h.bill.memory_mb == 512, "{h:?}");
        }
    }
}

/// A budget bounds the duplicates however many stages straggle: its burst of 4, then one
/// per hundred stage invocations, here far fewer than the stragglers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hedge_budget_bounds_the_duplicates() {
    let f = fixture();
    let unbounded = coordinator(&f, f.invoker.clone(), HEDGE);
    let stragglers_hedged = hedges_of(&f, &unbounded, 40).await.len();
    let budget = 0.01;
    let bounded = coordinator(
        &f,
        f.invoker.clone(),
        HedgePolicy::After {
            factor: 3.0,
            floor: Duration::from_millis(5),
            budget,
        },
    );
    let mut hedgeable = 0;
    let mut hedged = 0;
    for text in texts("a query among stragglers", 40, |i| 20 + i) {
        let got = bounded.classify(&text).await.unwrap();
        let want = f.model.model.forward(&text).unwrap();
        assert_same_prediction(&got.prediction, &want, "under a hedge budget");
        assert!(f.store.live_keys().is_empty());
        hedgeable += got.trace.invocations.len() + got.trace.retries.len();
        hedged += got.trace.hedges.len();
    }
    let allowed = 4.0 + budget * hedgeable as f64;
    assert!(
        (hedged as f64) <= allowed,
        "{hedged} duplicates over {hedgeable} invocations, budget {budget}"
    );
    assert!(
        stragglers_hedged as f64 > allowed,
        "the stragglers ({stragglers_hedged} hedged without a budget) must outnumber what the budget allows ({allowed})"
    );
}

/// A resident split that straggles holds up its siblings at every TFiLM stage, and its own
/// answer comes only at the query's end: it is told from its siblings by the block
/// statistics it has not published yet, and its duplicate rebuilds its rows from the store.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_straggling_resident_split_is_hedged_from_its_progress() {
    let f = fixture();
    let faults: FaultInjection = STRAGGLERS.parse().unwrap();
    let options = InprocOptions {
        // Three splits, a serial stage and a duplicate.
        concurrency: 5,
        ..common::inproc_options(f.model.dir.path())
    };
    let invoker = InprocInvoker::with_faults(options, f.store.clone(), faults).unwrap();
    let options = CoordinatorOptions {
        hedge: HEDGE,
        ..common::options(PlanKind::Resident, 3)
    };
    let c = common::coordinator(&f.model, f.store.clone(), Arc::new(invoker), options);
    let hedges = hedges_of(&f, &c, 40).await;
    let resident: Vec<&HedgeRecord> = hedges
        .iter()
        .filter(|h| h.stage == StageKind::Resident)
        .collect();
    assert!(
        resident.iter().any(|h| h.winner == HedgeWinner::Duplicate),
        "no duplicate of a resident split answered first: {hedges:#?}"
    );
}

/// The real in-process invoker, presented as a platform whose invocations run on when
/// their caller drops them, as the Invoke API's do.
struct Unstoppable(Arc<InprocInvoker>);

#[async_trait]
impl Invoker for Unstoppable {
    async fn invoke(
        &self,
        event: &StageEvent,
    ) -> Result<(StageResult, InvocationMeta), FunctionError> {
        let inner = self.0.clone();
        let event = event.clone();
        // Spawned, so that dropping this future leaves the invocation running.
        tokio::spawn(async move { inner.invoke(&event).await })
            .await
            .expect("the invocation panicked")
    }
    async fn ready(&self) -> Result<(), FunctionError> {
        self.0.ready().await
    }
    fn describe(&self) -> String {
        "unstoppable".into()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_loser_that_runs_on_is_awaited_before_the_keys_are_deleted() {
    let f = fixture();
    let c = coordinator(&f, Arc::new(Unstoppable(f.invoker.clone())), HEDGE);
    // `hedges_of` checks after every query that no key is left: a loser still running at
    // the deletion would write its outputs after it.
    let hedges = hedges_of(&f, &c, 40).await;
    let awaited: Vec<&HedgeRecord> = hedges
        .iter()
        .filter(|h| h.loser == LoserFate::Awaited)
        .collect();
    assert!(!awaited.is_empty(), "{hedges:#?}");
    assert!(
        awaited
            .iter()
            .all(|h| h.bill.billed && h.bill.billed_ms >= 1),
        "{awaited:#?}"
    );
    assert!(f.store.live_keys().is_empty(), "{:?}", f.store.live_keys());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_hedging_off_nothing_is_duplicated() {
    let f = fixture();
    let c = coordinator(&f, f.invoker.clone(), HedgePolicy::Off);
    let hedges = hedges_of(&f, &c, 12).await;
    assert!(hedges.is_empty(), "{hedges:#?}");
}
