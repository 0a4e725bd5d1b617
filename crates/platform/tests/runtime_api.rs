//! The platform's Runtime API and Invoke API, checked on the details `lambda_runtime` and
//! Lambda clients rely on. The "function process" is a real process (a shell script that
//! records its environment and sleeps); the test speaks the Runtime API in its place, so
//! every request and answer is visible here.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use seqless_platform::{PlatformOptions, PlatformServer};
use seqless_wire::lambda::Report;

const PATIENCE: Duration = Duration::from_secs(30);

struct Fixture {
    dir: tempfile::TempDir,
    platform: PlatformServer,
    http: reqwest::Client,
}

fn options(dir: &Path) -> PlatformOptions {
    let script = dir.join("worker.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nenv > {0}/env-$$.tmp && mv {0}/env-$$.tmp {0}/env-$$\nexec sleep 600\n",
            dir.display()
        ),
    )
    .unwrap();
    std::process::Command::new("chmod")
        .arg("+x")
        .arg(&script)
        .status()
        .unwrap();
    let model = dir.join("model");
    std::fs::create_dir_all(&model).unwrap();
    std::fs::write(model.join("config.json"), "{}").unwrap();
    PlatformOptions {
        listen: "127.0.0.1:0".parse().unwrap(),
        model_dir: model,
        store_url: "redis://127.0.0.1:1".into(),
        key_prefix: "t:".into(),
        ttl_secs: 60,
        worker_exe: script,
        function_prefix: "seqless-".into(),
        max_concurrency: 1,
        queue_bound: 0,
        idle_timeout: Duration::from_secs(600),
        timeout: Duration::from_secs(20),
        memory_mb: 512,
        function_memory: [("tfilm".to_owned(), 256)].into_iter().collect(),
    }
}

async fn start(adjust: impl FnOnce(&mut PlatformOptions)) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let mut options = options(dir.path());
    adjust(&mut options);
    let platform = PlatformServer::start(options).await.unwrap();
    Fixture {
        dir,
        platform,
        http: reqwest::Client::new(),
    }
}

/// The environment of the next fake process to start, once it has written it.
async fn spawned_env(dir: &Path, seen: usize) -> Vec<(String, String)> {
    let give_up = Instant::now() + PATIENCE;
    loop {
        let mut envs: Vec<PathBuf> = std::fs::read_dir(dir)
            .unwrap()
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                let name = p.file_name().unwrap().to_string_lossy().into_owned();
                name.starts_with("env-") && !name.ends_with(".tmp")
            })
            .collect();
        envs.sort_by_key(|p| std::fs::metadata(p).unwrap().modified().unwrap());
        if envs.len() > seen {
            let text = std::fs::read_to_string(&envs[seen]).unwrap();
            return text
                .lines()
                .filter_map(|l| l.split_once('='))
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect();
        }
        assert!(Instant::now() < give_up, "no function process started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn var<'a>(env: &'a [(String, String)], name: &str) -> &'a str {
    env.iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .unwrap_or_else(|| panic!("{name} not set for the function process"))
}

impl Fixture {
    fn invoke(
        &self,
        function: &str,
        body: &'static str,
    ) -> tokio::task::JoinHandle<reqwest::Response> {
        let request = self
            .http
            .post(format!(
                "{}/2015-03-31/functions/{function}/invocations",
                self.platform.endpoint()
            ))
            .header("X-Amz-Log-Type", "Tail")
            .body(body);
        tokio::spawn(async move { request.send().await.unwrap() })
    }

    async fn next(&self, api: &str) -> reqwest::Response {
        let response = tokio::time::timeout(
            PATIENCE,
            self.http
                .get(format!("http://{api}/2018-06-01/runtime/invocation/next"))
                .send(),
        )
        .await
        .expect("/next answered")
        .unwrap();
        assert_eq!(response.status(), 200);
        response
    }

    async fn post(&self, api: &str, path: &str, body: &'static str) -> u16 {
        self.http
            .post(format!("http://{api}/2018-06-01/runtime{path}"))
            .body(body)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    }

    /// GETs `path` on the platform's endpoint.
    async fn get(&self, path: &str) -> reqwest::Response {
        let url = format!("{}{path}", self.platform.endpoint());
        self.http.get(url).send().await.unwrap()
    }

    async fn metrics(&self) -> String {
        self.get("/metrics").await.text().await.unwrap()
    }

