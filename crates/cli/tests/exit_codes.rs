//! The README's exit-code table, row by row: each example runs as written and exits with its
//! row's code, with a one-line message, and writes nothing.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The workspace root, where the README and `models/` are.
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Splits a shell command of words and double-quoted strings (all the table uses).
fn words(command: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word: Option<String> = None;
    let mut quoted = false;
    for c in command.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                word.get_or_insert_with(String::new);
            }
            ' ' if !quoted => words.extend(word.take()),
            c => word.get_or_insert_with(String::new).push(c),
        }
    }
    words.extend(word);
    words
}

/// The rows of the README's exit-code table: (exit code, cause, command).
fn rows() -> Vec<(i32, String, String)> {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let table = readme
        .split("### Exit codes")
        .nth(1)
        .expect("README has an Exit codes section");
    table
        .lines()
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'))
        .filter_map(|l| {
            let cells: Vec<&str> = l.trim_matches('|').split('|').map(str::trim).collect();
            let code = cells.first()?.parse().ok()?;
            let command = cells.get(2)?.trim_matches('`').to_owned();
            Some((code, cells[1].to_owned(), command))
        })
        .collect()
}

/// The entries of a directory, sorted.
fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[cfg(unix)]
#[test]
fn every_row_of_the_readme_table_exits_with_its_code_in_one_line() {
    let rows = rows();
    assert!(rows.len() >= 10, "only {} rows parsed", rows.len());
    assert!(rows.iter().any(|(code, _, _)| *code == 1));
    // A scratch directory with what the examples name, so a refusal that wrote anything
    // would show.
    let dir = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(root().join("models"), dir.path().join("models")).unwrap();
    std::fs::copy(root().join("README.md"), dir.path().join("README.md")).unwrap();
    let before = listing(dir.path());
    for (code, cause, command) in rows {
        let argv = words(&command);
        assert_eq!(argv[0], "seqless", "{command}");
        if argv[1] == "train" && !cfg!(feature = "train")
            || command.contains("lambda") && !cfg!(feature = "aws")
        {
            continue;
        }
        let out = Command::new(env!("CARGO_BIN_EXE_seqless"))
            .args(&argv[1..])
            .current_dir(dir.path())
            // No AWS credentials from anywhere, and no instance metadata service to ask.
            .env_remove("AWS_ACCESS_KEY_ID")
            .env_remove("AWS_SECRET_ACCESS_KEY")
            .env_remove("AWS_SESSION_TOKEN")
            .env_remove("AWS_PROFILE")
            .env_remove("AWS_CONFIG_FILE")
            .env_remove("AWS_SHARED_CREDENTIALS_FILE")
            .env("HOME", dir.path())
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(code),
            "{cause}: {command}\n{stderr}"
        );
        assert!(out.stdout.is_empty(), "{cause}: {command}");
        let lines: Vec<&str> = stderr.lines().collect();
        assert_eq!(lines.len(), 1, "{cause}: {command}\n{stderr}");
        assert!(lines[0].starts_with("error: "), "{cause}: {stderr}");
        assert_eq!(
            listing(dir.path()),
            before,
            "{cause}: {command} wrote a file"
        );
    }
}

#[test]
fn a_model_directory_without_weights_exits_2_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        root().join("models/langid/config.json"),
        dir.path().join("config.json"),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_seqless"))
        .args(["classify", "--model"])
        .arg(dir.path())
        .arg("hi")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("model.safetensors"), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
}

#[cfg(feature = "train")]
#[test]
fn training_options_are_checked_before_the_data_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("m");
    // The data file does not exist: each refusal comes before it is read.
    for (flag, value, needle) in [
        ("--lr", "NaN", "--lr"),
        ("--lr", "-1", "--lr"),
        ("--lr", "0", "--lr"),
        ("--batch-size", "0", "--batch-size"),
        ("--epochs", "0", "--epochs"),
        ("--valid-fraction", "1", "--valid-fraction"),
        ("--valid-fraction", "0", "--valid-fraction"),
        ("--weight-decay", "inf", "--weight-decay"),
        ("--layers", "8:3", "C:k:p:b"),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_seqless"))
            .args(["train", "--data", "no-such-data.jsonl", "--out"])
            .arg(&out_dir)
            .args([flag, value])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{flag} {value}: {stderr}");
        assert!(stderr.contains(needle), "{flag} {value}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{flag} {value}: {stderr}");
        assert!(
            !out_dir.exists(),
            "{flag} {value} wrote {}",
            out_dir.display()
        );
    }
    // An --out under a file is refused too.
    let file = dir.path().join("file");
    std::fs::write(&file, "x").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_seqless"))
        .args(["train", "--data", "no-such-data.jsonl", "--out"])
        .arg(file.join("m"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("is a file"));
}

/// Another service on the store's port: named as such in one line, an environment fault.
#[test]
fn a_server_that_is_not_redis_is_named_in_one_line() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            use std::io::Write;
            let mut stream = stream.unwrap();
            let _ = stream.write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n");
        }
    });
    let out = Command::new(env!("CARGO_BIN_EXE_seqless"))
        .args(["classify", "--model"])
        .arg(root().join("models/langid"))
        .args(["--mode", "serverless", "--store"])
        .arg(format!("redis://127.0.0.1:{port}"))
        .arg("hi")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("does not speak the Redis protocol"),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
}

/// Cross-query batching flags a serverless server cannot honour are refused, each by name in
/// one line, before anything listens: a batch larger than one invocation carries, and a
/// wait longer than the SLO it must keep.
#[test]
fn serverless_batching_beyond_an_invocation_or_the_slo_is_refused() {
    let calibration = root().join("docs/results/calibration-langid.json");
    let slo = [
        "--plan-calibration",
        calibration.to_str().unwrap(),
        "--plan-slo-ms",
        "100",
    ];
    for (extra, needle) in [
        (vec!["--batch-max", "65"], "--batch-max 65"),
        (
            [&["--batch-max", "8", "--batch-wait-ms", "500"], &slo[..]].concat(),
            "--batch-wait-ms 500",
        ),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_seqless"))
            .args(["serve", "--model"])
            .arg(root().join("models/langid"))
            .args(["--mode", "serverless", "--listen", "127.0.0.1:0"])
            .args(&extra)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{extra:?}: {stderr}");
        assert!(stderr.contains(needle), "{extra:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{extra:?}: {stderr}");
    }
}
