//! At-least-once execution is safe (docs/design.md §4, "Protocol and idempotence"): every
//! stage of a query, run through the real handler twice in a row and then twice at once,
//! writes the same keys with the same tensors (within 1e-4), and the query's logits still
//! equal the monolithic forward pass. This is what makes the coordinator's retries, and a
//! crashed attempt whose outputs were already written, harmless. Checked on the memory
//! store and on a real redis-server.

use std::sync::Arc;
use std::time::Duration;

use seqless_functions::{FunctionContext, StageEvent, StageResult, handle};
use seqless_model::testing::{LOGIT_TOLERANCE as TOLERANCE, RandomModel};
use seqless_model::tokenizer;
use seqless_plan::{INPUT_KEY, Limits, Plan, PlanKind, Splits, Stage, StageOp, plan};
use seqless_store::testing::RedisServer;
use seqless_store::{MemoryStore, QueryId, StoreOptions, StoredTensor, TensorStore, open_store};

/// Every tensor a stage wrote, by key, as read back from the store.
async fn written(
    store: &dyn TensorStore,
    query: QueryId,
    stage: &Stage,
) -> Vec<(String, StoredTensor)> {
    let mut tensors = Vec::new();
    for key in stage.op.written_keys() {
        let fetched = store
            .get(&query.key(&key))
            .await
            .unwrap_or_else(|e| panic!("{key} of {} stage: {e}", stage.kind.as_str()));
        tensors.push((key, fetched.tensor));
    }
    tensors
}

fn assert_same_tensors(a: &[(String, StoredTensor)], b: &[(String, StoredTensor)], what: &str) {
    assert_eq!(a.len(), b.len(), "{what}");
    for ((ka, ta), (kb, tb)) in a.iter().zip(b) {
        assert_eq!(ka, kb, "{what}");
        assert_eq!(ta.shape(), tb.shape(), "{what}: {ka}");
        let (va, vb) = (ta.as_f32().unwrap(), tb.as_f32().unwrap());
        for (x, y) in va.iter().zip(vb) {
            assert!(
                (x - y).abs() <= TOLERANCE,
                "{what}: {ka} differs: {x} vs {y}"
            );
        }
    }
}

fn assert_same_logits(got: &StageResult, want: &[f32], what: &str) {
    let logits = got.logits.as_ref().expect("the last stage returns logits");
    assert_eq!(logits.len(), want.len(), "{what}");
    for (g, w) in logits.iter().zip(want) {
        assert!((g - w).abs() <= TOLERANCE, "{what}: {logits:?} vs {want:?}");
    }
}

/// A three-layer affine model's functions over a store, and a text with its monolithic
/// logits.
struct Setup {
    _dir: tempfile::TempDir,
    context: Arc<FunctionContext>,
    text: String,
    want: Vec<f32>,
}

impl Setup {
    fn new(store: Arc<dyn TensorStore>) -> Self {
        let RandomModel {
            dir,
            model,
            fingerprint,
        } = RandomModel::affine("6:3:2:4,5:4:1:2,4:3:2:2", 4, 5);
        let text = "Idempotent stages make retries safe. ".repeat(30);
        let want = model.forward(text.as_bytes()).unwrap().logits;
        let context = Arc::new(FunctionContext {
            model: Arc::new(model),
            fingerprint,
            store,
            ttl: Duration::from_secs(60),
        });
        Self {
            _dir: dir,
            context,
            text,
            want,
        }
    }

    /// The text's plan of `kind` with `splits` splits, and a query with its input written.
    async fn start(&self, kind: PlanKind, splits: usize) -> (Plan, QueryId) {
        let config = &self.context.model.config;
        let limits = Limits::default();
        let plan = plan(
            config,
            self.text.len(),
            kind,
            Splits::Fixed(splits),
            &limits,
        )
        .unwrap();
        let query = QueryId::new();
        let ids = tokenizer::encode(self.text.as_bytes(), plan.padded_len);
        let input = StoredTensor::u16(vec![ids.len()], ids).unwrap();
        let key = query.key(INPUT_KEY);
        self.context
            .store
            .put(&key, &input, self.context.ttl)
            .await
            .unwrap();
        (plan, query)
    }
}

