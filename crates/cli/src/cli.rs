//! The command line, as clap types: every subcommand and flag with its help text.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use seqless_bench::args::{
    ChaosBenchArgs, ForwardBenchArgs, LoadBenchArgs, ServerlessBenchArgs, StoreBenchArgs,
    ValidationChartArgs,
};
use seqless_coordinator::{
    BatchPolicy, DEFAULT_INLINE_MAX_BYTES, HedgeArgs, MOST_BATCHED, parse_function_slots,
};
use seqless_cost::{Arch, CostArgs};
#[cfg(feature = "train")]
use seqless_model::train::{InitArgs, TrainArgs};
use seqless_plan::{PlanArgs, Transfer};
use seqless_sim::{ChooserArgs, PlannerArgs, SimulateArgs};

/// Serve sequence neural networks the serverless way.
#[derive(Debug, Parser)]
#[command(name = "seqless", version, about, propagate_version = true)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

impl Command {
    /// Whether the command computes one result, prints it and exits. Such a command is
    /// often piped into `head` and should then stop quietly, as Unix tools do, rather
    /// than panic on the closed pipe; servers and benches that drive child processes
    /// keep Rust's default, where a closed pipe is an error to handle.
    pub fn is_one_shot(&self) -> bool {
        match self {
            #[cfg(feature = "train")]
            Self::Train(_) | Self::Init(_) | Self::Eval(_) | Self::Data(_) | Self::Baseline(_) => {
                true
            }
            Self::Classify(_) | Self::Cost(_) | Self::Simulate(_) | Self::Plan(_) => true,
            _ => false,
        }
    }
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Train a TFiLM classifier on a labelled data file.
    #[cfg(feature = "train")]
    Train(TrainArgs),
    /// Write an untrained model of a given architecture (random weights, training's
    /// initialisation): for timing, planning and simulating at any scale without training.
    #[cfg(feature = "train")]
    Init(InitArgs),
    /// Score a model on a labelled data file: accuracy, macro-F1, confusion matrix.
    #[cfg(feature = "train")]
    Eval(EvalArgs),
    /// Classify one text.
    Classify(ClassifyArgs),
    /// Measure speed.
    #[command(subcommand)]
    Bench(BenchCommand),
    /// Build data sets.
    #[cfg(feature = "train")]
    #[command(subcommand)]
    Data(DataCommand),
    /// Score the fixed baseline (byte n-gram naive Bayes, tuned on a validation file).
    #[cfg(feature = "train")]
    Baseline(BaselineArgs),
    /// Price serving: the paper's arithmetic (--paper) or the full model, with break-even.
    Cost(CostArgs),
    /// Simulate serverless functions against instances on one seeded trace, with plots.
    Simulate(SimulateArgs),
    /// Predict latency and cost of every plan, split count and memory size for a query,
    /// with the Pareto frontier and the pick for an objective within an SLO.
    Plan(PlannerArgs),
    /// Serve the HTTP API (classify, batch, models, health, metrics, OpenAPI) over any
    /// execution mode (docs/serve.md).
    Serve(ServeArgs),
    /// Run as a function process on the Lambda Runtime API (AWS Lambda's `bootstrap`, or
    /// spawned by `seqless platform`); configured by SEQLESS_MODEL, SEQLESS_STORE,
    /// SEQLESS_KEY_PREFIX and SEQLESS_TTL_SECS (docs/lambda.md).
    #[cfg(feature = "function")]
    Function,
    /// Run a Lambda-compatible local platform: the Invoke API for callers, function
    /// processes on the Runtime API (docs/platform.md).
    #[cfg(feature = "platform")]
    Platform(seqless_platform::PlatformArgs),
}

/// `seqless eval`.
#[cfg(feature = "train")]
#[derive(Debug, Args)]
pub struct EvalArgs {
    /// Model directory (config.json + model.safetensors).
    #[arg(long)]
    pub model: PathBuf,
    /// Labelled data file (JSON lines, CSV or TSV).
    #[arg(long)]
    pub data: PathBuf,
    /// Print JSON instead of a report.
    #[arg(long)]
    pub json: bool,
}

/// How a query runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Mode {
    /// One forward pass in this process.
    Monolithic,
    /// The plan's stages as functions exchanging tensors through a store.
    Serverless,
}

/// Where the serverless mode's functions run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FunctionHost {
    /// A pool in this process.
    Inproc,
    /// `seqless platform` at --endpoint.
    Local,
    /// AWS Lambda through the SDK (--endpoint overrides its URL).
    Lambda,
}

impl FunctionHost {
    /// The flag value, for messages.
    pub fn name(self) -> &'static str {
        match self {
            Self::Inproc => "inproc",
            Self::Local => "local",
            Self::Lambda => "lambda",
        }
    }
}

