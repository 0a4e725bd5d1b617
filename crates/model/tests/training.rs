//! Training lowers the loss, and the training graph computes what the kernels compute.

use seqless_model::train::{Example, Quiet, TrainNet, TrainOptions, train};
use seqless_model::{GateActivation, Modulation, TfilmModel};

/// A tensor's values, flattened.
fn values(t: &candle_core::Tensor) -> Vec<f32> {
    t.flatten_all().unwrap().to_vec1::<f32>().unwrap()
}

fn toy_data() -> Vec<Example> {
    let mut out = Vec::new();
    for i in 0..40 {
        let (text, label) = if i % 2 == 0 {
            (format!("the cat sat on the mat {i}"), "en")
        } else {
            (format!("die Katze sitzt auf der Matte {i}"), "de")
        };
        out.push(Example {
            text: text.into_bytes(),
            label: label.into(),
        });
    }
    out
}

#[test]
fn a_few_epochs_lower_the_loss() {
    let mut cfg = seqless_model::testing::config(
        8,
        "8:3:2:2",
        Modulation::Affine,
        GateActivation::Sigmoid,
        2,
    );
    cfg.labels = vec!["de".into(), "en".into()];
    let options = TrainOptions {
        epochs: 4,
        batch_size: 8,
        learning_rate: 1e-2,
        valid_fraction: 0.0,
        ..TrainOptions::default()
    };
    let checkpoints = tempfile::tempdir().unwrap();
    let options = TrainOptions {
        checkpoint_dir: Some(checkpoints.path().join("ckpt")),
        ..options
    };
    let (net, report) = train(&cfg, &toy_data(), &options, &mut Quiet).unwrap();
    let first = report.epochs.first().unwrap().train_loss;
    let last = report.epochs.last().unwrap().train_loss;
    assert!(last < first * 0.8, "loss went {first} -> {last}");
    // The last epoch's checkpoint is a loadable model holding the final weights.
    let saved = TfilmModel::load(&checkpoints.path().join("ckpt")).unwrap();
    assert_eq!(saved.config, cfg);
    assert_eq!(saved.weights.embedding, net.to_weights().unwrap().embedding);
}

#[test]
fn same_seed_same_model() {
    let mut cfg =
        seqless_model::testing::config(4, "4:3:1:2", Modulation::Scale, GateActivation::Sigmoid, 2);
    cfg.labels = vec!["de".into(), "en".into()];
    let options = TrainOptions {
        epochs: 1,
        batch_size: 8,
        ..TrainOptions::default()
    };
    let (a, _) = train(&cfg, &toy_data(), &options, &mut Quiet).unwrap();
    let (b, _) = train(&cfg, &toy_data(), &options, &mut Quiet).unwrap();
    assert_eq!(
        a.to_weights().unwrap().embedding,
        b.to_weights().unwrap().embedding
    );
}

#[test]
fn training_graph_equals_inference_kernels() {
    for (modulation, gate, layers) in [
        (
            Modulation::Scale,
            GateActivation::Sigmoid,
            "6:3:2:2,5:4:1:3",
        ),
        (
            Modulation::Affine,
            GateActivation::HardSigmoid,
            "6:2:3:1,4:5:2:2",
        ),
    ] {
        let cfg = seqless_model::testing::config(5, layers, modulation, gate, 3);
        let net = TrainNet::init(&cfg, 11).unwrap();
        let model = TfilmModel {
            config: cfg.clone(),
            weights: net.to_weights().unwrap(),
        };
        for text in [&b"x"[..], "Grüße, ça va? 日本".as_bytes(), &[7u8; 500][..]] {
            let t0 = cfg.padded_len(text.len());
            let ids: Vec<u32> = seqless_model::tokenizer::encode(text, t0)
                .into_iter()
                .map(u32::from)
                .collect();
            let ids =
                candle_core::Tensor::from_vec(ids, (1, t0), &candle_core::Device::Cpu).unwrap();
            let graph = values(&net.forward(&ids).unwrap());
            let kernels = model.forward(text).unwrap().logits;
            for (g, k) in graph.iter().zip(&kernels) {
                assert!(
                    (g - k).abs() < 1e-4,
                    "{modulation:?}: graph {graph:?} kernels {kernels:?}"
                );
            }
        }
    }
}

#[test]
fn saved_weights_load_back() {
    let cfg = seqless_model::testing::config(
        4,
        "4:3:2:2",
        Modulation::Affine,
        GateActivation::Sigmoid,
        2,
    );
    let net = TrainNet::init(&cfg, 3).unwrap();
    let dir = tempfile::tempdir().unwrap();
    cfg.save(&dir.path().join("config.json")).unwrap();
    net.save(&dir.path().join("model.safetensors")).unwrap();
    let loaded = TfilmModel::load(dir.path()).unwrap();
    assert_eq!(
        loaded.weights.classifier_weight,
        net.to_weights().unwrap().classifier_weight
    );
}

