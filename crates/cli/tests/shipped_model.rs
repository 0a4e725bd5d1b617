//! The committed `models/langid` loads and labels real sentences (written for this test, not
//! taken from its training or test data) in ten languages and scripts.

use std::path::PathBuf;

use seqless_model::TfilmModel;

fn shipped() -> TfilmModel {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../models/langid");
    TfilmModel::load(&dir).expect("models/langid loads")
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
