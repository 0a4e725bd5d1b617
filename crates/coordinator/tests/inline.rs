//! Values sent inline: the same answers as through the store, nothing of them in the store,
//! and no invocation's request or response over the payload limit.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use futures_util::future::join_all;
use proptest::prelude::*;
use seqless_coordinator::{BatchPolicy, CoordinatorOptions};
use seqless_functions::{
    BatchAnswer, BatchEvent, FunctionError, InprocInvoker, InvocationMeta, Invoker, StageEvent,
    StageResult,
};
use seqless_model::testing::{RandomModel, arch_and_text};
use seqless_model::{GateActivation, Modulation};
use seqless_plan::{PAYLOAD_RESERVE_BYTES, PlanKind, Transfer};

mod common;

use common::Fixture;

/// The in-process functions, with the JSON size of every request and response recorded.
struct Measuring {
    inner: Arc<InprocInvoker>,
    /// (request bytes, response bytes, largest inline blob either way) per invocation.
    seen: Mutex<Vec<(usize, usize, usize)>>,
    /// The stages of each batch invocation.
    batches: Mutex<Vec<usize>>,
}

impl Measuring {
    fn new(inner: Arc<InprocInvoker>) -> Arc<Self> {
        Arc::new(Self {
            inner,
            seen: Mutex::default(),
            batches: Mutex::default(),
        })
    }
}

#[async_trait]
impl Invoker for Measuring {
    async fn invoke(
        &self,
        event: &StageEvent,
    ) -> Result<(StageResult, InvocationMeta), FunctionError> {
        let request = serde_json::to_vec(event).unwrap().len();
        let (result, meta) = self.inner.invoke(event).await?;
        let response = serde_json::to_vec(&result).unwrap().len();
        let blobs = event.inline.iter().chain(&result.inline);
        let largest = blobs.map(|v| v.blob.len()).max().unwrap_or(0);
        self.seen.lock().unwrap().push((request, response, largest));
        Ok((result, meta))
    }
    async fn invoke_batch(&self, batch: &BatchEvent) -> Result<BatchAnswer, FunctionError> {
        let request = serde_json::to_vec(batch).unwrap().len();
        let (outcomes, meta) = self.inner.invoke_batch(batch).await?;
        let returned: Vec<&StageResult> = outcomes.iter().flatten().collect();
        let response = serde_json::to_vec(&returned).unwrap().len();
        let blobs = (batch.batch.iter().flat_map(|e| &e.inline))
            .chain(returned.iter().flat_map(|r| &r.inline));
        let largest = blobs.map(|v| v.blob.len()).max().unwrap_or(0);
        self.seen.lock().unwrap().push((request, response, largest));
        self.batches.lock().unwrap().push(batch.batch.len());
        Ok((outcomes, meta))
    }
    fn takes_batches(&self) -> bool {
        true
    }
    async fn ready(&self) -> Result<(), FunctionError> {
        self.inner.ready().await
    }
    fn describe(&self) -> String {
        "measuring".into()
    }
}

