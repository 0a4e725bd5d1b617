//! `handle` against a memory store: every stage op of both plans computes what the
//! monolithic forward computes, and every bad event or missing input is refused with a
//! permanent error that names the problem.

use std::sync::Arc;
use std::time::Duration;

use seqless_functions::{
    ErrorKind, FunctionContext, FunctionError, ModelFingerprint, StageEvent, StageResult, handle,
};
use seqless_model::testing::RandomModel;
use seqless_model::tokenizer;
use seqless_plan::{INPUT_KEY, Limits, Plan, PlanKind, Splits, Stage, StageKind, StageOp, plan};
use seqless_store::{MemoryStore, QueryId, StoredTensor};

const TEXT: &[u8] = b"a text long enough for several blocks in every layer of the model";

struct Fixture {
    _dir: tempfile::TempDir,
    ctx: FunctionContext,
}

/// A two-layer affine model (so the second layer's conv stages modulate their input).
fn fixture() -> Fixture {
    let RandomModel {
        dir,
        model,
        fingerprint,
    } = RandomModel::affine("6:3:2:2,5:4:1:2", 3, 7);
    let ctx = FunctionContext {
        model: Arc::new(model),
        fingerprint,
        store: Arc::new(MemoryStore::new()),
        ttl: Duration::from_secs(60),
    };
    Fixture { _dir: dir, ctx }
}

impl Fixture {
    fn plan(&self, kind: PlanKind) -> Plan {
        let cfg = &self.ctx.model.config;
        plan(cfg, TEXT.len(), kind, Splits::Fixed(3), &Limits::default()).unwrap()
    }

    fn event(&self, query: QueryId, stage: Stage) -> StageEvent {
        StageEvent::new(query, self.ctx.fingerprint.clone(), stage)
    }

    async fn upload(&self, query: QueryId, ids: Vec<u16>) {
        let tensor = StoredTensor::u16(vec![ids.len()], ids).unwrap();
        let ttl = self.ctx.ttl;
        let key = query.key(INPUT_KEY);
        self.ctx.store.put(&key, &tensor, ttl).await.unwrap();
    }

    async fn upload_text(&self, query: QueryId) {
        let padded = self.ctx.model.config.padded_len(TEXT.len());
        self.upload(query, tokenizer::encode(TEXT, padded)).await;
    }

    /// Runs every stage of the plan in phase order; the last stage's result.
    async fn run(&self, plan: &Plan, query: QueryId) -> Vec<(StageKind, StageResult)> {
        self.upload_text(query).await;
        let mut results = Vec::new();
        for stage in plan.phases.iter().flatten() {
            let kind = stage.kind;
            let result = handle(&self.ctx, self.event(query, stage.clone()))
                .await
                .unwrap_or_else(|e| panic!("{kind:?} stage failed: {e}"));
            results.push((kind, result));
        }
        results
    }

    /// The first stage of `plan` matching `pick`, for error cases built from a valid stage.
    fn stage(&self, kind: PlanKind, pick: impl Fn(&Stage) -> bool) -> Stage {
        let plan = self.plan(kind);
        plan.phases.into_iter().flatten().find(pick).unwrap()
    }

    async fn refusal(&self, query: QueryId, stage: Stage) -> FunctionError {
        handle(&self.ctx, self.event(query, stage))
            .await
            .unwrap_err()
    }
}

fn assert_logits_close(got: &[f32], want: &[f32]) {
    assert_eq!(got.len(), want.len());
    for (g, w) in got.iter().zip(want) {
        assert!(
            (g - w).abs() <= 1e-4 * (1.0 + w.abs()),
            "{got:?} != {want:?}"
        );
    }
}

