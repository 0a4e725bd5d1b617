//! Cross-query batching: one invocation runs the same stage function for several queries
//! in flight, so they share its request fee and its per-invocation overhead.
//!
//! A stage that may share an invocation joins the oldest open batch of its function that
//! holds no stage of its own query (a query's splits must stay parallel), and the batch
//! goes out when it has one stage per query in flight (no one else can join), when it is
//! full, or when its window closes, whichever comes first. The window opens with the
//! batch's first stage and never outlasts the SLO of a query in it: a stage whose query
//! has less time left than the window goes out by its SLO. With one query in flight,
//! nothing waits.

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use seqless_functions::{
    BatchEvent, FunctionError, InvocationMeta, Invoker, StageEvent, StageResult,
};
use seqless_plan::StageKind;
use seqless_store::QueryId;
use tokio::sync::{Notify, oneshot};
use tokio::time::Instant;

/// When stages of different queries share an invocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BatchPolicy {
    /// Every stage has its own invocation.
    #[default]
    Off,
    /// Stages of one function wait up to `window` for other queries' to share an
    /// invocation with, at most `max` in one.
    Window {
        /// The longest a stage waits for company.
        window: Duration,
        /// The most stages in one invocation.
        max: usize,
    },
}

/// The default [`BatchPolicy::Window::max`].
pub const DEFAULT_BATCH_MAX: usize = 8;

/// The most stages one invocation may carry: each stage's event outside its inline values
/// is a few hundred bytes of keys, so this many fit in the payload's reserve.
pub const MOST_BATCHED: usize = 64;

/// What a batched stage gets back: its result and the whole invocation's bill, with
/// [`InvocationMeta::shared_by`] saying how many queries share it.
pub(crate) type BatchedAnswer = Result<(StageResult, InvocationMeta), FunctionError>;

/// A stage waiting in a batch.
struct Waiting {
    event: StageEvent,
    reply: oneshot::Sender<BatchedAnswer>,
}

/// A batch still taking stages.
struct Open {
    id: u64,
    kind: StageKind,
    stages: Vec<Waiting>,
    queries: HashSet<QueryId>,
    request_bytes: u64,
    reply_bytes: u64,
    closes_at: Instant,
    /// Wakes the batch's timer when a stage with an earlier SLO moves its closing time.
    moved: Arc<Notify>,
}

/// Counts a query in flight for as long as it lives.
pub(crate) struct InFlight(Arc<StageBatcher>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

/// What a stage brings to a batch besides its event.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Joining {
    /// Bytes of the stage's event as sent.
    pub request_bytes: u64,
    /// Inline bytes its result carries back.
    pub reply_bytes: u64,
    /// When its query's SLO runs out: the stage leaves by then, whatever the window.
    pub slo_deadline: Instant,
}

/// Gathers stages of the queries in flight into shared invocations.
pub(crate) struct StageBatcher {
    invoker: Arc<dyn Invoker>,
    window: Duration,
    max: usize,
    /// The most request and response bytes one invocation may carry.
    payload_budget: u64,
    in_flight: AtomicUsize,
    open: Mutex<Vec<Open>>,
    next_id: AtomicUsize,
    /// Told each invocation's batch size, for metrics.
    observer: Mutex<Option<BatchObserver>>,
}

/// Called with the number of stages of each invocation a batcher sends.
pub type BatchObserver = Arc<dyn Fn(usize) + Send + Sync>;

impl StageBatcher {
    /// A batcher under `policy` for `invoker`, or `None` when the policy is off or the
    /// invoker cannot take batches.
    pub(crate) fn new(
        policy: BatchPolicy,
        invoker: &Arc<dyn Invoker>,
        payload_budget: u64,
    ) -> Option<Arc<Self>> {
        let BatchPolicy::Window { window, max } = policy else {
            return None;
        };
        invoker.takes_batches().then(|| {
            Arc::new(Self {
                invoker: invoker.clone(),
                window,
                max: max.clamp(1, MOST_BATCHED),
                payload_budget,
                in_flight: AtomicUsize::new(0),
                open: Mutex::new(Vec::new()),
                next_id: AtomicUsize::new(0),
                observer: Mutex::new(None),
            })
        })
    }

    /// The longest a stage waits for company.
    pub(crate) fn window(&self) -> Duration {
        self.window
    }

    /// Counts a query in flight until the guard drops.
    pub(crate) fn enter(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        InFlight(self.clone())
    }

    /// Tells `observer` each invocation's batch size from now on.
    pub(crate) fn observe(&self, observer: BatchObserver) {
        *self.observer.lock().expect("observer lock") = Some(observer);
    }

    /// Whether a stage may share an invocation: not one that waits for other stages
    /// (a resident split, a stage after keys), which could wait on a stage queued behind
    /// it in the same invocation.
    pub(crate) fn takes(event: &StageEvent) -> bool {
        event.stage.kind != StageKind::Resident && event.stage.after.is_empty()
    }

