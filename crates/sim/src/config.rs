//! What the simulator is told: the calibrated costs of the real system, the two
//! deployments, and the run itself.

use std::collections::BTreeMap;
use std::path::Path;

use seqless_cost::{Arch, Pricing};
use serde::{Deserialize, Serialize};

use crate::SimError;
use crate::error::{Validate, above, at_least, load_validated, parse_validated};
use crate::stats::median;
use crate::workload::{ArrivalProcess, LengthDistribution};

/// Compute time of one stage kind, `a_ms + b_ms_per_row × rows`: a fixed part
/// (handler, deserialisation) and a part linear in the rows the function owns,
/// which is how the conv and LSTM kernels scale. A calibration that measured several row
/// counts also keeps each one's median (`medians`), which the time passes through: a
/// line fitted over a few lengths misses the small ones by a quarter when cache effects
/// bend the curve. Each invocation's time is then multiplied by a factor drawn from
/// `spread`, the measured times over their row count's, so that the spread the real
/// system showed, stragglers included, reaches the tail latencies.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StageCalibration {
    /// Fixed compute per invocation, ms.
    pub a_ms: f64,
    /// Compute per row, ms.
    pub b_ms_per_row: f64,
    /// Measured time over fitted time, one per sample, ascending: the empirical
    /// distribution the simulator draws each invocation's factor from. Empty: every
    /// invocation takes exactly the fitted time.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub spread: Vec<f64>,
    /// `[rows, median ms]` at every row count measured, ascending by rows. Empty: the
    /// line alone.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub medians: Vec<[f64; 2]>,
    /// The function process's CPU time over the compute time, the median over the
    /// samples: how many cores' worth an invocation keeps busy for each millisecond it
    /// computes, counting its kernels' other threads, its store I/O and its Runtime API
    /// exchange. Only functions that run in processes of their own measure it (the local
    /// platform). Absent, an invocation's CPU is its compute. The simulator charges it to
    /// the machine's cores when the functions share one (`serverless.host_cores`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_per_compute: Option<f64>,
}

impl StageCalibration {
    /// Fits measured `(rows, ms)` samples, as `seqless bench calibrate` takes them from
    /// real traces: the least-squares line `ms = a + b × rows`, each row count's median,
    /// and the spread of every sample about its row count's median. Both coefficients are
    /// kept non-negative: a negative intercept or slope is measurement noise, not a stage
    /// that gets faster with more work. With one distinct row count the slope is 0 and
    /// `a` is the mean. `None` for no samples.
    pub fn fit(samples: &[(usize, f64)]) -> Option<Self> {
        let mut fitted = Self::fit_line(samples)?;
        let mut by_rows: BTreeMap<usize, Vec<f64>> = BTreeMap::new();
        for &(rows, ms) in samples {
            by_rows.entry(rows).or_default().push(ms);
        }
        let mut spread = Vec::with_capacity(samples.len());
        for (&rows, times) in &by_rows {
            let Some(mid) = median(times) else { continue };
            fitted.medians.push([rows as f64, mid]);
            if mid > 0.0 {
                spread.extend(times.iter().map(|ms| ms / mid));
            }
        }
        spread.sort_by(f64::total_cmp);
        fitted.spread = spread;
        Some(fitted)
    }

    /// The compute of an invocation over `rows` rows before its drawn factor, ms: through
    /// the medians where there are any (interpolated between two, and beyond the ends
    /// along the line's slope), else the line.
    pub fn compute_ms(&self, rows: usize) -> f64 {
        let x = rows as f64;
        let (Some(first), Some(last)) = (self.medians.first(), self.medians.last()) else {
            return self.a_ms + self.b_ms_per_row * x;
        };
        let along_slope = |[x0, y0]: [f64; 2]| (y0 + self.b_ms_per_row * (x - x0)).max(0.0);
        if x <= first[0] {
            return along_slope(*first);
        }
        if x >= last[0] {
            return along_slope(*last);
        }
        let i = self.medians.partition_point(|&[x0, _]| x0 <= x);
        let ([x0, y0], [x1, y1]) = (self.medians[i - 1], self.medians[i]);
        y0 + (y1 - y0) * (x - x0) / (x1 - x0)
    }