/// Runs every stage of both plans twice in a row and twice concurrently over `store`.
async fn every_stage_twice(store: Arc<dyn TensorStore>) {
    let setup = Setup::new(store.clone());
    let (context, fingerprint) = (&setup.context, &setup.context.fingerprint);
    for (kind, splits) in [(PlanKind::Fused, 3), (PlanKind::Paper, 2)] {
        let (plan, query) = setup.start(kind, splits).await;
        let mut last = None;
        for stage in plan.phases.iter().flatten() {
            let what = format!(
                "{kind:?} {} stage, layer {}, split {}",
                stage.kind.as_str(),
                stage.layer,
                stage.split
            );
            let event = StageEvent::new(query, fingerprint.clone(), stage.clone());
            let first = handle(context, event.clone()).await.unwrap();
            let once = written(store.as_ref(), query, stage).await;
            let again = handle(context, event.clone()).await.unwrap();
            let twice = written(store.as_ref(), query, stage).await;
            assert_same_tensors(&once, &twice, &format!("{what}, run again"));
            let (a, b) = tokio::join!(
                handle(context, event.clone()),
                handle(context, event.clone())
            );
            let (a, b) = (a.unwrap(), b.unwrap());
            let concurrently = written(store.as_ref(), query, stage).await;
            assert_same_tensors(&once, &concurrently, &format!("{what}, run twice at once"));
            assert_eq!(first.logits.is_some(), again.logits.is_some(), "{what}");
            for result in [&first, &again, &a, &b] {
                assert_eq!(result.bytes_out, first.bytes_out, "{what}");
                if let Some(logits) = &first.logits {
                    assert_same_logits(result, logits, &what);
                }
            }
            last = Some(b);
        }
        // Later phases read what the repeated runs wrote: the answer is unchanged.
        assert_same_logits(&last.unwrap(), &setup.want, &format!("{kind:?} logits"));
        let keys: Vec<String> = plan.written_keys().iter().map(|k| query.key(k)).collect();
        store.delete(&keys).await.unwrap();
    }
}

/// Runs every stage of a resident plan `copies` times, all at once, as the coordinator
/// would (serial stages once their inputs exist); the head's results.
async fn resident_all_at_once(
    context: &Arc<FunctionContext>,
    query: QueryId,
    stages: &[Stage],
    copies: usize,
) -> Vec<StageResult> {
    let runs: Vec<_> = stages
        .iter()
        .flat_map(|stage| std::iter::repeat_n(stage, copies))
        .map(|stage| {
            let (context, mut stage) = (context.clone(), stage.clone());
            tokio::spawn(async move {
                for key in &stage.after {
                    let key = query.key(key);
                    context
                        .store
                        .wait_for(&key, Duration::from_secs(30))
                        .await
                        .unwrap();
                }
                if let StageOp::Resident { wait_ms, .. } = &mut stage.op {
                    *wait_ms = 30_000;
                }
                let event = StageEvent::new(query, context.fingerprint.clone(), stage);
                handle(&context, event).await.unwrap()
            })
        })
        .collect();
    let mut heads = Vec::new();
    for run in runs {
        let result = run.await.unwrap();
        if result.logits.is_some() {
            heads.push(result);
        }
    }
    heads
}

/// The resident plan's splits wait for each other, so its stages run all at once: every
/// stage twice at once from the start, then every stage again; the same tensors each time.
async fn resident_stages_twice(store: Arc<dyn TensorStore>) {
    let setup = Setup::new(store.clone());
    let context = &setup.context;
    let (plan, query) = setup.start(PlanKind::Resident, 3).await;
    let stages: Vec<Stage> = plan.phases.concat();
    let heads = resident_all_at_once(context, query, &stages, 2).await;
    let mut once = Vec::new();
    for stage in &stages {
        once.push(written(store.as_ref(), query, stage).await);
    }
    let heads_again = resident_all_at_once(context, query, &stages, 1).await;
    for (stage, once) in stages.iter().zip(&once) {
        let what = format!(
            "resident {} stage, split {}",
            stage.kind.as_str(),
            stage.split
        );
        let again = written(store.as_ref(), query, stage).await;
        assert_same_tensors(once, &again, &format!("{what}, run again"));
    }
    assert_eq!((heads.len(), heads_again.len()), (2, 1));
    for head in heads.iter().chain(&heads_again) {
        assert_same_logits(head, &setup.want, "resident logits");
    }
    let keys: Vec<String> = plan.written_keys().iter().map(|k| query.key(k)).collect();
    store.delete(&keys).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_stage_twice_over_the_memory_store() {
    let store = Arc::new(MemoryStore::new());
    every_stage_twice(store.clone()).await;
    resident_stages_twice(store.clone()).await;
    assert!(store.live_keys().is_empty(), "{:?}", store.live_keys());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_stage_twice_over_redis() {
    let redis = RedisServer::start();
    let store = open_store(&redis.url(), StoreOptions::default())
        .await
        .unwrap();
    every_stage_twice(store.clone()).await;
    resident_stages_twice(store).await;
    assert_eq!(redis.dbsize(), 0);
}
