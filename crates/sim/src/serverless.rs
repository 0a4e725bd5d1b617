//! The serverless deployment: a master that runs each query's phases on
//! Lambda-style functions with warm pools, cold starts, keep-alive, an account
//! concurrency limit and a per-function scaling rate.

use std::collections::{BTreeMap, VecDeque};
use std::rc::Rc;
use std::time::Duration;

use seqless_cost::billed_ms;
use serde::Serialize;

use crate::config::{Calibration, MasterCpu};
use crate::events::EventQueue;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::record::{DeploymentStats, Recorder};
use crate::resources::{Pool, ResourceUse};
use crate::shape::ShapeModel;
use crate::workload::{LengthSampler, Workload, us};
use crate::{SimConfig, SimError};

/// A function's bill over the run, keyed by (kind, memory) as AWS would see
/// separate functions.
pub(crate) struct FunctionUsage {
    pub kind: String,
    pub memory_mb: u32,
    pub invocations: u64,
    pub billed_ms: u64,
    pub cold_starts: u64,
}

/// What the serverless deployment did over a run, counted as it runs and reported as is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ServerlessCounts {
    /// Function invocations started.
    pub invocations: u64,
    /// Invocations that needed a new environment.
    pub cold_starts: u64,
    /// Invocations that had to wait for concurrency or scaling (see docs/simulator.md:
    /// they wait in FIFO order, no retry delay).
    pub throttled: u64,
    /// Bytes read and written through the store.
    pub store_bytes: u64,
}

/// What the serverless run measured, before pricing.
pub(crate) struct ServerlessOutcome {
    pub stats: DeploymentStats,
    pub functions: Vec<FunctionUsage>,
    pub counts: ServerlessCounts,
    pub init_billed_ms: u64,
    pub resources: Vec<ResourceUse>,
}

/// An invocation with its timing resolved from the calibration.
struct Timed {
    func: usize,
    /// The invoke overhead the caller sees and AWS does not bill, µs.
    overhead_us: u64,
    /// Store I/O on an uncontended store, µs.
    io_us: u64,
    /// Compute at the fitted time, µs, before its drawn factor.
    compute_us: f64,
    /// The stage's measured factors over its fitted time; empty for none.
    spread: Rc<[f64]>,
    /// CPU the function process spends per µs of compute
    /// ([`crate::StageCalibration::cpu_per_compute`]).
    cpu_per_compute: f64,
    bytes: u64,
    /// Store requests: one per read and one per write.
    requests: u64,
    /// [`crate::Invocation::chain`], and whether this is the chain's last invocation.
    chain: Option<(usize, bool)>,
}

type Prepared = Vec<Vec<Timed>>;

/// A stage of a query's current phase: (query, index in the phase).
type Member = (usize, usize);

/// An invocation waiting for its function: one stage, or a batch of several queries'.
struct Waiting {
    seq: u64,
    members: Vec<Member>,
    since: u64,
}

/// A batch still taking stages ([`crate::StageBatching`]).
struct OpenBatch {
    id: u64,
    members: Vec<Member>,
}

struct Function {
    usage: FunctionUsage,
    /// Idle environments by the time they went idle, oldest first.
    idle: VecDeque<u64>,
    /// Scaling tokens: environments this function may still create now.
    tokens: f64,
    tokens_at: u64,
    refill_pending: bool,
    waiting: VecDeque<Waiting>,
    /// Batches still taking stages, oldest first.
    open: Vec<OpenBatch>,
}

struct Query {
    shape: Rc<Prepared>,
    phase: usize,
    remaining: usize,
    /// Chains running on an instance: the instance's function and when its billing began.
    chains: BTreeMap<usize, (usize, u64)>,
}

enum Event {
    Arrival,
    /// The master has sent the invocation: it waits for its function from now.
    Sent {
        query: usize,
        index: usize,
    },
    Done {
        func: usize,
        members: Vec<Member>,
    },
    /// A batch's wait is over: it goes to its function if it has not already.
    BatchDue {
        func: usize,
        id: u64,
    },
    /// A later invocation of a chain starts on the instance that holds it.
    Resume {
        query: usize,
        index: usize,
    },
    Refill {
        func: usize,
    },
}

