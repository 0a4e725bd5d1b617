//! `seqless data langid` builds the same data set for the same seed, with 24 languages and
//! documents from tens of bytes to tens of kilobytes.
#![cfg(feature = "langid-data")]

use std::collections::BTreeSet;

mod common;

fn build(dir: &std::path::Path) {
    common::ok(&["data", "langid", "--out", dir.to_str().unwrap()]);
}

#[test]
fn repeatable_and_varied() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    build(a.path());
    build(b.path());
    for file in ["train.jsonl", "test.jsonl", "test-single.jsonl"] {
        assert_eq!(
            std::fs::read(a.path().join(file)).unwrap(),
            std::fs::read(b.path().join(file)).unwrap(),
            "{file}"
        );
    }
    let test = std::fs::read_to_string(a.path().join("test.jsonl")).unwrap();
    let docs: Vec<serde_json::Value> = test
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let labels: BTreeSet<&str> = docs.iter().map(|d| d["label"].as_str().unwrap()).collect();
    assert_eq!(labels.len(), 24);
    assert!(!labels.contains("es"));
    let lengths: Vec<usize> = docs
        .iter()
        .map(|d| d["text"].as_str().unwrap().len())
        .collect();
    assert!(lengths.iter().any(|&l| l < 100) && lengths.iter().any(|&l| l > 10_000));
    // Held-out sentences never appear in the training file.
    let train = std::fs::read_to_string(a.path().join("train.jsonl")).unwrap();
    let train_texts: BTreeSet<String> = train
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["text"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    let single = std::fs::read_to_string(a.path().join("test-single.jsonl")).unwrap();
    for line in single.lines() {
        let text = serde_json::from_str::<serde_json::Value>(line).unwrap()["text"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(
            !train_texts.contains(&text),
            "test sentence in training data: {text}"
        );
    }
}
