//! The serverless pipeline equals the monolithic forward pass, moves what docs/design.md §2
//! says it moves, and leaves no key behind.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures_util::future::join_all;
use proptest::prelude::*;
use seqless_coordinator::{BatchPolicy, Coordinator, CoordinatorOptions};
use seqless_functions::{
    FunctionError, InprocInvoker, InprocOptions, InvocationMeta, Invoker, StageEvent, StageResult,
};
use seqless_model::{GateActivation, Modulation};
use seqless_plan::{Limits, PlanKind, StageKind, Transfer};
use seqless_store::{MemoryStore, TensorStore};

mod common;

use common::Fixture;
use seqless_model::testing::{RandomModel, arch_and_text};

fn fixture(
    layers: &str,
    embed: usize,
    modulation: Modulation,
    gate: GateActivation,
    seed: u64,
) -> Fixture {
    Fixture::new(RandomModel::new(layers, embed, modulation, gate, seed))
}

fn coordinator(f: &Fixture, plan: PlanKind, splits: usize) -> Coordinator {
    coordinator_with_limits(f, plan, splits, Limits::default())
}

fn coordinator_with_limits(
    f: &Fixture,
    plan: PlanKind,
    splits: usize,
    limits: Limits,
) -> Coordinator {
    coordinator_with_options(
        f,
        CoordinatorOptions {
            limits,
            ..common::options(plan, splits)
        },
    )
}

fn coordinator_with_options(f: &Fixture, options: CoordinatorOptions) -> Coordinator {
    Coordinator::new(
        f.model.model.config.clone(),
        f.model.fingerprint.clone(),
        f.store.clone(),
        f.invoker.clone(),
        options,
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 40, ..ProptestConfig::default() })]

    #[test]
    fn serverless_equals_monolithic(
        (arch, text) in arch_and_text(common::layer_spec(), 1..5, 1..20_000),
        splits in 1usize..17,
    ) {
        let f = fixture(&arch.layers, arch.embed, arch.modulation, arch.gate, arch.seed);
        let expected = f.model.model.forward(&text).unwrap();
        let rt = common::runtime();
        // A resident query's splits run at once: a pool with room for all of them, a serial
        // stage and a hedge.
        let resident = Coordinator::new(
            f.model.model.config.clone(),
            f.model.fingerprint.clone(),
            f.store.clone(),
            common::invoker_with(f.model.dir.path(), f.store.clone(), splits + 2),
            common::options(PlanKind::Resident, splits),
        );
        for plan in [PlanKind::Fused, PlanKind::Paper, PlanKind::Resident] {
            let c = match plan {
                PlanKind::Resident => resident.clone(),
                _ => coordinator(&f, plan, splits),
            };
            let got = rt.block_on(c.classify(&text)).unwrap();
            let residents = got.trace.invocations.iter().filter(|i| i.stage == StageKind::Resident).count();
            prop_assert_eq!(residents > 0, plan == PlanKind::Resident);
            prop_assert_eq!(&got.prediction.label, &expected.label);
            prop_assert_eq!(got.prediction.padded_len, expected.padded_len);
            for (g, e) in got.prediction.logits.iter().zip(&expected.logits) {
                prop_assert!((g - e).abs() <= 1e-4, "{:?}: {:?} vs {:?}", plan, got.prediction.logits, expected.logits);
            }
            prop_assert!(f.store.live_keys().is_empty(), "keys left: {:?}", f.store.live_keys());
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, ..ProptestConfig::default() })]

    /// Queries in flight together, whose stages share invocations, get exactly the logits
    /// each gets alone, whatever the plan, the splits and the transfer; each pays a share
    /// of what it shared, and nothing is left in the store.
    #[test]
    fn batched_queries_equal_unbatched_ones(
        (arch, text) in arch_and_text(common::layer_spec(), 1..4, 1..8_000),
        others in prop::collection::vec(prop::collection::vec(any::<u8>(), 1..8_000), 2..5),
        splits in 1usize..5,
        paper in any::<bool>(),
        inline in any::<bool>(),
    ) {
        let f = fixture(&arch.layers, arch.embed, arch.modulation, arch.gate, arch.seed);
        let plan = if paper { PlanKind::Paper } else { PlanKind::Fused };
        let transfer = if inline { Transfer::Inline } else { Transfer::Store };
        let texts: Vec<Vec<u8>> = std::iter::once(text).chain(others).collect();
        let options = CoordinatorOptions { transfer, ..common::options(plan, splits) };
        let alone = coordinator_with_options(&f, options.clone());
        let batched = coordinator_with_options(&f, CoordinatorOptions {
            batch: BatchPolicy::Window { window: Duration::from_millis(200), max: 8 },
            ..options
        });
        prop_assert!(batched.batches());
        let rt = common::runtime();
        let want: Vec<_> = texts
            .iter()
            .map(|t| rt.block_on(alone.classify(t)).unwrap())
            .collect();
        let got = rt.block_on(join_all(texts.iter().map(|t| batched.classify(t))));
        let mut shared = 0;
        for (got, want) in got.into_iter().zip(&want) {
            let got = got.unwrap();
            prop_assert_eq!(&got.prediction.logits, &want.prediction.logits);
            let trace = &got.trace;
            let losers = trace.hedges.iter().map(|h| h.bill).chain(trace.retries.iter().map(|r| r.bill));
            let shares: f64 = trace.invocations.iter().map(|i| 1.0 / f64::from(i.batch)).sum::<f64>()
                + losers.filter(|b| b.billed).map(|b| 1.0 / f64::from(b.shared_by)).sum::<f64>();
            prop_assert!((trace.requests - shares).abs() < 1e-9, "{:?}", trace);
            shared += trace.invocations.iter().filter(|i| i.batch > 1).count();
        }
        // The first query polled is alone in flight when its first stages are ready, so they
        // leave at once; the others' wait for each other.
        prop_assert!(shared > 0, "no stage shared an invocation");
        prop_assert!(f.store.live_keys().is_empty(), "keys left: {:?}", f.store.live_keys());
    }
}