    /// Waits until the platform has no process left.
    async fn no_workers(&self) {
        let give_up = Instant::now() + PATIENCE;
        while !self.platform.workers().is_empty() {
            assert!(
                Instant::now() < give_up,
                "processes left: {:?}",
                self.platform.workers()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

fn header<'a>(response: &'a reqwest::Response, name: &str) -> Option<&'a str> {
    response.headers().get(name).and_then(|v| v.to_str().ok())
}

fn report(response: &reqwest::Response) -> Report {
    let log = base64::engine::general_purpose::STANDARD
        .decode(header(response, "X-Amz-Log-Result").expect("a log tail"))
        .unwrap();
    let log = String::from_utf8(log).unwrap();
    assert!(log.starts_with("START RequestId: "), "{log}");
    Report::find_in_log(&log).unwrap_or_else(|| panic!("no REPORT line in {log}"))
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

#[tokio::test]
async fn runtime_api_hands_out_invocations_with_lambda_headers_and_takes_results() {
    let f = start(|_| {}).await;
    let first = f.invoke("seqless-tfilm", r#"{"hello":1}"#);
    let env = spawned_env(f.dir.path(), 0).await;
    assert_eq!(var(&env, "AWS_LAMBDA_FUNCTION_NAME"), "seqless-tfilm");
    assert_eq!(var(&env, "AWS_LAMBDA_FUNCTION_MEMORY_SIZE"), "256");
    assert_eq!(var(&env, "AWS_LAMBDA_FUNCTION_VERSION"), "$LATEST");
    assert_eq!(
        var(&env, "AWS_LAMBDA_LOG_GROUP_NAME"),
        "/aws/lambda/seqless-tfilm"
    );
    assert!(!var(&env, "AWS_LAMBDA_LOG_STREAM_NAME").is_empty());
    assert_eq!(var(&env, "SEQLESS_STORE"), "redis://127.0.0.1:1");
    assert_eq!(var(&env, "SEQLESS_KEY_PREFIX"), "t:");
    assert!(var(&env, "SEQLESS_MODEL").ends_with("model"));
    assert!(var(&env, "SEQLESS_SPAWNED_AT_US").parse::<u64>().is_ok());
    let api = var(&env, "AWS_LAMBDA_RUNTIME_API").to_owned();

    let next = f.next(&api).await;
    let request_id = header(&next, "Lambda-Runtime-Aws-Request-Id")
        .unwrap()
        .to_owned();
    let deadline: u64 = header(&next, "Lambda-Runtime-Deadline-Ms")
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        deadline > now_ms() && deadline <= now_ms() + 21_000,
        "deadline {deadline}"
    );
    assert_eq!(
        header(&next, "Lambda-Runtime-Invoked-Function-Arn").unwrap(),
        "arn:aws:lambda:us-east-1:000000000000:function:seqless-tfilm"
    );
    assert!(
        header(&next, "Lambda-Runtime-Trace-Id")
            .unwrap()
            .starts_with("Root=1-")
    );
    assert_eq!(next.text().await.unwrap(), r#"{"hello":1}"#);

    // The only process is busy and the queue bound is 0: Lambda's throttle.
    let throttled = f.invoke("seqless-tfilm", "{}").await.unwrap();
    assert_eq!(throttled.status(), 429);
    assert_eq!(
        header(&throttled, "x-amzn-ErrorType"),
        Some("TooManyRequestsException")
    );
    assert!(throttled.text().await.unwrap().contains("Rate Exceeded"));

    assert_eq!(
        f.post(&api, "/invocation/not-this-one/response", "{}")
            .await,
        400
    );
    assert_eq!(
        f.post(
            &api,
            &format!("/invocation/{request_id}/response"),
            r#"{"ok":true}"#
        )
        .await,
        202
    );
    let answered = first.await.unwrap();
    assert_eq!(answered.status(), 200);
    assert_eq!(header(&answered, "X-Amz-Function-Error"), None);
    assert_eq!(
        header(&answered, "X-Amzn-RequestId"),
        Some(request_id.as_str())
    );
    let cold = report(&answered);
    assert_eq!(cold.request_id, request_id);
    assert_eq!(cold.memory_mb, 256);
    assert!(cold.billed_ms >= 1 && cold.init_ms.is_some());
    assert_eq!(answered.text().await.unwrap(), r#"{"ok":true}"#);

    // Warm: the same process, no init; an error posted in Lambda's shape comes back as one.
    let second = f.invoke("seqless-tfilm", "[1,2]");
    let next = f.next(&api).await;
    let request_id = header(&next, "Lambda-Runtime-Aws-Request-Id")
        .unwrap()
        .to_owned();
    let error = r#"{"errorType":"Permanent","errorMessage":"bad stage"}"#;
    assert_eq!(
        f.post(&api, &format!("/invocation/{request_id}/error"), error)
            .await,
        202
    );
    let failed = second.await.unwrap();
    assert_eq!(failed.status(), 200);
    assert_eq!(header(&failed, "X-Amz-Function-Error"), Some("Unhandled"));
    assert_eq!(report(&failed).init_ms, None);
    assert_eq!(failed.text().await.unwrap(), error);
    // Init is over: a late init error is refused.
    assert_eq!(f.post(&api, "/init/error", error).await, 403);

    let metrics = f.metrics().await;
    for line in [
        r#"seqless_platform_invocations_total{function="seqless-tfilm",outcome="success"} 1"#,
        r#"seqless_platform_invocations_total{function="seqless-tfilm",outcome="error"} 1"#,
        r#"seqless_platform_throttles_total{function="seqless-tfilm"} 1"#,
        r#"seqless_platform_cold_starts_total{function="seqless-tfilm"} 1"#,
        "seqless_platform_workers_alive_peak 1",
    ] {
        assert!(metrics.contains(line), "{line} missing from\n{metrics}");
    }
    f.platform.shutdown().await;
}

#[tokio::test]
async fn init_errors_crashes_and_timeouts_fail_the_invocation_in_lambdas_shape() {
    let f = start(|o| o.timeout = Duration::from_secs(1)).await;

    // An init error fails the waiting invocation with the posted error and ends the process.
    let call = f.invoke("seqless-conv", "{}");
    let env = spawned_env(f.dir.path(), 0).await;
    let api = var(&env, "AWS_LAMBDA_RUNTIME_API").to_owned();
    let error = r#"{"errorType":"Permanent","errorMessage":"model: no config.json"}"#;
    assert_eq!(f.post(&api, "/init/error", error).await, 202);
    let answered = call.await.unwrap();
    assert_eq!(header(&answered, "X-Amz-Function-Error"), Some("Unhandled"));
    assert!(report(&answered).init_ms.is_some());
    assert_eq!(answered.text().await.unwrap(), error);
    f.no_workers().await;

    // A process killed mid-invocation: Runtime.ExitError, and the process is gone.
    let call = f.invoke("seqless-conv", "{}");
    let env = spawned_env(f.dir.path(), 1).await;
    let api = var(&env, "AWS_LAMBDA_RUNTIME_API").to_owned();
    f.next(&api).await;
    let pid = f.platform.workers()[0].pid;
    std::process::Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .unwrap();
    let crashed = call.await.unwrap();
    assert_eq!(header(&crashed, "X-Amz-Function-Error"), Some("Unhandled"));
    let body: serde_json::Value = crashed.json().await.unwrap();
    assert_eq!(body["errorType"], "Runtime.ExitError");
    f.no_workers().await;

    // Past the timeout: Sandbox.Timedout, and the process is killed.
    let call = f.invoke("seqless-conv", "{}");
    let env = spawned_env(f.dir.path(), 2).await;
    f.next(var(&env, "AWS_LAMBDA_RUNTIME_API")).await;
    let timed_out = call.await.unwrap();
    assert_eq!(
        header(&timed_out, "X-Amz-Function-Error"),
        Some("Unhandled")
    );
    let body: serde_json::Value = timed_out.json().await.unwrap();
    assert_eq!(body["errorType"], "Sandbox.Timedout");
    f.no_workers().await;

    let metrics = f.metrics().await;
    for outcome in ["error", "crash", "timeout"] {
        let line = format!(
            r#"seqless_platform_invocations_total{{function="seqless-conv",outcome="{outcome}"}} 1"#
        );
        assert!(metrics.contains(&line), "{line} missing from\n{metrics}");
    }
    f.platform.shutdown().await;
}

#[tokio::test]
async fn bad_requests_get_lambda_shaped_refusals() {
    let f = start(|_| {}).await;
    let base = f.platform.endpoint();
    let invoke = |function: &str| {
        f.http.post(format!(
            "{base}/2015-03-31/functions/{function}/invocations"
        ))
    };
    let missing = invoke("nope").body("{}").send().await.unwrap();
    assert_eq!(missing.status(), 404);
    assert_eq!(
        header(&missing, "x-amzn-ErrorType"),
        Some("ResourceNotFoundException")
    );
    assert!(missing.text().await.unwrap().contains("function:nope"));

    let malformed = invoke("seqless-conv")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(malformed.status(), 400);
    assert_eq!(
        header(&malformed, "x-amzn-ErrorType"),
        Some("InvalidRequestContentException")
    );

    // An invoke header the platform does not take, and a dry run.
    for (name, value, status) in [
        ("X-Amz-Log-Type", "Everything", 400),
        ("X-Amz-Invocation-Type", "DryRun", 204),
    ] {
        let reply = invoke("seqless-conv")
            .header(name, value)
            .body("{}")
            .send()
            .await
            .unwrap();
        assert_eq!(reply.status(), status, "{name}: {value}");
    }

    let unknown = f.get("/2015-03-31/layers").await;
    assert_eq!(unknown.status(), 404);
    assert_eq!(
        header(&unknown, "x-amzn-ErrorType"),
        Some("UnknownOperationException")
    );

    let function: serde_json::Value = f
        .get("/2015-03-31/functions/arn:aws:lambda:us-east-1:000000000000:function:seqless-head")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(function["Configuration"]["FunctionName"], "seqless-head");
    assert_eq!(function["Configuration"]["MemorySize"], 512);
    assert_eq!(function["Configuration"]["Runtime"], "provided.al2023");
    assert!(
        f.platform.workers().is_empty(),
        "no process for refused calls"
    );
    f.platform.shutdown().await;

    // Settings that cannot work are refused before anything starts.
    let dir = tempfile::tempdir().unwrap();
    let mut memory = options(dir.path());
    memory.store_url = "memory".into();
    let mut no_model = options(dir.path());
    no_model.model_dir = dir.path().join("absent");
    for (settings, needle) in [(memory, "share no memory"), (no_model, "config.json")] {
        let err = PlatformServer::start(settings)
            .await
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains(needle), "{err}");
    }
}
