//! deploy/template.yaml against the code it deploys: the function names, runtime and
//! handler, the environment the function reads, the memory defaults of the local platform,
//! the master's flags (from `seqless serve --help`), and, when deploy/build.sh has built
//! it, the zip's ELF machine against the Architecture parameter. Every expected name comes
//! from the code or the binary, so a rename on either side fails here.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use seqless_functions::runtime::{CONFIG_ENV, LAMBDA_BOOTSTRAP, LAMBDA_RUNTIME, STORE_ENV};
use seqless_wire::lambda::{DEFAULT_FUNCTION_PREFIX, FUNCTION_KINDS, function_name};
use serde_yaml_ng::Value;

const SEQLESS: &str = env!("CARGO_BIN_EXE_seqless");

fn deploy_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy")
}

fn template() -> Value {
    let path = deploy_dir().join("template.yaml");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    serde_yaml_ng::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A CloudFormation short-form function (`!Ref`, `!Sub`, ...): its name and argument.
fn intrinsic(value: &Value) -> Option<(String, &Value)> {
    match value {
        Value::Tagged(t) => Some((
            t.tag.to_string().trim_start_matches('!').to_owned(),
            &t.value,
        )),
        _ => None,
    }
}

/// Parameter defaults as strings (numbers included), by name.
fn defaults(t: &Value) -> BTreeMap<String, String> {
    let params = t["Parameters"].as_mapping().expect("Parameters");
    params
        .iter()
        .filter_map(|(name, p)| {
            let default = match &p["Default"] {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                _ => return None,
            };
            Some((name.as_str()?.to_owned(), default))
        })
        .collect()
}

/// The value of `!Sub "text"` with `${Param}` replaced by the parameters' defaults; other
/// references stay as written.
fn sub(value: &Value, defaults: &BTreeMap<String, String>) -> String {
    let (tag, arg) = intrinsic(value).unwrap_or_else(|| panic!("expected !Sub, got {value:?}"));
    assert_eq!(tag, "Sub", "{value:?}");
    let mut text = arg.as_str().expect("!Sub of a string").to_owned();
    for (name, default) in defaults {
        text = text.replace(&format!("${{{name}}}"), default);
    }
    text
}

/// The parameter a `!Ref` names.
fn reference(value: &Value) -> &str {
    match intrinsic(value) {
        Some((tag, Value::String(name))) if tag == "Ref" => name,
        _ => panic!("expected !Ref PARAMETER, got {value:?}"),
    }
}

/// Resources of one type, by logical id.
fn resources<'a>(t: &'a Value, kind: &str) -> BTreeMap<String, &'a Value> {
    t["Resources"]
        .as_mapping()
        .expect("Resources")
        .iter()
        .filter(|(_, r)| r["Type"].as_str() == Some(kind))
        .map(|(id, r)| (id.as_str().unwrap().to_owned(), r))
        .collect()
}

fn help(command: &str) -> String {
    let out = Command::new(SEQLESS)
        .args([command, "--help"])
        .output()
        .unwrap();
    assert!(out.status.success(), "seqless {command} --help failed");
    String::from_utf8(out.stdout).unwrap()
}

/// The `[default: ...]` of a flag in clap's help, `None` when it has none: the text from
/// the flag's line up to the next flag's.
fn help_default(help: &str, flag: &str) -> Option<String> {
    let lines: Vec<&str> = help.lines().collect();
    let start = lines
        .iter()
        .position(|l| l.trim_start().split([' ', ',']).any(|word| word == flag))
        .unwrap_or_else(|| panic!("{flag} missing from\n{help}"));
    let end = lines[start + 1..]
        .iter()
        .position(|l| l.trim_start().starts_with('-'))
        .map_or(lines.len(), |n| start + 1 + n);
    let block = lines[start..end].join(" ");
    let rest = &block[block.find("[default: ")? + "[default: ".len()..];
    Some(rest[..rest.find(']')?].to_owned())
}

#[test]
fn one_function_per_stage_kind_with_the_code_s_names_runtime_and_handler() {
    let t = template();
    let defaults = defaults(&t);
    assert_eq!(defaults["FunctionPrefix"], DEFAULT_FUNCTION_PREFIX);
    let globals = &t["Globals"]["Function"];
    assert_eq!(globals["Runtime"].as_str(), Some(LAMBDA_RUNTIME));
    assert_eq!(globals["Handler"].as_str(), Some(LAMBDA_BOOTSTRAP));
    let functions = resources(&t, "AWS::Serverless::Function");
    let deployed: BTreeSet<String> = functions
        .values()
        .map(|f| sub(&f["Properties"]["FunctionName"], &defaults))
        .collect();
    let wanted: BTreeSet<String> = FUNCTION_KINDS
        .iter()
        .map(|k| function_name(DEFAULT_FUNCTION_PREFIX, *k))
        .collect();
    assert_eq!(deployed, wanted);
    // Each function's log group (with its retention) is the one Lambda writes to.
    let log_groups: BTreeSet<String> = resources(&t, "AWS::Logs::LogGroup")
        .values()
        .map(|g| {
            assert!(g["Properties"]["RetentionInDays"] != Value::Null);
            sub(&g["Properties"]["LogGroupName"], &defaults)
        })
        .collect();
    let wanted_groups: BTreeSet<String> =
        wanted.iter().map(|n| format!("/aws/lambda/{n}")).collect();
    assert_eq!(log_groups, wanted_groups);
}

