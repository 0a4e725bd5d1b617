//! The kernels against a naive f64 forward pass on random models, over every config axis
//! and lengths that cross the conv tiles, block boundaries and the alignment unit.

use proptest::prelude::*;
use seqless_model::TfilmModel;
use seqless_model::testing::{arch_and_text, config, naive_logits, random, write_model};

fn layer_spec() -> impl Strategy<Value = String> {
    (1usize..6, 1usize..6, 1usize..4, 1usize..5).prop_map(|(c, k, p, b)| format!("{c}:{k}:{p}:{b}"))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn kernels_equal_naive_forward(
        (arch, text) in arch_and_text(layer_spec(), 1..4, 1..3000),
    ) {
        let cfg = config(arch.embed, &arch.layers, arch.modulation, arch.gate, 3);
        let tensors = random(&cfg, arch.seed, 0.8);
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
