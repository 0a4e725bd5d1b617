//! Helpers shared by the integration tests.

use std::path::PathBuf;

use seqless_sim::{ArrivalProcess, InstanceConfig, LengthDistribution, SimConfig};

/// A fresh, empty directory under the system temp dir, unique per test.
pub fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("seqless-sim-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A short run with a slow, easily saturated fleet: 2 instances serving batches
/// of up to 4 in `40 + 10 n` ms, i.e. 50 q/s each, 100 q/s together.
pub fn small_config(rate_qps: f64) -> SimConfig {
    SimConfig {
        duration_s: 20.0,
        drain_s: 5.0,
        arrivals: ArrivalProcess::Poisson { rate_qps },
        lengths: LengthDistribution::Uniform {
            min_bytes: 100,
            max_bytes: 20_000,
        },
        instances: InstanceConfig {
            count: 2,
            max_batch: 4,
            batch_fixed_ms: 40.0,
            per_query_ms: 10.0,
            per_byte_ms: 0.0,
            ..InstanceConfig::default()
        },
        ..SimConfig::default()
    }
}
