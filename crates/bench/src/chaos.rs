//! `seqless bench chaos`: queries through the coordinator under injected faults (errors,
//! crashes, throttles, stragglers), against the same queries without faults, run in
//! interleaved rounds back to back on the same machine so that both see the same load.
//! For each query size and each condition it reports the success rate, the share of
//! answers whose logits are within 1e-4 of the monolithic forward pass, p50 and p99 latency
//! (nearest rank, [`crate::stats`]), and the retries and hedges the traces record; after the
//! run, the keys the run left in the store.
//!
//! The coordinator is not told the fault settings: only its functions are (the in-process
//! invoker's, or a `seqless platform` the bench starts with `--faults`).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng, rngs::StdRng};
use seqless_coordinator::{Coordinator, CoordinatorOptions, HedgePolicy, HedgeWinner};
use seqless_functions::{FaultInjection, InprocInvoker, InprocOptions, Invoker};
use seqless_model::TfilmModel;
use seqless_plan::{Limits, PlanKind, Splits};
use seqless_store::{MemoryStore, StoreOptions, TensorStore, open_store};
use serde::Serialize;

use crate::stats::quantile;
use crate::{BenchError, ms};

/// Where the stage functions run.
#[derive(Debug, Clone)]
pub enum ChaosPlatform {
    /// In this process, over the bench's store.
    Inproc,
    /// On two `seqless platform`s the bench starts, one with the faults and one without,
    /// whose function processes run `worker_exe function`. Needs a Redis store.
    #[cfg(feature = "platform")]
    Local {
        /// The function binary.
        worker_exe: PathBuf,
    },
}

/// What to run.
#[derive(Debug, Clone)]
pub struct ChaosBench {
    /// Model directory.
    pub model_dir: PathBuf,
    /// `memory` (in-process functions only) or a `redis://` URL.
    pub store_url: String,
    /// Where the functions run.
    pub platform: ChaosPlatform,
    /// Query sizes, bytes.
    pub sizes: Vec<usize>,
    /// Queries per size and condition.
    pub queries: usize,
    /// Queries in flight at once.
    pub concurrency: usize,
    /// Rounds per size, each running its share of the fault-free queries, then of the
    /// faulty ones.
    pub rounds: usize,
    /// The stage graph.
    pub plan: PlanKind,
    /// Conv functions per layer.
    pub splits: usize,
    /// Function instances (processes on the local platform) per condition.
    pub functions: usize,
    /// The faults injected into the faulty condition's functions.
    pub faults: FaultInjection,
    /// The coordinator's hedging, the same in both conditions.
    pub hedge: HedgePolicy,
}

/// One size under one condition.
#[derive(Debug, Clone, Serialize)]
pub struct ChaosRow {
    /// Query size, bytes.
    pub bytes: usize,
    /// Whether faults were injected.
    pub faults: bool,
    /// Queries run.
    pub queries: usize,
    /// Queries answered.
    pub succeeded: usize,
    /// Answers with the monolithic label and logits within 1e-4.
    pub equal: usize,
    /// Median latency of the answered queries, ms.
    pub p50_ms: f64,
    /// 99th percentile latency of the answered queries, ms.
    pub p99_ms: f64,
    /// Failed attempts that the coordinator tried again.
    pub retries: usize,
    /// Stages that got a duplicate invocation.
    pub hedges: usize,
    /// Hedges whose duplicate answered first.
    pub hedges_won: usize,
    /// The first failure, if a query failed.
    pub first_error: Option<String>,
}

impl ChaosRow {
    /// The share of queries answered.
    pub fn success_rate(&self) -> f64 {
        self.succeeded as f64 / self.queries.max(1) as f64
    }

    /// The share of queries answered with the monolithic forward pass's logits.
    pub fn equal_rate(&self) -> f64 {
        self.equal as f64 / self.queries.max(1) as f64
    }
}

