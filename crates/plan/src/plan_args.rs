//! The planning flags of a command line, as one clap group that becomes [`Limits`].

use clap::Args;
use seqless_wire::lambda::{DEFAULT_MEMORY_MB, parse_memory_mb};

use crate::{Limits, PlanError, PlanKind, Splits};

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
    #[arg(long, default_value_t = DEFAULT_MEMORY_MB, value_parser = parse_memory_mb)]
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
