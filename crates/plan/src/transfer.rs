//! Which values travel inside invocations instead of through the store.
//!
//! A value can go inline when the coordinator sees it pass: the master's token ids, and
//! any output of a stage that no other function waits for while it runs. The coordinator
//! then carries it from the writer's response to each reader's request, where every
//! payload must stay under Lambda's limit for a synchronous invocation (6 MB each way,
//! JSON included). Small values first: they save a store round trip each for the fewest
//! payload bytes.

use std::collections::{BTreeSet, HashMap};
use std::ops::Range;

use seqless_model::ModelConfig;
use seqless_wire::inline_json_bytes;

use crate::{INPUT_KEY, Plan};

/// How a plan's values move between functions.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum Transfer {
    /// Every value through the store.
    #[default]
    Store,
    /// Values that fit in the invocations' payloads inline, the rest through the store.
    Inline,
}

impl Transfer {
    /// The name the command line and reports use.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Store => "store",
            Self::Inline => "inline",
        }
    }
}

/// What one event or result holds besides its inline values: the stage, the keys, the
/// logits and the JSON around them (a few KB at most), with room to spare.
pub const PAYLOAD_RESERVE_BYTES: u64 = 64 * 1024;

/// The default largest value sent inline (`--inline-max-bytes`): 256 KiB. Larger values
/// move faster through the store (docs/results.md, "Inline values").
pub const DEFAULT_INLINE_MAX_BYTES: u64 = 256 * 1024;

/// Who writes and who reads one value, and what each reader reads of it.
struct Flow {
    bytes: u64,
    /// The stage that writes it (index in the flattened plan); `None` for the master.
    writer: Option<usize>,
    /// Each reading stage with the payload bytes it reads.
    readers: HashMap<usize, u64>,
}

impl Plan {
    /// The keys whose values travel inline under a `payload_limit` for every invocation's
    /// request and response: greedily, smallest first, every value of at most
    /// `max_value_bytes` that fits in its writer's response and each of its readers'
    /// requests beside those already chosen.
    pub fn inline_keys(
        &self,
        config: &ModelConfig,
        payload_limit: u64,
        max_value_bytes: u64,
    ) -> BTreeSet<String> {
        let stages: Vec<_> = self.phases.iter().flatten().collect();
        let sizes = self.value_sizes(config);
        // Values other functions wait for in the store cannot pass through the coordinator.
        let awaited: BTreeSet<String> = stages
            .iter()
            .filter(|s| s.op.is_awaited())
            .flat_map(|s| s.op.written_keys())
            .chain(stages.iter().flat_map(|s| s.after.iter().cloned()))
            .collect();
        let mut flows: HashMap<&str, Flow> = sizes
            .iter()
            .filter(|(key, _)| !awaited.contains(**key))
            .map(|(&key, size)| {
                let flow = Flow {
                    bytes: size.bytes,
                    writer: None,
                    readers: HashMap::new(),
                };
                (key, flow)
            })
            .collect();
        for (index, stage) in stages.iter().enumerate() {
            for key in stage.op.written_keys() {
                if let Some(flow) = flows.get_mut(key.as_str()) {
                    flow.writer = Some(index);
                }
            }
            for (key, rows) in read_windows(&stage.op) {
                let (Some(flow), Some(size)) = (flows.get_mut(key), sizes.get(key)) else {
                    continue;
                };
                flow.readers.insert(index, size.read_bytes(rows));
            }
        }
        let budget = payload_limit.saturating_sub(PAYLOAD_RESERVE_BYTES);
        let mut request = vec![0u64; stages.len()];
        let mut response = vec![0u64; stages.len()];
        let mut order: Vec<(&str, Flow)> = flows
            .into_iter()
            .filter(|(key, flow)| *key == INPUT_KEY || flow.writer.is_some())
            .filter(|(_, flow)| flow.bytes <= max_value_bytes)
            .collect();
        order.sort_by(|a, b| (a.1.bytes, a.0).cmp(&(b.1.bytes, b.0)));
        let mut inline = BTreeSet::new();
        for (key, flow) in order {
            let out = inline_json_bytes(key, flow.bytes);
            let fits_out = flow.writer.is_none_or(|w| response[w] + out <= budget);
            let fits_in = (flow.readers.iter())
                .all(|(&r, &bytes)| request[r] + inline_json_bytes(key, bytes) <= budget);
            if !(fits_out && fits_in) {
                continue;
            }
            if let Some(w) = flow.writer {
                response[w] += out;
            }
            for (&r, &bytes) in &flow.readers {
                request[r] += inline_json_bytes(key, bytes);
            }
            inline.insert(key.to_owned());
        }
        inline
    }
}