/// The execution mode, and the settings that only the serverless mode reads.
#[derive(Debug, Clone, Args)]
pub struct ExecArgs {
    /// monolithic: one forward pass in this process; serverless: plan, store, functions.
    #[arg(long, value_enum, default_value = "monolithic")]
    pub mode: Mode,
    /// The stage graph.
    #[command(flatten)]
    pub plan: PlanArgs,
    /// Store and functions.
    #[command(flatten)]
    pub serverless: ServerlessArgs,
}

/// The store and the functions of the serverless mode.
///
/// clap's derive leaves a group empty when its struct flattens another, so the direct
/// fields name their group themselves (`group = ...`); the scope rule reads the groups.
#[derive(Debug, Clone, Args)]
#[group(id = "serverless_args")]
pub struct ServerlessArgs {
    /// Tensor store: memory, redis://host:port/db, rediss://..., redis+cluster://h1:p1,h2:p2.
    #[arg(long, default_value = "memory", group = "serverless_args")]
    pub store: String,
    /// Prefix of every store key (for a shared Redis).
    #[arg(long, default_value = "seqless:", group = "serverless_args")]
    pub key_prefix: String,
    /// Expiry of every stored tensor, in seconds.
    #[arg(long, default_value_t = 300, group = "serverless_args")]
    pub ttl_secs: u64,
    /// Where functions run: inproc (a pool in this process), local (`seqless platform` at
    /// --endpoint) or lambda (AWS Lambda through the SDK). local and lambda need a shared
    /// store (Redis).
    #[arg(long, value_enum, default_value = "inproc", group = "serverless_args")]
    pub platform: FunctionHost,
    /// The in-process pool.
    #[command(flatten)]
    pub inproc: InprocArgs,
    /// The Invoke API of local and lambda.
    #[command(flatten)]
    pub remote: RemoteArgs,
    /// A pricing TOML overriding the default AWS prices.
    #[arg(long, group = "serverless_args")]
    pub pricing: Option<PathBuf>,
    /// Function architecture for prices.
    #[arg(long, value_enum, default_value = "x86_64", group = "serverless_args")]
    pub arch: Arch,
    /// Hedging against straggling functions.
    #[command(flatten)]
    pub hedge: HedgeArgs,
    /// How many functions may run at once: the platform's concurrency limit (`seqless
    /// platform --concurrency`, or the Lambda functions' reserved concurrency). A
    /// resident query starts when S + 1 slots are free and its splits are capped at N - 1,
    /// so queries never wait on each other's functions. Default: the in-process pool's
    /// --concurrency; no bound for local and lambda.
    #[arg(long, value_parser = parse_function_slots, group = "serverless_args")]
    pub function_slots: Option<usize>,
    /// How activations move between functions: store (every value through --store), or
    /// inline (values that fit in the invocations under Lambda's 6 MB payload limit travel
    /// in them through this master, the rest through --store).
    #[arg(long, value_enum, default_value = "store", group = "serverless_args")]
    pub transfer: Transfer,
    /// With --transfer inline: the largest value sent inline, in bytes; larger ones go
    /// through --store. Up to 6 MB; at most what fits sends every value inline.
    #[arg(long, default_value_t = DEFAULT_INLINE_MAX_BYTES, group = "serverless_args")]
    pub inline_max_bytes: u64,
    /// The planner choosing each query's plan and splits.
    #[command(flatten)]
    pub chooser: ChooserArgs,
}

/// The pool of `--platform inproc`.
#[derive(Debug, Clone, Args)]
#[group(id = "inproc_args")]
pub struct InprocArgs {
    /// Function invocations at once (default: cores; for the resident plan at least its
    /// splits, which all run at once and mostly wait, a serial stage and a hedge).
    #[arg(long)]
    pub concurrency: Option<usize>,
    /// Seconds an idle function instance stays warm.
    #[arg(long, default_value_t = 600)]
    pub idle_timeout_secs: u64,
}

/// The Invoke API of `--platform local` and `--platform lambda`.
#[derive(Debug, Clone, Args)]
#[group(id = "remote_args")]
pub struct RemoteArgs {
    /// Invoke API base URL, http://HOST:PORT: required by local, optional for lambda.
    #[arg(long, value_parser = endpoint_url, group = "remote_args")]
    pub endpoint: Option<String>,
    /// Function names are this prefix plus the stage kind (seqless-conv, ...).
    #[arg(long, default_value = "seqless-", group = "remote_args")]
    pub function_prefix: String,
    /// AWS region for lambda.
    #[command(flatten)]
    pub lambda: LambdaArgs,
}

/// What only `--platform lambda` reads.
#[derive(Debug, Clone, Args)]
#[group(id = "lambda_args")]
pub struct LambdaArgs {
    /// AWS region [default: the SDK's chain, else us-east-1].
    #[arg(long)]
    pub region: Option<String>,
}

