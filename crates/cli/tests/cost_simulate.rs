//! `seqless cost` and `seqless simulate`, run as the built binary.

use std::path::Path;

mod common;

use common::{json, ok, refusal, seqless};

/// Asserts that `text` contains every one of `needles`.
#[track_caller]
fn assert_contains_all(text: &str, needles: &[&str]) {
    for needle in needles {
        assert!(text.contains(needle), "missing {needle:?} in\n{text}");
    }
}

/// Writes a one-layer model's `config.json` into `dir`: all that `simulate --model` reads.
fn write_model_config(dir: &Path) {
    std::fs::write(
        dir.join("config.json"),
        r#"{"format":"seqless-tfilm/1","tokenizer":"bytes","vocab_size":257,"embed_dim":4,
        "layers":[{"channels":8,"kernel":3,"pool":2,"block_len":4}],"modulation":"scale",
        "gate_activation":"sigmoid","labels":["a","b"],"max_len":50000}"#,
    )
    .unwrap();
}

fn fails(args: &[&str]) -> String {
    let out = seqless(args);
    assert!(!out.status.success(), "seqless {args:?} should have failed");
    String::from_utf8(out.stderr).unwrap()
}

#[test]
fn paper_cost_shows_every_term() {
    let text = ok(&["cost", "--paper"]);
    assert_contains_all(
        &text,
        &[
            "1,800,000 queries x 10 invocations x $0.2 per 1M = $3.6",
            "1 h x $0.188/h = $0.188",
            "1 h x $0.156/h = $0.156",
            "Total            $3.944",
            "= $0.9",
            "4.38x",
        ],
    );
    let out = json(seqless(&["cost", "--paper", "--json"]));
    assert_eq!(out["serverless_usd"], 3.944);
    assert_eq!(out["gpu_usd"], 0.9);
    assert_eq!(out["lambda_requests_usd"], 3.6);
}

/// A trace as `seqless classify --mode serverless --json` writes it: one query, two
/// conv invocations of 100 ms at 1024 MB and a head of 10 ms at 512 MB, all warm.
const TRACE: &str = r#"{"label":"a","logits":[0.1,0.2],"probabilities":[0.4,0.6],"padded_len":64,
"trace":{"plan":"fused","splits":[2],"total_ms":130.0,"bytes_moved":1000,"serial_bytes":100,
"billed_gb_s":0.205,"cost_usd":0.0,"cost":{"requests_usd":0,"duration_usd":0,"init_usd":0,"total_usd":0},
"invocations":[
 {"stage":"conv","layer":0,"split":0,"cold":false,"init_ms":0.0,"duration_ms":99.2,"billed_ms":100,"memory_mb":1024,"compute_ms":90.0,"bytes_in":300,"bytes_out":200,"round_trip_ms":101.0},
 {"stage":"conv","layer":0,"split":1,"cold":false,"init_ms":0.0,"duration_ms":99.5,"billed_ms":100,"memory_mb":1024,"compute_ms":90.0,"bytes_in":300,"bytes_out":200,"round_trip_ms":101.0},
 {"stage":"head","layer":0,"split":0,"cold":false,"init_ms":0.0,"duration_ms":9.1,"billed_ms":10,"memory_mb":512,"compute_ms":8.0,"bytes_in":100,"bytes_out":0,"round_trip_ms":9.5}
]}}"#;