impl Plan {
    /// Every stage's store traffic when the `inline` keys travel in the invocations
    /// instead: [`Plan::traffic`] less the bytes of those keys each stage reads and writes.
    pub fn store_traffic(
        &self,
        config: &ModelConfig,
        inline: &BTreeSet<String>,
    ) -> Vec<Vec<crate::StageTraffic>> {
        let sizes = self.value_sizes(config);
        let stages = self.phases.iter();
        stages
            .zip(self.traffic(config))
            .map(|(stages, traffic)| {
                stages
                    .iter()
                    .zip(traffic)
                    .map(|(stage, t)| {
                        let read: u64 = (read_windows(&stage.op).into_iter())
                            .filter(|(k, _)| inline.contains(*k))
                            .filter_map(|(k, rows)| sizes.get(k).map(|v| v.read_bytes(rows)))
                            .sum();
                        let written: u64 = (stage.op.written_keys().iter())
                            .filter(|k| inline.contains(k.as_str()))
                            .filter_map(|k| sizes.get(k.as_str()).map(|v| v.bytes))
                            .sum();
                        crate::StageTraffic {
                            bytes_in: t.bytes_in.saturating_sub(read),
                            bytes_out: t.bytes_out.saturating_sub(written),
                        }
                    })
                    .collect()
            })
            .collect()
    }

    /// The payload bytes, JSON included, of the values `stage` returns inline when the
    /// `inline` keys travel in the invocations: what its result carries back.
    pub fn inline_reply_bytes(
        &self,
        config: &ModelConfig,
        stage: &crate::Stage,
        inline: &BTreeSet<String>,
    ) -> u64 {
        let sizes = self.value_sizes(config);
        (stage.op.written_keys().iter())
            .filter(|k| inline.contains(k.as_str()))
            .filter_map(|k| sizes.get(k.as_str()).map(|v| inline_json_bytes(k, v.bytes)))
            .sum()
    }
}