#[test]
fn the_environment_is_what_the_function_reads() {
    let t = template();
    let variables = &t["Globals"]["Function"]["Environment"]["Variables"];
    let names: BTreeSet<&str> = variables
        .as_mapping()
        .expect("Globals.Function.Environment.Variables")
        .iter()
        .map(|(k, _)| k.as_str().unwrap())
        .collect();
    assert_eq!(names, CONFIG_ENV.into_iter().collect::<BTreeSet<_>>());
    // TLS to the cache; the password is not in the URL but read from the secret at init.
    let store = sub(&variables[STORE_ENV], &BTreeMap::new());
    assert!(
        store.starts_with("rediss://") && !store.contains('@'),
        "{store}"
    );
}

#[test]
fn memory_defaults_are_the_local_platform_s() {
    let t = template();
    let defaults = defaults(&t);
    let help = help("platform");
    let memory_mb = help_default(&help, "--memory-mb").expect("--memory-mb has a default");
    let per_kind = seqless_platform::parse_function_memory(
        // An empty default shows as `""` in the help.
        help_default(&help, "--function-memory")
            .unwrap_or_default()
            .trim_matches('"'),
    )
    .unwrap();
    let functions = resources(&t, "AWS::Serverless::Function");
    for kind in FUNCTION_KINDS {
        let name = function_name(DEFAULT_FUNCTION_PREFIX, kind);
        let function = functions
            .values()
            .find(|f| sub(&f["Properties"]["FunctionName"], &defaults) == name)
            .unwrap();
        let parameter = reference(&function["Properties"]["MemorySize"]);
        let platform = per_kind
            .get(kind.as_str())
            .map_or(memory_mb.clone(), u32::to_string);
        assert_eq!(defaults[parameter], platform, "{name}: {parameter}");
    }
}

#[test]
fn the_master_runs_serve_serverless_on_lambda_with_flags_serve_knows() {
    let t = template();
    let user_data = &t["Resources"]["Master"]["Properties"]["UserData"]["Fn::Base64"];
    let (tag, script) = intrinsic(user_data).expect("UserData: Fn::Base64: !Sub");
    assert_eq!(tag, "Sub");
    let script = script.as_str().unwrap();
    let command = script
        .lines()
        .find(|l| l.contains(" serve "))
        .expect("a `seqless serve` line in the master's UserData");
    let command = &command[command.find(" serve ").unwrap()..];
    let words: Vec<&str> = command.split_whitespace().collect();
    let help = help("serve");
    let flags: Vec<&str> = words
        .iter()
        .copied()
        .filter(|w| w.starts_with("--"))
        .collect();
    assert!(flags.len() >= 5, "{command}");
    for flag in &flags {
        assert!(
            help.split_whitespace()
                .any(|w| w.trim_end_matches(',') == *flag),
            "the master's {flag} is not a `seqless serve` flag"
        );
    }
    for (flag, value) in [("--mode", "serverless"), ("--platform", "lambda")] {
        let at = words.iter().position(|w| *w == flag).expect(flag);
        assert_eq!(words[at + 1], value);
    }
    assert!(words.contains(&"--auth-token-file") && words.contains(&"--store"));
    assert!(
        script.contains("\"rediss://:\""),
        "the master's store is TLS with AUTH"
    );
}

/// The ELF machine of a binary: 62 is x86-64, 183 AArch64.
fn elf_machine(header: &[u8]) -> u16 {
    assert_eq!(&header[..4], b"\x7fELF", "not an ELF binary");
    u16::from_le_bytes([header[18], header[19]])
}

#[test]
fn the_built_zip_matches_the_architecture_parameter() {
    let zip_path = deploy_dir().join("dist/seqless-function.zip");
    if !zip_path.is_file() {
        println!(
            "note: {} not built (deploy/build.sh); its architecture is not checked",
            zip_path.display()
        );
        return;
    }
    let t = template();
    let defaults = defaults(&t);
    let want = match defaults["Architecture"].as_str() {
        "x86_64" => 62,
        "arm64" => 183,
        other => panic!("Architecture default {other}"),
    };
    // build.sh zips exactly the staged bootstrap; the zip names it and the model.
    let staged = deploy_dir().join("dist/function").join(LAMBDA_BOOTSTRAP);
    let mut header = [0u8; 20];
    std::fs::File::open(&staged)
        .and_then(|mut f| f.read_exact(&mut header))
        .unwrap_or_else(|e| panic!("{}: {e}", staged.display()));
    assert_eq!(elf_machine(&header), want, "{}", staged.display());
    let zip = std::fs::read(&zip_path).unwrap();
    let model = t["Globals"]["Function"]["Environment"]["Variables"]["SEQLESS_MODEL"]
        .as_str()
        .unwrap();
    let inside = model
        .strip_prefix("/var/task/")
        .expect("a model in the zip");
    for name in [LAMBDA_BOOTSTRAP.to_owned(), format!("{inside}/config.json")] {
        assert!(
            zip.windows(name.len()).any(|w| w == name.as_bytes()),
            "{} lacks {name}",
            zip_path.display()
        );
    }
}

#[test]
fn the_binary_named_bootstrap_is_the_function_process() {
    let dir = tempfile::tempdir().unwrap();
    let bootstrap = dir.path().join(LAMBDA_BOOTSTRAP);
    std::fs::copy(SEQLESS, &bootstrap).unwrap();
    // Started as Lambda starts it, with no arguments, it is the function: outside Lambda
    // it stops because the Runtime API is missing, not with a usage message.
    let out = Command::new(&bootstrap).env_clear().output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("AWS_LAMBDA_RUNTIME_API is not set"),
        "{stderr}"
    );
}