struct Serverless<'a> {
    calibration: &'a Calibration,
    shape_model: &'a dyn ShapeModel,
    workload: &'a Workload,
    funcs: Vec<Function>,
    func_ids: BTreeMap<(String, u32), usize>,
    shapes: BTreeMap<usize, Rc<Prepared>>,
    queries: Vec<Query>,
    recorder: Recorder,
    /// Executions in progress, account-wide: what the concurrency limit caps.
    busy: u32,
    seq: u64,
    cold_us: u64,
    keep_alive_us: u64,
    tokens_per_us: f64,
    counts: ServerlessCounts,
    /// [`crate::ServerlessConfig::cache_nodes`]; 0 for no store.
    cache_nodes: u32,
    /// The cache nodes' network, one server per node.
    store_network: Pool,
    /// The cache nodes' request processing, one server per node.
    store_requests: Pool,
    /// The masters' cores.
    master_cpu: Pool,
    /// The cores every function shares, when they run on one machine; the master runs
    /// there too then, and `master_cpu` is not used.
    host_cpu: Option<Pool>,
    /// Service time of one store request on a node, µs.
    request_us: u64,
    /// Store bytes one node moves per µs.
    node_bytes_per_us: f64,
    master_query_us: u64,
    master_invocation_us: u64,
    /// [`crate::ServerlessConfig::host_other_cpu_ms_per_query`], µs.
    host_other_us: u64,
    /// Draws of service-time factors and cold starts, seeded from the run's seed.
    rng: StdRng,
    /// Measured cold starts, µs; empty for the fixed `cold_us`.
    cold_samples_us: Vec<u64>,
    /// Queries admitted and not yet answered, over all masters.
    admitted: u32,
    /// [`crate::StageBatching::max`]; 1 for no batching.
    batch_max: u32,
    /// [`crate::StageBatching::wait_ms`], µs.
    batch_wait_us: u64,
    /// The most the masters admit at once.
    admission_limit: u32,
}

/// Mixed into the run's seed for service-time draws, so they are a stream of their own
/// and adding them leaves the arrival trace of a seed unchanged.
const SERVICE_TIME_STREAM: u64 = 0x5e7_1ce5;

/// A uniformly drawn element of `samples`, an empirical distribution; `None` if empty.
fn draw<T: Copy>(samples: &[T], rng: &mut StdRng) -> Option<T> {
    (!samples.is_empty()).then(|| samples[rng.random_range(0..samples.len())])
}

/// How long a refused client waits before it asks again (the Retry-After a full
/// `seqless serve` sends).
const RETRY_AFTER_US: u64 = 1_000_000;

impl Function {
    /// Drops environments idle for the keep-alive time or longer, then adds
    /// the tokens earned since the last look.
    fn advance(&mut self, t: u64, keep_alive_us: u64, tokens_per_us: f64, burst: f64) {
        while self
            .idle
            .front()
            .is_some_and(|&since| since + keep_alive_us <= t)
        {
            self.idle.pop_front();
        }
        self.tokens = (self.tokens + (t - self.tokens_at) as f64 * tokens_per_us).min(burst);
        self.tokens_at = t;
    }

    fn can_start(&self) -> bool {
        !self.idle.is_empty() || self.tokens >= 1.0
    }
}

impl<'a> Serverless<'a> {
    fn burst(&self) -> f64 {
        f64::from(self.calibration.limits.scale_step)
    }

    fn func_id(&mut self, kind: &str, memory_mb: u32) -> usize {
        let burst = self.burst();
        let next = self.funcs.len();
        let id = *self
            .func_ids
            .entry((kind.to_string(), memory_mb))
            .or_insert(next);
        if id == next {
            self.funcs.push(Function {
                usage: FunctionUsage {
                    kind: kind.to_string(),
                    memory_mb,
                    invocations: 0,
                    billed_ms: 0,
                    cold_starts: 0,
                },
                idle: VecDeque::new(),
                tokens: burst,
                tokens_at: 0,
                refill_pending: false,
                waiting: VecDeque::new(),
                open: Vec::new(),
            });
        }
        id
    }

