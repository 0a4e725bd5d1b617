//! The fixed deployment: N always-on instances serving one FIFO queue, each
//! taking up to `max_batch` waiting queries at a time, like a GPU server.

use std::collections::VecDeque;

use crate::SimConfig;
use crate::events::EventQueue;
use crate::record::{DeploymentStats, Recorder};
use crate::workload::{Workload, us};

/// What the instance run measured, before pricing.
pub(crate) struct InstanceOutcome {
    pub stats: DeploymentStats,
    /// Instance-µs spent serving inside the arrival window.
    pub busy_us: u64,
    pub max_queue: usize,
    pub mean_len: f64,
}

enum Event {
    Arrival,
    BatchDone { instance: usize },
}

/// Runs the instance deployment over the workload. Batching is greedy: a free
/// instance takes whatever is queued, up to `max_batch`, without waiting for
/// a batch to fill.
pub(crate) fn simulate(config: &SimConfig, workload: &Workload) -> InstanceOutcome {
    let cfg = &config.instances;
    let mut recorder = Recorder::new(us(config.timeline_bucket_s), workload.window_us);
    let mut events = EventQueue::new();
    for t in workload.initial_arrivals() {
        events.push(t, Event::Arrival);
    }
    let end = workload.window_us + us(config.drain_s);
    let mut lengths = workload.length_sampler();
    let mut queue: VecDeque<usize> = VecDeque::new();
    let mut free: Vec<usize> = (0..cfg.count as usize).rev().collect();
    let mut batches: Vec<Vec<usize>> = vec![Vec::new(); cfg.count as usize];
    let (mut busy_us, mut max_queue) = (0u64, 0usize);
    while let Some((t, event)) = events.pop_until(end) {
        match event {
            Event::Arrival => {
                let id = recorder.arrive(t, lengths.next_len());
                queue.push_back(id);
                max_queue = max_queue.max(queue.len());
            }
            Event::BatchDone { instance } => {
                for id in std::mem::take(&mut batches[instance]) {
                    recorder.complete(id, t);
                    if let Some(next) = workload.next_after_completion(t) {
                        events.push(next, Event::Arrival);
                    }
                }
                free.push(instance);
            }
        }
        while !queue.is_empty() {
            let Some(instance) = free.pop() else { break };
            let n = queue.len().min(cfg.max_batch as usize);
            let batch: Vec<usize> = queue.drain(..n).collect();
            let bytes: usize = batch.iter().map(|&id| recorder.len_of(id)).sum();
            let done = t + us(cfg.batch_ms(n, bytes as f64) / 1000.0);
            busy_us += done.min(workload.window_us) - t.min(workload.window_us);
            batches[instance] = batch;
            events.push(done, Event::BatchDone { instance });
        }
        recorder.concurrency(t, cfg.count - free.len() as u32);
    }
    let mean_len = recorder.mean_len();
    InstanceOutcome {
        stats: recorder.finish(),
        busy_us,
        max_queue,
        mean_len,
    }
}