/// Checks an `--endpoint` URL's scheme, host and port here, so a typo is named as such
/// rather than by the HTTP client at the first invocation.
fn endpoint_url(s: &str) -> Result<String, String> {
    let rest = s
        .strip_prefix("http://")
        .or_else(|| s.strip_prefix("https://"))
        .ok_or_else(|| format!("{s:?} is not an http:// or https:// URL"))?;
    let authority = rest.split('/').next().unwrap_or_default();
    let (host, port) = match authority.rsplit_once(']') {
        Some((v6, after)) => (v6, after.strip_prefix(':')),
        None => match authority.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        },
    };
    if host.is_empty() {
        return Err(format!("{s:?} names no host"));
    }
    if let Some(port) = port
        && !matches!(port.parse::<u16>(), Ok(p) if p > 0)
    {
        return Err(format!(
            "port `{port}` in {s:?} is not a TCP port (1 to 65535)"
        ));
    }
    Ok(s.to_owned())
}

/// The dynamic batching of `serve`: in monolithic mode, queries that arrive together run
/// as one forward; in serverless mode, their stages share invocations of each function.
#[derive(Debug, Clone, Args)]
#[group(id = "batching_args")]
pub struct BatchingArgs {
    /// Run up to this many queries as one job (monolithic), or their stages in one
    /// invocation (serverless, at most 64); 1: off.
    #[arg(long, default_value_t = 1)]
    pub batch_max: usize,
    /// Longest a query (monolithic) or a stage (serverless) waits for others to join it,
    /// ms; a serverless stage never waits past its query's --plan-slo-ms, nor when its
    /// query is the only one in flight.
    #[arg(long, default_value_t = 2)]
    pub batch_wait_ms: u64,
}

impl BatchingArgs {
    /// The serverless batching the flags ask for, refusing a size over what one invocation
    /// carries.
    pub fn stage_batches(&self) -> Result<BatchPolicy, String> {
        match self.batch_max {
            0 | 1 => Ok(BatchPolicy::Off),
            n if n > MOST_BATCHED => Err(format!(
                "--batch-max {n}: one serverless invocation carries at most {MOST_BATCHED} stages"
            )),
            max => Ok(BatchPolicy::Window {
                window: Duration::from_millis(self.batch_wait_ms),
                max,
            }),
        }
    }
}

/// What a scoped group of flags needs of another flag to take effect.
#[derive(Debug, Clone, Copy)]
pub enum Needs {
    /// The flag has one of these values (given or by default).
    OneOf(&'static [&'static str]),
    /// The flag is given.
    Given,
}

/// A group of flags that takes effect only under a setting of another flag.
#[derive(Debug, Clone, Copy)]
pub struct Scope {
    /// The clap group id of the scoped flags.
    pub group: &'static str,
    /// The flag whose setting they need.
    pub flag: &'static str,
    /// The setting.
    pub needs: Needs,
}

/// The one rule for flags that some settings ignore: such a flag, given where it would have
/// no effect, is refused (exit 2) rather than silently ignored, so a run never looks like it
/// tested something it did not. Checked in order; the first broken scope is reported. Every
/// command that has both the group and the flag is covered.
pub const SCOPES: &[Scope] = &[
    scope("plan_args", "mode", Needs::OneOf(&["serverless"])),
    scope("serverless_args", "mode", Needs::OneOf(&["serverless"])),
    scope("inproc_args", "mode", Needs::OneOf(&["serverless"])),
    scope("remote_args", "mode", Needs::OneOf(&["serverless"])),
    scope("lambda_args", "mode", Needs::OneOf(&["serverless"])),
    scope("hedge_args", "mode", Needs::OneOf(&["serverless"])),
    scope("chooser_args", "mode", Needs::OneOf(&["serverless"])),
    scope("chooser_args", "calibration", Needs::Given),
    scope("plan_args", "model", Needs::Given),
    scope("inproc_args", "platform", Needs::OneOf(&["inproc"])),
    scope(
        "remote_args",
        "platform",
        Needs::OneOf(&["local", "lambda"]),
    ),
    scope("lambda_args", "platform", Needs::OneOf(&["lambda"])),
];

/// A [`Scope`], written on one line.
const fn scope(group: &'static str, flag: &'static str, needs: Needs) -> Scope {
    Scope { group, flag, needs }
}

/// `seqless classify`.
#[derive(Debug, Args)]
pub struct ClassifyArgs {
    /// Model directory (config.json + model.safetensors).
    #[arg(long)]
    pub model: PathBuf,
    /// Execution mode and its settings.
    #[command(flatten)]
    pub exec: ExecArgs,
    /// Print JSON: label, labels, logits (in label order), probabilities (by label),
    /// padded_len, and with --mode serverless the trace.
    #[arg(long)]
    pub json: bool,
    /// Read the text from a file instead (any bytes).
    #[arg(long, conflicts_with = "text")]
    pub file: Option<PathBuf>,
    /// The text; `-` reads standard input.
    pub text: Option<String>,
    /// How many labels to show in the human output.
    #[arg(long, default_value_t = 3)]
    pub top: usize,
}