    /// The timed shape for a length, from the shape model once per length.
    fn prepare(&mut self, len: usize) -> Result<Rc<Prepared>, SimError> {
        if let Some(p) = self.shapes.get(&len) {
            return Ok(Rc::clone(p));
        }
        let refuse = |reason: String| SimError::Shape { len, reason };
        let shape = self.shape_model.shape(len).map_err(|e| refuse(e.0))?;
        if shape.phases.is_empty() {
            return Err(refuse("the shape has no phases".into()));
        }
        let c = self.calibration;
        let chain_ends = shape.chain_ends();
        let mut prepared = Vec::with_capacity(shape.phases.len());
        for (p, phase) in shape.phases.iter().enumerate() {
            if phase.invocations.is_empty() {
                return Err(refuse(format!("phase {p} has no invocations")));
            }
            let mut timed = Vec::with_capacity(phase.invocations.len());
            for inv in &phase.invocations {
                if self.cache_nodes == 0 && inv.bytes_in + inv.bytes_out > 0 {
                    return Err(refuse(format!(
                        "phase {p}: a {} stage moves {} bytes through the store, and serverless.cache_nodes is 0 (no store); give a cache node, or values that all travel inline (--transfer inline)",
                        inv.kind,
                        inv.bytes_in + inv.bytes_out
                    )));
                }
                let times = c
                    .times(inv)
                    .map_err(|e| refuse(format!("phase {p}: {e}")))?;
                let stage = c.stages.get(&inv.kind);
                let spread = stage.map(|s| s.spread.as_slice()).unwrap_or_default();
                timed.push(Timed {
                    func: self.func_id(&inv.kind, inv.memory_mb),
                    overhead_us: us(times.overhead_ms / 1000.0),
                    io_us: us(times.io_ms / 1000.0),
                    compute_us: times.compute_ms * 1000.0,
                    spread: spread.into(),
                    cpu_per_compute: stage.and_then(|s| s.cpu_per_compute).unwrap_or(1.0),
                    bytes: inv.bytes_in + inv.bytes_out,
                    requests: u64::from(inv.bytes_in > 0) + u64::from(inv.bytes_out > 0),
                    chain: inv.chain.map(|c| (c, chain_ends.get(&c) == Some(&p))),
                });
            }
            prepared.push(timed);
        }
        let prepared = Rc::new(prepared);
        self.shapes.insert(len, Rc::clone(&prepared));
        Ok(prepared)
    }

    fn handle(
        &mut self,
        t: u64,
        event: Event,
        events: &mut EventQueue<Event>,
        lengths: &mut LengthSampler<'_>,
    ) -> Result<(), SimError> {
        match event {
            Event::Arrival => {
                let len = lengths.next_len();
                let id = self.recorder.arrive(t, len);
                let shape = self.prepare(len)?;
                if self.admitted >= self.admission_limit {
                    self.recorder.reject(id);
                    self.queries.push(Query {
                        shape,
                        phase: 0,
                        remaining: 0,
                        chains: BTreeMap::new(),
                    });
                    let retry = self.workload.next_after_completion(t + RETRY_AFTER_US);
                    if let Some(next) = retry {
                        events.push(next, Event::Arrival);
                    }
                    return Ok(());
                }
                self.admitted += 1;
                self.queries.push(Query {
                    shape,
                    phase: 0,
                    remaining: 0,
                    chains: BTreeMap::new(),
                });
                if let Some(host) = self.host_cpu.as_mut() {
                    host.reserve(t, self.host_other_us);
                }
                let planned = master_cores(&mut self.host_cpu, &mut self.master_cpu)
                    .reserve(t, self.master_query_us);
                self.start_phase(id, planned, events);
            }
            Event::Sent { query, index } => {
                let q = &self.queries[query];
                let inv = &q.shape[q.phase][index];
                let func = inv.func;
                if self.batch_max > 1 && inv.chain.is_none() {
                    self.join_batch(func, (query, index), t, events);
                } else {
                    self.enqueue(func, vec![(query, index)], t);
                }
            }
            Event::BatchDue { func, id } => {
                let open = &mut self.funcs[func].open;
                if let Some(at) = open.iter().position(|b| b.id == id) {
                    let batch = open.remove(at);
                    self.enqueue(func, batch.members, t);
                }
            }
            Event::Resume { query, index } => {
                let q = &self.queries[query];
                let chain = q.shape[q.phase][index].chain.map(|(c, _)| c);
                if let Some(&(func, _)) = chain.and_then(|c| q.chains.get(&c)) {
                    self.execute(func, vec![(query, index)], t, 0, events);
                }
            }
            Event::Done { func, members } => {
                let (query, index) = members[0];
                let q = &self.queries[query];
                // An instance that holds a chain stays busy until the chain's end.
                let held = matches!(q.shape[q.phase][index].chain, Some((_, false)));
                if !held {
                    self.funcs[func].idle.push_back(t);
                    self.busy -= 1;
                    self.recorder.concurrency(t, self.busy);
                }
                for (query, _) in members {
                    let q = &mut self.queries[query];
                    q.remaining -= 1;
                    if q.remaining == 0 {
                        q.phase += 1;
                        if q.phase == q.shape.len() {
                            self.admitted -= 1;
                            self.recorder.complete(query, t);
                            if let Some(next) = self.workload.next_after_completion(t) {
                                events.push(next, Event::Arrival);
                            }
                        } else {
                            self.start_phase(query, t, events);
                        }
                    }
                }
            }
            Event::Refill { func } => self.funcs[func].refill_pending = false,
        }
        self.drain(t, events);
        Ok(())
    }

