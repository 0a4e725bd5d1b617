//! `codelang::build_from` on a fake file-system root laid out as dpkg leaves one: whole
//! files, held out by package, filtered, repeatable, with licences recorded.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use seqless_datasets::codelang::{MIN_BYTES, Options, build_from};
use seqless_datasets::testing::FakePackage;

/// A source file of about `bytes` bytes whose lines name its package and index, so every
/// file differs.
fn source(package: &str, i: usize, bytes: usize) -> String {
    let line = format!("fn f_{i}() -> u32 {{ 42 }} // {package}\n");
    line.repeat(bytes / line.len() + 1)
}

/// Ten Rust and ten Python packages of six long files each, plus files every filter
/// must drop.
fn fake_root(root: &Path) -> Vec<(String, String)> {
    let mut listed = Vec::new();
    for (label, ext) in [("Rust", "rs"), ("Python", "py")] {
        for p in 0..10 {
            let package = format!("{}-{p}", label.to_lowercase());
            let mut files: Vec<(String, String)> = (0..6)
                .map(|i| {
                    (
                        format!("m{i}.{ext}"),
                        source(&package, i, MIN_BYTES + 1000 * i),
                    )
                })
                .collect();
            files.push((format!("short.{ext}"), "x = 1\n".into()));
            files.push(("README.txt".into(), source(&package, 99, MIN_BYTES * 2)));
            files.push((
                format!("dist/bundle.{ext}"),
                source(&package, 98, MIN_BYTES * 2),
            ));
            let copyright =
                format!("Files: debian/*\nLicense: GPL-2+\n\nFiles: *\nLicense: MIT-{package}\n");
            FakePackage {
                name: &package,
                multiarch: true,
                copyright: &copyright,
                files,
            }
            .install(root)
            .unwrap();
            listed.push((label.to_string(), package));
        }
    }
    listed
}

fn options(root: &Path, out: &Path) -> Options {
    Options {
        out: out.to_path_buf(),
        root: root.to_path_buf(),
        seed: 7,
        per_package: 4,
        window: 1024,
        windows_per_doc: 2,
    }
}

fn records(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn held_out_by_package_filtered_and_repeatable() {
    let root = tempfile::tempdir().unwrap();
    let listed = fake_root(root.path());
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let summary = build_from(&options(root.path(), a.path()), &listed).unwrap();
    build_from(&options(root.path(), b.path()), &listed).unwrap();
    for file in [
        "train.jsonl",
        "valid.jsonl",
        "test.jsonl",
        "train-windows.jsonl",
    ] {
        assert_eq!(
            std::fs::read(a.path().join(file)).unwrap(),
            std::fs::read(b.path().join(file)).unwrap(),
            "{file} differs between two builds"
        );
    }
    assert!(summary.contains("median bytes"), "{summary}");

    let mut packages_of: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    for split in ["train", "valid", "test"] {
        let docs = records(&a.path().join(format!("{split}.jsonl")));
        let labels: BTreeSet<&str> = docs.iter().map(|d| d["label"].as_str().unwrap()).collect();
        assert_eq!(labels, BTreeSet::from(["Python", "Rust"]), "{split}");
        for d in &docs {
            let (package, path) = (d["package"].as_str().unwrap(), d["path"].as_str().unwrap());
            let text = d["text"].as_str().unwrap();
            assert!(text.len() >= MIN_BYTES, "{path} is short");
            assert!(
                !path.contains("/dist/") && !path.ends_with(".txt"),
                "{path}"
            );
            assert_eq!(d["license"], format!("MIT-{package}"));
            let on_disk = std::fs::read_to_string(root.path().join(path.trim_start_matches('/')));
            assert_eq!(on_disk.unwrap(), text, "{path} is not the whole file");
            packages_of
                .entry(split)
                .or_default()
                .insert(package.to_string());
        }
    }
    // Per language: 2 test packages, 1 validation, 7 training; none in two splits.
    assert_eq!(packages_of["test"].len(), 4);
    assert_eq!(packages_of["valid"].len(), 2);
    assert_eq!(packages_of["train"].len(), 14);
    assert!(packages_of["test"].is_disjoint(&packages_of["train"]));
    assert!(packages_of["valid"].is_disjoint(&packages_of["train"]));
    assert!(packages_of["test"].is_disjoint(&packages_of["valid"]));
    assert_eq!(
        records(&a.path().join("train.jsonl")).len(),
        14 * 4,
        "4 files a package"
    );

    // Windows: at most two a training document, whole lines within the window, cut from it.
    let train = records(&a.path().join("train.jsonl"));
    let windows = records(&a.path().join("train-windows.jsonl"));
    assert_eq!(windows.len(), train.len() * 2);
    for w in &windows {
        let text = w["text"].as_str().unwrap();
        assert!(text.len() <= 1024 && text.len() >= 512 && text.ends_with('\n'));
        let whole = train.iter().find(|d| d["path"] == w["path"]).unwrap();
        assert!(whole["text"].as_str().unwrap().contains(text));
    }
}

#[test]
fn a_missing_package_is_named() {
    let root = tempfile::tempdir().unwrap();
    let mut listed = fake_root(root.path());
    listed.push(("Rust".into(), "librust-not-installed-dev".into()));
    let out = tempfile::tempdir().unwrap();
    let err = build_from(&options(root.path(), out.path()), &listed)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("librust-not-installed-dev") && err.contains("fetch-codelang-data.sh"),
        "{err}"
    );
}
