//! The fuzz corpora, replayed on the stable toolchain: every committed input of every target
//! in `fuzz/corpus/<target>/` goes through the same call the fuzzer made (the harness in
//! `fuzz/src/lib.rs`, included here), and none may panic, on this thread or on the blocking
//! threads the kernels run on. Crashes the fuzzer found are named tests below. How to fuzz:
//! docs/fuzzing.md.

#[path = "../../../fuzz/src/lib.rs"]
mod harness;

use std::path::{Path, PathBuf};
use std::sync::Once;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Panics seen by the hook, on any thread: `handle` and the monolithic engine run the kernels
/// on tokio's blocking pool, which turns a panic there into an error the caller sees as
/// `Err`, so a replay must count panics rather than wait for one to reach it.
static PANICS: AtomicUsize = AtomicUsize::new(0);

fn count_panics() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            PANICS.fetch_add(1, Ordering::SeqCst);
            default(info);
        }));
    });
}

fn corpus_dir(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(target)
}

/// Feeds `input` to `target`, failing the test if anything panicked meanwhile.
fn replay(target: harness::Target, input: &[u8], what: &str) {
    count_panics();
    let before = PANICS.load(Ordering::SeqCst);
    target(input);
    assert_eq!(
        PANICS.load(Ordering::SeqCst),
        before,
        "{what} made a parser panic"
    );
}

#[test]
fn every_corpus_input_goes_through_its_parser_without_a_panic() {
    for (name, target) in harness::TARGETS {
        let dir = corpus_dir(name);
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|entry| entry.unwrap().path())
            .collect();
        files.sort();
        assert!(!files.is_empty(), "{} has no inputs", dir.display());
        for file in files {
            let input = std::fs::read(&file).unwrap();
            replay(target, &input, &file.display().to_string());
        }
    }
}

/// Writes the seed inputs of every target into `fuzz/corpus/<target>/`: valid inputs that
/// reach deep into each parser, for the fuzzer to mutate. Run once when a corpus is started
/// (docs/fuzzing.md); `cargo fuzz cmin` then keeps those that add coverage.
#[test]
#[ignore = "writes into fuzz/corpus; run by hand to seed a new corpus"]
fn write_seed_corpus() {
    let fx = harness::fixture();
    let tensors = [
        seqless_store::StoredTensor::f32(vec![2, 3], vec![0.5, -1.0, 2.0, 0.0, 7.25, -3.5]),
        seqless_store::StoredTensor::u16(vec![5], vec![1, 2, 256, 257, 3]),
        seqless_store::StoredTensor::f32(vec![], vec![1.5]),
        seqless_store::StoredTensor::f32(vec![0, 4], vec![]),
        seqless_store::StoredTensor::u16(vec![1, 2, 1, 2], vec![9, 8, 7, 6]),
    ];
    let blobs = tensors.into_iter().map(|t| t.unwrap().encode()).collect();
    let langid = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models/langid/config.json");
    let configs = vec![
        std::fs::read(langid).unwrap(),
        serde_json::to_vec_pretty(&fx.model.config).unwrap(),
    ];
    let mut events: Vec<Vec<u8>> = fx
        .events
        .iter()
        .map(|e| serde_json::to_vec(e).unwrap())
        .collect();
    events.push(br#"{"ping": {"hold_ms": 0}}"#.to_vec());
    let bodies = [
        &b"\x00{\"text\": \"hello\"}"[..],
        b"\x00{\"text_base64\": \"aGVsbG8=\", \"trace\": true}",
        b"\x01{\"texts\": [\"a\", \"bc\"]}",
        b"\x01{\"texts_base64\": [\"YQ==\", \"/w==\"]}",
    ];
    let seeds: [(&str, Vec<Vec<u8>>); 5] = [
        ("tensor_blob", blobs),
        ("model_config", configs),
        ("safetensors", vec![fx.weights_file.clone()]),
        ("stage_event", events),
        ("http_body", bodies.iter().map(|b| b.to_vec()).collect()),
    ];
    for (name, inputs) in seeds {
        let dir = corpus_dir(name);
        std::fs::create_dir_all(&dir).unwrap();
        for (i, input) in inputs.iter().enumerate() {
            std::fs::write(dir.join(format!("seed-{i}")), input).unwrap();
        }
    }
}

/// Found while writing the `model_config` target: `validate` accepted any positive channel
/// count, so 2^62 channels passed and loading then panicked computing the LSTM's `4 * C`
/// rows in `expected_tensors` (an overflow; in a release build, wrapped shapes instead).
#[test]
fn a_config_whose_weight_shapes_overflow_is_refused() {
    let config = br#"{"format": "seqless-tfilm/1", "tokenizer": "bytes", "vocab_size": 257,
        "embed_dim": 1, "layers": [{"channels": 4611686018427387904, "kernel": 1, "pool": 1,
        "block_len": 1}], "modulation": "scale", "gate_activation": "sigmoid",
        "labels": ["a"], "max_len": 1}"#;
    replay(harness::model_config, config, "a config of 2^62 channels");
    let err = seqless_model::ModelConfig::from_json(config, Path::new("config.json")).unwrap_err();
    assert!(
        err.to_string().contains("more weights than memory"),
        "{err}"
    );
}

/// Found by `stage_event`: a head event naming two block-maxima keys but one block-minima
/// key read max and min of different lengths, and the pooled max indexed the minima past
/// their end. The head now refuses stats whose max and min differ in length.
#[test]
fn a_head_event_with_fewer_minima_than_maxima_is_refused() {
    let event = br#"{"query_id":"00000000-0000-4000-8000-00000000f05e","model":"xxh3-128:3c84a0fc6c11784cf6b19285c8a5c624","stage":{"kind":"head","layer":1,"split":0,"padded_len":52,"write_bytes":0,"memory_bytes":624,"op":{"op":"head","block_max":["max/1/0","max/1/1"],"block_min":["min/1/1"]}}}"#;
    replay(
        harness::stage_event,
        event,
        "a head event with fewer minima than maxima",
    );
}