    /// Sends every invocation of the query's current phase, one after another on
    /// the master's CPU from `t`; each then waits for its function, and `drain` starts
    /// what capacity allows.
    fn start_phase(&mut self, query: usize, t: u64, events: &mut EventQueue<Event>) {
        let q = &mut self.queries[query];
        let width = q.shape[q.phase].len();
        q.remaining = width;
        let mut sent = t;
        for index in 0..width {
            let chain = q.shape[q.phase][index].chain.map(|(c, _)| c);
            if chain.is_some_and(|c| q.chains.contains_key(&c)) {
                // Its instance is waiting for this phase; the master sends nothing.
                events.push(t, Event::Resume { query, index });
                continue;
            }
            sent = master_cores(&mut self.host_cpu, &mut self.master_cpu)
                .reserve(sent, self.master_invocation_us);
            events.push(sent, Event::Sent { query, index });
        }
    }

    /// Queues an invocation of `func` for `members` from `t`.
    fn enqueue(&mut self, func: usize, members: Vec<Member>, t: u64) {
        self.seq += 1;
        self.funcs[func].waiting.push_back(Waiting {
            seq: self.seq,
            members,
            since: t,
        });
    }

    /// Adds a stage to the oldest open batch of `func` without a stage of its query, or
    /// opens one due after the batching wait; queues the batch once it holds a stage of
    /// every query in flight or is full.
    fn join_batch(&mut self, func: usize, member: Member, t: u64, events: &mut EventQueue<Event>) {
        let complete = self.admitted.clamp(1, self.batch_max) as usize;
        let open = &mut self.funcs[func].open;
        let at = match open
            .iter()
            .position(|b| b.members.iter().all(|&(q, _)| q != member.0))
        {
            Some(at) => at,
            None => {
                self.seq += 1;
                let id = self.seq;
                open.push(OpenBatch {
                    id,
                    members: Vec::new(),
                });
                events.push(t + self.batch_wait_us, Event::BatchDue { func, id });
                open.len() - 1
            }
        };
        open[at].members.push(member);
        if open[at].members.len() >= complete {
            let batch = open.remove(at);
            self.enqueue(func, batch.members, t);
        }
    }

    /// Starts waiting invocations, oldest first across functions (FIFO within
    /// a function), while the account has concurrency and the function has a
    /// warm environment or a scaling token. What cannot start waits; it is
    /// retried when an execution ends or a token arrives.
    fn drain(&mut self, t: u64, events: &mut EventQueue<Event>) {
        let (keep_alive_us, rate, burst) = (self.keep_alive_us, self.tokens_per_us, self.burst());
        for f in &mut self.funcs {
            f.advance(t, keep_alive_us, rate, burst);
        }
        let limit = self.calibration.limits.account_concurrency;
        while self.busy < limit {
            let next = self
                .funcs
                .iter()
                .enumerate()
                .filter(|(_, f)| f.can_start())
                .filter_map(|(i, f)| f.waiting.front().map(|w| (w.seq, i)))
                .min();
            let Some((_, f)) = next else { break };
            let Some(w) = self.funcs[f].waiting.pop_front() else {
                break;
            };
            self.dispatch(f, w, t, events);
        }
        if self.busy >= limit {
            return; // an execution ending will call drain again
        }
        for (i, f) in self.funcs.iter_mut().enumerate() {
            if !f.waiting.is_empty() && !f.can_start() && !f.refill_pending {
                let wait = ((1.0 - f.tokens) / rate).ceil().max(1.0) as u64;
                f.refill_pending = true;
                events.push(t + wait, Event::Refill { func: i });
            }
        }
    }

