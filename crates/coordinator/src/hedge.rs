//! Hedged invocations against stragglers: when a stage is due a duplicate, and what
//! becomes of the invocation that loses.

use std::pin::pin;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use futures_util::future::{Either, select};
use seqless_functions::{InvocationMeta, billed_ms};
use seqless_plan::ResidentLayer;
use seqless_store::{QueryId, TensorStore};

use crate::coordinator::Invoked;
use crate::trace::{HedgeRecord, LoserFate};

/// Duplicate invocations of straggling stages, the hedged requests of "The Tail at Scale":
/// a few invocations run 5-10x their stage's usual time (a slow host, a noisy neighbour),
/// and a query waits for its slowest stage. A duplicate started once a stage is clearly
/// late usually answers first, for the price of one more invocation in a few.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum HedgePolicy {
    /// Never duplicate an invocation.
    Off,
    /// Duplicate a stage's invocation, once per stage, when it has run `factor` times the
    /// median time its sibling stages took to answer (the other stages of its phase,
    /// which do the same work on other rows), and at least `floor`. The median is taken
    /// once at least half of the siblings have answered, so a phase without siblings (a
    /// serial stage) is never hedged. No duplicate starts past the query's deadline.
    After {
        /// Multiple of the siblings' median, above 1.
        factor: f64,
        /// The shortest run that is duplicated, so that stages of a few milliseconds,
        /// whose spread is scheduling noise, are left alone.
        floor: Duration,
        /// The most duplicates as a share of the stage invocations sent while hedging is
        /// on, over the coordinator's life, in `(0, 1]` ([`HedgeBudget`]), after a burst.
        budget: f64,
    },
}

/// A stage at 3x its siblings' median is far out of their spread (a few tens of percent
/// on a warm platform) yet well short of a 10x straggler.
pub const DEFAULT_HEDGE_FACTOR: f64 = 3.0;

/// Above the jitter of scheduling and of the Invoke API's round trip.
pub const DEFAULT_HEDGE_FLOOR: Duration = Duration::from_millis(50);

/// Twice the stragglers a healthy platform has (a few percent of invocations), so that
/// real stragglers are hedged while duplicates stay a small share of the load.
pub const DEFAULT_HEDGE_BUDGET: f64 = 0.1;

/// Duplicates that may start at once before any were earned: a fresh coordinator's first
/// queries can hedge, and a quiet spell banks no more than this.
const HEDGE_BURST: f64 = 4.0;

impl Default for HedgePolicy {
    fn default() -> Self {
        Self::After {
            factor: DEFAULT_HEDGE_FACTOR,
            floor: DEFAULT_HEDGE_FLOOR,
            budget: DEFAULT_HEDGE_BUDGET,
        }
    }
}

/// The duplicates a coordinator may still start, shared by all its queries: each stage
/// invocation sent while hedging is on earns `share` of one, and each duplicate spends one.
///
/// Without it, an overloaded host hedges itself into more load: a stage that waits for a
/// core looks like a straggler next to siblings that got one, and its duplicate queues
/// for the same cores (2.4 duplicates a query in docs/faults.md's seed-shape chaos run).
/// A budget keeps hedging to the few real stragglers, as a token bucket: at most
/// [`HEDGE_BURST`] plus `share` times the invocations so far.
#[derive(Debug)]
pub(crate) struct HedgeBudget {
    share: f64,
    tokens: Mutex<f64>,
}

impl HedgeBudget {
    pub(crate) fn new(policy: HedgePolicy) -> Self {
        let share = match policy {
            HedgePolicy::After { budget, .. } => budget,
            HedgePolicy::Off => 0.0,
        };
        Self {
            share,
            tokens: Mutex::new(HEDGE_BURST),
        }
    }

    /// A stage invocation was sent while hedging is on.
    pub(crate) fn earn(&self) {
        let mut tokens = self.tokens.lock().unwrap_or_else(|p| p.into_inner());
        *tokens = (*tokens + self.share).min(HEDGE_BURST);
    }

    /// Takes one duplicate's worth, if the budget has it.
    pub(crate) fn try_spend(&self) -> bool {
        let mut tokens = self.tokens.lock().unwrap_or_else(|p| p.into_inner());
        let allowed = *tokens >= 1.0;
        if allowed {
            *tokens -= 1.0;
        }
        allowed
    }
}

