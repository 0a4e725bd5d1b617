//! `seqless bench platform`'s measurements: the local Lambda platform's own costs. Cold
//! start (spawn to first response, split into process start and model load), warm invoke
//! overhead (a no-op ping's round trip), and serverless latency on it against in-process
//! functions measured in the same run, both over the same Redis.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng, rngs::StdRng};
use seqless_coordinator::{Coordinator, CoordinatorOptions, Trace};
use seqless_functions::lambda_api::DEFAULT_FUNCTION_PREFIX;
use seqless_functions::{InprocInvoker, InprocOptions, InvokeOptions, Invoker, LocalInvoker, Ping};
use seqless_model::TfilmModel;
use seqless_plan::{Limits, PlanKind, Splits, StageKind};
use seqless_platform::{PlatformOptions, PlatformServer};
use seqless_store::{StoreOptions, TensorStore, open_store};

use crate::platform::Figures;
use crate::serverless::time_queries;
use crate::stats::median;
use crate::{BenchError, ms};

/// Every key the bench writes starts with this, apart from a serving deployment's keys.
const KEY_PREFIX: &str = "seqless-bench:";

/// What to measure.
pub struct PlatformBench {
    /// Model directory (absolute or relative to the working directory).
    pub model_dir: PathBuf,
    /// The shared store: a `redis://` URL (function processes share no memory).
    pub store_url: String,
    /// The function binary, run as `EXE function`.
    pub worker_exe: PathBuf,
    /// Samples per figure (warm pings take ten times as many).
    pub runs: usize,
    /// Input sizes of the serverless comparison.
    pub bytes: Vec<usize>,
    /// Conv functions per layer in the serverless comparison.
    pub splits: usize,
}

impl PlatformBench {
    /// Runs every measurement, handing `emit` the table header once the model has loaded (so
    /// a refusal prints nothing before it), then each figure's line as it is made.
    pub async fn run(&self, mut emit: impl FnMut(&str)) -> Result<Figures, BenchError> {
        if self.store_url == "memory" {
            return Err(BenchError::Invalid(
                "--store memory: function processes share no memory; give a redis:// URL".into(),
            ));
        }
        let model = TfilmModel::load(&self.model_dir)?;
        emit(&Figures::table_header());
        let mut figures = Figures::default();
        self.cold_starts(&mut figures, &mut emit).await?;
        let platform = PlatformServer::start(self.platform_options()?).await?;
        let local = self.client(&platform)?;
        local.ping(StageKind::Conv, Ping::default()).await?;
        let mut warm = Vec::new();
        for _ in 0..self.runs.max(1) * 10 {
            let started = Instant::now();
            local.ping(StageKind::Conv, Ping::default()).await?;
            warm.push(ms(started.elapsed()));
        }
        emit(&figures.add("warm_ping_round_trip", 0, &warm, None));
        let store = self.store().await?;
        let inproc: Arc<dyn Invoker> = Arc::new(InprocInvoker::new(
            InprocOptions {
                model_dir: self.model_dir.clone(),
                concurrency: 8,
                idle_timeout: Duration::from_secs(600),
                memory_mb: 1024,
                ttl: Duration::from_secs(120),
            },
            store,
        ));
        let on_inproc = self.coordinator(&model, inproc).await?;
        let on_local = self.coordinator(&model, Arc::new(local)).await?;
        let mut rng = StdRng::seed_from_u64(5);
        for &n in &self.bytes {
            let n = n.min(model.config.max_len);
            let input: Vec<u8> = (0..n).map(|_| rng.random()).collect();
            let walls =
                |traces: Vec<Trace>| traces.iter().map(|t| t.total_ms).collect::<Vec<f64>>();
            let base = walls(time_queries(&on_inproc, &input, self.runs).await?);
            let on_platform = walls(time_queries(&on_local, &input, self.runs).await?);
            let line = figures.add("serverless_local_vs_inproc", n, &on_platform, median(&base));
            emit(&line);
        }
        platform.shutdown().await;
        Ok(figures)
    }

    fn platform_options(&self) -> Result<PlatformOptions, BenchError> {
        let model_dir = std::path::absolute(&self.model_dir)
            .map_err(|e| BenchError::Invalid(format!("{}: {e}", self.model_dir.display())))?;
        Ok(PlatformOptions {
            listen: ([127, 0, 0, 1], 0).into(),
            model_dir,
            store_url: self.store_url.clone(),
            key_prefix: KEY_PREFIX.into(),
            ttl_secs: 120,
            worker_exe: self.worker_exe.clone(),
            function_prefix: DEFAULT_FUNCTION_PREFIX.into(),
            max_concurrency: 8,
            queue_bound: 256,
            idle_timeout: Duration::from_secs(600),
            timeout: Duration::from_secs(120),
            memory_mb: 1024,
            function_memory: Default::default(),
        })
    }

    fn client(&self, platform: &PlatformServer) -> Result<LocalInvoker, BenchError> {
        Ok(LocalInvoker::new(
            &platform.endpoint(),
            InvokeOptions {
                function_prefix: DEFAULT_FUNCTION_PREFIX.into(),
                fallback_memory_mb: 1024,
                timeout: Duration::from_secs(120),
            },
        )?)
    }

    async fn store(&self) -> Result<Arc<dyn TensorStore>, BenchError> {
        let options = StoreOptions {
            key_prefix: KEY_PREFIX.into(),
            ..StoreOptions::default()
        };
        Ok(open_store(&self.store_url, options).await?)
    }

    /// Cold starts: a fresh platform per sample, so the ping meets no process.
    async fn cold_starts(
        &self,
        figures: &mut Figures,
        emit: &mut impl FnMut(&str),
    ) -> Result<(), BenchError> {
        let (mut total, mut init, mut process, mut model) = (vec![], vec![], vec![], vec![]);
        for _ in 0..self.runs.max(1) {
            let platform = PlatformServer::start(self.platform_options()?).await?;
            let started = Instant::now();
            let outcome = self
                .client(&platform)?
                .ping(StageKind::Conv, Ping::default())
                .await;
            let round_trip = ms(started.elapsed());
            platform.shutdown().await;
            let (result, meta) = outcome?;
            let Some(split) = result.init.filter(|_| meta.cold) else {
                return Err(BenchError::Invalid(
                    "the first ping of a fresh platform was not a cold start".into(),
                ));
            };
            total.push(round_trip);
            init.push(meta.init_ms);
            process.push(split.process_start_ms.unwrap_or(f64::NAN));
            model.push(split.model_load_ms);
        }
        for (name, samples) in [
            ("cold_start_round_trip", total),
            ("cold_init_duration", init),
            ("cold_process_start", process),
            ("cold_model_load", model),
        ] {
            emit(&figures.add(name, 0, &samples, None));
        }
        Ok(())
    }

    async fn coordinator(
        &self,
        model: &TfilmModel,
        invoker: Arc<dyn Invoker>,
    ) -> Result<Coordinator, BenchError> {
        let options = CoordinatorOptions {
            plan: PlanKind::Fused,
            splits: Splits::Fixed(self.splits),
            limits: Limits {
                function_memory_mb: 10_240,
                max_splits: self.splits.max(1),
                min_rows_per_split: 1,
                max_value_bytes: None,
            },
            ttl: Duration::from_secs(120),
            ..CoordinatorOptions::default()
        };
        Ok(Coordinator::new(
            model.config.clone(),
            seqless_model::fingerprint(&self.model_dir)?,
            self.store().await?,
            invoker,
            options,
        ))
    }
}
