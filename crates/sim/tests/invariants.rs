//! The simulator's invariants, through the public API only.

mod common;

use common::{small_config, temp_dir};
use seqless_sim::{
    ArrivalProcess, InstanceConfig, Invocation, LengthDistribution, LoadLevel, MasterCpu, Phase,
    QueryShape, ShapeModel, SimConfig, SimError, StageBatching, SweepPoint, SyntheticShape, run,
    sweep,
};

/// [`small_config`] with `duration_s` seconds of arrivals.
fn small_config_over(rate_qps: f64, duration_s: f64) -> SimConfig {
    SimConfig {
        duration_s,
        ..small_config(rate_qps)
    }
}

#[test]
fn no_query_is_lost() {
    // Overloaded and with no drain, so both deployments end with work in flight.
    let mut config = small_config(300.0);
    config.drain_s = 0.0;
    let report = run(&config, &SyntheticShape::default()).unwrap();
    for stats in [&report.serverless.stats, &report.instances.stats] {
        assert!(stats.arrived > 5000);
        assert_eq!(
            stats.arrived,
            stats.completed + stats.rejected + stats.in_flight_at_end
        );
        assert_eq!(
            stats.timeline.iter().map(|b| b.arrivals).sum::<u64>(),
            stats.arrived
        );
        assert_eq!(
            stats.timeline.iter().map(|b| b.completions).sum::<u64>(),
            stats.completed
        );
        assert_eq!(stats.queries.len() as u64, stats.arrived);
    }
    assert_eq!(
        report.serverless.stats.arrived,
        report.instances.stats.arrived
    );
    assert!(report.instances.stats.in_flight_at_end > 1000);
}

#[test]
fn account_concurrency_is_never_exceeded() {
    let mut config = small_config_over(200.0, 5.0);
    config.calibration.limits.account_concurrency = 20;
    let report = run(&config, &SyntheticShape::default()).unwrap();
    let s = &report.serverless;
    assert_eq!(s.stats.max_concurrency, 20);
    assert!(s.stats.timeline.iter().all(|b| b.max_concurrency <= 20));
    assert!(s.counts.throttled > 0);
    assert_eq!(
        s.stats.arrived,
        s.stats.completed + s.stats.rejected + s.stats.in_flight_at_end
    );
}

#[test]
fn scaling_rate_limits_new_environments() {
    // 100 clients arrive at once; the function may add 10 environments at
    // once and then one per 100 ms.
    let mut config = small_config(1.0);
    config.arrivals = ArrivalProcess::ClosedLoop {
        clients: 100,
        think_s: 0.0,
    };
    config.duration_s = 3.0;
    config.timeline_bucket_s = 0.1;
    config.calibration.cold_start_ms = 0.0;
    config.calibration.warm_overhead_ms = 0.0;
    config.calibration.limits.scale_step = 10;
    config.calibration.limits.scale_period_s = 1.0;
    // One invocation of 2 + 0.0012 × 500_000 = 602 ms.
    let shape = |_: usize| uniform_shape(1, 1, 500_000);
    let report = run(&config, &shape).unwrap();
    let s = &report.serverless;
    for (k, bucket) in s.stats.timeline.iter().take(6).enumerate() {
        // Bucket k ends at (k+1) × 100 ms: at most 10 + (k+1) environments.
        assert!(
            bucket.max_concurrency as usize <= 11 + k,
            "bucket {k}: {}",
            bucket.max_concurrency
        );
    }
    assert!(s.counts.throttled >= 80, "{}", s.counts.throttled);
}