/// A phase's progress, which tells a running stage when it is due a duplicate: when the
/// phase started, and when each of its stages answered.
pub(crate) struct PhaseClock {
    /// When the phase (or, for a resident layer, the layer) began; unset until then.
    started: OnceLock<Instant>,
    deadline: Instant,
    stages: usize,
    answered: Mutex<Vec<Duration>>,
    changed: tokio::sync::Notify,
}

impl PhaseClock {
    pub(crate) fn new(stages: usize, deadline: Instant) -> Self {
        let clock = Self::pending(stages, deadline);
        clock.start();
        clock
    }

    /// A clock whose phase has not begun yet.
    fn pending(stages: usize, deadline: Instant) -> Self {
        Self {
            started: OnceLock::new(),
            deadline,
            stages,
            answered: Mutex::default(),
            changed: tokio::sync::Notify::new(),
        }
    }

    /// Marks the phase as begun now, unless it already had.
    fn start(&self) -> Instant {
        *self.started.get_or_init(Instant::now)
    }

    /// Records that a stage answered now.
    pub(crate) fn finished(&self) {
        let Some(started) = self.started.get() else {
            return;
        };
        let took = started.elapsed();
        self.answered
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(took);
        self.changed.notify_waiters();
    }

    /// When an invocation `sent` then and still running is due a duplicate: after `factor`
    /// times the median of its siblings' times (from the phase's start), and at least
    /// `floor`; `None` while fewer than half of its siblings have answered, and past the
    /// deadline.
    fn due_at(&self, sent: Instant, factor: f64, floor: Duration) -> Option<Instant> {
        let mut answered = self
            .answered
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let siblings = self.stages.saturating_sub(1);
        if siblings == 0 || answered.len() * 2 < siblings {
            return None;
        }
        answered.sort_unstable();
        let median = answered[(answered.len() - 1) / 2];
        let at = sent + median.mul_f64(factor).max(floor);
        (at < self.deadline).then_some(at)
    }

    /// Resolves when an invocation `sent` then and still running is due a duplicate; never
    /// if it is not.
    pub(crate) async fn hedge_due(&self, sent: Instant, factor: f64, floor: Duration) {
        loop {
            // Made before the check, so an answer between the two is not missed.
            let changed = self.changed.notified();
            if let Some(at) = self.due_at(sent, factor, floor) {
                tokio::time::sleep_until(at.into()).await;
                return;
            }
            changed.await;
        }
    }
}

/// A resident query's progress layer by layer, which tells a straggling split from its
/// siblings: all splits begin a layer together (when the previous layer's TFiLM output is
/// written, the first layer at the query's start) and publish its block statistics when
/// their conv is done. A split that has not published long after its siblings holds all
/// of them up at the next TFiLM stage, so it is due a duplicate, which rebuilds its rows
/// from the store. Its own answer comes only at the end of the query, too late to tell.
pub(crate) struct ResidentProgress {
    layers: Vec<PhaseClock>,
}

impl ResidentProgress {
    /// The progress of `splits` resident splits through `layers` layers.
    pub(crate) fn new(layers: usize, splits: usize, deadline: Instant) -> Self {
        let clocks: Vec<PhaseClock> = (0..layers)
            .map(|_| PhaseClock::pending(splits, deadline))
            .collect();
        if let Some(first) = clocks.first() {
            first.start();
        }
        Self { layers: clocks }
    }

    /// Resolves when the split whose layers are `steps` is due a duplicate: a layer's
    /// block statistics still unpublished at `factor` times its siblings' median time for
    /// that layer (and at least `floor`), once half of them have published. Never, if it
    /// keeps up, or if the store cannot tell.
    pub(crate) async fn due(
        &self,
        store: &dyn TensorStore,
        query: QueryId,
        steps: &[ResidentLayer],
        (factor, floor): (f64, Duration),
    ) {
        for (step, clock) in steps.iter().zip(&self.layers) {
            if let Some(film) = &step.film {
                let left = clock.deadline.saturating_duration_since(Instant::now());
                if store.wait_for(&query.key(&film.key), left).await.is_err() {
                    return std::future::pending().await;
                }
            }
            let began = clock.start();
            let left = clock.deadline.saturating_duration_since(Instant::now());
            let key = query.key(&step.write_max);
            let published = pin!(store.wait_for(&key, left));
            let late = pin!(clock.hedge_due(began, factor, floor));
            match select(published, late).await {
                Either::Left((Ok(()), _)) => clock.finished(),
                Either::Left((Err(_), _)) => return std::future::pending().await,
                Either::Right(((), _)) => return,
            }
        }
        std::future::pending().await
    }
}

