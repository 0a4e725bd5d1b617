//! The platform's records in Prometheus text form (`GET /metrics`): what Lambda would
//! bill per invocation, cold starts split into process start and model load, and how many
//! processes were alive, so concurrency limits and reaping can be checked from outside.

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FunctionLabel {
    function: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    function: String,
    outcome: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FaultLabels {
    function: String,
    fault: String,
}

type Seconds = Family<FunctionLabel, Histogram, fn() -> Histogram>;

fn seconds() -> Histogram {
    // 0.1 ms to ~3 min.
    Histogram::new(exponential_buckets(1e-4, 2.5, 16))
}

/// One invocation's record, as the REPORT line gives it.
pub struct InvocationSample<'a> {
    /// The function.
    pub function: &'a str,
    /// `success`, `error` (the function reported one), `crash` or `timeout`.
    pub outcome: &'a str,
    /// Handler time, seconds.
    pub duration_s: f64,
    /// Billed milliseconds.
    pub billed_ms: u64,
    /// Peak resident memory of the process, MB.
    pub max_memory_mb: u64,
    /// Init duration of a cold invocation (spawn to first `/next`), seconds.
    pub init_s: Option<f64>,
    /// The function's own split of that init, seconds: process start and model load.
    pub init_split_s: Option<(Option<f64>, f64)>,
}

/// Every series the platform exports.
pub struct PlatformMetrics {
    registry: Registry,
    invocations: Family<OutcomeLabels, Counter>,
    throttles: Family<FunctionLabel, Counter>,
    faults: Family<FaultLabels, Counter>,
    cold_starts: Family<FunctionLabel, Counter>,
    billed_ms: Family<FunctionLabel, Counter>,
    duration: Seconds,
    init: Seconds,
    init_process: Seconds,
    init_model: Seconds,
    max_memory_mb: Family<FunctionLabel, Gauge<u64, AtomicU64>>,
    workers: Family<FunctionLabel, Gauge>,
    alive: Gauge,
    alive_peak: Gauge,
    reaped: Counter,
}

impl PlatformMetrics {
    /// Registers every series under the `seqless_platform` prefix.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("seqless_platform");
        let m = Self {
            invocations: Family::default(),
            throttles: Family::default(),
            faults: Family::default(),
            cold_starts: Family::default(),
            billed_ms: Family::default(),
            duration: Family::new_with_constructor(seconds),
            init: Family::new_with_constructor(seconds),
            init_process: Family::new_with_constructor(seconds),
            init_model: Family::new_with_constructor(seconds),
            max_memory_mb: Family::default(),
            workers: Family::default(),
            alive: Gauge::default(),
            alive_peak: Gauge::default(),
            reaped: Counter::default(),
            registry: Registry::default(),
        };
        registry.register(
            "invocations",
            "Invocations by function and outcome (success, error, crash, timeout)",
            m.invocations.clone(),
        );
        registry.register(
            "throttles",
            "Invocations refused with TooManyRequestsException",
            m.throttles.clone(),
        );
        registry.register(
            "faults_injected",
            "Faults injected (--faults), by function and fault (throttle, crash, error, delay)",
            m.faults.clone(),
        );
        registry.register(
            "cold_starts",
            "Function processes started",
            m.cold_starts.clone(),
        );
        registry.register(
            "billed_milliseconds",
            "Billed duration (rounded up to 1 ms per invocation)",
            m.billed_ms.clone(),
        );
        registry.register(
            "duration_seconds",
            "Handler time per invocation",
            m.duration.clone(),
        );
        registry.register(
            "init_duration_seconds",
            "Cold start: spawn to the process's first /next",
            m.init.clone(),
        );
        registry.register(
            "init_process_start_seconds",
            "Cold start, first part: spawn to the function's entry point",
            m.init_process.clone(),
        );
        registry.register(
            "init_model_load_seconds",
            "Cold start, second part: model load and store connection",
            m.init_model.clone(),
        );
        registry.register(
            "max_memory_used_megabytes",
            "Largest peak resident memory (VmHWM) of a process of the function",
            m.max_memory_mb.clone(),
        );
        registry.register(
            "workers",
            "Function processes alive, by function",
            m.workers.clone(),
        );
        registry.register(
            "workers_alive",
            "Function processes alive or starting, all functions",
            m.alive.clone(),
        );
        registry.register(
            "workers_alive_peak",
            "Most function processes alive or starting at once since the platform started",
            m.alive_peak.clone(),
        );
        registry.register(
            "workers_reaped",
            "Function processes stopped after their idle timeout",
            m.reaped.clone(),
        );
        Self { registry, ..m }
    }

    fn label(function: &str) -> FunctionLabel {
        FunctionLabel {
            function: function.to_owned(),
        }
    }

    /// A finished invocation.
    pub fn invocation(&self, r: &InvocationSample<'_>) {
        let label = Self::label(r.function);
        self.invocations
            .get_or_create(&OutcomeLabels {
                function: r.function.to_owned(),
                outcome: r.outcome.to_owned(),
            })
            .inc();
        self.billed_ms.get_or_create(&label).inc_by(r.billed_ms);
        self.duration.get_or_create(&label).observe(r.duration_s);
        let peak = self.max_memory_mb.get_or_create(&label);
        if r.max_memory_mb > peak.get() {
            peak.set(r.max_memory_mb);
        }
        if let Some(init) = r.init_s {
            self.init.get_or_create(&label).observe(init);
        }
        if let Some((process, model)) = r.init_split_s {
            if let Some(process) = process {
                self.init_process.get_or_create(&label).observe(process);
            }
            self.init_model.get_or_create(&label).observe(model);
        }
    }

    /// A throttled invocation.
    pub fn throttled(&self, function: &str) {
        self.throttles.get_or_create(&Self::label(function)).inc();
    }

    /// An injected fault.
    pub fn fault(&self, function: &str, fault: &str) {
        self.faults
            .get_or_create(&FaultLabels {
                function: function.to_owned(),
                fault: fault.to_owned(),
            })
            .inc();
    }

    /// A process started.
    pub fn cold_start(&self, function: &str) {
        let label = Self::label(function);
        self.cold_starts.get_or_create(&label).inc();
        self.workers.get_or_create(&label).inc();
    }

    /// A process exited.
    pub fn worker_exited(&self, function: &str) {
        self.workers.get_or_create(&Self::label(function)).dec();
    }

    /// Processes alive (or starting) now, all functions.
    pub fn workers_alive(&self, alive: usize) {
        let alive = i64::try_from(alive).unwrap_or(i64::MAX);
        self.alive.set(alive);
        if alive > self.alive_peak.get() {
            self.alive_peak.set(alive);
        }
    }

    /// Processes stopped for idling.
    pub fn reaped(&self, n: usize) {
        self.reaped.inc_by(n as u64);
    }

    /// The text exposition.
    pub fn encode(&self) -> Result<String, std::fmt::Error> {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)?;
        Ok(out)
    }
}
