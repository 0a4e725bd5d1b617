//! The `seqless` binary end to end: classify in both modes, train/eval, and refusals.

use std::path::Path;
use std::process::{Command, Output};

mod common;

use common::{json, refusal, seqless, stdout, write_test_model};

fn model_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    write_test_model(dir.path(), 4);
    dir
}

fn path(dir: &Path) -> &str {
    dir.to_str().unwrap()
}

/// `seqless classify --model MODEL ARGS...`.
fn classify(model: &Path, args: &[&str]) -> Output {
    let mut all = vec!["classify", "--model", path(model)];
    all.extend_from_slice(args);
    seqless(&all)
}

#[test]
fn json_output_has_the_documented_fields() {
    let dir = model_dir();
    let out = json(classify(dir.path(), &["--json", "hello there"]));
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("config.json")).unwrap())
            .unwrap();
    let labels: Vec<&str> = config["labels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap())
        .collect();
    assert_eq!(out["labels"], config["labels"]);
    assert_eq!(out["logits"].as_array().unwrap().len(), labels.len());
    // Every probability is named by its label, as the HTTP API answers.
    let probabilities = out["probabilities"].as_object().unwrap();
    let mut named: Vec<&str> = probabilities.keys().map(String::as_str).collect();
    named.sort_unstable();
    let mut sorted_labels = labels.clone();
    sorted_labels.sort_unstable();
    assert_eq!(named, sorted_labels);
    let p: f64 = probabilities.values().map(|v| v.as_f64().unwrap()).sum();
    assert!((p - 1.0).abs() < 1e-5);
    // The top label has the highest probability, and the logits are in label order.
    let top = out["label"].as_str().unwrap();
    let best = probabilities
        .iter()
        .max_by(|a, b| a.1.as_f64().unwrap().total_cmp(&b.1.as_f64().unwrap()))
        .unwrap()
        .0;
    assert_eq!(top, best);
    let logits = out["logits"].as_array().unwrap();
    let best_logit = (0..labels.len())
        .max_by(|&a, &b| {
            logits[a]
                .as_f64()
                .unwrap()
                .total_cmp(&logits[b].as_f64().unwrap())
        })
        .unwrap();
    assert_eq!(labels[best_logit], top);
    assert_eq!(out["padded_len"], 16);
}

#[test]
fn the_human_output_says_the_splits_that_ran_and_why_they_differ() {
    let dir = model_dir();
    let run = |splits: &str, text: &str| {
        stdout(classify(
            dir.path(),
            &["--mode", "serverless", "--splits", splits, text],
        ))
    };
    let trace_splits = |splits: &str, text: &str| -> Vec<String> {
        let out = json(classify(
            dir.path(),
            &["--mode", "serverless", "--splits", splits, "--json", text],
        ));
        out["trace"]["splits"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s.to_string())
            .collect()
    };
    // A 2-byte text has fewer blocks than 4 in some layer: the line says what ran and why.
    let short = run("4", "hi");
    let ran = trace_splits("4", "hi").join(", ");
    assert!(
        short.contains(&format!(
            "plan fused, conv functions per layer: {ran} (fewer than --splits 4"
        )),
        "{short}"
    );
    // A long text takes the 2 asked for in every layer, and nothing is explained.
    let text = "a longer text, split in two ".repeat(4);
    let long = run("2", &text);
    assert!(trace_splits("2", &text).iter().all(|s| s == "2"));
    assert!(long.contains("conv functions per layer: 2, 2\n"), "{long}");
    // Then one line per stage kind and layer, in the order they ran: the fused plan's
    // pipeline of conv splits and TFiLM stages, and the head.
    let groups: Vec<&str> = (long.lines())
        .filter(|l| l.starts_with("  ") && l.contains(" invocation"))
        .map(|l| l.trim_start().split(':').next().unwrap())
        .collect();
    let expected = ["conv", "tfilm", "conv", "head"]
        .iter()
        .zip([0, 0, 1, 1])
        .map(|(stage, layer)| format!("{stage:<10} layer {layer}"))
        .collect::<Vec<_>>();
    assert_eq!(groups, expected, "{long}");
    assert!(long.contains("conv       layer 1: 2 invocations"), "{long}");
    // With --transfer inline, a short query moves nothing through the store.
    let inline = stdout(classify(
        dir.path(),
        &["--mode", "serverless", "--transfer", "inline", &text],
    ));
    assert!(inline.contains(" 0 bytes moved (0 serial), "), "{inline}");
    assert!(inline.contains("bytes inline"), "{inline}");
}