/// A hedged stage, as the query's end needs it: done, or with a loser still running that
/// must end before the query's keys are deleted.
pub(crate) enum Hedge {
    /// Both invocations have ended.
    Done(HedgeRecord),
    /// The loser was dropped after running for `ran` (an invoker whose invocations stop
    /// when dropped); it is billed for that time at the winner's memory size.
    Cancelled {
        record: HedgeRecord,
        ran: Duration,
        memory_mb: u32,
    },
    /// The loser runs on; it is awaited, since it may still write.
    Running {
        record: HedgeRecord,
        loser: tokio::task::JoinHandle<Invoked>,
    },
}

impl Hedge {
    /// Waits for a running loser, then gives the record with the loser's bill.
    pub(crate) async fn settle(self) -> HedgeRecord {
        match self {
            Self::Done(record) => record,
            Self::Cancelled {
                record,
                ran,
                memory_mb,
            } => {
                let meta = InvocationMeta {
                    cold: false,
                    init_ms: 0.0,
                    duration_ms: ran.as_secs_f64() * 1e3,
                    billed_ms: billed_ms(ran),
                    memory_mb,
                    shared_by: 1,
                };
                record.with_loser(LoserFate::Cancelled, Some(&meta))
            }
            Self::Running { record, loser } => {
                let ended = loser.await;
                let meta = match &ended {
                    Ok(Ok((_, meta, _))) => Some(meta),
                    Ok(Err(err)) => err.billing(),
                    // The task panicked: it writes nothing more either way.
                    Err(_) => None,
                };
                record.with_loser(LoserFate::Awaited, meta)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_allows_a_burst_then_its_share_of_invocations() {
        let budget = HedgeBudget::new(HedgePolicy::After {
            factor: 3.0,
            floor: Duration::ZERO,
            budget: 0.25,
        });
        let burst = HEDGE_BURST as usize;
        assert_eq!((0..10).filter(|_| budget.try_spend()).count(), burst);
        // Earned a quarter at a time: one duplicate per four invocations.
        let mut spent = 0;
        for _ in 0..40 {
            budget.earn();
            spent += usize::from(budget.try_spend());
        }
        assert_eq!(spent, 10);
        // A quiet spell banks no more than the burst.
        (0..1000).for_each(|_| budget.earn());
        assert_eq!((0..10).filter(|_| budget.try_spend()).count(), burst);
    }

    #[test]
    fn a_stage_is_due_a_duplicate_at_a_multiple_of_its_siblings_median() {
        let ms = Duration::from_millis;
        let answered = |clock: &PhaseClock, took: Duration| {
            clock.answered.lock().unwrap().push(took);
        };
        let clock = PhaseClock::new(4, Instant::now() + Duration::from_secs(60));
        let sent = clock.start() + ms(1);
        answered(&clock, ms(40));
        // One of three siblings has answered: too few to tell a straggler.
        assert_eq!(clock.due_at(sent, 3.0, ms(50)), None);
        answered(&clock, ms(20));
        // Two of three: 3 x their median (the lower middle, 20 ms), from the sending.
        assert_eq!(clock.due_at(sent, 3.0, ms(50)), Some(sent + ms(60)));
        // The floor when the multiple is shorter.
        assert_eq!(clock.due_at(sent, 2.0, ms(50)), Some(sent + ms(50)));
        // A stage without siblings is never due.
        let alone = PhaseClock::new(1, Instant::now() + Duration::from_secs(60));
        answered(&alone, ms(1));
        assert_eq!(alone.due_at(alone.start(), 3.0, ms(0)), None);
        // Nor is one whose duplicate would start past the deadline.
        let late = PhaseClock::new(2, Instant::now() + ms(30));
        answered(&late, ms(5));
        assert_eq!(late.due_at(late.start(), 3.0, ms(50)), None);
    }
}