    /// The least-squares line of [`StageCalibration::fit`], without its spread.
    fn fit_line(samples: &[(usize, f64)]) -> Option<Self> {
        if samples.is_empty() {
            return None;
        }
        let n = samples.len() as f64;
        let mean_x = samples.iter().map(|&(x, _)| x as f64).sum::<f64>() / n;
        let mean_y = samples.iter().map(|&(_, y)| y).sum::<f64>() / n;
        let sxx: f64 = samples
            .iter()
            .map(|&(x, _)| (x as f64 - mean_x).powi(2))
            .sum();
        let sxy: f64 = samples
            .iter()
            .map(|&(x, y)| (x as f64 - mean_x) * (y - mean_y))
            .sum();
        let slope = if sxx > 0.0 { sxy / sxx } else { 0.0 };
        let (a_ms, b_ms_per_row) = if slope <= 0.0 {
            (mean_y.max(0.0), 0.0)
        } else if mean_y - slope * mean_x < 0.0 {
            // Through the origin instead: the best slope with a = 0.
            let sx2: f64 = samples.iter().map(|&(x, _)| (x as f64).powi(2)).sum();
            let sxy0: f64 = samples.iter().map(|&(x, y)| x as f64 * y).sum();
            (0.0, (sxy0 / sx2).max(0.0))
        } else {
            (mean_y - slope * mean_x, slope)
        };
        Some(Self {
            a_ms,
            b_ms_per_row,
            spread: Vec::new(),
            medians: Vec::new(),
            cpu_per_compute: None,
        })
    }
}

/// The master's CPU, as `seqless bench calibrate` measured it in its own process:
/// `cpu_ms_per_query + cpu_ms_per_invocation × invocations` per query (tokenising,
/// uploading the input, building events, reading results and deleting the keys).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MasterCpu {
    /// CPU per query, ms.
    pub cpu_ms_per_query: f64,
    /// CPU per invocation, ms.
    pub cpu_ms_per_invocation: f64,
}

impl MasterCpu {
    /// Least-squares fit of `(invocations, CPU ms)` per query, kept non-negative as
    /// [`StageCalibration::fit`] keeps its line. `None` for no samples.
    pub fn fit(samples: &[(usize, f64)]) -> Option<Self> {
        let line = StageCalibration::fit_line(samples)?;
        Some(MasterCpu {
            cpu_ms_per_query: line.a_ms,
            cpu_ms_per_invocation: line.b_ms_per_row,
        })
    }
}

/// The store (Redis / ElastiCache) as seen from a function: every read and
/// every write is one round trip plus its bytes at the function's bandwidth.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreCalibration {
    /// One request/response round trip, ms.
    pub rtt_ms: f64,
    /// Transfer rate, MB/s (10^6 bytes per second).
    pub bandwidth_mb_per_s: f64,
}

impl Default for StoreCalibration {
    /// ElastiCache in the same VPC answers in well under a millisecond; Lambda's
    /// network throughput is commonly measured near 75 MB/s per environment.
    /// Replace both with `seqless bench` figures.
    fn default() -> Self {
        StoreCalibration {
            rtt_ms: 0.5,
            bandwidth_mb_per_s: 75.0,
        }
    }
}

/// AWS Lambda's limits, which are what make the serverless curve bend.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LambdaLimits {
    /// Concurrent executions per account and region (AWS default 1,000).
    pub account_concurrency: u32,
    /// Execution environments a function may add per scaling period (AWS: 1,000).
    pub scale_step: u32,
    /// The scaling period, seconds (AWS: 10).
    pub scale_period_s: f64,
    /// Idle time after which an environment is reclaimed. AWS does not publish
    /// it; public measurements find roughly 5 to 15 minutes.
    pub keep_alive_s: f64,
    /// Smallest configurable function memory (AWS: 128 MB).
    pub min_memory_mb: u32,
    /// Largest configurable function memory (AWS: 10,240 MB).
    pub max_memory_mb: u32,
}

impl Default for LambdaLimits {
    /// AWS's published defaults (scaling rate as of the 2023-11 change to
    /// 1,000 environments per 10 s per function) and a 10 minute keep-alive.
    fn default() -> Self {
        LambdaLimits {
            account_concurrency: 1000,
            scale_step: 1000,
            scale_period_s: 10.0,
            keep_alive_s: 600.0,
            min_memory_mb: 128,
            max_memory_mb: 10_240,
        }
    }
}