#[test]
fn full_model_prices_a_trace() {
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("trace.json");
    std::fs::write(&trace, TRACE).unwrap();
    let trace = trace.to_str().unwrap();

    let text = ok(&["cost", "--trace", trace]);
    assert_contains_all(
        &text,
        &[
            "Lambda requests",
            "Lambda duration",
            "Lambda INIT",
            "Master instance",
            "ElastiCache",
            "per million queries",
            "conv",
            "head",
            "break-even utilisation",
            "p2.xlarge",
        ],
    );

    // 1M queries in 1 h: 3M requests ($0.6), 205,000 GB-s, the paper's master and one
    // cache.m5.large.
    let out = json(seqless(&["cost", "--trace", trace, "--json"]));
    let expected = 0.6 + 205_000.0 * 0.0000166667 + 0.188 + 0.156;
    let total = out["total_usd"].as_f64().unwrap();
    assert!((total - expected).abs() < 1e-9, "{total} vs {expected}");
    assert!((out["cost_per_million_queries_usd"].as_f64().unwrap() - expected).abs() < 1e-9);
    assert_eq!(out["init_usd"], 0.0);
    assert_eq!(out["store_gb"], 1.0);
    assert_eq!(out["stages"][0]["stage"], "conv");
    assert_eq!(out["stages"][0]["invocations"], 2_000_000.0);
    let u = out["comparison"]["break_even_utilisation"]
        .as_f64()
        .unwrap();
    assert!(
        (u - 0.9 / (3600.0 * 1000.0 * expected / 1e6)).abs() < 1e-9,
        "{u}"
    );

    // The same usage by hand, on arm64, with a cold-start fraction and INIT.
    let by_hand = json(seqless(&[
        "cost",
        "--stage",
        "conv:2:100:1024",
        "--stage",
        "head:1:10:512",
        "--json",
    ]));
    assert!((by_hand["total_usd"].as_f64().unwrap() - expected).abs() < 1e-9);
    let arm = json(seqless(&[
        "cost",
        "--trace",
        trace,
        "--arch",
        "arm64",
        "--cold-start-fraction",
        "0.5",
        "--init-ms",
        "200",
        "--json",
    ]));
    assert_eq!(arm["arch"], "arm64");
    // 1.5M cold starts: 1M conv at 1 GB, 0.5M head at 0.5 GB, 0.2 s each.
    let init = (1e6 * 0.2 + 0.5e6 * 0.5 * 0.2) * 0.0000133334;
    assert!((arm["init_usd"].as_f64().unwrap() - init).abs() < 1e-9);
}

#[test]
fn cost_refuses_bad_input_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let err = fails(&["cost"]);
    assert!(err.contains("--trace") && err.contains("--paper"), "{err}");
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, r#"{"label": "a"}"#).unwrap();
    let err = fails(&["cost", "--trace", bad.to_str().unwrap()]);
    assert!(
        err.contains("bad.json") && err.contains("trace.invocations"),
        "{err}"
    );
    // A field renamed in the trace fails to read rather than billing zero.
    let renamed = dir.path().join("renamed.json");
    std::fs::write(&renamed, TRACE.replacen("billed_ms", "billed", 1)).unwrap();
    let err = fails(&["cost", "--trace", renamed.to_str().unwrap()]);
    assert!(
        err.contains("renamed.json") && err.contains("billed_ms"),
        "{err}"
    );
    let absent = dir.path().join("absent.json");
    let err = fails(&["cost", "--trace", absent.to_str().unwrap()]);
    assert!(err.contains("absent.json"), "{err}");
    let err = fails(&["cost", "--stage", "conv:8:x:1024"]);
    assert!(err.contains("conv:8:x:1024"), "{err}");
    let prices = dir.path().join("prices.toml");
    std::fs::write(&prices, "region = 3\n").unwrap();
    let err = fails(&[
        "cost",
        "--stage",
        "conv:1:1:128",
        "--pricing",
        prices.to_str().unwrap(),
    ]);
    assert!(err.contains("prices.toml"), "{err}");
    let err = fails(&["cost", "--stage", "conv:1:1:128", "--master", "m9.huge"]);
    assert!(err.contains("m9.huge") && err.contains("--master"), "{err}");
}

fn simulate(out: &Path, config: &Path) -> String {
    ok(&[
        "simulate",
        "--config",
        config.to_str().unwrap(),
        "--seed",
        "7",
        "--sweep",
        "1,10,100",
        "--out",
        out.to_str().unwrap(),
    ])
}