#[test]
fn cold_starts_follow_keep_alive() {
    let mut config = small_config(1.0);
    config.calibration.limits.keep_alive_s = 5.0;
    config.duration_s = 20.0;
    let shape = |_: usize| uniform_shape(1, 1, 0);
    let times = |t: &[f64]| {
        let dir = temp_dir(&format!("keepalive-{}", t.len()));
        let path = dir.join("times.txt");
        std::fs::write(
            &path,
            t.iter().map(|x| format!("{x}\n")).collect::<String>(),
        )
        .unwrap();
        path
    };
    // Gaps of 1 s (warm), 10 s (reclaimed: cold), 4 s (warm).
    config.arrivals = ArrivalProcess::File {
        path: times(&[0.0, 1.0, 11.0, 15.0]),
    };
    let report = run(&config, &shape).unwrap();
    let s = &report.serverless;
    assert_eq!(s.counts.cold_starts, 2);
    let cold: Vec<bool> = s.stats.queries.iter().map(|q| q.cold).collect();
    assert_eq!(cold, vec![true, false, true, false]);
    // Cold: 250 ms start + 15 ms overhead + compute + 0.6 ms of master CPU (a query and
    // an invocation); warm: the same without the start. Compute is 2 ms at 1,769 MB, and
    // the shape's 1,024 MB functions have that share of a vCPU: 2 × 1769 / 1024 ms.
    let latency: Vec<f64> = s
        .stats
        .queries
        .iter()
        .map(|q| q.latency_ms.unwrap())
        .collect();
    assert_eq!(latency, vec![269.055, 19.055, 269.055, 19.055]);
    assert_eq!(s.stats.latency_cold.count, 2);
    assert_eq!(s.stats.latency_warm.max_ms, 19.055);
}

#[test]
fn same_seed_same_bytes_and_different_seed_different_trace() {
    let config = small_config(50.0);
    let shape = SyntheticShape::default();
    let a = run(&config, &shape).unwrap();
    let b = run(&config, &shape).unwrap();
    assert_eq!(a.to_json(), b.to_json());
    assert_eq!(a.timeline_csv(), b.timeline_csv());
    assert_eq!(a.queries_csv(), b.queries_csv());
    let other = SimConfig {
        seed: config.seed + 1,
        ..config
    };
    let c = run(&other, &shape).unwrap();
    assert_ne!(a.queries_csv(), c.queries_csv());
    assert_ne!(a.to_json(), c.to_json());
}

/// A query of one invocation that moves `bytes` through the store.
fn store_bound_shape(bytes: u64) -> impl Fn(usize) -> QueryShape {
    move |_| {
        let mut shape = uniform_shape(1, 1, 1);
        shape.phases[0].invocations[0].bytes_in = bytes;
        shape
    }
}

#[test]
fn throughput_follows_load_below_every_capacity_and_levels_off_at_the_first_one() {
    // One node at 10 MB/s and 1 MB a query: the store carries 10 q/s at most, far
    // below the master's capacity and Lambda's limits.
    let mut config = small_config(1.0);
    config.serverless.store_node.bandwidth_mb_per_s = 10.0;
    let levels: Vec<LoadLevel> = [4.0, 8.0, 20.0, 40.0]
        .into_iter()
        .map(LoadLevel::Rate)
        .collect();
    let sweep = sweep(&config, &store_bound_shape(1_000_000), &levels).unwrap();
    for p in &sweep.points[..2] {
        let ratio = p.serverless.throughput_qps / p.offered_qps;
        assert!(
            (0.95..=1.05).contains(&ratio),
            "at {}: {ratio}",
            p.offered_qps
        );
        assert_eq!(p.serverless_saturated, None, "at {}", p.offered_qps);
    }
    for p in &sweep.points[2..] {
        let ratio = p.serverless.throughput_qps / 10.0;
        assert!(
            (0.9..=1.02).contains(&ratio),
            "at {}: {ratio}",
            p.offered_qps
        );
        assert_eq!(p.serverless_saturated.as_deref(), Some("store_network"));
        // The backlog past the store fills the master, which refuses the rest.
        assert!(p.serverless.rejected > 0, "at {}", p.offered_qps);
    }
    let first = sweep.saturation.as_ref().expect("the store saturates");
    assert_eq!(first.resource, "store_network");
    assert!((first.at - 20.0).abs() < 2.0, "{first:?}");
    // Adding a node doubles what the store carries.
    config.serverless.cache_nodes = 2;
    let two = sweep_at(&config, 40.0, &store_bound_shape(1_000_000));
    assert!(
        two.serverless.throughput_qps > 19.0,
        "{}",
        two.serverless.throughput_qps
    );
    // The instance fleet, which this shape does not touch, saturates at its own
    // capacity of 100 q/s.
    let csv = sweep.to_csv();
    assert_eq!(csv.lines().count(), 1 + levels.len());
    assert!(csv.lines().next().unwrap().ends_with(
        "serverless_store_network_utilisation,serverless_store_requests_utilisation,\
         serverless_master_cpu_utilisation,serverless_saturated"
    ));
}

