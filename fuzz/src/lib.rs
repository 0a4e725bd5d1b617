//! The fuzz targets' bodies, shared with the replay test (`crates/server/tests/fuzz_corpus.rs`
//! includes this file as a module), so the committed corpus goes through exactly the calls the
//! fuzzer made: each function feeds one input to a real public parser of seqless, and panics
//! only when that parser broke a promise (panicked, or returned what its docs rule out).
//!
//! The model, stage events and server are built around one tiny two-layer model (affine
//! modulation, so a conv stage of layer 1 reads a modulation), so a valid input runs the whole
//! path behind its parser in well under a millisecond.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, header};
use seqless_functions::{FunctionContext, FunctionEvent, ModelFingerprint, StageEvent, handle};
use seqless_model::testing::{config, random, write_model};
use seqless_model::weights::expected_tensors;
use seqless_model::{
    CONFIG_FILE, GateActivation, ModelConfig, ModelError, Modulation, TfilmModel, WEIGHTS_FILE,
    Weights, tokenizer,
};
use seqless_plan::{INPUT_KEY, Limits, PlanKind, Splits, plan};
use seqless_server::{Engine, Metrics, Service, ServiceLimits, router};
use seqless_store::{MemoryStore, QueryId, StoreError, StoredTensor, TensorStore};
use tower::ServiceExt as _;

/// A target's body: one input to one parser.
pub type Target = fn(&[u8]);

/// The fuzz targets, by the names of their files in `fuzz/fuzz_targets` and `fuzz/corpus`.
pub const TARGETS: [(&str, Target); 5] = [
    ("tensor_blob", tensor_blob),
    ("model_config", model_config),
    ("safetensors", safetensors),
    ("stage_event", stage_event),
    ("http_body", http_body),
];

/// The query both plans of the stage fixture ran; long enough for several blocks per layer.
const TEXT: &[u8] = b"fuzzing the stage events of a tiny two-layer model";
/// Longest text the tiny model takes, so a fuzzed request body cannot ask for a long forward.
const MAX_LEN: usize = 512;
/// Texts per batch request the fuzzed server takes.
const MAX_BATCH: usize = 4;

/// Everything the targets share, built once per process.
pub struct Fixture {
    runtime: tokio::runtime::Runtime,
    /// The tiny model, loaded from the files it was written to.
    pub model: Arc<TfilmModel>,
    fingerprint: ModelFingerprint,
    /// `model.safetensors` of the tiny model, as the loader reads it.
    pub weights_file: Vec<u8>,
    /// Every tensor a fused and a paper run of [`TEXT`] left in the store, keys included, so
    /// each fuzzed stage event finds the inputs a real one would.
    snapshot: Vec<(String, StoredTensor)>,
    /// One real stage event per stage of both plans: the seeds of `stage_event`.
    pub events: Vec<StageEvent>,
    app: axum::Router,
}

/// The shared fixture.
pub fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(Fixture::build)
}

impl Fixture {
    fn build() -> Self {
        let mut cfg = config(
            2,
            "4:3:2:2,3:4:1:2",
            Modulation::Affine,
            GateActivation::Sigmoid,
            3,
        );
        cfg.max_len = MAX_LEN;
        let dir = scratch_dir();
        write_model(&dir, &cfg, &random(&cfg, 17, 0.5));
        let (model, fingerprint) = TfilmModel::load_fingerprinted(&dir).expect("tiny model loads");
        let weights_file = std::fs::read(dir.join(WEIGHTS_FILE)).expect("weights were written");
        std::fs::remove_dir_all(&dir).expect("scratch directory is removable");
        let model = Arc::new(model);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("tokio runtime");
        let (snapshot, events) = runtime.block_on(run_plans(&model, &fingerprint));
        let metrics = Arc::new(Metrics::new());
        let engine = Engine::monolithic(TfilmModel::clone(&model), None, &metrics);
        let limits = ServiceLimits {
            max_batch: MAX_BATCH,
            ..ServiceLimits::default()
        };
        let service = Service::new(engine, "tiny".into(), limits, metrics, None);
        Self {
            runtime,
            model,
            fingerprint,
            weights_file,
            snapshot,
            events,
            app: router(Arc::new(service)),
        }
    }

    /// A context over a fresh store holding the snapshot, so inputs cannot affect each other.
    fn context(&self) -> FunctionContext {
        let store = MemoryStore::new();
        self.runtime.block_on(async {
            for (key, tensor) in &self.snapshot {
                store
                    .put(key, tensor, Duration::from_secs(600))
                    .await
                    .expect("memory store takes the snapshot");
            }
        });
        FunctionContext {
            model: self.model.clone(),
            fingerprint: self.fingerprint.clone(),
            store: Arc::new(store),
            ttl: Duration::from_secs(600),
        }
    }
}

/// A directory of this process's own for the model files (removed once they are read).
fn scratch_dir() -> PathBuf {
    std::env::temp_dir().join(format!("seqless-fuzz-{}", std::process::id()))
}

