//! The documented commands. Every `seqless` command in the README's and the docs' shell
//! blocks parses as written and passes the scope rule, so a renamed or removed flag cannot
//! linger in an example. And every README example runs: the binary under test, a local
//! Redis, a local platform and local servers, changed only by the rewrites in [`REWRITES`]
//! (free ports for fixed ones, smaller sizes for long benches, a fixture for installed
//! packages), each of which must still apply.

use std::collections::BTreeMap;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The repository's root.
fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The README and every page under docs/, with their text.
fn documents() -> Vec<(String, String)> {
    let mut paths = vec![repo().join("README.md")];
    let mut docs: Vec<PathBuf> = std::fs::read_dir(repo().join("docs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    docs.sort();
    paths.extend(docs);
    paths
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(&p).unwrap();
            (p.file_name().unwrap().to_string_lossy().into_owned(), text)
        })
        .collect()
}

/// The commands of a Markdown document's `sh` blocks: continuation lines joined, comments
/// and blank lines dropped.
fn shell_commands(markdown: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut in_sh = false;
    let mut pending = String::new();
    for line in markdown.lines() {
        if line.trim_start().starts_with("```") {
            in_sh = !in_sh && line.trim() == "```sh";
            continue;
        }
        if !in_sh || (pending.is_empty() && line.trim_start().starts_with('#')) {
            continue;
        }
        let line = line.split(" #").next().unwrap_or_default().trim_end();
        pending.push_str(line.trim_start());
        if let Some(joined) = pending.strip_suffix('\\') {
            pending = format!("{} ", joined.trim_end());
            continue;
        }
        let command = std::mem::take(&mut pending);
        if !command.trim().is_empty() {
            out.push(command.trim().to_owned());
        }
    }
    out
}

/// `VAR=value` words before a command, and the command after them.
fn leading_env(command: &str) -> (Vec<(String, String)>, &str) {
    let mut env = Vec::new();
    let mut rest = command;
    while let Some((word, tail)) = rest.split_once(' ')
        && let Some((name, value)) = word.split_once('=')
        && !word.starts_with('-')
    {
        env.push((name.to_owned(), value.to_owned()));
        rest = tail;
    }
    (env, rest)
}

/// Splits words and double- or single-quoted strings (all the examples use).
fn words(command: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word: Option<String> = None;
    let mut quote: Option<char> = None;
    for c in command.chars() {
        match (c, quote) {
            ('"' | '\'', None) => {
                quote = Some(c);
                word.get_or_insert_with(String::new);
            }
            (c, Some(q)) if c == q => quote = None,
            (' ', None) => words.extend(word.take()),
            (c, _) => word.get_or_insert_with(String::new).push(c),
        }
    }
    words.extend(word);
    words
}

#[test]
fn every_documented_command_parses_and_passes_the_scope_rule() {
    let root = seqless::scope::built_command();
    let mut checked = 0;
    for (document, text) in documents() {
        for command in shell_commands(&text) {
            let (_, command) = leading_env(command.trim_end_matches('&').trim());
            // The command itself, without a redirection or a pipe after it.
            let command = [" > ", " | ", " 2> "]
                .iter()
                .fold(command, |c, sep| c.split(sep).next().unwrap_or(c));
            if !command.starts_with("seqless ") {
                continue;
            }
            let argv = words(command);
            // Commands behind a feature this build leaves out are checked in a build with
            // it; `seqless --version` has no subcommand to check.
            if root.find_subcommand(&argv[1]).is_none() {
                continue;
            }
            let matches = root
                .clone()
                .try_get_matches_from(&argv)
                .unwrap_or_else(|e| panic!("{document}: {command}\n{e}"));
            if let Err(refusal) = seqless::scope::check(&root, &matches) {
                panic!("{document}: {command}\n{refusal}");
            }
            checked += 1;
        }
    }
    assert!(checked >= 20, "only {checked} commands found");
}

/// README lines the runner does not run, each with why: they build or install what the
/// others run.
const NOT_RUN: &[(&str, &str)] = &[
    ("cargo ", "builds the binary under test"),
    ("install ", "installs the binary under test"),
    ("scripts/test.sh", "this suite"),
    (
        "scripts/fuzz.sh",
        "fuzzes for minutes per target with the nightly toolchain; the suite replays its \
         corpora instead (crates/server/tests/fuzz_corpus.rs)",
    ),
    (
        "scripts/fetch-codelang-data.sh",
        "installs Debian packages; the next command reads a fixture of them instead",
    ),
];

