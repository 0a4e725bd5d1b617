//! Schemathesis (property-based API testing from the OpenAPI document) against a live
//! server: every response must match /openapi.json (status, content type, headers, schema),
//! no input may cause a 5xx, and schema-invalid input must be refused.
//!
//! Needs the `schemathesis` CLI (`.ci/run` installs it; the test installs nothing). Runs a
//! bounded number of examples per operation so the test takes well under a minute.

mod common;

use std::process::Command;

use common::*;
use seqless_server::ServiceLimits;

const TOKEN: &str = "schemathesis-token";
/// The release whose command line this test uses, pinned in `.ci/run` too.
const SCHEMATHESIS_VERSION: &str = "4.32.5";

fn schemathesis() -> Command {
    let installed = Command::new("schemathesis").arg("--version").output();
    assert!(
        installed.is_ok_and(|o| o.status.success()),
        "`schemathesis` is not installed; install it with \
         `pip install schemathesis=={SCHEMATHESIS_VERSION}` (.ci/run does)"
    );
    Command::new("schemathesis")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_conforms_to_its_openapi_document() {
    let mut schemathesis = schemathesis();
    // Small bounds, so generated inputs also reach the limit errors quickly.
    let limits = ServiceLimits {
        body_limit: 256 * 1024,
        max_batch: 8,
        ..ServiceLimits::default()
    };
    // With a token, so the auth checks (missing or ignored Authorization) run too.
    let server = monolithic(limits, None, Some(TOKEN)).await;
    let schema = server.at("/openapi.json");
    // Schemathesis keeps a cache in its working directory: keep it out of the repository.
    let scratch = tempfile::tempdir().unwrap();
    let cwd = scratch.path().to_path_buf();
    let output = tokio::task::spawn_blocking(move || {
        schemathesis
            .current_dir(&cwd)
            .args(["run", &schema, "--checks", "all", "--max-examples", "40"])
            .args(["--header", &format!("Authorization: Bearer {TOKEN}")])
            .args(["--workers", "2", "--request-timeout", "30", "--seed", "1"])
            .args(["--suppress-health-check", "all", "--no-color"])
            .env("SCHEMATHESIS_TELEMETRY", "false")
            .output()
            .expect("running schemathesis")
    })
    .await
    .unwrap();
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success(),
        "schemathesis found problems:\n{report}"
    );
    server.shutdown().await;
}
