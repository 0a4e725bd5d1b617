//! The hedging flags of a command line, as one clap group that becomes a [`HedgePolicy`].

use clap::Args;

use crate::{DEFAULT_HEDGE_FACTOR, DEFAULT_HEDGE_FLOOR, HedgePolicy};

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
    /// Never duplicate an invocation (turns hedging off).
    #[arg(long, conflicts_with_all = ["hedge_factor", "hedge_floor_ms"])]
    pub no_hedge: bool,
}

impl Default for HedgeArgs {
    /// The flags' defaults: hedging on, as [`HedgePolicy::default`].
    fn default() -> Self {
        Self {
            hedge_factor: DEFAULT_HEDGE_FACTOR,
            hedge_floor_ms: DEFAULT_HEDGE_FLOOR.as_millis() as u64,
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