    fn dispatch(&mut self, f: usize, w: Waiting, t: u64, events: &mut EventQueue<Event>) {
        let cold = self.funcs[f].idle.pop_back().is_none();
        if cold {
            let func = &mut self.funcs[f];
            func.tokens -= 1.0;
            func.usage.cold_starts += 1;
            self.counts.cold_starts += 1;
            for &(query, _) in &w.members {
                self.recorder.mark_cold(query);
            }
        }
        let start = t + if cold {
            draw(&self.cold_samples_us, &mut self.rng).unwrap_or(self.cold_us)
        } else {
            0
        };
        self.busy += 1;
        self.recorder.concurrency(t, self.busy);
        if t > w.since {
            self.counts.throttled += 1;
        }
        self.funcs[f].usage.invocations += 1;
        self.counts.invocations += 1;
        let (query, index) = w.members[0];
        let q = &mut self.queries[query];
        let inv = &q.shape[q.phase][index];
        let overhead_us = inv.overhead_us;
        if let Some((c, _)) = inv.chain {
            q.chains.insert(c, (f, start));
        }
        self.execute(f, w.members, start, overhead_us, events);
    }

    /// Runs an invocation of function `f` from `start`: its stages (several queries' in a
    /// batch) one after another, and bills it: on its own, or as part of its chain (a
    /// single stage), which is billed whole at its last invocation.
    fn execute(
        &mut self,
        f: usize,
        members: Vec<Member>,
        start: u64,
        overhead_us: u64,
        events: &mut EventQueue<Event>,
    ) {
        let mut end = start;
        for &(query, index) in &members {
            end = self.run_stage(query, index, end);
        }
        let (query, index) = members[0];
        let chain = self.queries[query].shape[self.queries[query].phase][index].chain;
        let billed_from = match chain {
            None => Some(start),
            Some((c, true)) => self.queries[query].chains.remove(&c).map(|(_, from)| from),
            Some((_, false)) => None,
        };
        if let Some(from) = billed_from {
            self.funcs[f].usage.billed_ms += billed_ms(Duration::from_micros(end - from));
        }
        events.push(end + overhead_us, Event::Done { func: f, members });
    }

    /// Runs stage `index` of the query's current phase from `start`: its store I/O and
    /// compute, with what it waits for the store and for the host's cores. Returns when it
    /// ends.
    fn run_stage(&mut self, query: usize, index: usize, start: u64) -> u64 {
        let shape = Rc::clone(&self.queries[query].shape);
        let inv = &shape[self.queries[query].phase][index];
        let factor = draw(&inv.spread, &mut self.rng).unwrap_or(1.0);
        let compute_us = (inv.compute_us * factor).round() as u64;
        let handler_us = inv.io_us + compute_us;
        // The handler's reads and writes share the cache nodes with every other
        // function: what it waits for them is added to its time, and billed.
        let wait_us = if inv.bytes == 0 {
            0
        } else {
            let moving_us = (inv.bytes as f64 / self.node_bytes_per_us).ceil() as u64;
            let requests_us = inv.requests * self.request_us;
            let moved = self.store_network.reserve(start, moving_us);
            let served = self.store_requests.reserve(start, requests_us);
            (moved - start - moving_us).max(served - start - requests_us)
        };
        // Functions on one machine (a local platform) also wait for its cores, which
        // carry all the CPU the process spends, not only the compute's wall time.
        let wait_us = wait_us
            + self.host_cpu.as_mut().map_or(0, |cores| {
                let ready = start + inv.io_us + wait_us;
                let cpu_us = (compute_us as f64 * inv.cpu_per_compute).round() as u64;
                cores.reserve(ready, cpu_us) - ready - cpu_us
            });
        self.counts.store_bytes += inv.bytes;
        start + handler_us + wait_us
    }
}

