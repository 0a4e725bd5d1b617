//! Golden tests on models small enough to compute by hand (E = 1, C = 1), one per
//! modulation, gate activation and kernel parity, plus padding to the alignment unit.

use seqless_model::GateActivation::{HardSigmoid, Sigmoid};
use seqless_model::Modulation::{Affine, Scale};
use seqless_model::testing::{Tensors, config, set, write_model, zeros};
use seqless_model::{GateActivation, ModelConfig, Modulation, TfilmModel};

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// Weights for a one-channel config: embedding row 98 (`a`) = 1.0, row 0 (padding) = 0.5;
/// first-layer conv `kernel` taps + bias 0.1; its LSTM's W_ih = `lstm_ih` (gates i, f, g, o)
/// and no recurrence; classifier logits [g, -g + 0.2].
fn one_channel_weights(cfg: &ModelConfig, kernel: &[f32], lstm_ih: &[f32]) -> Tensors {
    let mut t = zeros(cfg);
    let mut emb = vec![0.0; 257];
    emb[98] = 1.0;
    emb[0] = 0.5;
    set(&mut t, "embedding.weight", &emb);
    set(&mut t, "layers.0.conv.weight", kernel);
    set(&mut t, "layers.0.conv.bias", &[0.1]);
    set(&mut t, "layers.0.tfilm.lstm.weight_ih", lstm_ih);
    set(&mut t, "classifier.weight", &[1.0, -1.0]);
    set(&mut t, "classifier.bias", &[0.0, 0.2]);
    t
}

/// The model of `cfg` with weights `t`, through a model directory.
fn load(cfg: &ModelConfig, t: &Tensors) -> TfilmModel {
    let dir = tempfile::tempdir().unwrap();
    write_model(dir.path(), cfg, t);
    TfilmModel::load(dir.path()).unwrap()
}

/// A one-layer, one-channel model of pool 2 and block 1 with [`one_channel_weights`],
/// W_ih = [1, 0, 1, 1], and for affine modulation gamma = 2h + 0.5, beta = -h + 0.25.
fn one_channel(kernel: &[f32], modulation: Modulation, gate: GateActivation) -> TfilmModel {
    let layers = format!("1:{}:2:1", kernel.len());
    let cfg = config(1, &layers, modulation, gate, 2);
    let mut t = one_channel_weights(&cfg, kernel, &[1.0, 0.0, 1.0, 1.0]);
    if modulation == Affine {
        set(&mut t, "layers.0.tfilm.affine.weight", &[2.0, -1.0]);
        set(&mut t, "layers.0.tfilm.affine.bias", &[0.5, 0.25]);
    }
    load(&cfg, &t)
}

/// The LSTM's first output for input s from the zero state with W_ih = [1, 0, 1, 1].
fn h1(s: f64, act: fn(f64) -> f64) -> f64 {
    let (i, f, g, o) = (act(s), act(0.0), s.tanh(), act(s));
    let c = f * 0.0 + i * g;
    o * c.tanh()
}

fn hard_sigmoid(x: f64) -> f64 {
    (0.2 * x + 0.5).clamp(0.0, 1.0)
}

fn assert_logits(model: &TfilmModel, text: &[u8], expected: [f64; 2]) {
    let p = model.forward(text).unwrap();
    for (got, want) in p.logits.iter().zip(expected) {
        assert!(
            (f64::from(*got) - want).abs() < 1e-6,
            "logits {:?}, expected {expected:?}",
            p.logits
        );
    }
}

#[test]
fn odd_kernel_scale_sigmoid() {
    // "a" -> ids [98] padded to T0 = 2 (pool 2 x block 1): x = [1.0, 0.5].
    // c0 = 0.5*0 + 1.0*1.0 - 1.0*0.5 + 0.1 = 0.6; c1 = 0.5*1.0 + 1.0*0.5 - 1.0*0 + 0.1 = 1.1.
    // a = relu(max) = 1.1; one block, s = 1.1; gamma = h; g = gamma * 1.1.
    let model = one_channel(&[0.5, 1.0, -1.0], Scale, Sigmoid);
    assert_eq!(model.forward(b"a").unwrap().padded_len, 2);
    let g = h1(1.1, sigmoid) * 1.1;
    assert_logits(&model, b"a", [g, -g + 0.2]);
}