/// Measured (or assumed) costs of the real system. Kept apart from the rest of
/// the configuration so `seqless bench` can write one and the simulator read it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Calibration {
    /// Compute model per stage kind (`conv`, `tfilm`, `head`, `classifier`, ...).
    pub stages: BTreeMap<String, StageCalibration>,
    /// The store.
    pub store: StoreCalibration,
    /// A cold start: new environment, runtime start and model load, ms.
    pub cold_start_ms: f64,
    /// Measured cold starts, ms, ascending: each cold start draws from them when there
    /// are any, else takes `cold_start_ms`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cold_start_samples_ms: Vec<f64>,
    /// The Lambda memory size whose CPU share the stage times were measured with, MB:
    /// 1,769 (one full vCPU) for a function process with a core of its own, as `seqless
    /// bench calibrate` measures. A function with less memory gets a proportionally
    /// smaller CPU share on Lambda, so its compute takes proportionally longer; one with
    /// more gets no faster, since a stage's kernels are not assumed to use a second vCPU.
    pub cpu_reference_mb: u32,
    /// A warm invocation's overhead beyond compute and store I/O (the Invoke
    /// API round trip and event (de)serialisation), ms.
    pub warm_overhead_ms: f64,
    /// Lambda's limits.
    pub limits: LambdaLimits,
    /// The master's CPU as measured; absent, the simulator takes
    /// `serverless.master`'s assumed figures.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub master: Option<MasterCpu>,
}

impl Default for Calibration {
    /// Placeholder figures of the right order for the TFiLM stages on one
    /// vCPU (1,769 MB); see docs/simulator.md. Measure and replace them.
    fn default() -> Self {
        let stage = |a_ms, b_ms_per_row| StageCalibration {
            a_ms,
            b_ms_per_row,
            spread: Vec::new(),
            medians: Vec::new(),
            cpu_per_compute: None,
        };
        Calibration {
            stages: BTreeMap::from([
                ("conv".to_string(), stage(2.0, 0.0012)),
                ("tfilm".to_string(), stage(1.0, 0.005)),
                ("head".to_string(), stage(1.0, 0.005)),
                ("classifier".to_string(), stage(0.5, 0.001)),
            ]),
            store: StoreCalibration::default(),
            cold_start_ms: seqless_cost::DEFAULT_INIT_MS as f64,
            cold_start_samples_ms: Vec::new(),
            cpu_reference_mb: 1769,
            warm_overhead_ms: 15.0,
            limits: LambdaLimits::default(),
            master: None,
        }
    }
}

impl Calibration {
    /// Parses a calibration from JSON text; errors carry line and key.
    pub fn from_json_str(text: &str) -> Result<Self, SimError> {
        parse_validated(text)
    }

    /// Reads a calibration file, as written by a benchmark; errors name the file.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, SimError> {
        load_validated(path.as_ref())
    }
}