/// The cores the master's work takes: the machine's when the functions share one (a local
/// deployment runs its master beside them), else the masters'.
fn master_cores<'a>(host: &'a mut Option<Pool>, masters: &'a mut Pool) -> &'a mut Pool {
    host.as_mut().unwrap_or(masters)
}

/// Runs the serverless deployment over the workload.
pub(crate) fn simulate(
    config: &SimConfig,
    workload: &Workload,
    shape_model: &dyn ShapeModel,
) -> Result<ServerlessOutcome, SimError> {
    let c = &config.calibration;
    let s = &config.serverless;
    let nodes = s.cache_nodes;
    let masters = s.master.count * s.master.cores;
    let master = c.master.unwrap_or(MasterCpu {
        cpu_ms_per_query: s.master.cpu_ms_per_query,
        cpu_ms_per_invocation: s.master.cpu_ms_per_invocation,
    });
    let mut sim = Serverless {
        calibration: c,
        shape_model,
        workload,
        funcs: Vec::new(),
        func_ids: BTreeMap::new(),
        shapes: BTreeMap::new(),
        queries: Vec::new(),
        recorder: Recorder::new(us(config.timeline_bucket_s), workload.window_us),
        busy: 0,
        seq: 0,
        cold_us: us(c.cold_start_ms / 1000.0),
        keep_alive_us: us(c.limits.keep_alive_s),
        tokens_per_us: f64::from(c.limits.scale_step) / (c.limits.scale_period_s * 1e6),
        counts: ServerlessCounts::default(),
        cache_nodes: nodes,
        store_network: Pool::new(
            "store_network",
            nodes,
            format!("{nodes} node(s) x {} MB/s", s.store_node.bandwidth_mb_per_s),
        ),
        store_requests: Pool::new(
            "store_requests",
            nodes,
            format!(
                "{nodes} node(s) x {} requests/s",
                s.store_node.requests_per_s
            ),
        ),
        master_cpu: Pool::new(
            "master_cpu",
            masters,
            format!("{} master(s) x {} cores", s.master.count, s.master.cores),
        ),
        host_cpu: s
            .host_cores
            .map(|n| Pool::new("host_cpu", n, format!("{n} shared core(s)"))),
        request_us: (1e6 / s.store_node.requests_per_s).ceil() as u64,
        node_bytes_per_us: s.store_node.bandwidth_mb_per_s,
        master_query_us: us(master.cpu_ms_per_query / 1000.0),
        master_invocation_us: us(master.cpu_ms_per_invocation / 1000.0),
        host_other_us: us(s.host_other_cpu_ms_per_query / 1000.0),
        rng: StdRng::seed_from_u64(config.seed ^ SERVICE_TIME_STREAM),
        cold_samples_us: c
            .cold_start_samples_ms
            .iter()
            .map(|&ms| us(ms / 1000.0))
            .collect(),
        admitted: 0,
        admission_limit: s.master.count * s.master.max_in_flight,
        batch_max: s.batching.max.max(1),
        batch_wait_us: us(s.batching.wait_ms / 1000.0),
    };
    let mut events = EventQueue::new();
    for t in workload.initial_arrivals() {
        events.push(t, Event::Arrival);
    }
    let end = workload.window_us + us(config.drain_s);
    let mut lengths = workload.length_sampler();
    while let Some((t, event)) = events.pop_until(end) {
        sim.handle(t, event, &mut events, &mut lengths)?;
    }
    let init_billed_ms = if sim.cold_us == 0 {
        0
    } else {
        billed_ms(Duration::from_micros(sim.cold_us))
    };
    Ok(ServerlessOutcome {
        stats: sim.recorder.finish(),
        functions: sim.funcs.into_iter().map(|f| f.usage).collect(),
        counts: sim.counts,
        init_billed_ms,
        resources: [
            &sim.store_network,
            &sim.store_requests,
            sim.host_cpu.as_ref().unwrap_or(&sim.master_cpu),
        ]
        .into_iter()
        .map(|pool| pool.usage(workload.window_us))
        .collect(),
    })
}