/// Runs every stage of a fused and a paper plan of [`TEXT`] (two queries), returning what
/// they left in the store and the events that ran them.
async fn run_plans(
    model: &Arc<TfilmModel>,
    fingerprint: &ModelFingerprint,
) -> (Vec<(String, StoredTensor)>, Vec<StageEvent>) {
    let store = Arc::new(MemoryStore::new());
    let ctx = FunctionContext {
        model: model.clone(),
        fingerprint: fingerprint.clone(),
        store: store.clone(),
        ttl: Duration::from_secs(600),
    };
    let queries = [
        (PlanKind::Fused, "00000000-0000-4000-8000-00000000f05e"),
        (PlanKind::Paper, "00000000-0000-4000-8000-0000000000a9"),
    ];
    let mut snapshot = Vec::new();
    let mut events = Vec::new();
    for (kind, id) in queries {
        let query: QueryId = id.parse().expect("fixed query ids are UUIDs");
        let p = plan(
            &model.config,
            TEXT.len(),
            kind,
            Splits::Fixed(2),
            &Limits::default(),
        )
        .expect("tiny model plans");
        let ids = tokenizer::encode(TEXT, p.padded_len);
        let input = StoredTensor::u16(vec![ids.len()], ids).expect("token ids are a vector");
        store
            .put(&query.key(INPUT_KEY), &input, ctx.ttl)
            .await
            .expect("memory store takes the input");
        for stage in p.phases.iter().flatten() {
            let event = StageEvent::new(query, fingerprint.clone(), stage.clone());
            handle(&ctx, event.clone())
                .await
                .expect("a planned stage runs");
            events.push(event);
        }
        for name in p.written_keys() {
            let key = query.key(&name);
            let fetched = store.get(&key).await.expect("every written key is there");
            snapshot.push((key, fetched.tensor));
        }
    }
    (snapshot, events)
}

/// `StoredTensor::decode`, the store's full blob read: a blob is either refused as
/// [`StoreError::Corrupt`], or decodes to a tensor that encodes back to the same bytes
/// (the format has one encoding per tensor).
pub fn tensor_blob(data: &[u8]) {
    match StoredTensor::decode(data) {
        Ok(tensor) => assert_eq!(tensor.encode(), data, "decode then encode changed the blob"),
        Err(StoreError::Corrupt { .. }) => {}
        Err(other) => panic!("a bad blob must be Corrupt, got {other:?}"),
    }
}

/// `ModelConfig::from_json`, what `TfilmModel::load` reads `config.json` with, then what
/// loading derives from a config it accepted: the alignment, the padded `max_len` and the
/// tensor names and shapes the weights file must hold. A refused config is a config error.
pub fn model_config(data: &[u8]) {
    match ModelConfig::from_json(data, Path::new(CONFIG_FILE)) {
        Ok(config) => {
            let padded = config.padded_len(config.max_len);
            assert_eq!(padded % config.alignment(), 0);
            assert_eq!(config.layer_lengths(padded).len(), config.layers.len());
            assert!(!expected_tensors(&config).is_empty());
            let json = serde_json::to_vec(&config).expect("a config serialises");
            let again = ModelConfig::from_json(&json, Path::new(CONFIG_FILE))
                .expect("a saved config loads");
            assert_eq!(again, config);
        }
        Err(ModelError::ConfigSyntax { .. } | ModelError::Config(_)) => {}
        Err(other) => panic!("a bad config must be a config error, got {other:?}"),
    }
}

/// `Weights::from_safetensors`, what `TfilmModel::load` reads `model.safetensors` with,
/// against the tiny model's config: refused as a container or tensor error, or accepted as
/// weights the model then runs a forward pass with.
pub fn safetensors(data: &[u8]) {
    let config = &fixture().model.config;
    match Weights::from_safetensors(data, Path::new(WEIGHTS_FILE), config) {
        Ok(weights) => {
            let model = TfilmModel {
                config: config.clone(),
                weights,
            };
            let prediction = model.forward(TEXT).expect("loaded weights run");
            assert_eq!(prediction.logits.len(), config.labels.len());
        }
        Err(ModelError::SafeTensors { .. } | ModelError::Weights { .. }) => {}
        Err(other) => panic!("bad weights must be a weights error, got {other:?}"),
    }
}

/// What the function process does with an invocation's payload: `FunctionEvent::from_json`
/// on the JSON the Runtime API delivered, then, for a stage, `handle` against a store that
/// holds what real runs of both plans wrote, and for a batch, each of its stages in turn.
/// Any result is fine; a panic is not (the
/// kernels run on tokio's blocking threads, where the fuzzer's panic hook still aborts).
pub fn stage_event(data: &[u8]) {
    // The runtime only hands over JSON; other bytes never reach the function.
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    let fx = fixture();
    match FunctionEvent::from_json(value) {
        // A ping only sleeps for `hold_ms`; there is nothing behind it to fuzz.
        Ok(FunctionEvent::Ping(_)) | Err(_) => {}
        Ok(FunctionEvent::Stage(event)) => {
            let ctx = fx.context();
            let _ = fx.runtime.block_on(handle(&ctx, *event));
        }
        Ok(FunctionEvent::Batch(batch)) => {
            let ctx = fx.context();
            for event in batch.batch {
                let _ = fx.runtime.block_on(handle(&ctx, event));
            }
        }
    }
}

/// A request body to the real router (tiny monolithic model, no auth): the first byte picks
/// `POST /v1/classify` (even) or `/v1/classify/batch` (odd), the rest is the JSON body. Every
/// body must get an answer below 500: a bad one a 4xx, a good one a 200.
pub fn http_body(data: &[u8]) {
    let Some((&pick, body)) = data.split_first() else {
        return;
    };
    let path = if pick % 2 == 0 {
        "/v1/classify"
    } else {
        "/v1/classify/batch"
    };
    let request = Request::post(path)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_vec()))
        .expect("a request with a static path and header");
    let fx = fixture();
    let response = fx
        .runtime
        .block_on(fx.app.clone().oneshot(request))
        .expect("the router's error type is Infallible");
    let status = response.status();
    assert!(
        status.is_success() || status.is_client_error(),
        "{path} answered {status}"
    );
}