#[test]
fn splits_over_max_splits_are_refused() {
    let dir = model_dir();
    let out = classify(
        dir.path(),
        &["--mode", "serverless", "--splits", "17", "hello"],
    );
    let err = refusal(out);
    assert!(err.contains("--splits 17 is over --max-splits 16"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
}

#[test]
fn serverless_mode_matches_and_adds_a_trace() {
    let dir = model_dir();
    let text =
        "a somewhat longer text so that the plan has several blocks to split across functions";
    let mono = json(classify(dir.path(), &["--json", text]));
    for plan in ["fused", "paper"] {
        let out = json(classify(
            dir.path(),
            &[
                "--json",
                "--mode",
                "serverless",
                "--plan",
                plan,
                "--splits",
                "3",
                text,
            ],
        ));
        assert_eq!(out["label"], mono["label"]);
        for (a, b) in out["logits"]
            .as_array()
            .unwrap()
            .iter()
            .zip(mono["logits"].as_array().unwrap())
        {
            assert!((a.as_f64().unwrap() - b.as_f64().unwrap()).abs() < 1e-4);
        }
        let trace = &out["trace"];
        let first = &trace["invocations"][0];
        for field in [
            "stage",
            "layer",
            "split",
            "cold",
            "duration_ms",
            "billed_ms",
            "bytes_in",
            "bytes_out",
        ] {
            assert!(
                !first[field].is_null(),
                "{plan}: invocation lacks {field}: {first}"
            );
        }
        for field in [
            "total_ms",
            "bytes_moved",
            "serial_bytes",
            "billed_gb_s",
            "cost_usd",
        ] {
            assert!(trace[field].is_number(), "{plan}: trace lacks {field}");
        }
    }
}

#[test]
fn input_from_file_and_stdin_including_invalid_utf8() {
    let dir = model_dir();
    let file = dir.path().join("input.bin");
    std::fs::write(&file, [0xff, 0xfe, 0x00, b'a']).unwrap();
    let out = json(classify(
        dir.path(),
        &["--json", "--file", file.to_str().unwrap()],
    ));
    assert!(out["label"].is_string());
}

#[test]
fn refusals_are_clear_and_exit_2() {
    let dir = model_dir();
    assert!(refusal(classify(dir.path(), &[""])).contains("empty"));
    refusal(classify(dir.path(), &["--mode", "serverless", ""]));
    // Over max_len.
    let cfg_path = dir.path().join("config.json");
    let mut cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&cfg_path).unwrap()).unwrap();
    cfg["max_len"] = 5.into();
    std::fs::write(&cfg_path, cfg.to_string()).unwrap();
    assert!(refusal(classify(dir.path(), &["too long for five"])).contains("max_len"));
    // A broken model directory names the tensor.
    std::fs::write(dir.path().join("model.safetensors"), b"garbage").unwrap();
    assert!(refusal(classify(dir.path(), &["x"])).contains("model.safetensors"));
}

#[cfg(feature = "train")]
#[test]
fn train_then_eval_writes_a_model_and_a_report() {
    let dir = tempfile::tempdir().unwrap();
    let data_file = dir.path().join("data.jsonl");
    let mut lines = String::new();
    for i in 0..30 {
        let (text, label) = [("the cat sat", "en"), ("die Katze", "de")][i % 2];
        let record = serde_json::json!({"text": format!("{text} {i}"), "label": label});
        lines.push_str(&format!("{record}\n"));
    }
    std::fs::write(&data_file, lines).unwrap();
    let out_dir = dir.path().join("m");
    let (data, out) = (path(&data_file), path(&out_dir));
    // `seqless train` of the data file into the model directory, with `extra` options.
    let train =
        |extra: &[&str]| seqless(&[&["train", "--data", data, "--out", out][..], extra].concat());
    stdout(train(&[
        "--epochs",
        "2",
        "--layers",
        "8:3:2:2",
        "--embed-dim",
        "4",
    ]));
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out_dir.join("train-report.json")).unwrap())
            .unwrap();
    assert_eq!(report["epochs"].as_array().unwrap().len(), 2);
    let eval = json(seqless(&["eval", "--model", out, "--data", data, "--json"]));
    assert_eq!(eval["n"], 30);
    assert!(eval["accuracy"].as_f64().unwrap() >= 0.0 && eval["macro_f1"].is_number());
    // A data file with one label is refused with its name.
    std::fs::write(&data_file, "{\"text\":\"a\",\"label\":\"x\"}\n").unwrap();
    let bad = refusal(train(&[]));
    assert!(bad.contains("data.jsonl"), "{bad}");
}