fn options(plan: PlanKind, splits: usize, payload_limit: u64) -> CoordinatorOptions {
    CoordinatorOptions {
        transfer: Transfer::Inline,
        payload_limit,
        inline_max_bytes: u64::MAX,
        ..common::options(plan, splits)
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// Whatever fits, at a limit from "almost nothing" to "everything": the logits of the
    /// store-only run, within the limit both ways, and no key left.
    #[test]
    fn inline_equals_store_within_the_payload_limit(
        (arch, text) in arch_and_text(common::layer_spec(), 1..4, 1..30_000),
        splits in 1usize..7,
        room in 0u64..400_000,
        cap in prop::sample::select(vec![1_000u64, 50_000, u64::MAX]),
    ) {
        let f = Fixture::new(RandomModel::new(&arch.layers, arch.embed, arch.modulation, arch.gate, arch.seed));
        let limit = PAYLOAD_RESERVE_BYTES + room;
        let rt = common::runtime();
        for plan in [PlanKind::Fused, PlanKind::Paper, PlanKind::Resident] {
            let invoker = common::invoker_with(f.model.dir.path(), f.store.clone(), splits + 2);
            let stored = common::coordinator(&f.model, f.store.clone(), invoker.clone(), common::options(plan, splits));
            let expected = rt.block_on(stored.classify(&text)).unwrap();
            let measuring = Measuring::new(invoker);
            let options = CoordinatorOptions { inline_max_bytes: cap, ..options(plan, splits, limit) };
            let inline = common::coordinator(&f.model, f.store.clone(), measuring.clone(), options);
            let got = rt.block_on(inline.classify(&text)).unwrap();
            prop_assert_eq!(&got.prediction.logits, &expected.prediction.logits, "{:?}", plan);
            for &(request, response, largest) in measuring.seen.lock().unwrap().iter() {
                prop_assert!(request as u64 <= limit && response as u64 <= limit,
                    "{:?}: request {} or response {} over {}", plan, request, response, limit);
                // A blob is a value, or rows of one, with its 48-byte header.
                prop_assert!(largest as u64 <= cap.saturating_add(48), "{:?}: {} over {}", plan, largest, cap);
            }
            prop_assert!(f.store.live_keys().is_empty(), "keys left: {:?}", f.store.live_keys());
        }
    }
}

/// Stages that share an invocation share its payload limit too: batches of queries whose
/// values each fill a good part of it stay within it both ways, with the answers of the
/// queries run alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_stay_within_the_payload_limit() {
    let f = Fixture::new(RandomModel::new(
        "16:3:2:4,16:3:1:4",
        8,
        Modulation::Affine,
        GateActivation::Sigmoid,
        5,
    ));
    let texts: Vec<Vec<u8>> = (0..6)
        .map(|q| {
            (0..6_000 + 500 * q)
                .map(|i| (i * (q + 7) % 251) as u8)
                .collect()
        })
        .collect();
    let limit = PAYLOAD_RESERVE_BYTES + 300_000;
    let alone = common::coordinator(
        &f.model,
        f.store.clone(),
        f.invoker.clone(),
        options(PlanKind::Fused, 2, limit),
    );
    let measuring = Measuring::new(f.invoker.clone());
    let batched = common::coordinator(
        &f.model,
        f.store.clone(),
        measuring.clone(),
        CoordinatorOptions {
            batch: BatchPolicy::Window {
                window: std::time::Duration::from_millis(300),
                max: 8,
            },
            ..options(PlanKind::Fused, 2, limit)
        },
    );
    let answers = join_all(texts.iter().map(|t| batched.classify(t))).await;
    for (text, answer) in texts.iter().zip(answers) {
        let want = alone.classify(text).await.unwrap();
        assert_eq!(answer.unwrap().prediction.logits, want.prediction.logits);
    }
    for &(request, response, _) in measuring.seen.lock().unwrap().iter() {
        assert!(
            request as u64 <= limit && response as u64 <= limit,
            "request {request} or response {response} over {limit}"
        );
    }
    let batches = measuring.batches.lock().unwrap();
    assert!(!batches.is_empty(), "no stages shared an invocation");
    assert!(f.store.live_keys().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_query_never_touches_the_store_and_a_long_one_still_does() {
    let f = Fixture::new(RandomModel::new(
        "16:3:2:4,16:3:1:4",
        8,
        Modulation::Affine,
        GateActivation::Sigmoid,
        5,
    ));
    let c = common::coordinator(
        &f.model,
        f.store.clone(),
        f.invoker.clone(),
        options(PlanKind::Fused, 3, seqless_plan::LAMBDA_PAYLOAD_BYTES),
    );
    let short = c.classify(&[7u8; 4096]).await.unwrap();
    assert_eq!(short.trace.bytes_moved, 0, "every value fits inline");
    assert!(short.trace.inline_bytes > 0);
    let expected = f.model.model.forward(&[7u8; 4096]).unwrap();
    assert_eq!(short.prediction.label, expected.label);
    // At 1 MB the activations (16 channels of f32 over 512 Ki rows) do not fit, the block
    // statistics and the token ids do.
    let text: Vec<u8> = (0..1 << 20).map(|i| (i * 31 % 251) as u8).collect();
    let long = c.classify(&text).await.unwrap();
    assert!(
        long.trace.bytes_moved > 0 && long.trace.inline_bytes > 0,
        "{:?}",
        long.trace
    );
    let expected = f.model.model.forward(&text).unwrap();
    for (g, e) in long.prediction.logits.iter().zip(&expected.logits) {
        assert!((g - e).abs() <= 1e-4, "{g} vs {e}");
    }
    assert!(f.store.live_keys().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_function_that_does_not_return_what_was_asked_fails_the_query_by_name() {
    /// Drops every value the function returned inline, as an older function would.
    struct Forgetful(Arc<InprocInvoker>);
    #[async_trait]
    impl Invoker for Forgetful {
        async fn invoke(
            &self,
            event: &StageEvent,
        ) -> Result<(StageResult, InvocationMeta), FunctionError> {
            let (mut result, meta) = self.0.invoke(event).await?;
            result.inline.clear();
            Ok((result, meta))
        }
        async fn ready(&self) -> Result<(), FunctionError> {
            self.0.ready().await
        }
        fn describe(&self) -> String {
            "forgetful".into()
        }
    }
    let f = Fixture::new(RandomModel::new(
        "4:3:2:2",
        3,
        Modulation::Scale,
        GateActivation::Sigmoid,
        1,
    ));
    let c = common::coordinator(
        &f.model,
        f.store.clone(),
        Arc::new(Forgetful(f.invoker.clone())),
        options(PlanKind::Fused, 2, seqless_plan::LAMBDA_PAYLOAD_BYTES),
    );
    let err = c.classify(b"hello there").await.unwrap_err().to_string();
    assert!(
        err.contains("conv") && err.contains("did not return"),
        "{err}"
    );
    assert!(f.store.live_keys().is_empty());
}