/// A narrow trained model widened into a wider net computes the same logits before any
/// training step, for both modulations and a two-layer stack; a different stack is refused.
#[test]
fn widening_a_model_keeps_its_logits() {
    for modulation in [Modulation::Affine, Modulation::Scale] {
        let narrow_cfg = seqless_model::testing::config(
            4,
            "4:3:2:2,3:2:1:2",
            modulation,
            GateActivation::Sigmoid,
            3,
        );
        let dir = tempfile::tempdir().unwrap();
        let tensors = seqless_model::testing::random(&narrow_cfg, 5, 0.5);
        seqless_model::testing::write_model(dir.path(), &narrow_cfg, &tensors);
        let narrow = TfilmModel::load(dir.path()).unwrap();

        // Wider everywhere, with the first kernel grown 3 -> 6 and the second 2 -> 5.
        let wide_cfg = seqless_model::testing::config(
            6,
            "7:6:2:2,5:5:1:2",
            modulation,
            GateActivation::Sigmoid,
            3,
        );
        let net = TrainNet::from_model_dir(&wide_cfg, dir.path(), 9).unwrap();
        let wide = TfilmModel {
            config: wide_cfg.clone(),
            weights: net.to_weights().unwrap(),
        };
        for text in [
            "a",
            "widening keeps the logits",
            "0123456789abcdefghijklmnopqrstuvwxyz",
        ] {
            let (a, b) = (
                narrow.forward(text.as_bytes()).unwrap(),
                wide.forward(text.as_bytes()).unwrap(),
            );
            for (x, y) in a.logits.iter().zip(&b.logits) {
                assert!(
                    (x - y).abs() < 1e-5,
                    "{modulation:?} {text:?}: {a:?} vs {b:?}"
                );
            }
        }

        let other_kernel = seqless_model::testing::config(
            6,
            "7:2:2:2,5:2:1:2",
            modulation,
            GateActivation::Sigmoid,
            3,
        );
        let err = TrainNet::from_model_dir(&other_kernel, dir.path(), 9)
            .err()
            .expect("a narrower kernel is refused")
            .to_string();
        assert!(err.contains("layer 0"), "{err}");
    }
}

/// The training graph's gradients match finite differences of its own loss: a wrong
/// backward pass (conv, pooling, LSTM, modulation) would train a worse model silently.
#[test]
fn gradients_match_finite_differences() {
    use candle_core::{Device, Tensor};
    for (modulation, layers) in [
        (Modulation::Affine, "6:3:2:2"),
        (Modulation::Scale, "5:4:1:3,4:3:2:2"),
    ] {
        let mut cfg =
            seqless_model::testing::config(4, layers, modulation, GateActivation::Sigmoid, 3);
        cfg.labels = vec!["a".into(), "b".into(), "c".into()];
        let net = TrainNet::init(&cfg, 5).unwrap();
        let texts: [&[u8]; 2] = [b"a quick brown fox", b"Gr\xc3\xbc\xc3\x9fe!"];
        let t0 = cfg.padded_len(17);
        let ids: Vec<u32> = texts
            .iter()
            .flat_map(|t| seqless_model::tokenizer::encode(t, t0))
            .map(u32::from)
            .collect();
        let ids = Tensor::from_vec(ids, (2, t0), &Device::Cpu).unwrap();
        let labels = Tensor::from_vec(vec![0u32, 2], 2, &Device::Cpu).unwrap();
        let loss = |net: &TrainNet| -> f64 {
            let logits = net
                .forward(&ids)
                .unwrap()
                .to_dtype(candle_core::DType::F64)
                .unwrap();
            candle_nn::loss::cross_entropy(&logits, &labels)
                .unwrap()
                .to_scalar::<f64>()
                .unwrap()
        };
        let grads = candle_nn::loss::cross_entropy(&net.forward(&ids).unwrap(), &labels)
            .unwrap()
            .backward()
            .unwrap();
        for var in net.vars() {
            let analytic = values(grads.get(&var).unwrap());
            let original = values(var.as_tensor());
            let shape = var.as_tensor().dims().to_vec();
            let h = 2e-3f32;
            for i in (0..original.len()).step_by(original.len().div_ceil(7)) {
                let at = |delta: f32| {
                    let mut v = original.clone();
                    v[i] += delta;
                    var.set(&Tensor::from_vec(v, shape.clone(), &Device::Cpu).unwrap())
                        .unwrap();
                    loss(&net)
                };
                let numeric = (at(h) - at(-h)) / (2.0 * f64::from(h));
                at(0.0);
                let a = f64::from(analytic[i]);
                assert!(
                    (a - numeric).abs() <= 2e-2 * numeric.abs().max(a.abs()) + 1e-3,
                    "{layers}: d loss / d {:?}[{i}]: backward {a}, finite difference {numeric}",
                    var.as_tensor().dims()
                );
            }
        }
    }
}
