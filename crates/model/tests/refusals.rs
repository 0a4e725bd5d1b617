//! Broken model directories are refused at load with a message naming what is wrong.

use seqless_model::testing::{Tensors, config, random, write_model, write_safetensors};
use seqless_model::{GateActivation, ModelConfig, Modulation, TfilmModel};

fn good() -> (tempfile::TempDir, ModelConfig, Tensors) {
    let cfg = config(
        3,
        "4:3:2:2,5:2:1:3",
        Modulation::Affine,
        GateActivation::Sigmoid,
        2,
    );
    let t = random(&cfg, 1, 0.5);
    let dir = tempfile::tempdir().unwrap();
    write_model(dir.path(), &cfg, &t);
    (dir, cfg, t)
}

fn load_err(dir: &std::path::Path) -> String {
    TfilmModel::load(dir).unwrap_err().to_string()
}

#[test]
fn a_good_model_loads() {
    let (dir, _, _) = good();
    assert!(TfilmModel::load(dir.path()).is_ok());
}

/// The load error of the good model once `edit` has changed its weights.
fn weights_err(edit: impl FnOnce(&mut Tensors)) -> String {
    let (dir, _, mut t) = good();
    edit(&mut t);
    write_safetensors(&dir.path().join("model.safetensors"), &t);
    load_err(dir.path())
}

#[track_caller]
fn assert_says(err: &str, needles: &[&str]) {
    for needle in needles {
        assert!(err.contains(needle), "{needle:?} not in {err}");
    }
}

#[test]
fn missing_tensor_is_named() {
    let err = weights_err(|t| {
        t.remove("layers.1.tfilm.affine.bias");
    });
    assert_says(&err, &["layers.1.tfilm.affine.bias", "missing"]);
}

#[test]
fn extra_tensor_is_named() {
    let err = weights_err(|t| {
        t.insert("layers.9.conv.weight".into(), (vec![1], vec![0.0]));
    });
    assert_says(&err, &["layers.9.conv.weight", "not part"]);
}

#[test]
fn wrong_shape_is_named() {
    let err = weights_err(|t| {
        t.insert(
            "layers.0.conv.weight".into(),
            (vec![4, 3, 2], vec![0.0; 24]),
        );
    });
    assert_says(&err, &["layers.0.conv.weight", "[4, 3, 2]", "[4, 3, 3]"]);
}

#[test]
fn wrong_dtype_is_named() {
    let (dir, _, t) = good();
    // Re-write one tensor as f64.
    let bytes: Vec<(String, Vec<usize>, Vec<u8>, safetensors::Dtype)> = t
        .iter()
        .map(|(n, (s, v))| {
            if n == "classifier.bias" {
                (
                    n.clone(),
                    s.clone(),
                    v.iter().flat_map(|x| f64::from(*x).to_le_bytes()).collect(),
                    safetensors::Dtype::F64,
                )
            } else {
                (
                    n.clone(),
                    s.clone(),
                    v.iter().flat_map(|x| x.to_le_bytes()).collect(),
                    safetensors::Dtype::F32,
                )
            }
        })
        .collect();
    let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = bytes
        .iter()
        .map(|(n, s, b, d)| {
            (
                n.clone(),
                safetensors::tensor::TensorView::new(*d, s.clone(), b).unwrap(),
            )
        })
        .collect();
    safetensors::serialize_to_file(views, None, &dir.path().join("model.safetensors")).unwrap();
    assert_says(&load_err(dir.path()), &["classifier.bias", "F64"]);
}

#[test]
fn truncated_weights_file() {
    let (dir, _, _) = good();
    let path = dir.path().join("model.safetensors");
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    assert_says(
        &load_err(dir.path()),
        &["model.safetensors", "not a valid safetensors"],
    );
}

#[test]
fn bad_config_json() {
    let (dir, cfg, _) = good();
    let path = dir.path().join("config.json");
    std::fs::write(&path, "{ not json").unwrap();
    assert!(load_err(dir.path()).contains("config.json"));
    let mut value = serde_json::to_value(&cfg).unwrap();
    value["colour"] = "blue".into();
    std::fs::write(&path, value.to_string()).unwrap();
    assert!(load_err(dir.path()).contains("colour"));
    let mut value = serde_json::to_value(&cfg).unwrap();
    value["modulation"] = "shift".into();
    std::fs::write(&path, value.to_string()).unwrap();
    assert!(load_err(dir.path()).contains("shift"));
}

#[test]
fn config_and_weights_that_disagree() {
    // Weights for 2 labels under a config that says 3.
    let (dir, mut cfg, _) = good();
    cfg.labels.push("third".into());
    cfg.save(&dir.path().join("config.json")).unwrap();
    let err = load_err(dir.path());
    assert!(err.contains("classifier"), "{err}");
}

#[test]
fn missing_files() {
    let dir = tempfile::tempdir().unwrap();
    assert!(load_err(dir.path()).contains("config.json"));
}

#[test]
fn bad_input_lengths() {
    let (dir, _, _) = good();
    let model = TfilmModel::load(dir.path()).unwrap();
    assert!(
        model
            .forward(b"")
            .unwrap_err()
            .to_string()
            .contains("empty")
    );
    let mut small = model.clone();
    small.config.max_len = 4;
    assert!(
        small
            .forward(b"hello")
            .unwrap_err()
            .to_string()
            .contains("max_len")
    );
    // Invalid UTF-8 is fine: the model reads bytes.
    assert!(model.forward(&[0xff, 0xfe, 0x00]).is_ok());
}