impl Validate for Calibration {
    fn validate(&self) -> Result<(), SimError> {
        for (kind, s) in &self.stages {
            at_least(&format!("calibration.stages.{kind}.a_ms"), s.a_ms, 0.0)?;
            at_least(
                &format!("calibration.stages.{kind}.b_ms_per_row"),
                s.b_ms_per_row,
                0.0,
            )?;
            for &factor in &s.spread {
                above(&format!("calibration.stages.{kind}.spread"), factor, 0.0)?;
            }
            let field = format!("calibration.stages.{kind}.medians");
            for &[rows, ms] in &s.medians {
                at_least(&field, rows, 0.0)?;
                at_least(&field, ms, 0.0)?;
            }
            if !s.medians.is_sorted_by(|a, b| a[0] < b[0]) {
                return Err(SimError::Config {
                    field,
                    reason: "must be in ascending order of rows, one entry per row count".into(),
                });
            }
            if let Some(ratio) = s.cpu_per_compute {
                above(
                    &format!("calibration.stages.{kind}.cpu_per_compute"),
                    ratio,
                    0.0,
                )?;
            }
        }
        if let Some(master) = &self.master {
            at_least(
                "calibration.master.cpu_ms_per_query",
                master.cpu_ms_per_query,
                0.0,
            )?;
            at_least(
                "calibration.master.cpu_ms_per_invocation",
                master.cpu_ms_per_invocation,
                0.0,
            )?;
        }
        for &ms in &self.cold_start_samples_ms {
            at_least("calibration.cold_start_samples_ms", ms, 0.0)?;
        }
        at_least(
            "calibration.cpu_reference_mb",
            f64::from(self.cpu_reference_mb),
            1.0,
        )?;
        at_least("calibration.store.rtt_ms", self.store.rtt_ms, 0.0)?;
        above(
            "calibration.store.bandwidth_mb_per_s",
            self.store.bandwidth_mb_per_s,
            0.0,
        )?;
        at_least("calibration.cold_start_ms", self.cold_start_ms, 0.0)?;
        at_least("calibration.warm_overhead_ms", self.warm_overhead_ms, 0.0)?;
        let l = &self.limits;
        at_least(
            "calibration.limits.account_concurrency",
            f64::from(l.account_concurrency),
            1.0,
        )?;
        at_least(
            "calibration.limits.scale_step",
            f64::from(l.scale_step),
            1.0,
        )?;
        above("calibration.limits.scale_period_s", l.scale_period_s, 0.0)?;
        at_least("calibration.limits.keep_alive_s", l.keep_alive_s, 0.0)?;
        if l.min_memory_mb > l.max_memory_mb {
            return Err(SimError::Config {
                field: "calibration.limits.min_memory_mb".into(),
                reason: format!(
                    "is {} but max_memory_mb is {}",
                    l.min_memory_mb, l.max_memory_mb
                ),
            });
        }
        Ok(())
    }
}

/// The serverless deployment's fixed parts, named as in the price list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerlessConfig {
    /// The functions' architecture.
    pub arch: Arch,
    /// Instance type of the master node ([`Pricing::instances`] key).
    pub master_instance: String,
    /// ElastiCache node type ([`Pricing::instances`] key).
    pub cache_node: String,
    /// Number of cache nodes; 0 for a deployment whose values all travel inline (a query
    /// that would move bytes through the store is then refused).
    pub cache_nodes: u32,
    /// Fraction of store traffic that crosses Availability Zones (billed).
    pub cross_az_fraction: f64,
    /// What one cache node can move and serve; the keys spread over `cache_nodes`.
    pub store_node: StoreNodeCapacity,
    /// The master nodes and the CPU each query and invocation costs them.
    pub master: MasterCapacity,
    /// When every function runs on one machine (`seqless platform`), the cores they
    /// share: their compute then queues for these as well. `None` on Lambda, where each
    /// environment brings its own CPU share.
    pub host_cores: Option<u32>,
    /// With `host_cores`: the CPU each query costs the machine's other processes, ms (the
    /// platform's router, the store's server, a load client), measured beside the
    /// calibration. It takes the cores without delaying the query that caused it, whose
    /// calibrated I/O and overhead already hold that work's latency.
    pub host_other_cpu_ms_per_query: f64,
    /// Cross-query batching in the functions.
    pub batching: StageBatching,
}

/// Cross-query batching in the functions (`seqless serve --mode serverless --batch-max N
/// --batch-wait-ms MS`): a stage joins the oldest open batch of its function that holds
/// no stage of its query, and the batch is invoked once when it holds a stage of every
/// query in flight, when it is full, or when its wait is over. The invocation runs its
/// stages one after another, each with its own I/O and compute, and bills once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StageBatching {
    /// The most stages in one invocation; 1 turns batching off.
    pub max: u32,
    /// The longest a stage waits for company, ms.
    pub wait_ms: f64,
}

impl Default for StageBatching {
    /// Off, with `serve`'s default wait.
    fn default() -> Self {
        StageBatching {
            max: 1,
            wait_ms: 2.0,
        }
    }
}

impl Default for ServerlessConfig {
    /// The paper's deployment: its master price and one cache.m5.large-priced node.
    fn default() -> Self {
        ServerlessConfig {
            arch: Arch::X86_64,
            master_instance: "paper-master".into(),
            cache_node: "cache.m5.large".into(),
            cache_nodes: 1,
            cross_az_fraction: 0.0,
            store_node: StoreNodeCapacity::default(),
            master: MasterCapacity::default(),
            host_cores: None,
            host_other_cpu_ms_per_query: 0.0,
            batching: StageBatching::default(),
        }
    }
}