/// One sweep point at `rate` q/s.
fn sweep_at(config: &SimConfig, rate: f64, shape: &dyn ShapeModel) -> SweepPoint {
    sweep(config, shape, &[LoadLevel::Rate(rate)])
        .unwrap()
        .points
        .remove(0)
}

#[test]
fn the_master_limits_throughput_when_its_cpu_is_the_scarce_part() {
    // 100 ms of master CPU a query on one core: 10 q/s at most.
    let mut config = small_config(1.0);
    config.serverless.master.cores = 1;
    config.serverless.master.cpu_ms_per_query = 100.0;
    config.serverless.master.cpu_ms_per_invocation = 0.0;
    let shape = |_: usize| uniform_shape(2, 4, 1);
    let p = sweep_at(&config, 30.0, &shape);
    let ratio = p.serverless.throughput_qps / 10.0;
    assert!((0.9..=1.02).contains(&ratio), "{ratio}");
    assert_eq!(p.serverless_saturated.as_deref(), Some("master_cpu"));
    let report = run(&config, &shape).unwrap();
    let s = &report.serverless.stats;
    assert_eq!(
        s.arrived,
        s.completed + s.rejected + s.in_flight_at_end,
        "nothing lost"
    );
    // A second master halves the load on each.
    config.serverless.master.count = 2;
    let p = sweep_at(&config, 30.0, &shape);
    assert!(
        p.serverless.throughput_qps > 19.0,
        "{}",
        p.serverless.throughput_qps
    );
}

#[test]
fn functions_on_one_machine_share_its_cores() {
    // 2 ms of compute a query (conv at 1,769 MB) on one shared core, and a master that
    // costs nothing: 500 q/s at most.
    let mut config = small_config(1.0);
    config.serverless.host_cores = Some(1);
    config.calibration.master = Some(MasterCpu {
        cpu_ms_per_query: 0.0,
        cpu_ms_per_invocation: 0.0,
    });
    let shape = |_: usize| {
        let mut s = uniform_shape(1, 1, 0);
        s.phases[0].invocations[0].memory_mb = 1769;
        s
    };
    let ceiling = |config: &SimConfig, qps: f64| {
        let p = sweep_at(config, 800.0, &shape);
        let ratio = p.serverless.throughput_qps / qps;
        assert!((0.9..=1.02).contains(&ratio), "{ratio} of {qps} q/s");
        assert_eq!(p.serverless_saturated.as_deref(), Some("host_cpu"));
        assert!(
            p.serverless_resources
                .iter()
                .all(|r| r.resource != "master_cpu")
        );
    };
    ceiling(&config, 500.0);
    // The process's other threads and its I/O double its CPU: 4 ms a query, 250 q/s.
    let conv = config.calibration.stages.get_mut("conv").unwrap();
    conv.cpu_per_compute = Some(2.0);
    ceiling(&config, 250.0);
    // The master runs on the machine too: 2 ms more a query, 1000 / 6 q/s.
    config.calibration.master = Some(MasterCpu {
        cpu_ms_per_query: 1.5,
        cpu_ms_per_invocation: 0.5,
    });
    ceiling(&config, 1000.0 / 6.0);
    // And so do its other processes (a router, the store's server): 1 ms more, 1000 / 7.
    config.serverless.host_other_cpu_ms_per_query = 1.0;
    ceiling(&config, 1000.0 / 7.0);
    // On Lambda each environment has its own share: no such limit.
    config.serverless.host_cores = None;
    config.serverless.host_other_cpu_ms_per_query = 0.0;
    let p = sweep_at(&config, 800.0, &shape);
    assert!(
        p.serverless.throughput_qps > 700.0,
        "{}",
        p.serverless.throughput_qps
    );
    assert!(
        p.serverless_resources
            .iter()
            .all(|r| r.resource != "host_cpu")
    );
}