/// The whole run.
#[derive(Debug, Clone, Serialize)]
pub struct ChaosReport {
    /// The faults, as `--faults` reads them.
    pub faults: String,
    /// Per size, the fault-free row, then the faulty one.
    pub rows: Vec<ChaosRow>,
    /// Keys under the run's key prefix once every query had returned.
    pub keys_left: usize,
}

/// How far an answer's logits may be from the monolithic forward pass's: the serverless
/// pipeline's invariant (docs/design.md §2).
const LOGIT_TOLERANCE: f32 = 1e-4;

/// Inputs of one size cycled by the queries, each with the monolithic forward's answer.
const DISTINCT_INPUTS: usize = 16;

/// One query's outcome: its latency, and what its answer showed.
struct Outcome {
    ms: f64,
    answer: Result<Answer, String>,
}

struct Answer {
    equal: bool,
    retries: usize,
    hedges: usize,
    hedges_won: usize,
}

/// The two conditions' coordinators, and what must be stopped after the run.
struct Setup {
    clean: Coordinator,
    faulty: Coordinator,
    memory: Option<Arc<MemoryStore>>,
    #[cfg(feature = "platform")]
    platforms: Vec<seqless_platform::PlatformServer>,
}

impl ChaosBench {
    /// Runs every size, handing `emit` the faults and the table header once the model has
    /// loaded (so a refusal prints nothing before it), then each row's line as it is made.
    pub async fn run(&self, mut emit: impl FnMut(&str)) -> Result<ChaosReport, BenchError> {
        self.check()?;
        let model = TfilmModel::load(&self.model_dir)?;
        emit(&format!("faults: {}", faults_text(&self.faults)));
        emit(&table_header());
        // A prefix of this run's own, so that counting its keys counts nothing else.
        let prefix = format!("seqless-chaos:{}:", uuid::Uuid::new_v4().simple());
        let setup = self.setup(&model, &prefix).await?;
        let mut rng = StdRng::seed_from_u64(17);
        let mut rows = Vec::new();
        for &size in &self.sizes {
            let size = size.min(model.config.max_len);
            let inputs: Vec<(Vec<u8>, Vec<f32>)> = (0..DISTINCT_INPUTS.min(self.queries))
                .map(|_| {
                    let text: Vec<u8> = (0..size).map(|_| rng.random()).collect();
                    let logits = model.forward(&text).map(|p| p.logits)?;
                    Ok((text, logits))
                })
                .collect::<Result<_, BenchError>>()?;
            let inputs = Arc::new(inputs);
            // Warm both conditions' instances, and the faulty functions' medians, which
            // size their stragglers; not counted.
            for c in [&setup.clean, &setup.faulty] {
                batch(c, &inputs, self.concurrency, self.concurrency).await;
            }
            let (mut clean, mut faulty) = (Vec::new(), Vec::new());
            for round in 0..self.rounds {
                let count =
                    self.queries * (round + 1) / self.rounds - self.queries * round / self.rounds;
                clean.extend(batch(&setup.clean, &inputs, count, self.concurrency).await);
                faulty.extend(batch(&setup.faulty, &inputs, count, self.concurrency).await);
            }
            for (outcomes, faults) in [(clean, false), (faulty, true)] {
                let row = summarise(size, faults, &outcomes);
                emit(&table_line(&row, rows.last().filter(|_| faults)));
                rows.push(row);
            }
        }
        let keys_left = match &setup.memory {
            Some(memory) => memory.live_keys().len(),
            None => redis_keys(&self.store_url, &prefix).await?,
        };
        #[cfg(feature = "platform")]
        for platform in setup.platforms {
            platform.shutdown().await;
        }
        Ok(ChaosReport {
            faults: faults_text(&self.faults),
            rows,
            keys_left,
        })
    }