#[test]
fn simulate_writes_reports_and_plots_deterministically() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("sim.json");
    std::fs::write(
        &config,
        r#"{"duration_s": 4, "drain_s": 10, "arrivals": {"kind": "poisson", "rate_qps": 20},
            "lengths": {"kind": "uniform", "min_bytes": 100, "max_bytes": 20000}}"#,
    )
    .unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    let text = simulate(&a, &config);
    assert_contains_all(
        &text,
        &[
            "throughput",
            "p50 latency",
            "p99 latency",
            "cold starts",
            "cost per query",
            "crossover",
            "Sweep",
        ],
    );
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(a.join("report.json")).unwrap()).unwrap();
    assert_eq!(report["config"]["seed"], 7);
    assert!(report["serverless"]["cold_starts"].as_u64().unwrap() > 0);
    let sweep_csv = std::fs::read_to_string(a.join("sweep.csv")).unwrap();
    assert_eq!(sweep_csv.lines().count(), 4, "{sweep_csv}");
    assert!(
        std::fs::read_to_string(a.join("timeline.csv"))
            .unwrap()
            .starts_with("t_s,")
    );
    for svg in [
        "throughput_vs_load.svg",
        "latency_vs_load.svg",
        "cost_vs_utilisation.svg",
        "timeline.svg",
    ] {
        let text = std::fs::read_to_string(a.join(svg)).unwrap();
        let head = text.trim_start();
        assert!(
            head.starts_with("<svg") || head.starts_with("<?xml"),
            "{svg}"
        );
    }
    let png = std::fs::read(a.join("throughput_vs_load.png")).unwrap();
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"));

    simulate(&b, &config);
    for file in ["report.json", "sweep.csv", "sweep.json", "timeline.csv"] {
        assert_eq!(
            std::fs::read(a.join(file)).unwrap(),
            std::fs::read(b.join(file)).unwrap(),
            "{file}"
        );
    }
    // Another seed gives another trace.
    let other = json(seqless(&[
        "simulate",
        "--config",
        config.to_str().unwrap(),
        "--seed",
        "8",
        "--json",
    ]));
    assert_ne!(other["serverless"]["arrived"], serde_json::Value::Null);
    assert_ne!(other["serverless"], report["serverless"]);
}

#[test]
fn simulate_runs_the_real_plan_and_refuses_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    write_model_config(dir.path());
    let model = dir.path().to_str().unwrap();
    for plan in ["fused", "paper"] {
        let out = json(seqless(&[
            "simulate",
            "--model",
            model,
            "--plan",
            plan,
            "--splits",
            "2",
            "--duration-s",
            "2",
            "--arrivals",
            "constant",
            "--rate",
            "5",
            "--json",
        ]));
        // The model's max_len caps the sampled lengths, so no query is refused.
        assert_eq!(out["config"]["max_len"], 50_000);
        assert_eq!(out["serverless"]["arrived"], 10);
        let kinds: Vec<&str> = out["serverless"]["cost"]["stages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["stage"].as_str().unwrap())
            .collect();
        let serial = if plan == "fused" {
            "head@1769MB"
        } else {
            "classifier@1769MB"
        };
        assert!(
            kinds.contains(&"conv@1769MB") && kinds.contains(&serial),
            "{kinds:?}"
        );
    }
    let nope = dir.path().join("nope");
    let err = fails(&["simulate", "--model", nope.to_str().unwrap()]);
    assert!(err.contains("nope"), "{err}");
    let bad = dir.path().join("sim.json");
    std::fs::write(&bad, "{\"sede\": 1}").unwrap();
    let err = fails(&["simulate", "--config", bad.to_str().unwrap()]);
    assert!(err.contains("sim.json") && err.contains("sede"), "{err}");
    let err = fails(&["simulate", "--arrivals", "weekly", "--duration-s", "1"]);
    assert!(err.contains("weekly"), "{err}");
    let err = fails(&["simulate", "--duration-s", "1", "--sweep=0"]);
    assert!(err.contains("sweep"), "{err}");
}

