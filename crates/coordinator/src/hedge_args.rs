//! The hedging flags of a command line, as one clap group that becomes a [`HedgePolicy`].

use clap::Args;

use crate::{DEFAULT_HEDGE_BUDGET, DEFAULT_HEDGE_FACTOR, DEFAULT_HEDGE_FLOOR, HedgePolicy};

/// Hedged invocations: a duplicate of a straggling stage, the first answer winning.
#[derive(Debug, Clone, Args)]
#[group(id = "hedge_args")]
pub struct HedgeArgs {
    /// Duplicate a stage's invocation (once) when it has run this many times the median of
    /// its phase's stages that have answered, once half of them have; the first answer wins.
    #[arg(long, default_value_t = DEFAULT_HEDGE_FACTOR, value_parser = hedge_factor)]
    pub hedge_factor: f64,
    /// The shortest run of a stage that is duplicated, in milliseconds.
    #[arg(long, default_value_t = DEFAULT_HEDGE_FLOOR.as_millis() as u64)]
    pub hedge_floor_ms: u64,
    /// The most duplicates, as a share of the stage invocations, over the coordinator's
    /// life (after a burst of 4): on a saturated host every stage looks late, and
    /// duplicates would only add to the queue.
    #[arg(long, default_value_t = DEFAULT_HEDGE_BUDGET, value_parser = hedge_budget)]
    pub hedge_budget: f64,
    /// Never duplicate an invocation (turns hedging off).
    #[arg(long, conflicts_with_all = ["hedge_factor", "hedge_floor_ms", "hedge_budget"])]
    pub no_hedge: bool,
}

impl Default for HedgeArgs {
    /// The flags' defaults: hedging on, as [`HedgePolicy::default`].
    fn default() -> Self {
        Self {
            hedge_factor: DEFAULT_HEDGE_FACTOR,
            hedge_floor_ms: DEFAULT_HEDGE_FLOOR.as_millis() as u64,
            hedge_budget: DEFAULT_HEDGE_BUDGET,
            no_hedge: false,
        }
    }
}

impl HedgeArgs {
    /// The hedging the flags ask for.
    pub fn policy(&self) -> HedgePolicy {
        if self.no_hedge {
            HedgePolicy::Off
        } else {
            HedgePolicy::After {
                factor: self.hedge_factor,
                floor: std::time::Duration::from_millis(self.hedge_floor_ms),
                budget: self.hedge_budget,
            }
        }
    }
}

/// Parses `--hedge-factor`: a finite multiple above 1, since a stage at or under its
/// siblings' median is not straggling.
fn hedge_factor(s: &str) -> Result<f64, String> {
    let factor: f64 = s
        .parse()
        .map_err(|_| format!("`{s}` is not a number (a multiple of the median, such as 3)"))?;
    if !factor.is_finite() || factor <= 1.0 {
        return Err(format!(
            "{s} is not above 1: a stage is duplicated at a multiple of its siblings' median, such as 3"
        ));
    }
    Ok(factor)
}

/// Parses `--hedge-budget`: a share in `(0, 1]`; `--no-hedge` is how to allow none.
fn hedge_budget(s: &str) -> Result<f64, String> {
    let share: f64 = s
        .parse()
        .map_err(|_| format!("`{s}` is not a number (a share of invocations, such as 0.1)"))?;
    if !(share > 0.0 && share <= 1.0) {
        return Err(format!(
            "{s} is not a share in (0, 1]: the most duplicates per invocation, such as 0.1 (--no-hedge allows none)"
        ));
    }
    Ok(share)
}