/// One change to a README command before it runs: in commands starting with `command`,
/// `from` becomes `to`, where `{redis}`, `{platform}`, `{serve}`, `{root}` and `{tmp}`
/// stand for the test's Redis URL, platform address, documented server's address, fake
/// package root and working directory.
struct Rewrite {
    command: &'static str,
    from: &'static str,
    to: &'static str,
}

const REWRITES: &[Rewrite] = &[
    // Fixed ports become free ones.
    Rewrite {
        command: "",
        from: "redis://127.0.0.1:6379",
        to: "{redis}",
    },
    Rewrite {
        command: "",
        from: "127.0.0.1:9000",
        to: "{platform}",
    },
    Rewrite {
        command: "",
        from: "127.0.0.1:8080",
        to: "{serve}",
    },
    Rewrite {
        command: "curl ",
        from: "localhost:8080",
        to: "{serve}",
    },
    // AWS Lambda becomes the local platform through the same Invoke API.
    Rewrite {
        command: "seqless classify",
        from: "--store rediss://...",
        to: "--store {redis} --endpoint http://{platform}",
    },
    // Installed Debian packages become a fixture laid out as dpkg leaves them.
    Rewrite {
        command: "seqless data codelang",
        from: "--out data/codelang",
        to: "--out data/codelang --root {root} --per-package 2",
    },
    Rewrite {
        command: "seqless init",
        from: "/tmp/seed",
        to: "{tmp}/seed",
    },
    // Long benches at smaller sizes.
    Rewrite {
        command: "seqless bench forward",
        from: "--bytes 65536,1048576",
        to: "--bytes 4096 --runs 1",
    },
    Rewrite {
        command: "scripts/onnx_baseline.sh",
        from: "--bytes 65536,1048576",
        to: "--bytes 4096 --runs 1",
    },
    Rewrite {
        command: "seqless bench serverless",
        from: "--bytes 4096,65536,1048576 --splits 1,2,4,8",
        to: "--bytes 4096 --splits 1,2 --runs 1",
    },
    Rewrite {
        command: "seqless bench store",
        from: "--sizes 65536,1048576,8388608",
        to: "--sizes 65536 --runs 1",
    },
    Rewrite {
        command: "seqless bench calibrate",
        from: "--out calibration.json",
        to: "--out calibration.json --bytes 4096,16384 --runs 1",
    },
    Rewrite {
        command: "seqless bench platform",
        from: "--store {redis}",
        to: "--store {redis} --bytes 4096 --runs 1",
    },
    Rewrite {
        command: "seqless bench load",
        from: "--concurrency 1,2,4,8,16,32",
        to: "--concurrency 1,2 --requests 20 --runs 1",
    },
];

/// A free port on 127.0.0.1.
fn free_address() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().to_string()
}