    /// Runs `event` in a batch with other queries' stages of its function.
    pub(crate) async fn run(
        self: &Arc<Self>,
        event: StageEvent,
        joining: Joining,
    ) -> BatchedAnswer {
        let (reply, answer) = oneshot::channel();
        if let Some(full) = self.join(event, joining, reply) {
            self.send(full);
        }
        answer.await.unwrap_or_else(|_| {
            Err(FunctionError::retryable(
                "the batch carrying the stage was dropped before it answered",
            ))
        })
    }

    /// How many stages make a batch that no one else can join now.
    fn target(&self) -> usize {
        self.in_flight.load(Ordering::SeqCst).clamp(1, self.max)
    }

    /// Adds the stage to an open batch, or opens one; gives back a batch that is now
    /// complete, to send.
    fn join(
        self: &Arc<Self>,
        event: StageEvent,
        joining: Joining,
        reply: oneshot::Sender<BatchedAnswer>,
    ) -> Option<Open> {
        let kind = event.stage.kind;
        let query = event.query_id;
        let now = Instant::now();
        let leaves_by = (now + self.window).min(joining.slo_deadline.max(now));
        let mut open = self.open.lock().expect("batch lock");
        let fits = |b: &Open| {
            b.kind == kind
                && !b.queries.contains(&query)
                && b.stages.len() < self.max
                && b.request_bytes + joining.request_bytes <= self.payload_budget
                && b.reply_bytes + joining.reply_bytes <= self.payload_budget
        };
        let at = match open.iter().position(fits) {
            Some(at) => at,
            None => {
                let id = self.next_id.fetch_add(1, Ordering::Relaxed) as u64;
                let moved = Arc::new(Notify::new());
                open.push(Open {
                    id,
                    kind,
                    stages: Vec::new(),
                    queries: HashSet::new(),
                    request_bytes: 0,
                    reply_bytes: 0,
                    closes_at: leaves_by,
                    moved: moved.clone(),
                });
                self.time(id, moved);
                open.len() - 1
            }
        };
        let batch = &mut open[at];
        batch.stages.push(Waiting { event, reply });
        batch.queries.insert(query);
        batch.request_bytes += joining.request_bytes;
        batch.reply_bytes += joining.reply_bytes;
        if leaves_by < batch.closes_at {
            batch.closes_at = leaves_by;
            batch.moved.notify_one();
        }
        (batch.stages.len() >= self.target()).then(|| open.remove(at))
    }

    /// Sends batch `id` when its window closes, unless it went out full before.
    fn time(self: &Arc<Self>, id: u64, moved: Arc<Notify>) {
        let batcher = Arc::downgrade(self);
        tokio::spawn(async move {
            loop {
                let Some(this) = batcher.upgrade() else {
                    return;
                };
                let closes_at = {
                    let open = this.open.lock().expect("batch lock");
                    match open.iter().find(|b| b.id == id) {
                        Some(batch) => batch.closes_at,
                        None => return,
                    }
                };
                drop(this);
                tokio::select! {
                    () = tokio::time::sleep_until(closes_at) => {}
                    () = moved.notified() => continue,
                }
                let Some(this) = batcher.upgrade() else {
                    return;
                };
                let due = {
                    let mut open = this.open.lock().expect("batch lock");
                    let at = open.iter().position(|b| b.id == id);
                    match at {
                        Some(at) if open[at].closes_at <= Instant::now() => Some(open.remove(at)),
                        Some(_) => None,
                        None => return,
                    }
                };
                if let Some(batch) = due {
                    this.send(batch);
                    return;
                }
            }
        });
    }

    /// Invokes a batch's function once for all its stages and answers each.
    fn send(&self, batch: Open) {
        let invoker = self.invoker.clone();
        let size = batch.stages.len();
        if let Some(observer) = self.observer.lock().expect("observer lock").as_ref() {
            observer(size);
        }
        tokio::spawn(async move {
            let (events, replies): (Vec<_>, Vec<_>) =
                batch.stages.into_iter().map(|w| (w.event, w.reply)).unzip();
            if size == 1 {
                let answer = invoker.invoke(&events[0]).await;
                if let Some(reply) = replies.into_iter().next() {
                    let _ = reply.send(answer);
                }
                return;
            }
            let batch = BatchEvent { batch: events };
            match invoker.invoke_batch(&batch).await {
                Ok((outcomes, meta)) => {
                    let meta = InvocationMeta {
                        shared_by: size as u32,
                        ..meta
                    };
                    for (outcome, reply) in outcomes.into_iter().zip(replies) {
                        let answer = match outcome {
                            Ok(result) => Ok((result, meta.clone())),
                            Err(err) => Err(err.billed(meta.clone())),
                        };
                        let _ = reply.send(answer);
                    }
                }
                Err(err) => {
                    for reply in replies {
                        let _ = reply.send(Err(shared_failure(&err, size)));
                    }
                }
            }
        });
    }
}

/// Each stage's copy of a failure of the whole invocation, billed at its share.
fn shared_failure(err: &FunctionError, size: usize) -> FunctionError {
    let copy = FunctionError::Failed {
        kind: err.kind(),
        message: err.to_string(),
    };
    match err.billing() {
        Some(meta) => copy.billed(InvocationMeta {
            shared_by: size as u32,
            ..meta.clone()
        }),
        None => copy,
    }
}