#[test]
fn measured_spread_reaches_the_tail_and_a_constant_service_time_has_none() {
    let mut config = small_config(5.0);
    config.serverless.store_node.bandwidth_mb_per_s = 100_000.0;
    let shape = |_: usize| uniform_shape(1, 1, 0);
    let constant = run(&config, &shape).unwrap().serverless.stats.latency_warm;
    assert_eq!(constant.p50_ms, constant.p99_ms, "{constant:?}");
    // One sample in twenty took ten times the fitted time: a straggler.
    let conv = config.calibration.stages.get_mut("conv").unwrap();
    conv.spread = [vec![1.0; 19], vec![10.0]].concat();
    let spread = run(&config, &shape).unwrap().serverless.stats.latency_warm;
    assert!(spread.p50_ms < constant.p50_ms * 1.01, "{spread:?}");
    assert!(spread.p99_ms > spread.p50_ms * 2.0, "{spread:?}");
    // The same seed draws the same factors.
    let again = run(&config, &shape).unwrap().serverless.stats.latency_warm;
    assert_eq!(again, spread);
}

#[test]
fn compute_slows_with_less_memory_than_a_vcpu_and_not_faster_with_more() {
    let mut config = small_config(1.0);
    config.calibration.warm_overhead_ms = 0.0;
    config.calibration.cold_start_ms = 0.0;
    config.serverless.master.cpu_ms_per_query = 0.0;
    config.serverless.master.cpu_ms_per_invocation = 0.0;
    let p50 = |memory_mb: u32| {
        let shape = move |_: usize| {
            let mut s = uniform_shape(1, 1, 0);
            s.phases[0].invocations[0].memory_mb = memory_mb;
            s
        };
        run(&config, &shape)
            .unwrap()
            .serverless
            .stats
            .latency
            .p50_ms
    };
    // conv's fitted 2 ms is at 1,769 MB, one vCPU.
    assert_eq!(p50(1769), 2.0);
    assert_eq!(p50(3538), 2.0);
    assert!(
        (p50(884) - 2.0 * 1769.0 / 884.0).abs() < 0.002,
        "{}",
        p50(884)
    );
}

#[test]
fn instances_serve_the_offered_load_up_to_their_capacity() {
    let config = small_config(1.0);
    let levels: Vec<LoadLevel> = [25.0, 50.0, 200.0, 400.0]
        .into_iter()
        .map(LoadLevel::Rate)
        .collect();
    let sweep = sweep(&config, &SyntheticShape::default(), &levels).unwrap();
    // The fleet serves 100 q/s at most: it keeps up at 25 and 50 q/s and
    // flattens at its capacity above.
    let capacity = sweep.points[0].instance_capacity_qps;
    assert!((capacity - 100.0).abs() < 1e-9);
    for p in &sweep.points[..2] {
        assert!((p.instances.throughput_qps / p.offered_qps - 1.0).abs() < 0.03);
    }
    for p in &sweep.points[2..] {
        let ratio = p.instances.throughput_qps / capacity;
        assert!(
            (0.97..=1.001).contains(&ratio),
            "instances at {}: {ratio}",
            p.offered_qps
        );
        assert!(p.instances.latency.p99_ms > 1000.0);
    }
}

#[test]
fn closed_loop_clients_scale_serverless_throughput_below_the_store_capacity() {
    let mut config = small_config_over(1.0, 10.0);
    // A store that is never the bottleneck here, so the clients alone set the load.
    config.serverless.store_node.bandwidth_mb_per_s = 100_000.0;
    let levels = [LoadLevel::Concurrency(4), LoadLevel::Concurrency(16)];
    let sweep = sweep(&config, &SyntheticShape::default(), &levels).unwrap();
    let (low, high) = (&sweep.points[0], &sweep.points[1]);
    let growth = high.serverless.throughput_qps / low.serverless.throughput_qps;
    assert!((3.6..=4.4).contains(&growth), "{growth}");
    assert!(high.instances.throughput_qps <= 100.5);
}

