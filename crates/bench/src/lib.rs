//! The benchmark toolkit behind `seqless bench`: what is measured, how samples are
//! summarised, and how results are tabled, written as CSV and drawn. The libraries do not
//! depend on it, so no server, store or function carries bench code.
//!
//! - `args` (feature `clap`): the flags of the benches that need no execution mode.
//! - [`forward`]: the monolithic forward per layer and stage, against the machine's GEMM
//!   peak and the LSTM's roofline.
//! - [`stats`]: the one median and quantile rule (nearest rank) every figure uses.
//! - [`store`]: tensor put/get throughput through a store, against `redis-benchmark` on the
//!   same server in the same run.
//! - [`load`]: a closed-loop HTTP load generator for a running server, and its chart.
//! - [`serverless`]: the serverless-against-monolithic sweep's rows, table and CSV.
//! - [`platform`]: the local platform's figures (cold start, warm round trip, overhead);
//!   `platform_run` (feature `platform`) measures them.
//! - [`calibrate`]: what the simulator's calibration is fitted from.
//! - [`chaos`]: queries under injected faults against the same queries without, with
//!   success, equality to the monolithic answer, tail latency, retries, hedges and the keys
//!   left behind.
//! - [`validation`]: the simulator's validation table drawn as measured against predicted.

#![warn(missing_docs)]

#[cfg(feature = "clap")]
pub mod args;
pub mod calibrate;
pub mod chaos;
mod error;
pub mod forward;
pub mod load;
pub mod platform;
#[cfg(feature = "platform")]
pub mod platform_run;
pub mod serverless;
pub use seqless_sim::stats;
pub mod store;
pub mod validation;

pub use error::BenchError;

/// Milliseconds in `d`, as every bench reports time.
pub fn ms(d: std::time::Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// `SCAN cursor MATCH pattern COUNT 1000`: one page of the keys matching `pattern`,
/// answered as the next cursor (0 after the last page) and the page's keys.
pub(crate) fn scan_page(cursor: u64, pattern: &str) -> redis::Cmd {
    let mut cmd = redis::cmd("SCAN");
    cmd.arg(cursor)
        .arg("MATCH")
        .arg(pattern)
        .arg("COUNT")
        .arg(1000);
    cmd
}