/// Values inline take no store traffic, so a deployment with no cache node serves them;
/// through the store it is refused, by field; and batching stages cuts the invocations.
#[test]
fn simulate_inline_needs_no_cache_and_batches_share_invocations() {
    let dir = tempfile::tempdir().unwrap();
    write_model_config(dir.path());
    let model = dir.path().to_str().unwrap();
    let run = |extra: &[&str]| {
        let mut args = vec![
            "simulate",
            "--model",
            model,
            "--plan",
            "fused",
            "--splits",
            "1",
            "--duration-s",
            "5",
            "--rate",
            "200",
            "--length-bytes",
            "2000",
            "--cache-nodes",
            "0",
            "--json",
        ];
        args.extend_from_slice(extra);
        seqless(&args)
    };
    let alone = json(run(&["--transfer", "inline"]));
    assert_eq!(alone["serverless"]["store_bytes"], 0);
    assert_eq!(alone["serverless"]["cost"]["cache_usd"], 0.0);
    let batched = json(run(&[
        "--transfer",
        "inline",
        "--batch-max",
        "8",
        "--batch-wait-ms",
        "5",
    ]));
    let invocations = |r: &serde_json::Value| r["serverless"]["invocations"].as_f64().unwrap();
    assert!(
        invocations(&batched) < invocations(&alone),
        "{} batched against {} alone",
        invocations(&batched),
        invocations(&alone)
    );
    let out = run(&[]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert_contains_all(&err, &["serverless.cache_nodes is 0", "--transfer inline"]);
    let err = fails(&["simulate", "--duration-s", "1", "--batch-max", "65"]);
    assert!(err.contains("serverless.batching.max"), "{err}");
}

#[test]
fn simulate_sweeps_input_size_against_both_baselines() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("sizes");
    let text = ok(&[
        "simulate",
        "--model",
        common::LANGID,
        "--duration-s",
        "2",
        "--rate",
        "5",
        "--sweep-bytes",
        "1024,65536,1048576",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_contains_all(&text, &["Size sweep", "cpu_measured", "gpu_roofline"]);
    for f in [
        "size_sweep.json",
        "throughput_vs_size.svg",
        "throughput_vs_size.png",
        "latency_vs_size.svg",
    ] {
        assert!(out.join(f).is_file(), "{f} missing");
    }
    let csv = std::fs::read_to_string(out.join("size_sweep.csv")).unwrap();
    let header = csv.lines().next().unwrap();
    assert_contains_all(
        header,
        &[
            "bytes,offered_qps,serverless_throughput_qps,serverless_bytes_per_s",
            "cpu_measured_bytes_per_s",
            "gpu_roofline_p99_ms",
            "cpu_measured_capacity_qps",
            "tfilm_floor_ms",
            "serverless_store_network_utilisation",
            "serverless_saturated",
        ],
    );
    assert_eq!(csv.lines().count(), 4, "{csv}");
    let sweep: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("size_sweep.json")).unwrap())
            .unwrap();
    let points = sweep["points"].as_array().unwrap();
    // Each fleet's capacity falls as queries grow, and serverless never beats the floor.
    for fleet in 0..2 {
        let caps: Vec<f64> = points
            .iter()
            .map(|p| p["fleets"][fleet]["capacity_qps"].as_f64().unwrap())
            .collect();
        assert!(caps.windows(2).all(|w| w[1] < w[0]), "{caps:?}");
    }
    for p in points {
        let floor = p["tfilm_floor_ms"].as_f64().unwrap();
        assert!(
            p["serverless"]["latency"]["p50_ms"].as_f64().unwrap() >= floor,
            "{p}"
        );
    }
    // The report's fleet is the default baseline, and says where it comes from.
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap();
    let basis = report["config"]["instances"]["basis"].as_str().unwrap();
    assert!(basis.starts_with("gpu-roofline"), "{basis}");
}