/// A chain (the resident plan's split, one invocation per layer) holds one instance from
/// its first invocation to its last: one request and one cold start per chain, no invoke
/// overhead after the first, the instance busy through the phases between, and all of it
/// billed, the waiting included.
#[test]
fn a_chain_holds_its_instance_and_bills_its_waits() {
    let mut config = small_config_over(1.0, 5.0);
    config.arrivals = ArrivalProcess::File {
        path: {
            let dir = temp_dir("chain");
            let path = dir.join("times.txt");
            std::fs::write(&path, "0.0\n").unwrap();
            path
        },
    };
    let shape_with = |chained: bool| {
        move |_: usize| {
            let conv = |chain: Option<usize>| Invocation {
                kind: "conv".into(),
                rows: 1000,
                bytes_in: 0,
                bytes_out: 0,
                memory_mb: 1769,
                chain: chain.filter(|_| chained),
            };
            let splits = Phase {
                invocations: vec![conv(Some(0)), conv(Some(1))],
            };
            QueryShape {
                phases: vec![
                    splits.clone(),
                    Phase {
                        invocations: vec![conv(None)],
                    },
                    splits,
                ],
            }
        }
    };
    let chained = run(&config, &shape_with(true)).unwrap().serverless;
    let apart = run(&config, &shape_with(false)).unwrap().serverless;
    assert_eq!(
        (chained.counts.invocations, apart.counts.invocations),
        (3, 5)
    );
    // The chains' instances stay busy while the middle phase runs on a third.
    assert_eq!(chained.stats.max_concurrency, 3);
    assert_eq!(apart.stats.max_concurrency, 2);
    // Two instances busy through the middle phase need a third, cold, where apart it
    // reused a warm one.
    assert_eq!(
        (chained.counts.cold_starts, apart.counts.cold_starts),
        (3, 2)
    );
    // Each chain is billed from its start to its end, across the middle phase.
    assert!(chained.cost.duration_usd > apart.cost.duration_usd);
    assert!(chained.cost.requests_usd < apart.cost.requests_usd);
}

#[test]
fn costs_follow_the_bill() {
    let config = small_config(50.0);
    let report = run(&config, &SyntheticShape::default()).unwrap();
    let s = &report.serverless;
    let c = &s.cost;
    assert!((c.invocations - s.counts.invocations as f64).abs() < 1e-6);
    assert!((c.requests_usd - s.counts.invocations as f64 * 0.2e-6).abs() < 1e-12);
    assert!((c.cold_starts - s.counts.cold_starts as f64).abs() < 1e-6);
    // 20 s of the master (0.188/h) and one cache node (0.156/h).
    assert!((c.master_usd + c.cache_usd - 20.0 / 3600.0 * 0.344).abs() < 1e-12);
    assert!(c.duration_usd > 0.0 && c.init_usd > 0.0);
    let i = &report.instances;
    assert!((i.stats.cost_usd - 2.0 * 0.9 * 20.0 / 3600.0).abs() < 1e-12);
    // Half the fleet's capacity is used, though with small batches it is busy
    // more than half the time.
    assert!((i.utilisation - 0.5).abs() < 0.03, "{}", i.utilisation);
    assert!(i.busy_fraction > i.utilisation && i.busy_fraction < 1.0);
    let crossover = report.crossover_qps.unwrap();
    let variable = c.variable_cost_per_query_usd();
    assert!((crossover * 3600.0 * variable + c.fixed_usd_per_hour() - 1.8).abs() < 1e-9);
}

#[test]
fn sweep_finds_the_cost_crossover() {
    // One default p2.xlarge (about 800 q/s at these lengths): serverless is
    // cheaper at light load, the instance once it is busy enough.
    let mut config = small_config_over(1.0, 10.0);
    config.instances = InstanceConfig::default();
    let levels: Vec<LoadLevel> = [10.0, 40.0, 160.0, 640.0]
        .into_iter()
        .map(LoadLevel::Rate)
        .collect();
    let sweep = sweep(&config, &SyntheticShape::default(), &levels).unwrap();
    let first = &sweep.points[0];
    assert!(first.serverless.cost_per_query_usd < first.instances.cost_per_query_usd);
    let last = &sweep.points[3];
    assert!(last.serverless.cost_per_query_usd > last.instances.cost_per_query_usd);
    let x = sweep.crossover_qps.expect("a crossing");
    assert!((10.0..640.0).contains(&x), "{x}");
    // The analytic crossover of a single run lands in the same range.
    let analytic = run(&config, &SyntheticShape::default())
        .unwrap()
        .crossover_qps
        .unwrap();
    assert!((10.0..640.0).contains(&analytic), "{analytic}");
}