#[test]
fn odd_kernel_scale_hard_sigmoid() {
    let model = one_channel(&[0.5, 1.0, -1.0], Scale, HardSigmoid);
    let g = h1(1.1, hard_sigmoid) * 1.1;
    assert_logits(&model, b"a", [g, -g + 0.2]);
}

#[test]
fn even_kernel_pads_one_left_zero_right_two() {
    // k = 2: left 0, right 1. x = [1.0, 0.5] -> c0 = 2*1.0 + 1*0.5 + 0.1 = 2.6,
    // c1 = 2*0.5 + 1*0 + 0.1 = 1.1. Pool 2 -> 2.6.
    let model = one_channel(&[2.0, 1.0], Scale, Sigmoid);
    let g = h1(2.6, sigmoid) * 2.6;
    assert_logits(&model, b"a", [g, -g + 0.2]);
    // k = 4: left 1, right 2. c0 = w0*0 + w1*1.0 + w2*0.5 + w3*0 + 0.1 = 1 + 0.25 + 0.1.
    let model = one_channel(&[7.0, 1.0, 0.5, 9.0], Scale, Sigmoid);
    // c1 = 7*1.0 + 1*0.5 + 0.5*0 + 9*0 + 0.1 = 7.6 -> pooled max 7.6.
    let g = h1(7.6, sigmoid) * 7.6;
    assert_logits(&model, b"a", [g, -g + 0.2]);
}

#[test]
fn affine_modulation_adds_beta() {
    // gamma = 2h + 0.5, beta = -h + 0.25; g = gamma * 1.1 + beta.
    let model = one_channel(&[0.5, 1.0, -1.0], Affine, Sigmoid);
    let h = h1(1.1, sigmoid);
    let g = (2.0 * h + 0.5) * 1.1 + (-h + 0.25);
    assert_logits(&model, b"a", [g, -g + 0.2]);
}

#[test]
fn negative_gamma_takes_the_block_minimum() {
    // Pool 1, block 2, k = 1 (w = 1): x = [1.0, 0.5] -> a = [1.1, 0.6]; block max 1.1,
    // min 0.6. With W_ih's g row negated, h < 0, so max_t(h * a_t) = h * 0.6.
    let cfg = config(1, "1:1:1:2", Scale, Sigmoid, 2);
    let model = load(
        &cfg,
        &one_channel_weights(&cfg, &[1.0], &[1.0, 0.0, -1.0, 1.0]),
    );
    let s: f64 = 1.1;
    let h = sigmoid(s) * (sigmoid(s) * (-s).tanh()).tanh();
    assert!(h < 0.0);
    let g = h * 0.6;
    assert_logits(&model, b"a", [g, -g + 0.2]);
}

#[test]
fn padding_reaches_the_alignment_unit_with_row_zero() {
    // Two layers: P*b = 2*1 and 2*2 -> A = 4. Three bytes pad to 4, five to 8.
    let cfg = config(1, "1:1:2:1,1:1:1:2", Scale, Sigmoid, 2);
    let mut t = zeros(&cfg);
    let mut emb = vec![0.0; 257];
    emb[0] = 3.0; // the padding row is an ordinary learned row: it must be read.
    set(&mut t, "embedding.weight", &emb);
    set(&mut t, "layers.0.conv.weight", &[1.0]);
    set(&mut t, "layers.1.conv.weight", &[1.0]);
    // i = g = o gates open on the input so gamma > 0 whenever the block max is.
    set(&mut t, "layers.0.tfilm.lstm.bias_ih", &[5.0, 0.0, 5.0, 5.0]);
    set(&mut t, "layers.1.tfilm.lstm.bias_ih", &[5.0, 0.0, 5.0, 5.0]);
    set(&mut t, "classifier.weight", &[1.0, 0.0]);
    let model = load(&cfg, &t);
    assert_eq!(model.forward(b"abc").unwrap().padded_len, 4);
    assert_eq!(model.forward(b"abcde").unwrap().padded_len, 8);
    // Bytes embed to 0, so the only non-zero signal is the padding row: 4 bytes fill the
    // unit exactly and the logit is 0; 3 bytes leave one pad row and the logit is positive.
    assert!(model.forward(b"abcd").unwrap().logits[0].abs() < 1e-7);
    assert!(model.forward(b"abc").unwrap().logits[0] > 0.1);
}