/// One cache node's limits, shared by every function that reads or writes through it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreNodeCapacity {
    /// Sustained network bandwidth, MB/s (10^6 bytes per second), both directions.
    pub bandwidth_mb_per_s: f64,
    /// Requests served per second (Redis runs commands on one thread).
    pub requests_per_s: f64,
}

impl Default for StoreNodeCapacity {
    /// cache.m5.large: EC2 lists the m5.large's network as "up to 10 Gbit/s", a burst
    /// over a baseline of 0.75 Gbit/s, and the baseline is what sustained load gets
    /// (93.75 MB/s). Redis serves on the order of 100,000 simple requests per second
    /// on one core, the order `redis-benchmark` reports for GET and SET.
    fn default() -> Self {
        StoreNodeCapacity {
            bandwidth_mb_per_s: 93.75,
            requests_per_s: 100_000.0,
        }
    }
}

/// The master nodes behind a load balancer: each query's planning and upload, and
/// each invocation's event and result, take master CPU.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MasterCapacity {
    /// Masters behind the load balancer, each priced as `master_instance`.
    pub count: u32,
    /// Cores per master.
    pub cores: u32,
    /// CPU per query (planning, tokenising, uploading the input), ms, where the
    /// calibration has no measured [`Calibration::master`].
    pub cpu_ms_per_query: f64,
    /// CPU per invocation (building the event, reading the result), ms, where the
    /// calibration has no measured [`Calibration::master`].
    pub cpu_ms_per_invocation: f64,
    /// Queries one master holds at once; one more is refused (503 with Retry-After,
    /// which a closed-loop client honours by waiting a second).
    pub max_in_flight: u32,
}

impl Default for MasterCapacity {
    /// One 4-core master (the paper's master is a 4-vCPU instance) admitting 64
    /// queries, `seqless serve`'s `--max-in-flight` default. The CPU costs are
    /// placeholders of the right order for a calibration that did not measure them.
    fn default() -> Self {
        MasterCapacity {
            count: 1,
            cores: 4,
            cpu_ms_per_query: 0.5,
            cpu_ms_per_invocation: 0.1,
            max_in_flight: 64,
        }
    }
}

/// A fleet of always-on servers, each serving a FIFO queue in batches, the
/// way a GPU inference server does. Batch time is
/// `batch_fixed_ms + per_query_ms × n + per_byte_ms × Σ lengths`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct InstanceConfig {
    /// Instance type ([`Pricing::instances`] key).
    pub instance_type: String,
    /// Number of instances.
    pub count: u32,
    /// Largest batch an instance takes from the queue at once.
    pub max_batch: u32,
    /// Fixed time per batch (kernel launches, transfers), ms.
    pub batch_fixed_ms: f64,
    /// Time per query in a batch, ms.
    pub per_query_ms: f64,
    /// Time per input byte, ms.
    pub per_byte_ms: f64,
    /// Where the service times come from, for reports and plot titles.
    pub basis: String,
}

impl Default for InstanceConfig {
    /// One p2.xlarge that serves a full batch of 32 short queries in 32 ms: 1,000
    /// queries/s, the capacity the paper's "1.8 M queries per hour at 50% utilisation"
    /// implies. It is the paper's figure, not a derivation: runs over a model use
    /// [`crate::InstanceBaseline`] instead, and this stands only where there is no model.
    fn default() -> Self {
        InstanceConfig {
            instance_type: "p2.xlarge".into(),
            count: 1,
            max_batch: 32,
            batch_fixed_ms: 16.0,
            per_query_ms: 0.5,
            per_byte_ms: 0.00002,
            basis: "assumed: the paper's 1,000 q/s for one p2.xlarge".into(),
        }
    }
}

impl InstanceConfig {
    /// Time to serve one batch, ms; the single service model both the
    /// simulation and the capacity figure use.
    pub fn batch_ms(&self, queries: usize, total_bytes: f64) -> f64 {
        self.batch_fixed_ms + self.per_query_ms * queries as f64 + self.per_byte_ms * total_bytes
    }