#[test]
fn bad_shapes_are_refused_with_the_length() {
    let config = SimConfig {
        duration_s: 1.0,
        lengths: LengthDistribution::Fixed { bytes: 77 },
        ..small_config(5.0)
    };
    let unknown = |_: usize| {
        let mut s = uniform_shape(1, 1, 1);
        s.phases[0].invocations[0].kind = "lstm".into();
        s
    };
    let err = run(&config, &unknown).unwrap_err();
    assert!(matches!(err, SimError::Shape { len: 77, .. }), "{err}");
    assert!(err.to_string().contains("`lstm`"), "{err}");
    let huge = |_: usize| {
        let mut s = uniform_shape(1, 1, 1);
        s.phases[0].invocations[0].memory_mb = 20_000;
        s
    };
    assert!(
        run(&config, &huge)
            .unwrap_err()
            .to_string()
            .contains("20000 MB")
    );
    let empty = |_: usize| QueryShape::default();
    assert!(
        run(&config, &empty)
            .unwrap_err()
            .to_string()
            .contains("no phases")
    );
}

#[test]
fn config_files_load_and_name_their_errors() {
    let dir = temp_dir("config");
    let path = dir.join("sim.json");
    std::fs::write(
        &path,
        serde_json::to_string_pretty(&small_config(5.0)).unwrap(),
    )
    .unwrap();
    assert_eq!(SimConfig::load(&path).unwrap(), small_config(5.0));
    std::fs::write(
        &path,
        "{\n \"arrivals\": {\"kind\": \"poisson\", \"rate\": 3}\n}",
    )
    .unwrap();
    let err = SimConfig::load(&path).unwrap_err().to_string();
    assert!(
        err.contains("sim.json") && err.contains("`rate`") && err.contains("line "),
        "{err}"
    );
}

/// A query of `phases` phases, each `width` identical invocations of the
/// `conv` stage with no store traffic.
pub fn uniform_shape(phases: usize, width: usize, rows: usize) -> QueryShape {
    let inv = Invocation {
        kind: "conv".into(),
        rows,
        bytes_in: 0,
        bytes_out: 0,
        memory_mb: 1024,
        chain: None,
    };
    QueryShape {
        phases: vec![
            Phase {
                invocations: vec![inv; width],
            };
            phases
        ],
    }
}

/// Cross-query batching of short queries: nothing is lost or created, and the invocations
/// per answered query (and so the request fee) fall as stages share them, the more so the
/// higher the load.
#[test]
fn batched_stages_share_invocations_more_as_load_grows() {
    let shape = SyntheticShape::default();
    let per_query =
        |s: &seqless_sim::ServerlessReport| s.counts.invocations as f64 / s.stats.completed as f64;
    let mut shared = Vec::new();
    for rate in [5.0, 500.0] {
        // Short queries, where requests dominate the bill, and a store with room for them.
        let mut config = SimConfig {
            duration_s: 10.0,
            arrivals: ArrivalProcess::Poisson { rate_qps: rate },
            lengths: LengthDistribution::Fixed { bytes: 4096 },
            ..SimConfig::default()
        };
        config.serverless.store_node.bandwidth_mb_per_s = 100_000.0;
        let alone = run(&config, &shape).unwrap().serverless;
        config.serverless.batching = StageBatching {
            max: 8,
            wait_ms: 5.0,
        };
        let batched = run(&config, &shape).unwrap().serverless;
        for s in [&alone, &batched] {
            let st = &s.stats;
            assert_eq!(st.arrived, st.completed + st.rejected + st.in_flight_at_end);
            assert!(st.completed > 0, "{rate} q/s");
        }
        assert!(per_query(&batched) <= per_query(&alone), "{rate} q/s");
        shared.push(per_query(&batched) / per_query(&alone));
    }
    assert!(
        shared[1] < 0.5 * shared[0],
        "invocations per query, batched over alone: {shared:?} at 5 and 500 q/s"
    );
}