    fn check(&self) -> Result<(), BenchError> {
        let invalid = |what: &str| Err(BenchError::Invalid(what.into()));
        if self.queries == 0 {
            return invalid("--queries must be at least 1");
        }
        if self.concurrency == 0 {
            return invalid("--concurrency must be at least 1");
        }
        if self.rounds == 0 || self.rounds > self.queries {
            return invalid("--rounds must be 1 to --queries");
        }
        if self.sizes.is_empty() || self.sizes.contains(&0) {
            return invalid("--bytes needs sizes of at least 1 byte");
        }
        if self.splits == 0 || self.functions == 0 {
            return invalid("--splits and --functions must be at least 1");
        }
        self.faults
            .validate()
            .map_err(|e| BenchError::Invalid(format!("--faults: {e}")))?;
        let redis = self.store_url.starts_with("redis://");
        if self.store_url != "memory" && !redis {
            return invalid(
                "--store must be memory or a redis:// URL, where the run's keys can be counted",
            );
        }
        #[cfg(feature = "platform")]
        if matches!(self.platform, ChaosPlatform::Local { .. }) && !redis {
            return invalid(
                "--platform local needs --store redis://...: function processes share no memory",
            );
        }
        Ok(())
    }

    async fn setup(&self, model: &TfilmModel, prefix: &str) -> Result<Setup, BenchError> {
        let (store, memory): (Arc<dyn TensorStore>, _) = if self.store_url == "memory" {
            let memory = Arc::new(MemoryStore::new());
            (memory.clone(), Some(memory))
        } else {
            let options = StoreOptions {
                key_prefix: prefix.into(),
                ..StoreOptions::default()
            };
            (open_store(&self.store_url, options).await?, None)
        };
        #[cfg(feature = "platform")]
        let mut platforms = Vec::new();
        let (clean, faulty): (Arc<dyn Invoker>, Arc<dyn Invoker>) = match &self.platform {
            ChaosPlatform::Inproc => {
                let options = InprocOptions {
                    model_dir: self.model_dir.clone(),
                    concurrency: self.functions,
                    idle_timeout: Duration::from_secs(600),
                    memory_mb: 1769,
                    ttl: TTL,
                };
                let faulty =
                    InprocInvoker::with_faults(options.clone(), store.clone(), self.faults)
                        .map_err(|e| BenchError::Invalid(format!("--faults: {e}")))?;
                (
                    Arc::new(InprocInvoker::new(options, store.clone())),
                    Arc::new(faulty),
                )
            }
            #[cfg(feature = "platform")]
            ChaosPlatform::Local { worker_exe } => {
                let clean = self.start_platform(worker_exe, prefix, None).await?;
                let faulty = (self.start_platform(worker_exe, prefix, Some(self.faults))).await?;
                let invokers = (local(&clean)?, local(&faulty)?);
                platforms.extend([clean, faulty]);
                invokers
            }
        };
        let fingerprint = seqless_model::fingerprint(&self.model_dir)?;
        let options = CoordinatorOptions {
            plan: self.plan,
            splits: Splits::Fixed(self.splits),
            limits: Limits {
                function_memory_mb: 10_240,
                max_splits: self.splits,
                min_rows_per_split: 1,
                max_value_bytes: None,
            },
            ttl: TTL,
            hedge: self.hedge,
            function_slots: Some(self.functions),
            ..CoordinatorOptions::default()
        };
        let coordinator = |invoker: Arc<dyn Invoker>| {
            Coordinator::new(
                model.config.clone(),
                fingerprint.clone(),
                store.clone(),
                invoker,
                options.clone(),
            )
        };
        Ok(Setup {
            clean: coordinator(clean),
            faulty: coordinator(faulty),
            memory,
            #[cfg(feature = "platform")]
            platforms,
        })
    }

