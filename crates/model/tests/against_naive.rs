//! The kernels against a naive f64 forward pass on random models, over every config axis
//! and lengths that cross the conv tiles, block boundaries and the alignment unit.

use proptest::prelude::*;
use seqless_model::testing::{config, naive_logits, random, write_model};
use seqless_model::{GateActivation, Modulation, TfilmModel};

fn layer_spec() -> impl Strategy<Value = String> {
    (1usize..6, 1usize..6, 1usize..4, 1usize..5).prop_map(|(c, k, p, b)| format!("{c}:{k}:{p}:{b}"))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn kernels_equal_naive_forward(
        layers in prop::collection::vec(layer_spec(), 1..4),
        embed in 1usize..5,
        affine in any::<bool>(),
        hard in any::<bool>(),
        seed in any::<u64>(),
        text in prop::collection::vec(any::<u8>(), 1..3000),
    ) {
        let modulation = if affine { Modulation::Affine } else { Modulation::Scale };
        let gate = if hard { GateActivation::HardSigmoid } else { GateActivation::Sigmoid };
        let cfg = config(embed, &layers.join(","), modulation, gate, 3);
        let tensors = random(&cfg, seed, 0.8);
        let dir = tempfile::tempdir().unwrap();
        write_model(dir.path(), &cfg, &tensors);
        let model = TfilmModel::load(dir.path()).unwrap();
        let got = model.forward(&text).unwrap();
        let want = naive_logits(&cfg, &tensors, &text);
        for (g, w) in got.logits.iter().zip(&want) {
            prop_assert!((f64::from(*g) - w).abs() < 1e-4, "logits {:?} vs naive {:?}", got.logits, want);
        }
    }
}
