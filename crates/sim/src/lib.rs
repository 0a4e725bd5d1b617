//! A deterministic discrete-event simulator of seqless: the same query trace
//! served by serverless functions and by a fixed fleet of instances.
//!
//! The paper's claim is that a GPU instance's throughput saturates as load
//! grows while the serverless system scales linearly, and that serverless is
//! cheaper at low utilisation. Testing that on real AWS at many loads is slow
//! and costly; this crate reproduces it from calibrated costs instead:
//!
//! - [`SimConfig`]: the trace ([`ArrivalProcess`], [`LengthDistribution`]),
//!   the [`Calibration`] of the real system, both deployments
//!   ([`ServerlessConfig`], [`InstanceConfig`]) and the [`seqless_cost::Pricing`].
//! - [`ShapeModel`]: input length → [`QueryShape`] (phases of parallel
//!   [`Invocation`]s). [`PlanShape`] is the real planner's stage graph;
//!   [`SyntheticShape`] stands in for it without a model.
//! - [`run`] → [`SimReport`]: throughput, latency percentiles (cold-start tails
//!   apart), timelines, cost of both and the crossover load; JSON and CSV.
//! - [`sweep`] → [`Sweep`]: the same at several loads; [`plot`] draws them,
//!   [`SimReport::render`] and [`Sweep::render`] summarise them, and [`write_outputs`]
//!   writes every file of a run.
//!
//! Time is integer microseconds and ties break by insertion order, so the same
//! configuration (seed included) always gives a byte-identical report.
//!
//! ```
//! use seqless_sim::{run, ArrivalProcess, SimConfig, SyntheticShape};
//!
//! let config = SimConfig {
//!     duration_s: 5.0,
//!     arrivals: ArrivalProcess::Poisson { rate_qps: 20.0 },
//!     ..SimConfig::default()
//! };
//! let report = run(&config, &SyntheticShape::default()).unwrap();
//! let s = &report.serverless.stats;
//! assert_eq!(s.arrived, s.completed + s.rejected + s.in_flight_at_end);
//! assert!(report.serverless.counts.cold_starts > 0);
//! println!("{}", report.serverless.cost.render());
//! ```

#![warn(missing_docs)]

#[cfg(feature = "clap")]
mod args;
mod baseline;
mod config;
mod error;
mod events;
mod instances;
mod output;
mod plan_shape;
pub mod planner;
pub mod plot;
mod predict;
mod record;
mod render;
mod report;
mod resources;
mod serverless;
mod shape;
pub mod stats;
mod sweep;
mod workload;

#[cfg(feature = "clap")]
pub use args::{ChooserArgs, Planned, PlannerArgs, SimulateArgs, Simulated};
pub use baseline::{
    C5_XLARGE, CPU_MEASUREMENTS, CpuMeasurement, CpuSpec, ForwardCost, GpuSpec, InstanceBaseline,
    K80_DIE, LANGID_SERVE, SEED_SCALE_SERVE, cpu_measured, forward_cost, gpu_roofline,
    weight_bytes,
};
pub use config::{
    Calibration, InstanceConfig, LambdaLimits, MasterCapacity, MasterCpu, ServerlessConfig,
    SimConfig, StageBatching, StageCalibration, StoreCalibration, StoreNodeCapacity,
};
pub use error::SimError;
pub use output::write_outputs;
pub use plan_shape::PlanShape;
pub use predict::{InvocationTimes, Predicted, predict};
pub use record::{DeploymentStats, LatencyStats, QueryRecord, TimelinePoint};
pub use report::{InstanceReport, ServerlessReport, SimReport};
pub use resources::{ResourceUse, SATURATED};
pub use serverless::ServerlessCounts;
pub use shape::{
    Invocation, Phase, QueryShape, ShapeError, ShapeModel, SyntheticLayer, SyntheticShape,
};
pub use sweep::{
    FleetPoint, LoadLevel, PointStats, Saturation, SizePoint, SizeSweep, Sweep, SweepPoint,
    describe_arrivals, describe_lengths, size_sweep, sweep, tfilm_floor_ms,
};
pub use workload::{ArrivalProcess, Bursts, LengthDistribution};

/// Simulates both deployments on one trace built from `config` and prices
/// them: the single entry point the `seqless simulate` command calls.
pub fn run(config: &SimConfig, shape_model: &dyn ShapeModel) -> Result<SimReport, SimError> {
    config.validate()?;
    let workload = workload::Workload::build(
        &config.arrivals,
        &config.lengths,
        config.seed,
        config.duration_s,
        config.max_len,
    )?;
    let serverless = serverless::simulate(config, &workload, shape_model)?;
    let instances = instances::simulate(config, &workload);
    report::assemble(config, serverless, instances)
}