#[cfg(feature = "train")]
#[test]
fn init_writes_a_loadable_untrained_model_and_refuses_bad_architectures() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("m");
    stdout(seqless(&[
        "init",
        "--out",
        path(&out_dir),
        "--labels",
        "b,a,b",
        "--embed-dim",
        "8",
        "--layers",
        "6:3:1:4,6:3:1:4",
        "--modulation",
        "affine",
    ]));
    // Labels sorted and deduplicated, and the model runs in both modes with one answer.
    let mono = json(classify(&out_dir, &["--json", "some text"]));
    assert_eq!(mono["logits"].as_array().unwrap().len(), 2);
    let served = json(classify(
        &out_dir,
        &["--json", "--mode", "serverless", "some text"],
    ));
    assert_eq!(mono["label"], served["label"]);

    for (args, needle) in [
        (vec!["--labels", "a"], "at least two distinct labels"),
        (vec!["--labels", "a,b", "--layers", "3:3"], "C:k:p:b"),
    ] {
        let mut all = vec!["init", "--out", path(&out_dir)];
        all.extend(args);
        let err = refusal(seqless(&all));
        assert!(err.contains(needle), "{all:?}: {err}");
    }
}

/// `seqless classify … | head -c 0`: a closed stdout ends the command quietly (by
/// SIGPIPE, as Unix tools do), never with a panic.
#[test]
#[cfg(unix)]
fn a_closed_stdout_is_not_a_panic() {
    use std::os::unix::process::ExitStatusExt;
    let dir = model_dir();
    let mut child = Command::new(common::SEQLESS)
        .args([
            "classify",
            "--model",
            path(dir.path()),
            "--json",
            "some text",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run seqless");
    drop(child.stdout.take()); // the reader goes away before anything is printed
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(
        out.status.success() || out.status.signal() == Some(libc::SIGPIPE),
        "{:?}: {stderr}",
        out.status
    );
}

/// With `--plan-calibration`, each query runs as `seqless plan` picks for its length, at
/// the deployment's memory, among the plans its function slots can run; and the output
/// says so.
#[test]
fn the_planner_chooses_each_querys_plan_as_seqless_plan_picks() {
    let dir = model_dir();
    let calibration = dir.path().join("calibration.json");
    std::fs::write(
        &calibration,
        serde_json::to_string(&seqless_sim::Calibration::default()).unwrap(),
    )
    .unwrap();
    let calibration = path(&calibration);
    // 16 slots run any resident plan of up to 8 splits; 2 run none, so the planner
    // leaves the resident plan out.
    let cases = [
        (30, "cost", "16", "fused,paper,resident"),
        (30, "latency", "16", "fused,paper,resident"),
        (3_000, "latency", "16", "fused,paper,resident"),
        (3_000, "latency", "2", "fused,paper"),
    ];
    for (bytes, objective, slots, plans) in cases {
        let text = "hello, planner ".repeat(bytes / 15);
        let planned = json(seqless(&[
            "plan",
            "--model",
            path(dir.path()),
            "--bytes",
            &text.len().to_string(),
            "--calibration",
            calibration,
            "--memory-mb",
            "1769",
            "--plans",
            plans,
            "--objective",
            objective,
            "--json",
        ]));
        let pick = &planned["pick"];
        let out = json(classify(
            dir.path(),
            &[
                "--mode",
                "serverless",
                "--plan-calibration",
                calibration,
                "--plan-objective",
                objective,
                "--concurrency",
                slots,
                "--json",
                &text,
            ],
        ));
        let trace = &out["trace"];
        assert_eq!(trace["plan"], pick["plan"], "{bytes} {objective}: {pick}");
        assert_eq!(
            trace["splits"][0], pick["splits_used"],
            "{bytes} {objective}: {pick}"
        );
    }
    let human = stdout(classify(
        dir.path(),
        &[
            "--mode",
            "serverless",
            "--plan-calibration",
            calibration,
            "hi",
        ],
    ));
    assert!(
        human.contains("the planner's pick for this length"),
        "{human}"
    );
    let err = refusal(classify(
        dir.path(),
        &["--mode", "serverless", "--plan-slo-ms", "5", "hi"],
    ));
    assert!(
        err.contains("--plan-slo-ms has an effect only with --plan-calibration"),
        "{err}"
    );
}