/// Header bytes per tensor read or written (the blob format's fixed header).
const HEADER: u64 = seqless_store::tensor::HEADER_LEN as u64;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fused_serial_stages_move_block_stats_and_paper_moves_activations() {
    let f = fixture(
        "8:3:2:4,6:4:1:2,5:3:2:2",
        4,
        Modulation::Affine,
        GateActivation::Sigmoid,
        5,
    );
    let text = vec![b'x'; 9000];
    for splits in [1, 3, 8] {
        let fused = coordinator(&f, PlanKind::Fused, splits)
            .classify(&text)
            .await
            .unwrap();
        let lengths = f
            .model
            .model
            .config
            .layer_lengths(fused.prediction.padded_len);
        for inv in fused
            .trace
            .invocations
            .iter()
            .filter(|i| i.stage.is_serial())
        {
            let cfg = &f.model.model.config.layers[inv.layer];
            let bc4 = (lengths[inv.layer] / cfg.block_len * cfg.channels * 4) as u64;
            let s = fused.trace.splits[inv.layer] as u64;
            let moved = inv.bytes_in + inv.bytes_out;
            // At most 2·B·C·4 per layer plus one header per tensor touched.
            assert!(
                moved <= 2 * bc4 + HEADER * (2 * s + 1),
                "{inv:?}: {moved} > 2*{bc4}"
            );
        }
        let paper = coordinator(&f, PlanKind::Paper, splits)
            .classify(&text)
            .await
            .unwrap();
        for inv in paper
            .trace
            .invocations
            .iter()
            .filter(|i| i.stage == StageKind::Tfilm)
        {
            let whole =
                (lengths[inv.layer] * f.model.model.config.layers[inv.layer].channels * 4) as u64;
            assert!(
                inv.bytes_in >= whole && inv.bytes_out >= whole,
                "{inv:?} moves less than {whole}"
            );
        }
        assert!(paper.trace.serial_bytes > fused.trace.serial_bytes);
        assert_eq!(paper.prediction.label, fused.prediction.label);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trace_records_cold_then_warm_and_billing() {
    let f = fixture("4:3:2:2", 3, Modulation::Scale, GateActivation::Sigmoid, 9);
    let c = coordinator(&f, PlanKind::Fused, 2);
    let first = c.classify(b"hello world, hello serverless").await.unwrap();
    assert!(
        first
            .trace
            .invocations
            .iter()
            .any(|i| i.cold && i.init_ms > 0.0)
    );
    let second = c.classify(b"hello again").await.unwrap();
    assert!(second.trace.invocations.iter().any(|i| !i.cold));
    for inv in &second.trace.invocations {
        assert!(inv.billed_ms as f64 >= inv.duration_ms && inv.billed_ms >= 1);
    }
    assert!(second.trace.billed_gb_s > 0.0 && second.trace.cost_usd > 0.0);
    // Requests alone are $0.20 per million.
    assert!(second.trace.cost_usd >= second.trace.invocations.len() as f64 * 0.2e-6);
}

/// A real invoker that fails one stage kind: a failure in the middle of a query.
struct FailingStage {
    inner: Arc<InprocInvoker>,
    fail: StageKind,
}

#[async_trait]
impl Invoker for FailingStage {
    async fn invoke(
        &self,
        event: &StageEvent,
    ) -> Result<(StageResult, InvocationMeta), FunctionError> {
        if event.stage.kind == self.fail {
            return Err(FunctionError::permanent("injected failure"));
        }
        self.inner.invoke(event).await
    }
    async fn ready(&self) -> Result<(), FunctionError> {
        self.inner.ready().await
    }
    fn describe(&self) -> String {
        "failing".into()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_query_leaves_no_keys_and_names_the_stage() {
    let f = fixture(
        "4:3:2:2,4:3:1:2",
        3,
        Modulation::Scale,
        GateActivation::Sigmoid,
        2,
    );
    for fail in [StageKind::Tfilm, StageKind::Head] {
        let invoker = Arc::new(FailingStage {
            inner: f.invoker.clone(),
            fail,
        });
        let c = Coordinator::new(
            f.model.model.config.clone(),
            f.model.fingerprint.clone(),
            f.store.clone(),
            invoker,
            CoordinatorOptions::default(),
        );
        let err = c.classify(&[b'a'; 3000]).await.unwrap_err().to_string();
        assert!(
            err.contains(fail.as_str()) && err.contains("injected failure"),
            "{err}"
        );
        assert!(
            f.store.live_keys().is_empty(),
            "keys left after failure: {:?}",
            f.store.live_keys()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_refused_before_any_work() {
    let f = fixture("4:3:2:2", 3, Modulation::Scale, GateActivation::Sigmoid, 2);
    let c = coordinator(&f, PlanKind::Fused, 2);
    assert!(
        c.classify(b"")
            .await
            .unwrap_err()
            .to_string()
            .contains("empty")
    );
    assert!(f.store.live_keys().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plan_over_the_stores_value_bound_is_refused_before_any_work() {
    let f = fixture("4:3:2:2", 3, Modulation::Scale, GateActivation::Sigmoid, 2);
    // 100 bytes: 50 rows of 4 channels, 800 bytes as one paper-plan value.
    let limits = Limits {
        max_value_bytes: Some(400),
        ..Limits::default()
    };
    let c = coordinator_with_limits(&f, PlanKind::Paper, 25, limits);
    let err = c.classify(&[b'x'; 100]).await.unwrap_err();
    assert!(
        matches!(
            err,
            seqless_coordinator::CoordinatorError::Plan(seqless_plan::PlanError::Value {
                bytes: 800,
                limit: 400,
                ..
            })
        ),
        "{err}"
    );
    assert!(err.to_string().contains("use the fused plan"), "{err}");
    assert!(f.store.live_keys().is_empty());
    // The fused plan stores only block statistics here, and runs.
    let c = coordinator_with_limits(&f, PlanKind::Fused, 25, limits);
    let got = c.classify(&[b'x'; 100]).await.unwrap();
    let want = f.model.model.forward(&[b'x'; 100]).unwrap();
    assert_eq!(got.prediction.label, want.label);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_instances_are_reaped() {
    let m = RandomModel::new("4:3:2:2", 3, Modulation::Scale, GateActivation::Sigmoid, 1);
    let store: Arc<dyn TensorStore> = Arc::new(MemoryStore::new());
    let options = InprocOptions {
        concurrency: 2,
        idle_timeout: Duration::from_millis(200),
        ..common::inproc_options(m.dir.path())
    };
    let invoker = Arc::new(InprocInvoker::new(options, store.clone()));
    let c = Coordinator::new(
        m.model.config.clone(),
        m.fingerprint.clone(),
        store,
        invoker.clone(),
        common::options(PlanKind::Fused, 2),
    );
    c.classify(&[b'q'; 500]).await.unwrap();
    assert!(invoker.idle_instances() >= 1);
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(invoker.idle_instances(), 0);
}
