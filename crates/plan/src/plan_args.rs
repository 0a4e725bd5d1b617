//! The planning flags of a command line, as one clap group that becomes [`Limits`].

use clap::Args;
use seqless_wire::lambda::MEMORY_MB;

use crate::{Limits, PlanError, PlanKind, Splits};

/// The default function memory: 1,769 MB is where Lambda gives a function one full vCPU,
/// which the compute-bound stages use (and the simulator's calibration assumes).
pub const DEFAULT_MEMORY_MB: u32 = 1769;

/// How a query is cut into stage functions.
#[derive(Debug, Clone, Args)]
#[group(id = "plan_args")]
pub struct PlanArgs {
    /// Stage graph: fused (block stats through the serial stages), paper, or resident (one
    /// function per split for the whole query; only halos and block stats move).
    #[arg(long, value_enum, default_value = "fused")]
    pub plan: PlanKind,
    /// Conv functions per layer: a number up to --max-splits, or auto (from length and
    /// --min-rows-per-split). A layer never has more splits than blocks.
    #[arg(long, default_value = "auto")]
    pub splits: Splits,
    /// Upper bound on conv functions per layer.
    #[arg(long, default_value_t = 16)]
    pub max_splits: usize,
    /// Under --splits auto, the fewest input rows given a function of their own.
    #[arg(long, default_value_t = 65_536)]
    pub min_rows_per_split: usize,
    /// Memory of each function, MB, 128 to 10,240 (billing, and the plan's memory bound).
    #[arg(long, default_value_t = DEFAULT_MEMORY_MB, value_parser = memory_mb)]
    pub memory_mb: u32,
}

impl PlanArgs {
    /// The planner's bounds; a fixed split count over `--max-splits` is refused here, so a
    /// run never uses more functions than the user capped.
    pub fn limits(&self) -> Result<Limits, PlanError> {
        if let Splits::Fixed(n) = self.splits
            && n > self.max_splits
        {
            return Err(PlanError::SplitsOverMax {
                splits: n,
                max_splits: self.max_splits,
            });
        }
        Ok(Limits {
            function_memory_mb: self.memory_mb,
            max_splits: self.max_splits,
            min_rows_per_split: self.min_rows_per_split,
            max_value_bytes: None,
        })
    }
}

/// Parses a function's memory flag within Lambda's sizes ([`MEMORY_MB`]).
pub fn memory_mb(s: &str) -> Result<u32, String> {
    let mb: i64 = s
        .parse()
        .map_err(|_| format!("{s:?} is not a whole number of MB"))?;
    match u32::try_from(mb) {
        Ok(mb) if MEMORY_MB.contains(&mb) => Ok(mb),
        _ => Err(format!(
            "{mb} MB is outside Lambda's {} to {} MB",
            MEMORY_MB.start(),
            MEMORY_MB.end()
        )),
    }
}