fn assert_permanent(err: &FunctionError, needles: &[&str]) {
    assert_eq!(err.kind(), ErrorKind::Permanent, "{err}");
    let text = err.to_string();
    for needle in needles {
        assert!(text.contains(needle), "{needle:?} not in {text:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_stage_of_both_plans_computes_what_the_forward_pass_does() {
    let f = fixture();
    let want = f.ctx.model.forward(TEXT).unwrap().logits;
    for kind in [PlanKind::Fused, PlanKind::Paper] {
        let plan = f.plan(kind);
        let query = QueryId::new();
        let results = f.run(&plan, query).await;
        let kinds: Vec<StageKind> = results.iter().map(|(k, _)| *k).collect();
        let expected_last = match kind {
            PlanKind::Fused | PlanKind::Resident => StageKind::Head,
            PlanKind::Paper => StageKind::Classifier,
        };
        assert_eq!(kinds.last(), Some(&expected_last), "{kinds:?}");
        for (stage_kind, result) in &results {
            assert!(result.bytes_in > 0, "{stage_kind:?} read nothing");
            let is_last = matches!(stage_kind, StageKind::Head | StageKind::Classifier);
            assert_eq!(result.logits.is_some(), is_last, "{stage_kind:?}");
            assert_eq!(result.bytes_out > 0, !is_last, "{stage_kind:?}");
        }
        let logits = results.last().unwrap().1.logits.as_deref().unwrap();
        assert_logits_close(logits, &want);
        // Every key the plan writes is there, at the size the plan accounted for.
        let written: Vec<String> = plan.written_keys();
        for key in &written {
            f.ctx.store.get(&query.key(key)).await.unwrap();
        }
        let bytes_out: u64 = results.iter().map(|(_, r)| r.bytes_out).sum();
        assert!(bytes_out >= plan.stored_bytes() - 2 * plan.padded_len as u64);
    }
    // The paper plan's TFiLM stage modulates the activation it was given.
    let plan = f.plan(PlanKind::Paper);
    assert!(
        plan.phases
            .iter()
            .flatten()
            .any(|s| matches!(s.op, StageOp::PaperTfilm { .. }))
    );
}

/// Sets how long a resident stage may wait.
fn with_wait(mut stage: Stage, wait: Duration) -> Stage {
    if let StageOp::Resident { wait_ms, .. } = &mut stage.op {
        *wait_ms = wait.as_millis() as u64;
    }
    stage
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn resident_splits_wait_for_each_other_and_compute_the_forward_pass() {
    let f = Arc::new(fixture());
    let want = f.ctx.model.forward(TEXT).unwrap().logits;
    let plan = f.plan(PlanKind::Resident);
    let query = QueryId::new();
    f.upload_text(query).await;
    // Every stage at once, as the coordinator runs them: splits block on their
    // neighbours' edges and on each layer's TFiLM output; serial stages start when the
    // block statistics they read exist.
    let runs: Vec<_> = plan
        .phases
        .iter()
        .flatten()
        .cloned()
        .map(|stage| {
            let f = f.clone();
            tokio::spawn(async move {
                for key in &stage.after {
                    f.ctx
                        .store
                        .wait_for(&query.key(key), Duration::from_secs(20))
                        .await
                        .unwrap();
                }
                let stage = with_wait(stage, Duration::from_secs(20));
                (stage.kind, handle(&f.ctx, f.event(query, stage)).await)
            })
        })
        .collect();
    let mut logits = None;
    let mut splits = 0;
    for run in runs {
        let (kind, result) = run.await.unwrap();
        let result = result.unwrap_or_else(|e| panic!("{kind:?} failed: {e}"));
        if kind == StageKind::Resident {
            splits += 1;
            assert!(result.bytes_out > 0 && result.bytes_in > 0);
        }
        if kind == StageKind::Head {
            logits = result.logits;
        }
    }
    assert_eq!(splits, 3);
    assert_logits_close(&logits.unwrap(), &f.ctx.model.forward(TEXT).unwrap().logits);
    assert!(!want.is_empty());
    for key in plan.written_keys() {
        f.ctx.store.get(&query.key(&key)).await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resident_split_whose_neighbour_never_comes_times_out_naming_what_it_waited_for() {
    let f = fixture();
    let query = QueryId::new();
    f.upload_text(query).await;
    let stage = f.stage(PlanKind::Resident, |s| {
        s.kind == StageKind::Resident && s.split == 1
    });
    let err = f
        .refusal(query, with_wait(stage, Duration::from_millis(300)))
        .await;
    assert_eq!(err.kind(), ErrorKind::Retryable, "{err}");
    let text = err.to_string();
    // Layer 0 needs nobody; layer 1 waits for split 0's last rows of layer 0.
    for needle in ["resident split 1 at layer 1", "edge/0/0/last", "deadline"] {
        assert!(text.contains(needle), "{needle:?} not in {text:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_for_another_model_is_refused_naming_both_fingerprints() {
    let f = fixture();
    let stage = f.stage(PlanKind::Fused, |s| s.kind == StageKind::Conv);
    let other = ModelFingerprint::of_files(b"{}", b"other weights");
    let event = StageEvent::new(QueryId::new(), other.clone(), stage);
    let err = handle(&f.ctx, event).await.unwrap_err();
    assert!(
        matches!(err, FunctionError::ModelMismatch { .. }),
        "{err:?}"
    );
    assert_permanent(
        &err,
        &[
            "coordinator and functions were started with different models",
            other.as_str(),
            f.ctx.fingerprint.as_str(),
            "same model directory",
        ],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_layer_the_model_does_not_have_is_refused() {
    let f = fixture();
    let mut stage = f.stage(PlanKind::Fused, |s| s.kind == StageKind::Tfilm);
    stage.layer = 2;
    let err = f.refusal(QueryId::new(), stage).await;
    assert_permanent(&err, &["layer 2", "2 layers"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_ids_outside_the_byte_vocabulary_are_refused() {
    let f = fixture();
    let stage = f.stage(PlanKind::Fused, |s| s.kind == StageKind::Conv);
    let query = QueryId::new();
    let padded = f.ctx.model.config.padded_len(TEXT.len());
    let mut ids = tokenizer::encode(TEXT, padded);
    ids[0] = 300;
    f.upload(query, ids).await;
    let err = f.refusal(query, stage).await;
    assert_permanent(&err, &["token id 300", "out of range", INPUT_KEY]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_modulation_that_starts_after_the_input_rows_is_refused() {
    let f = fixture();
    let second_layer_conv = |s: &Stage| {
        matches!(&s.op, StageOp::Conv { film: Some(_), input, .. }
            if input.first().is_some_and(|i| i.global_start == 0))
    };
    let mut stage = f.stage(PlanKind::Fused, second_layer_conv);
    let StageOp::Conv {
        film: Some(film), ..
    } = &mut stage.op
    else {
        unreachable!()
    };
    film.blocks = 1..film.blocks.end;
    let query = QueryId::new();
    // The stage's inputs exist, so only the offset can fail it.
    let plan = f.plan(PlanKind::Fused);
    f.upload_text(query).await;
    for earlier in plan.phases.iter().take(2).flatten() {
        handle(&f.ctx, f.event(query, earlier.clone()))
            .await
            .unwrap();
    }
    let err = f.refusal(query, stage).await;
    assert_permanent(&err, &["modulation blocks start at block 1"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_modulation_on_the_first_layer_is_refused() {
    let f = fixture();
    let film = match f
        .stage(PlanKind::Fused, |s| {
            matches!(&s.op, StageOp::Conv { film: Some(_), .. })
        })
        .op
    {
        StageOp::Conv { film, .. } => film,
        _ => unreachable!(),
    };
    let mut stage = f.stage(PlanKind::Fused, |s| {
        s.kind == StageKind::Conv && s.layer == 0
    });
    let StageOp::Conv { film: f0, .. } = &mut stage.op else {
        unreachable!()
    };
    *f0 = film;
    let query = QueryId::new();
    f.upload_text(query).await;
    let err = f.refusal(query, stage).await;
    assert_permanent(&err, &["layer 0", "no previous layer"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stages_with_nothing_to_read_are_refused() {
    let f = fixture();
    for (kind, needle) in [
        (StageKind::Conv, "conv stage without input rows"),
        (StageKind::Tfilm, "names no tensor"),
    ] {
        let mut stage = f.stage(PlanKind::Fused, |s| s.kind == kind);
        match &mut stage.op {
            StageOp::Conv { input, .. } => input.clear(),
            StageOp::Tfilm { block_max, .. } => block_max.clear(),
            op => unreachable!("{op:?}"),
        }
        let err = f.refusal(QueryId::new(), stage).await;
        assert_permanent(&err, &[needle]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_key_names_it_and_what_to_check() {
    let f = fixture();
    let stage = f.stage(PlanKind::Fused, |s| s.kind == StageKind::Conv);
    let query = QueryId::new();
    // Nothing uploaded: the input is not in this store.
    let err = f.refusal(query, stage).await;
    assert!(matches!(err, FunctionError::Store(_)), "{err:?}");
    assert_permanent(
        &err,
        &[
            &query.key(INPUT_KEY),
            "not found",
            "--store",
            "--key-prefix",
        ],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tensor_of_the_wrong_width_is_refused() {
    let f = fixture();
    let stage = f.stage(PlanKind::Fused, |s| s.kind == StageKind::Tfilm);
    let StageOp::Tfilm { block_max, .. } = &stage.op else {
        unreachable!()
    };
    let query = QueryId::new();
    let wrong = StoredTensor::f32(vec![2, 1], vec![0.0, 0.0]).unwrap();
    for key in block_max {
        let key = query.key(key);
        f.ctx.store.put(&key, &wrong, f.ctx.ttl).await.unwrap();
    }
    let err = f.refusal(query, stage).await;
    assert_permanent(&err, &["expected rows of 6 channels", "[2, 1]"]);
}