    /// Saturation throughput of the whole fleet for queries of `mean_len` bytes:
    /// every instance busy with full batches.
    pub fn capacity_qps(&self, mean_len: f64) -> f64 {
        let b = self.max_batch as usize;
        let batch_s = self.batch_ms(b, mean_len * b as f64) / 1000.0;
        f64::from(self.count) * b as f64 / batch_s
    }
}

/// One simulation run: the trace, both deployments and the prices. Plain data
/// (JSON) so a run is reproducible from its report, which embeds it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SimConfig {
    /// Seed of every random choice; same seed, same report.
    pub seed: u64,
    /// Length of the arrival window, seconds.
    pub duration_s: f64,
    /// Extra time after the window for queries in flight to finish, seconds.
    pub drain_s: f64,
    /// Width of the timeline's buckets, seconds.
    pub timeline_bucket_s: f64,
    /// When queries arrive.
    pub arrivals: ArrivalProcess,
    /// How long they are.
    pub lengths: LengthDistribution,
    /// Longest input accepted; sampled lengths are clamped to it.
    pub max_len: usize,
    /// Costs of the real system.
    pub calibration: Calibration,
    /// The serverless deployment.
    pub serverless: ServerlessConfig,
    /// The instance deployment.
    pub instances: InstanceConfig,
    /// Prices.
    pub pricing: Pricing,
}

impl Default for SimConfig {
    /// A minute of Poisson traffic at 100 queries/s with log-normal lengths
    /// around 4 KiB, against the default calibration, the paper's serverless
    /// deployment and one p2.xlarge.
    fn default() -> Self {
        SimConfig {
            seed: 42,
            duration_s: 60.0,
            drain_s: 60.0,
            timeline_bucket_s: 1.0,
            arrivals: ArrivalProcess::Poisson { rate_qps: 100.0 },
            lengths: LengthDistribution::LogNormal {
                median_bytes: 4096.0,
                sigma: 1.0,
            },
            max_len: 1 << 20,
            calibration: Calibration::default(),
            serverless: ServerlessConfig::default(),
            instances: InstanceConfig::default(),
            pricing: Pricing::default(),
        }
    }
}

impl SimConfig {
    /// Parses a configuration from JSON text. Missing fields take their
    /// defaults; unknown fields are refused by name.
    pub fn from_json_str(text: &str) -> Result<Self, SimError> {
        parse_validated(text)
    }

    /// Reads a configuration file; errors name the file, line and key.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, SimError> {
        load_validated(path.as_ref())
    }

    /// Checks every range before a run, so a bad value is reported by name
    /// instead of producing a silent nonsense result.
    pub fn validate(&self) -> Result<(), SimError> {
        Validate::validate(self)
    }
}

