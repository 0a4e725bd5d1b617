//! `seqless bench chaos` end to end at a small size, in process: without faults every query
//! is answered, under faults the retries carry the queries through and every answer is the
//! monolithic one, no key is left; and flags that cannot work are refused naming themselves.

mod common;

use common::{ok, refusal, seqless, write_test_model};

#[test]
fn a_small_chaos_run_reports_both_conditions_and_no_key_left() {
    let dir = tempfile::tempdir().unwrap();
    write_test_model(dir.path(), 3);
    let json_path = dir.path().join("chaos.json");
    let out = ok(&[
        "bench",
        "chaos",
        "--model",
        dir.path().to_str().unwrap(),
        "--queries",
        "12",
        "--concurrency",
        "4",
        "--rounds",
        "2",
        "--bytes",
        "500,2000",
        "--splits",
        "3",
        "--faults",
        "seed=3,error=0.1,crash=0.03,throttle=0.03,delay=0.1,delay-factor=50",
        "--json",
        json_path.to_str().unwrap(),
    ]);
    assert!(out.contains("keys left in the store: 0"), "{out}");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json_path).unwrap()).unwrap();
    let rows = report["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 4, "{report}");
    // Which stage draws which fault depends on how concurrent queries interleave, so a
    // stage can, rarely, fail all six attempts (0.16^6 per stage). Without retries about
    // nine queries in ten would fail at these rates, so eleven of twelve still proves them.
    for row in rows {
        let succeeded = row["succeeded"].as_u64().unwrap();
        assert_eq!(row["equal"].as_u64().unwrap(), succeeded, "{row}");
        let least = if row["faults"] == true { 11 } else { 12 };
        assert!(succeeded >= least, "{row}");
    }
    let retries = |faults: bool| -> u64 {
        (rows.iter())
            .filter(|r| r["faults"] == faults)
            .map(|r| r["retries"].as_u64().unwrap())
            .sum()
    };
    assert_eq!(retries(false), 0, "{report}");
    assert!(retries(true) > 0, "{report}");
    assert_eq!(report["keys_left"], 0);
}

#[test]
fn flags_that_cannot_work_are_refused_naming_the_flag() {
    for (args, named) in [
        (&["--queries", "0"][..], "--queries"),
        (&["--queries", "5", "--rounds", "20"], "--rounds"),
        (&["--bytes", "0"], "--bytes"),
        (&["--store", "postgres://x"], "--store"),
        (&["--platform", "local"], "--platform local"),
        (&["--faults", "crash=2"], "--faults"),
        (&["--hedge-factor", "1"], "--hedge-factor"),
        (&["--hedge-budget", "0"], "--hedge-budget"),
        (&["--hedge-budget", "1.5"], "--hedge-budget"),
    ] {
        let all = [&["bench", "chaos", "--model", "no-such-model"][..], args].concat();
        let err = refusal(seqless(&all));
        assert!(err.contains(named), "{args:?}: {err}");
    }
}