/// `seqless bench ...`.
#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Time the monolithic forward pass against the machine's GEMM throughput.
    Forward(ForwardBenchArgs),
    /// Time serverless runs against the monolithic forward, per plan, split count and size.
    Serverless(ServerlessBenchArgs),
    /// Tensor put/get throughput of a store, against redis-benchmark on the same server.
    Store(StoreBenchArgs),
    /// Queries/s and latency of a running `seqless serve` at rising client concurrency.
    Load(LoadBenchArgs),
    /// The local Lambda platform: cold start, warm overhead, latency against inproc.
    #[cfg(feature = "platform")]
    Platform(seqless_bench::args::PlatformBenchArgs),
    /// Measure stage compute, store, cold start and overhead; write a simulator calibration.
    Calibrate(BenchCalibrateArgs),
    /// Queries under injected faults against the same queries without: success, answers
    /// equal to the monolithic forward, p50/p99, retries, hedges, keys left (docs/faults.md).
    Chaos(ChaosBenchArgs),
    /// Draw the simulator's validation table (scripts/validate-sim.sh) as measured against
    /// predicted throughput and latency.
    ValidationChart(ValidationChartArgs),
}

/// `seqless bench calibrate`.
#[derive(Debug, Args)]
pub struct BenchCalibrateArgs {
    /// Model directory.
    #[arg(long)]
    pub model: PathBuf,
    /// Input sizes in bytes, comma-separated; more sizes give the per-row fits more range.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "4096,65536,262144,1048576"
    )]
    pub bytes: Vec<usize>,
    /// Timed queries per size, after an untimed warm-up that may start instances cold.
    #[arg(long, default_value_t = 3)]
    pub runs: usize,
    /// Cut the queries from this text file instead of random words (as `bench load`
    /// does): stage times depend on the text, so calibrate on what will be served.
    #[arg(long)]
    pub text_file: Option<PathBuf>,
    /// The calibration JSON to write (for `seqless simulate --calibration`).
    #[arg(long, default_value = "calibration.json")]
    pub out: PathBuf,
    /// The stage graph.
    #[command(flatten)]
    pub plan: PlanArgs,
    /// Where the stages run.
    #[command(flatten)]
    pub serverless: ServerlessArgs,
}

/// `seqless serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Model directory (config.json + model.safetensors).
    #[arg(long)]
    pub model: PathBuf,
    /// Address to listen on (port 0 picks a free one; the URL is printed).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: std::net::SocketAddr,
    /// Execution mode and its settings.
    #[command(flatten)]
    pub exec: ExecArgs,
    /// What the server admits.
    #[command(flatten)]
    pub limits: seqless_server::LimitsArgs,
    /// Read the bearer token from this file instead of $SEQLESS_API_TOKEN (no token: no auth).
    #[arg(long)]
    pub auth_token_file: Option<PathBuf>,
    /// Monolithic dynamic batching.
    #[command(flatten)]
    pub batching: BatchingArgs,
}

/// `seqless data ...`.
#[cfg(feature = "train")]
#[derive(Debug, Subcommand)]
pub enum DataCommand {
    /// Build the language-identification data set from the lingua crates' test sentences.
    Langid(LangidArgs),
    /// Build the source-language data set: whole files from installed Debian packages,
    /// held out by package (docs/codelang.md).
    Codelang(seqless_datasets::codelang::Options),
}

/// `seqless baseline`.
#[cfg(feature = "train")]
#[derive(Debug, Args)]
pub struct BaselineArgs {
    /// Training documents (JSON lines, CSV or TSV).
    #[arg(long)]
    pub train: PathBuf,
    /// Validation documents: choose the smoothing and n-gram order.
    #[arg(long)]
    pub valid: PathBuf,
    /// Test documents: the reported scores.
    #[arg(long)]
    pub test: PathBuf,
    /// Print JSON instead of a report.
    #[arg(long)]
    pub json: bool,
}

/// `seqless data langid`.
#[cfg(feature = "train")]
#[derive(Debug, Args)]
pub struct LangidArgs {
    /// Directory to write train.jsonl, test.jsonl and test-single.jsonl into.
    #[arg(long)]
    pub out: PathBuf,
    /// Seed of the sentence shuffle and document assembly (the committed model used 7).
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// Also train on the crates' single words and word pairs (those not found in any
    /// held-out sentence). Off for the committed model: they lowered its accuracy on
    /// sentences (docs/langid.md).
    #[arg(long)]
    pub word_lists: bool,
}