/// A long-running command of the README, started in the background.
struct Service {
    command: String,
    child: Child,
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits until `address` accepts connections, or fails naming the command.
fn await_listening(address: &str, service: &mut Service) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while TcpStream::connect(address).is_err() {
        if let Some(status) = service.child.try_wait().unwrap() {
            panic!("{} exited with {status} before listening", service.command);
        }
        assert!(
            Instant::now() < deadline,
            "{} never listened",
            service.command
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The README example runner's state: the substitutions and what has started.
struct Runner {
    tmp: tempfile::TempDir,
    redis: seqless_store::testing::RedisServer,
    vars: BTreeMap<&'static str, String>,
    used: Vec<usize>,
    services: Vec<Service>,
    /// The placeholders whose documented address a started server owns.
    started: std::collections::BTreeSet<&'static str>,
}

impl Runner {
    fn new() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        for dir in ["crates", "models", "scripts"] {
            std::os::unix::fs::symlink(repo().join(dir), tmp.path().join(dir)).unwrap();
        }
        write_inputs(tmp.path());
        let root = tmp.path().join("packages");
        fake_packages(&root);
        let redis = seqless_store::testing::RedisServer::start();
        let vars = BTreeMap::from([
            ("{redis}", redis.url()),
            ("{platform}", free_address()),
            ("{serve}", free_address()),
            ("{root}", root.display().to_string()),
            ("{tmp}", tmp.path().display().to_string()),
        ]);
        Self {
            tmp,
            redis,
            vars,
            used: Vec::new(),
            services: Vec::new(),
            started: Default::default(),
        }
    }

    /// The command with every rewrite that applies to it made.
    fn rewrite(&mut self, command: &str) -> String {
        let mut out = command.to_owned();
        for (i, rewrite) in REWRITES.iter().enumerate() {
            let from = self.expand(rewrite.from);
            if out.starts_with(rewrite.command) && out.contains(&from) {
                out = out.replace(&from, &self.expand(rewrite.to));
                self.used.push(i);
            }
        }
        out
    }

    fn expand(&self, text: &str) -> String {
        self.vars
            .iter()
            .fold(text.to_owned(), |t, (var, value)| t.replace(var, value))
    }

    /// A shell command in the working directory, with the test's binary first on PATH.
    fn shell(&self, command: &str) -> Command {
        let bin = Path::new(env!("CARGO_BIN_EXE_seqless")).parent().unwrap();
        let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
        let mut shell = Command::new("bash");
        shell
            .args(["-c", command])
            .current_dir(self.tmp.path())
            .env("PATH", path)
            .env("SEQLESS_ONNX_VENV", repo().join("target/onnx-venv"))
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test");
        shell
    }

    /// Runs one README line: a server in the background, anything else to completion.
    fn run(&mut self, line: &str) {
        let (mut env, command) = leading_env(line);
        let mut command = self.rewrite(command);
        if command.contains("$SEQLESS_API_TOKEN") {
            // Sent to the server started with the token, as the example's comment says.
            env.push(("SEQLESS_API_TOKEN".into(), "secret".into()));
            command = command.replace(&self.vars["{serve}"], &self.vars["{token}"]);
        }
        if command.starts_with("seqless serve") || command.starts_with("seqless platform") {
            return self.start(env, command);
        }
        if command.starts_with("scripts/onnx_baseline.sh") {
            assert!(
                repo().join("target/onnx-venv/bin/python").exists(),
                "target/onnx-venv is missing: create it once with \
                 `scripts/onnx_baseline.sh models/langid --runs 1` (.ci/run does)"
            );
        }
        let curl = command.starts_with("curl ");
        if curl {
            // The status on a line of its own, so that a refusal fails the example.
            command.push_str(" -w '\\n%{http_code}'");
        }
        let output = self.shell(&command).envs(env).output().unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "README: {line}\nran: {command}\n{}\nstdout: {stdout}\nstderr: {}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        if curl {
            assert_eq!(
                stdout.lines().last(),
                Some("200"),
                "README: {line}\nran: {command}\n{stdout}"
            );
        }
    }

    /// Starts a server of the README and waits until it listens. The first `serve` and
    /// the first `platform` keep their documented addresses for the examples that follow
    /// (curl, load, `--endpoint`), and a `serve` started with an API token answers the
    /// examples that send it; any other server gets a free address, is checked (a `serve`
    /// with one query) and stopped.
    fn start(&mut self, env: Vec<(String, String)>, mut command: String) {
        let serve = command.starts_with("seqless serve");
        let token = env.iter().any(|(name, _)| name == "SEQLESS_API_TOKEN");
        let placeholder = if serve { "{serve}" } else { "{platform}" };
        let documented = self.started.insert(placeholder);
        let address = if documented {
            self.vars[placeholder].clone()
        } else {
            let address = free_address();
            command = command.replace(&self.vars[placeholder], &address);
            address
        };
        if serve && !command.contains("--listen") {
            command.push_str(&format!(" --listen {address}"));
        }
        let child = self
            .shell(&format!("exec {command}"))
            .envs(env)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut service = Service { command, child };
        await_listening(&address, &mut service);
        if token {
            self.vars.insert("{token}", address);
        } else if !documented {
            if serve {
                let curl = format!(
                    "curl -s {address}/v1/classify -H 'content-type: application/json' \
                     -d '{{\"text\": \"Hyvää huomenta\"}}' -w '\\n%{{http_code}}'"
                );
                let out = self.shell(&curl).output().unwrap();
                let stdout = String::from_utf8_lossy(&out.stdout);
                let status = stdout.lines().last();
                assert_eq!(status, Some("200"), "{}: {stdout}", service.command);
            }
            return stop(service);
        }
        self.services.push(service);
    }
}

/// Sends SIGTERM and expects the service to drain and exit 0.
fn stop(mut service: Service) {
    // SAFETY: kill(2) on a child this test spawned and has not yet reaped.
    unsafe {
        libc::kill(service.child.id() as i32, libc::SIGTERM);
    }
    let status = service.child.wait().unwrap();
    assert!(status.success(), "{} exited with {status}", service.command);
}

/// The data files the README's examples name: a document, and labelled JSON lines.
fn write_inputs(dir: &Path) {
    std::fs::write(dir.join("doc.txt"), "Der schnelle braune Fuchs.\n").unwrap();
    let sentences = [
        ("de", "Der Hund schläft im Garten und die Katze spielt."),
        ("de", "Wir gehen heute Abend ins Kino mit unseren Freunden."),
        ("fr", "Le chien dort dans le jardin et le chat joue."),
        ("fr", "Nous allons au cinéma ce soir avec nos amis."),
    ];
    let lines: String = (0..8)
        .flat_map(|i| {
            sentences.iter().map(move |(label, text)| {
                format!(
                    "{}\n",
                    serde_json::json!({"text": format!("{text} {i}"), "label": label})
                )
            })
        })
        .collect();
    std::fs::write(dir.join("train.jsonl"), &lines).unwrap();
    std::fs::write(dir.join("test.jsonl"), &lines).unwrap();
}

/// Every package `seqless data codelang` reads, installed under `root` as dpkg lays it
/// out: a file list and two source files in the package's language, and a copyright.
fn fake_packages(root: &Path) {
    let list =
        std::fs::read_to_string(repo().join("crates/datasets/src/codelang/packages.txt")).unwrap();
    for line in list.lines().filter(|l| !l.starts_with('#')) {
        let Some((language, package)) = line.split_once(' ') else {
            continue;
        };
        let (ext, body) = match language {
            "C" => ("c", "int f_{i}(void) { return {i}; }\n"),
            "Go" => ("go", "func F{i}() int { return {i} }\n"),
            "JavaScript" => ("js", "function f{i}() { return {i}; }\n"),
            "Perl" => ("pl", "sub f{i} { return {i}; }\n"),
            "Python" => ("py", "def f_{i}():\n    return {i}\n"),
            "Rust" => ("rs", "fn f_{i}() -> u32 { {i} }\n"),
            other => panic!("packages.txt names a language the fixture lacks: {other}"),
        };
        let files = (0..2)
            .map(|n| {
                let text: String = (0..200)
                    .map(|i| format!("{}// {package}\n", body.replace("{i}", &format!("{n}{i}"))))
                    .collect();
                (format!("m{n}.{ext}"), text)
            })
            .collect();
        seqless_datasets::testing::FakePackage {
            name: package,
            multiarch: false,
            copyright: "Files: *\nLicense: MIT\n",
            files,
        }
        .install(root)
        .unwrap();
    }
}

#[cfg(all(feature = "platform", feature = "train", feature = "aws"))]
#[test]
fn every_readme_example_runs() {
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let mut runner = Runner::new();
    let mut ran = 0;
    for command in shell_commands(&readme) {
        for part in command.split(" && ") {
            if NOT_RUN.iter().any(|(prefix, _)| part.starts_with(prefix)) {
                continue;
            }
            runner.run(part);
            ran += 1;
        }
    }
    let unused: Vec<&str> = REWRITES
        .iter()
        .enumerate()
        .filter(|(i, _)| !runner.used.contains(i))
        .map(|(_, r)| r.from)
        .collect();
    assert!(
        unused.is_empty(),
        "rewrites that no longer apply: {unused:?}"
    );
    assert!(ran >= 30, "only {ran} README commands ran");
    for service in std::mem::take(&mut runner.services) {
        stop(service);
    }
    drop(runner.redis);
}
