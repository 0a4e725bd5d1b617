//! The committed models load and label real texts written for this test, not taken from
//! their training or test data: `models/langid` sentences in ten languages and scripts,
//! `models/codelang` a short program in each of its six languages.

use std::path::PathBuf;

use seqless_model::TfilmModel;

fn repository(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(path)
}

fn shipped() -> TfilmModel {
    TfilmModel::load(&repository("models/langid")).expect("models/langid loads")
}

#[test]
fn labels_a_handful_of_real_sentences() {
    let model = shipped();
    assert_eq!(model.config.labels.len(), 24);
    for (text, label) in [
        (
            "Die Bundesregierung hat heute neue Maßnahmen beschlossen.",
            "de",
        ),
        (
            "Le gouvernement a annoncé de nouvelles mesures pour les entreprises.",
            "fr",
        ),
        ("Правительство объявило о новых мерах поддержки.", "ru"),
        ("政府は新しい経済対策を発表した。", "ja"),
        ("Η κυβέρνηση ανακοίνωσε νέα μέτρα στήριξης.", "el"),
        ("A kormány új intézkedéseket jelentett be.", "hu"),
        ("정부는 새로운 경제 대책을 발표했다.", "ko"),
        ("सरकार ने नए उपायों की घोषणा की।", "hi"),
        ("הממשלה הודיעה על צעדים חדשים.", "he"),
        ("أعلنت الحكومة عن إجراءات جديدة.", "ar"),
    ] {
        let p = model.forward(text.as_bytes()).unwrap();
        assert_eq!(p.label, label, "{text}: {:?}", p.probabilities);
    }
}

#[test]
fn codelang_has_the_papers_shape_and_labels_a_program_in_each_language() {
    let model = TfilmModel::load(&repository("models/codelang")).expect("models/codelang loads");
    let layers: Vec<String> = (model.config.layers.iter())
        .map(|l| format!("{}:{}:{}:{}", l.channels, l.kernel, l.pool, l.block_len))
        .collect();
    assert_eq!(
        layers, ["256:3:1:32"; 3],
        "three conv+TFiLM layers of the seed shape"
    );
    for (file, label) in [
        ("queue.c", "C"),
        ("cache.go", "Go"),
        ("debounce.js", "JavaScript"),
        ("Tally.pm", "Perl"),
        ("retry.py", "Python"),
        ("interval.rs", "Rust"),
    ] {
        let text = std::fs::read(repository("crates/cli/tests/codelang").join(file)).unwrap();
        let p = model.forward(&text).unwrap();
        assert_eq!(p.label, label, "{file}: {:?}", p.probabilities);
    }
}