    /// A local platform of the model over the bench's Redis, with `faults` if given.
    #[cfg(feature = "platform")]
    async fn start_platform(
        &self,
        worker_exe: &std::path::Path,
        prefix: &str,
        faults: Option<FaultInjection>,
    ) -> Result<seqless_platform::PlatformServer, BenchError> {
        let model_dir = std::path::absolute(&self.model_dir)
            .map_err(|e| BenchError::Invalid(format!("{}: {e}", self.model_dir.display())))?;
        let options = seqless_platform::PlatformOptions {
            listen: ([127, 0, 0, 1], 0).into(),
            model_dir,
            store_url: self.store_url.clone(),
            key_prefix: prefix.into(),
            ttl_secs: TTL.as_secs(),
            worker_exe: worker_exe.to_path_buf(),
            function_prefix: seqless_functions::lambda_api::DEFAULT_FUNCTION_PREFIX.into(),
            max_concurrency: self.functions,
            queue_bound: 4096,
            idle_timeout: Duration::from_secs(600),
            timeout: Duration::from_secs(120),
            memory_mb: 1769,
            function_memory: Default::default(),
        };
        Ok(match faults {
            Some(faults) => {
                seqless_platform::PlatformServer::start_with_faults(options, faults).await?
            }
            None => seqless_platform::PlatformServer::start(options).await?,
        })
    }
}

/// Expiry of the run's keys: the 300 s, long enough that a key left behind is still
/// there to be counted at the end of the run.
const TTL: Duration = Duration::from_secs(300);

/// An Invoke API client of a platform the bench started.
#[cfg(feature = "platform")]
fn local(platform: &seqless_platform::PlatformServer) -> Result<Arc<dyn Invoker>, BenchError> {
    Ok(Arc::new(seqless_functions::LocalInvoker::new(
        &platform.endpoint(),
        seqless_functions::InvokeOptions {
            function_prefix: seqless_functions::lambda_api::DEFAULT_FUNCTION_PREFIX.into(),
            fallback_memory_mb: 1769,
            timeout: Duration::from_secs(120),
        },
    )?))
}

/// Runs `count` queries, cycling through `inputs`, at most `concurrency` at once.
async fn batch(
    c: &Coordinator,
    inputs: &Arc<Vec<(Vec<u8>, Vec<f32>)>>,
    count: usize,
    concurrency: usize,
) -> Vec<Outcome> {
    let permits = Arc::new(tokio::sync::Semaphore::new(concurrency));
    let mut running = tokio::task::JoinSet::new();
    for i in 0..count {
        let permit = (permits.clone().acquire_owned().await).expect("the semaphore stays open");
        let (c, inputs) = (c.clone(), inputs.clone());
        running.spawn(async move {
            let _permit = permit;
            let (text, want) = &inputs[i % inputs.len()];
            let started = Instant::now();
            let answer = c.classify(text).await;
            let ms = ms(started.elapsed());
            let answer = answer.map_err(|e| e.to_string()).map(|got| Answer {
                equal: got.prediction.logits.len() == want.len()
                    && (got.prediction.logits.iter().zip(want))
                        .all(|(g, w)| (g - w).abs() <= LOGIT_TOLERANCE),
                retries: got.trace.retries.len(),
                hedges: got.trace.hedges.len(),
                hedges_won: (got.trace.hedges.iter())
                    .filter(|h| h.winner == HedgeWinner::Duplicate)
                    .count(),
            });
            Outcome { ms, answer }
        });
    }
    let mut outcomes = Vec::with_capacity(count);
    while let Some(done) = running.join_next().await {
        outcomes.push(done.unwrap_or_else(|e| Outcome {
            ms: f64::NAN,
            answer: Err(format!("the query's task failed: {e}")),
        }));
    }
    outcomes
}

fn summarise(bytes: usize, faults: bool, outcomes: &[Outcome]) -> ChaosRow {
    let answered: Vec<&Answer> = outcomes
        .iter()
        .filter_map(|o| o.answer.as_ref().ok())
        .collect();
    let latencies: Vec<f64> = (outcomes.iter())
        .filter(|o| o.answer.is_ok())
        .map(|o| o.ms)
        .collect();
    let sum = |f: fn(&Answer) -> usize| -> usize { answered.iter().map(|a| f(a)).sum() };
    ChaosRow {
        bytes,
        faults,
        queries: outcomes.len(),
        succeeded: answered.len(),
        equal: answered.iter().filter(|a| a.equal).count(),
        p50_ms: quantile(&latencies, 0.5).unwrap_or(f64::NAN),
        p99_ms: quantile(&latencies, 0.99).unwrap_or(f64::NAN),
        retries: sum(|a| a.retries),
        hedges: sum(|a| a.hedges),
        hedges_won: sum(|a| a.hedges_won),
        first_error: outcomes
            .iter()
            .find_map(|o| o.answer.as_ref().err().cloned()),
    }
}