#[test]
fn simulate_refuses_bad_baselines_and_sizes_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let o = out.to_str().unwrap();
    // `simulate args --out o`, which must be refused before it writes anything.
    let refused = |args: &[&str]| refusal(seqless(&[&["simulate"], args, &["--out", o]].concat()));
    let err = refused(&["--instance", "tpu"]);
    assert!(err.contains("--instance"), "{err}");
    let err = refused(&["--instance", "cpu-measured"]);
    assert!(
        err.contains("--instance cpu-measured needs --model"),
        "{err}"
    );
    let err = refused(&["--sweep-bytes", "1024"]);
    assert!(err.contains("--sweep-bytes needs --model"), "{err}");
    for bad in ["0", "2000000"] {
        let err = refused(&["--model", common::LANGID, "--sweep-bytes", bad]);
        assert!(err.contains(&format!("--sweep-bytes {bad}")), "{err}");
    }
    // A model with no CPU measurement is refused by the field that chose it.
    let model = dir.path().join("m");
    std::fs::create_dir(&model).unwrap();
    write_model_config(&model);
    let m = model.to_str().unwrap();
    let err = refused(&["--model", m, "--instance", "cpu-measured"]);
    assert!(err.contains("instances.baseline"), "{err}");
    let err = refused(&["--model", m, "--sweep-bytes", "64"]);
    assert!(err.contains("instances.baseline"), "{err}");
    // A negative capacity in the config is named, before any file is written.
    let config = dir.path().join("sim.json");
    std::fs::write(&config, r#"{"instances": {"per_byte_ms": -1}}"#).unwrap();
    let err = refused(&["--config", config.to_str().unwrap()]);
    assert!(err.contains("instances.per_byte_ms"), "{err}");
    assert!(!out.exists(), "a refused run wrote {o}");
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        2,
        "stray files"
    );
}

/// `seqless plan` over the shipped model's config and the local platform's calibration:
/// every point of the space, a frontier, a pick within the SLO, and an SLO that no plan
/// meets refused with exit 2, naming the fastest plan and its predicted latency.
#[test]
fn plan_predicts_every_configuration_and_refuses_an_slo_no_plan_meets() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
    let langid = format!("{root}/models/langid");
    let calibration = format!("{root}/docs/results/calibration-langid-local-redis.json");
    let base = [
        "plan",
        "--model",
        &langid,
        "--bytes",
        "65536",
        "--calibration",
        &calibration,
        "--plans",
        "fused,resident",
        "--splits",
        "1,4",
        "--memory-mb",
        "1024,1769",
    ];
    let run = |extra: &[&str]| {
        let mut args: Vec<&str> = base.to_vec();
        args.extend(extra);
        seqless(&args)
    };
    let out = json(run(&["--json", "--slo-ms", "100000"]));
    let candidates = out["candidates"].as_array().unwrap();
    assert_eq!(candidates.len(), 8);
    assert!(candidates.iter().any(|c| c["pareto"] == true));
    let pick = &out["pick"];
    let cheapest = candidates
        .iter()
        .filter_map(|c| c["cost_usd"].as_f64())
        .fold(f64::INFINITY, f64::min);
    assert_eq!(pick["cost_usd"].as_f64(), Some(cheapest));
    let fastest = candidates
        .iter()
        .filter_map(|c| c["latency_ms"].as_f64())
        .fold(f64::INFINITY, f64::min);
    let err = refusal(run(&["--slo-ms", "0.001"]));
    assert_contains_all(&err, &["no plan meets the 0.001 ms SLO", "the fastest is"]);
    assert!(err.contains(&format!("{fastest:.1} ms")), "{err}");
    let err = refusal(run(&["--slo-ms", "0"]));
    assert!(err.contains("--slo-ms 0: give a positive number"), "{err}");
}

#[test]
fn calibrate_refuses_zero_timed_runs_and_writes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("calibration.json");
    let model = concat!(env!("CARGO_MANIFEST_DIR"), "/../../models/langid");
    let path = out.to_str().unwrap();
    let flags = [
        "--runs", "0", "--bytes", "4096", "--model", model, "--out", path,
    ];
    let err = refusal(seqless(&[&["bench", "calibrate"][..], &flags].concat()));
    assert!(err.contains("--runs must be at least 1"), "{err}");
    assert!(!out.exists(), "a refused calibration wrote {out:?}");
}