/// Each key a stage reads with the rows it needs of it: the span of its pieces, or `None`
/// for the whole value.
pub fn read_windows(op: &crate::StageOp) -> Vec<(&str, Option<Range<usize>>)> {
    let mut windows: Vec<(&str, Option<Range<usize>>)> = Vec::new();
    for read in op.reads() {
        match windows.iter_mut().find(|(k, _)| *k == read.key) {
            Some((_, window)) => {
                *window = match (window.take(), read.rows) {
                    (Some(a), Some(b)) => Some(a.start.min(b.start)..a.end.max(b.end)),
                    _ => None,
                }
            }
            None => windows.push((read.key, read.rows)),
        }
    }
    windows
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{LAMBDA_PAYLOAD_BYTES, Limits, PlanKind, Splits, plan};
    use seqless_wire::inline_json_bytes;

    fn config() -> ModelConfig {
        use seqless_model::{GateActivation, Modulation};
        seqless_model::testing::config(
            4,
            "8:3:2:4,6:3:1:4",
            Modulation::Scale,
            GateActivation::Sigmoid,
            2,
        )
    }

    /// Each stage's inline request and response bytes under `inline`.
    fn payloads(p: &Plan, config: &ModelConfig, inline: &BTreeSet<String>) -> Vec<(u64, u64)> {
        let sizes = p.value_sizes(config);
        p.phases
            .iter()
            .flatten()
            .map(|stage| {
                let request = read_windows(&stage.op)
                    .into_iter()
                    .filter(|(k, _)| inline.contains(*k))
                    .map(|(k, rows)| inline_json_bytes(k, sizes[k].read_bytes(rows)))
                    .sum();
                (request, p.inline_reply_bytes(config, stage, inline))
            })
            .collect()
    }

    #[test]
    fn inline_keys_leave_the_store_traffic() {
        let config = config();
        for kind in [PlanKind::Fused, PlanKind::Paper] {
            let p = plan(&config, 2_000, kind, Splits::Fixed(3), &Limits::default()).unwrap();
            let flat = |t: Vec<Vec<crate::StageTraffic>>| -> Vec<(u64, u64)> {
                t.into_iter()
                    .flatten()
                    .map(|t| (t.bytes_in, t.bytes_out))
                    .collect()
            };
            let none = flat(p.store_traffic(&config, &BTreeSet::new()));
            assert_eq!(none, flat(p.traffic(&config)), "{kind:?}");
            let all = p.inline_keys(&config, LAMBDA_PAYLOAD_BYTES, u64::MAX);
            let left = flat(p.store_traffic(&config, &all));
            assert!(left.iter().all(|&t| t == (0, 0)), "{kind:?}: {left:?}");
            // One key inline takes its bytes off its writer and each reader.
            let one: BTreeSet<String> = all.iter().take(1).cloned().collect();
            let some = flat(p.store_traffic(&config, &one));
            let total = |t: &[(u64, u64)]| t.iter().map(|(i, o)| i + o).sum::<u64>();
            assert!(total(&some) < total(&none), "{kind:?}");
        }
    }

    #[test]
    fn a_short_query_travels_wholly_inline() {
        let config = config();
        for kind in [PlanKind::Fused, PlanKind::Paper] {
            let p = plan(&config, 2_000, kind, Splits::Fixed(3), &Limits::default()).unwrap();
            let inline = p.inline_keys(&config, LAMBDA_PAYLOAD_BYTES, u64::MAX);
            let written: BTreeSet<String> = p.written_keys().into_iter().collect();
            assert_eq!(inline, written, "{kind:?}");
            // Values over the cap stay in the store, whatever room the payloads have.
            let sizes = p.value_sizes(&config);
            let cap = sizes.values().map(|v| v.bytes).min().unwrap();
            let capped = p.inline_keys(&config, LAMBDA_PAYLOAD_BYTES, cap);
            assert!(
                !capped.is_empty() && capped.len() < written.len(),
                "{capped:?}"
            );
            assert!(capped.iter().all(|k| sizes[k.as_str()].bytes <= cap));
        }
    }

    #[test]
    fn values_other_functions_wait_for_stay_in_the_store() {
        let config = config();
        let p = plan(
            &config,
            2_000,
            PlanKind::Resident,
            Splits::Fixed(3),
            &Limits::default(),
        )
        .unwrap();
        let inline = p.inline_keys(&config, LAMBDA_PAYLOAD_BYTES, u64::MAX);
        // Only the token ids pass through the coordinator; every resident output and the
        // signalled LSTM outputs are waited for in the store.
        assert_eq!(inline, BTreeSet::from([INPUT_KEY.to_owned()]));
    }

    #[test]
    fn no_payload_goes_over_the_limit_and_smaller_limits_inline_less() {
        let config = config();
        let mut previous = usize::MAX;
        for room in [400_000u64, 100_000, 20_000, 2_000, 0] {
            let limit = PAYLOAD_RESERVE_BYTES + room;
            let p = plan(
                &config,
                60_000,
                PlanKind::Fused,
                Splits::Fixed(4),
                &Limits::default(),
            )
            .unwrap();
            let inline = p.inline_keys(&config, limit, u64::MAX);
            for (request, response) in payloads(&p, &config, &inline) {
                assert!(
                    request <= room && response <= room,
                    "{room}: {request} {response}"
                );
            }
            assert!(inline.len() <= previous, "{room}: {inline:?}");
            previous = inline.len();
        }
        assert_eq!(previous, 0, "no room, nothing inline");
    }

    #[test]
    fn a_reader_gets_the_span_of_its_pieces_of_a_value() {
        let config = config();
        let p = plan(
            &config,
            5_000,
            PlanKind::Fused,
            Splits::Fixed(3),
            &Limits::default(),
        )
        .unwrap();
        let second = &p.phases[0][1];
        let windows = read_windows(&second.op);
        let input = windows.iter().find(|(k, _)| *k == INPUT_KEY).unwrap();
        let rows = input
            .1
            .clone()
            .expect("a conv split reads a window of the token ids");
        assert!(rows.start > 0 && rows.end < p.padded_len, "{rows:?}");
        assert_eq!(windows.iter().filter(|(k, _)| *k == INPUT_KEY).count(), 1);
    }
}