impl Validate for SimConfig {
    fn validate(&self) -> Result<(), SimError> {
        above("duration_s", self.duration_s, 0.0)?;
        at_least("drain_s", self.drain_s, 0.0)?;
        above("timeline_bucket_s", self.timeline_bucket_s, 0.0)?;
        at_least("max_len", self.max_len as f64, 1.0)?;
        self.arrivals.validate()?;
        self.lengths.validate()?;
        self.calibration.validate()?;
        at_least(
            "serverless.cross_az_fraction",
            self.serverless.cross_az_fraction,
            0.0,
        )?;
        if self.serverless.cross_az_fraction > 1.0 {
            return Err(SimError::Config {
                field: "serverless.cross_az_fraction".into(),
                reason: format!(
                    "is {}; expected at most 1",
                    self.serverless.cross_az_fraction
                ),
            });
        }
        let node = &self.serverless.store_node;
        above(
            "serverless.store_node.bandwidth_mb_per_s",
            node.bandwidth_mb_per_s,
            0.0,
        )?;
        above(
            "serverless.store_node.requests_per_s",
            node.requests_per_s,
            0.0,
        )?;
        let master = &self.serverless.master;
        at_least("serverless.master.count", f64::from(master.count), 1.0)?;
        if let Some(cores) = self.serverless.host_cores {
            at_least("serverless.host_cores", f64::from(cores), 1.0)?;
        }
        let other = self.serverless.host_other_cpu_ms_per_query;
        at_least("serverless.host_other_cpu_ms_per_query", other, 0.0)?;
        if other > 0.0 && self.serverless.host_cores.is_none() {
            return Err(SimError::Config {
                field: "serverless.host_other_cpu_ms_per_query".into(),
                reason: "needs serverless.host_cores, the machine those processes share".into(),
            });
        }
        let batching = &self.serverless.batching;
        at_least("serverless.batching.max", f64::from(batching.max), 1.0)?;
        if batching.max > 64 {
            return Err(SimError::Config {
                field: "serverless.batching.max".into(),
                reason: format!(
                    "is {}; one invocation carries at most 64 stages",
                    batching.max
                ),
            });
        }
        at_least("serverless.batching.wait_ms", batching.wait_ms, 0.0)?;
        at_least("serverless.master.cores", f64::from(master.cores), 1.0)?;
        at_least(
            "serverless.master.max_in_flight",
            f64::from(master.max_in_flight),
            1.0,
        )?;
        at_least(
            "serverless.master.cpu_ms_per_query",
            master.cpu_ms_per_query,
            0.0,
        )?;
        at_least(
            "serverless.master.cpu_ms_per_invocation",
            master.cpu_ms_per_invocation,
            0.0,
        )?;
        let i = &self.instances;
        at_least("instances.count", f64::from(i.count), 1.0)?;
        at_least("instances.max_batch", f64::from(i.max_batch), 1.0)?;
        at_least("instances.batch_fixed_ms", i.batch_fixed_ms, 0.0)?;
        at_least("instances.per_query_ms", i.per_query_ms, 0.0)?;
        at_least("instances.per_byte_ms", i.per_byte_ms, 0.0)?;
        if i.batch_ms(1, 1.0) <= 0.0 {
            return Err(SimError::Config {
                field: "instances".into(),
                reason:
                    "serves a query in zero time; set batch_fixed_ms, per_query_ms or per_byte_ms"
                        .into(),
            });
        }
        // Unknown instance names fail here, before a long run, not after it.
        self.pricing.hourly(&self.serverless.master_instance)?;
        self.pricing.hourly(&self.serverless.cache_node)?;
        self.pricing.hourly(&i.instance_type)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stage_fit_recovers_a_line_and_stays_non_negative() {
        let line: Vec<(usize, f64)> = [100, 1000, 10_000]
            .iter()
            .map(|&r| (r, 2.0 + 0.01 * r as f64))
            .collect();
        let fit = StageCalibration::fit(&line).unwrap();
        assert!((fit.a_ms - 2.0).abs() < 1e-9 && (fit.b_ms_per_row - 0.01).abs() < 1e-12);
        // Samples on the line spread by a factor of 1; off it, by measured over fitted.
        assert!(
            fit.spread.iter().all(|f| (f - 1.0).abs() < 1e-9),
            "{:?}",
            fit.spread
        );
        // Off it, by each sample over its row count's (nearest-rank) median.
        let noisy = StageCalibration::fit(&[(10, 1.0), (10, 3.0)]).unwrap();
        assert_eq!(noisy.medians, [[10.0, 1.0]]);
        assert_eq!(noisy.spread, vec![1.0, 3.0]);
        // Falling times are noise: a flat mean, never a negative slope.
        let falling = StageCalibration::fit(&[(10, 5.0), (20, 3.0)]).unwrap();
        assert_eq!((falling.a_ms, falling.b_ms_per_row), (4.0, 0.0));
        // A line that would cross zero above the origin is refit through it.
        let steep = StageCalibration::fit(&[(10, 0.5), (20, 3.0)]).unwrap();
        assert_eq!(steep.a_ms, 0.0);
        assert!(steep.b_ms_per_row > 0.0);
        let single = StageCalibration::fit(&[(64, 1.0), (64, 3.0)]).unwrap();
        assert_eq!((single.a_ms, single.b_ms_per_row), (2.0, 0.0));
        assert!(StageCalibration::fit(&[]).is_none());
    }

    #[test]
    fn compute_passes_through_each_row_counts_median() {
        // A bent curve: 6 ms at 100 rows, 22 at 1,000, 250 at 10,000.
        let samples = [
            (100, 5.0),
            (100, 6.0),
            (100, 7.0),
            (1000, 20.0),
            (1000, 22.0),
            (1000, 24.0),
            (10_000, 250.0),
        ];
        let fit = StageCalibration::fit(&samples).unwrap();
        assert_eq!(
            fit.medians,
            [[100.0, 6.0], [1000.0, 22.0], [10_000.0, 250.0]]
        );
        assert_eq!(fit.compute_ms(100), 6.0);
        assert_eq!(fit.compute_ms(550), 14.0);
        assert_eq!(fit.compute_ms(10_000), 250.0);
        // Beyond the ends, along the fitted slope.
        let b = fit.b_ms_per_row;
        assert!((fit.compute_ms(20_000) - (250.0 + b * 10_000.0)).abs() < 1e-9);
        assert!((fit.compute_ms(50) - (6.0 - b * 50.0).max(0.0)).abs() < 1e-9);
        // The line misses the short end, which the medians do not.
        assert!((fit.a_ms + b * 100.0 - 6.0).abs() > 1.0, "{fit:?}");
        // Without medians, the line.
        let line = StageCalibration {
            medians: Vec::new(),
            ..fit.clone()
        };
        assert_eq!(line.compute_ms(550), fit.a_ms + b * 550.0);
    }

    #[test]
    fn default_config_round_trips_through_json() {
        let c = SimConfig::default();
        c.validate().unwrap();
        let json = serde_json::to_string(&c).unwrap();
        assert_eq!(SimConfig::from_json_str(&json).unwrap(), c);
        // Partial JSON takes defaults for the rest.
        let partial =
            SimConfig::from_json_str(r#"{"seed": 7, "instances": {"count": 3}}"#).unwrap();
        assert_eq!(partial.seed, 7);
        assert_eq!(partial.instances.count, 3);
        assert_eq!(partial.instances.max_batch, 32);
    }

    #[test]
    fn unknown_fields_and_bad_values_are_named() {
        let config = |json: &str| SimConfig::from_json_str(json).map(drop);
        let calibration = |json: &str| Calibration::from_json_str(json).map(drop);
        let cases: [(Result<(), SimError>, &[&str]); 11] = [
            (
                config("{\n  \"seed\": 1,\n  \"sede\": 2\n}"),
                &["sede", "line 3"],
            ),
            (
                config(r#"{"calibration": {"limits": {"scale_period_s": 0}}}"#),
                &["calibration.limits.scale_period_s"],
            ),
            (
                config(r#"{"instances": {"instance_type": "p9"}}"#),
                &["`p9`"],
            ),
            (
                calibration(r#"{"stages": {"conv": {"a_ms": -1, "b_ms_per_row": 0}}}"#),
                &["calibration.stages.conv.a_ms"],
            ),
            (
                calibration(
                    r#"{"stages": {"conv": {"a_ms": 1, "b_ms_per_row": 0, "cpu_per_compute": 0}}}"#,
                ),
                &["calibration.stages.conv.cpu_per_compute"],
            ),
            (
                calibration(
                    r#"{"stages": {"conv": {"a_ms": 1, "b_ms_per_row": 0, "medians": [[10, 1], [5, 2]]}}}"#,
                ),
                &["calibration.stages.conv.medians", "ascending"],
            ),
            (
                calibration(r#"{"master": {"cpu_ms_per_query": -1, "cpu_ms_per_invocation": 0}}"#),
                &["calibration.master.cpu_ms_per_query"],
            ),
            (
                config(r#"{"serverless": {"host_other_cpu_ms_per_query": 1}}"#),
                &["serverless.host_other_cpu_ms_per_query", "host_cores"],
            ),
            (
                config(r#"{"serverless": {"batching": {"max": 65}}}"#),
                &["serverless.batching.max", "64"],
            ),
            (
                config(r#"{"serverless": {"batching": {"max": 4, "wait_ms": -1}}}"#),
                &["serverless.batching.wait_ms"],
            ),
            (
                config(r#"{"serverless": {"batching": {"size": 4}}}"#),
                &["size"],
            ),
        ];
        for (result, named) in cases {
            let err = result.unwrap_err().to_string();
            assert!(
                named.iter().all(|part| err.contains(part)),
                "{err} does not name {named:?}"
            );
        }
    }

    #[test]
    fn default_instance_serves_a_thousand_short_queries_a_second() {
        let i = InstanceConfig::default();
        assert!((i.capacity_qps(0.0) - 1000.0).abs() < 1e-9);
        assert!(i.capacity_qps(4096.0) < 1000.0);
    }
}