/// The keys under `prefix` on the Redis at `url` (SCAN).
async fn redis_keys(url: &str, prefix: &str) -> Result<usize, BenchError> {
    let failed = |e: redis::RedisError| BenchError::Tool {
        tool: "redis".into(),
        reason: format!("counting the run's keys under `{prefix}`: {e}"),
    };
    let client = redis::Client::open(url).map_err(failed)?;
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .map_err(failed)?;
    let pattern = format!("{prefix}*");
    let (mut cursor, mut keys) = (0u64, 0);
    loop {
        let (next, found): (u64, Vec<String>) = crate::scan_page(cursor, &pattern)
            .query_async(&mut conn)
            .await
            .map_err(failed)?;
        keys += found.len();
        if next == 0 {
            return Ok(keys);
        }
        cursor = next;
    }
}

/// `f` as `--faults` reads it.
pub fn faults_text(f: &FaultInjection) -> String {
    format!(
        "seed={},error={},crash={},delay={},delay-factor={},throttle={}",
        f.seed, f.error_rate, f.crash_rate, f.delay_rate, f.delay_factor, f.throttle_rate
    )
}

/// The columns of [`table_line`].
pub fn table_header() -> String {
    format!(
        "{:>8} {:>6} {:>7} {:>8} {:>8} {:>9} {:>9} {:>6} {:>6} {:>7} {:>7} {:>7}",
        "bytes",
        "faults",
        "queries",
        "success",
        "equal",
        "p50_ms",
        "p99_ms",
        "p50_x",
        "p99_x",
        "retries",
        "hedges",
        "dup_won"
    )
}

/// A row; a faulty one with its latencies as multiples of the fault-free row `base`.
pub fn table_line(row: &ChaosRow, base: Option<&ChaosRow>) -> String {
    let ratio = |x: f64, b: Option<f64>| b.map_or("-".to_owned(), |b| format!("{:.2}", x / b));
    let mut line = format!(
        "{:>8} {:>6} {:>7} {:>7.1}% {:>7.1}% {:>9.1} {:>9.1} {:>6} {:>6} {:>7} {:>7} {:>7}",
        row.bytes,
        if row.faults { "on" } else { "off" },
        row.queries,
        100.0 * row.success_rate(),
        100.0 * row.equal_rate(),
        row.p50_ms,
        row.p99_ms,
        ratio(row.p50_ms, base.map(|b| b.p50_ms)),
        ratio(row.p99_ms, base.map(|b| b.p99_ms)),
        row.retries,
        row.hedges,
        row.hedges_won,
    );
    if let Some(err) = &row.first_error {
        line.push_str(&format!("  first failure: {err}"));
    }
    line
}

impl ChaosReport {
    /// The table: a header, a line per row, and the keys left.
    pub fn table(&self) -> String {
        let mut out = table_header();
        for (i, row) in self.rows.iter().enumerate() {
            let base = (row.faults && i > 0).then(|| &self.rows[i - 1]);
            out.push('\n');
            out.push_str(&table_line(row, base));
        }
        out.push_str(&format!("\nkeys left in the store: {}", self.keys_left));
        out
    }

    /// The rows as CSV, the keys left on every row.
    pub fn csv(&self) -> String {
        let mut out = String::from(
            "bytes,faults,queries,succeeded,equal,p50_ms,p99_ms,retries,hedges,hedges_won,keys_left\n",
        );
        for r in &self.rows {
            out.push_str(&format!(
                "{},{},{},{},{},{:.3},{:.3},{},{},{},{}\n",
                r.bytes,
                r.faults,
                r.queries,
                r.succeeded,
                r.equal,
                r.p50_ms,
                r.p99_ms,
                r.retries,
                r.hedges,
                r.hedges_won,
                self.keys_left
            ));
        }
        out
    }
}
