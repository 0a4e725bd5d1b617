//! `seqless bench serverless`: serverless latency per plan and split count against the
//! monolithic forward measured in the same run, with bytes moved.
//!
//! A configuration that cannot run (the paper plan at an input whose activation is over
//! the store's largest value, a store that fails mid-run) is reported as a failed row
//! and the sweep goes on, so one impossible combination does not cost the rest of a
//! long bench; the caller still learns how many failed.

use seqless_coordinator::{Coordinator, CoordinatorError, Trace};
use seqless_plan::{PlanKind, Transfer};

use crate::stats::median;

/// The CSV's header line.
pub const CSV_HEADER: &str = "bytes,plan,splits,median_ms,monolithic_ms,ratio,bytes_moved,serial_bytes,invocations,cost_usd,transfer,inline_bytes,error\n";

/// One configuration of the sweep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Configuration {
    /// Query bytes.
    pub bytes: usize,
    /// The plan.
    pub plan: PlanKind,
    /// Splits asked for; a measured row reports the splits the plan used instead.
    pub splits: usize,
    /// How values move between functions.
    pub transfer: Transfer,
}

/// One configuration, and what it measured or why it failed.
struct Row {
    config: Configuration,
    outcome: Result<Measured, String>,
}

/// A configuration that ran.
#[derive(Debug, Clone, PartialEq)]
pub struct Measured {
    /// Conv splits of the first layer, as planned.
    pub splits_used: usize,
    /// Median serverless wall time, ms.
    pub median_ms: f64,
    /// Median monolithic forward time of the same input, ms.
    pub monolithic_ms: f64,
    /// Bytes through the store per query.
    pub bytes_moved: u64,
    /// Bytes read and written by the serial stages per query.
    pub serial_bytes: u64,
    /// Bytes carried inside invocations instead of the store, per query.
    pub inline_bytes: u64,
    /// Function invocations per query.
    pub invocations: usize,
    /// Median of the runs' function bills (requests, GB-s and INIT, waits included), USD
    /// per query.
    pub cost_usd: f64,
}

impl Measured {
    /// A configuration's figures: the median time and bill of the timed runs' `traces`
    /// against the monolithic time, and the traffic of the last (the same every run).
    pub fn new(traces: &[Trace], monolithic_ms: f64) -> Self {
        let ms: Vec<f64> = traces.iter().map(|t| t.total_ms).collect();
        let costs: Vec<f64> = traces.iter().map(|t| t.cost_usd).collect();
        let Some(trace) = traces.last() else {
            return Self {
                splits_used: 0,
                median_ms: f64::NAN,
                monolithic_ms,
                bytes_moved: 0,
                serial_bytes: 0,
                inline_bytes: 0,
                invocations: 0,
                cost_usd: f64::NAN,
            };
        };
        Self {
            splits_used: trace.splits.first().copied().unwrap_or(0),
            median_ms: median(&ms).unwrap_or(f64::NAN),
            monolithic_ms,
            bytes_moved: trace.bytes_moved,
            serial_bytes: trace.serial_bytes,
            inline_bytes: trace.inline_bytes,
            invocations: trace.invocations.len(),
            cost_usd: median(&costs).unwrap_or(f64::NAN),
        }
    }
}

/// Classifies `input` once to warm up (instances start cold there, not in the timed
/// runs), then `runs` times (at least once); returns each timed run's trace.
pub async fn time_queries(
    coordinator: &Coordinator,
    input: &[u8],
    runs: usize,
) -> Result<Vec<Trace>, CoordinatorError> {
    coordinator.classify(input).await?;
    let mut traces = Vec::with_capacity(runs.max(1));
    for _ in 0..runs.max(1) {
        traces.push(coordinator.classify(input).await?.trace);
    }
    Ok(traces)
}

/// Columns of the table after bytes and plan, with their widths; the CSV has these and
/// `invocations` and `cost_usd` (see [`measured_cells`]).
const TABLE_COLUMNS: [(&str, usize); 6] = [
    ("splits", 6),
    ("median_ms", 11),
    ("mono_ms", 11),
    ("ratio", 7),
    ("bytes_moved", 12),
    ("serial_bytes", 12),
];

/// A measured row's cells in CSV order from `splits` on, times and ratio with `prec`
/// decimals; the table shows all but the last two (`invocations`, `cost_usd`).
fn measured_cells(m: &Measured, prec: usize) -> [String; 8] {
    [
        m.splits_used.to_string(),
        format!("{:.prec$}", m.median_ms),
        format!("{:.prec$}", m.monolithic_ms),
        format!("{:.prec$}", m.median_ms / m.monolithic_ms),
        m.bytes_moved.to_string(),
        m.serial_bytes.to_string(),
        m.invocations.to_string(),
        format!("{:.9}", m.cost_usd),
    ]
}

/// The table's header line.
pub fn table_header() -> String {
    let cells: Vec<String> = TABLE_COLUMNS
        .iter()
        .map(|(name, width)| format!("{name:>width$}"))
        .collect();
    let head = format!("{:>9} {:>8} {:>8}", "bytes", "plan", "transfer");
    format!("{head} {}", cells.join(" "))
}

fn table_line(row: &Row) -> String {
    let c = &row.config;
    let head = format!(
        "{:>9} {:>8} {:>8}",
        c.bytes,
        c.plan.as_str(),
        c.transfer.as_str()
    );
    match &row.outcome {
        Ok(m) => {
            let cells: Vec<String> = measured_cells(m, 2)
                .iter()
                .zip(TABLE_COLUMNS)
                .map(|(cell, (_, width))| format!("{cell:>width$}"))
                .collect();
            format!("{head} {}", cells.join(" "))
        }
        Err(e) => format!("{head} {:>6}  failed: {e}", c.splits),
    }
}

/// The row in [`CSV_HEADER`]'s columns: numbers empty and `error` set for a failure.
fn csv_line(row: &Row) -> String {
    let c = &row.config;
    let head = format!("{},{}", c.bytes, c.plan.as_str());
    let transfer = c.transfer.as_str();
    match &row.outcome {
        Ok(m) => format!(
            "{head},{},{transfer},{},",
            measured_cells(m, 3).join(","),
            m.inline_bytes
        ),
        Err(e) => format!(
            "{head},{},,,,,,,,{transfer},,\"{}\"",
            c.splits,
            e.replace('"', "\"\"")
        ),
    }
}

/// Runs `measure` for every configuration, handing each row's table line to `line` as it
/// finishes; a configuration that fails (with its reason) becomes a failed row. Returns
/// the CSV text and the failure count.
pub fn sweep(
    configs: impl IntoIterator<Item = Configuration>,
    mut measure: impl FnMut(&Configuration) -> Result<Measured, String>,
    mut line: impl FnMut(&str),
) -> (String, usize) {
    let mut csv = String::from(CSV_HEADER);
    let mut failed = 0;
    for config in configs {
        let outcome = measure(&config);
        failed += usize::from(outcome.is_err());
        let row = Row { config, outcome };
        line(&table_line(&row));
        csv.push_str(&csv_line(&row));
        csv.push('\n');
    }
    (csv, failed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn measured(median_ms: f64) -> Measured {
        Measured {
            splits_used: 2,
            median_ms,
            monolithic_ms: 100.0,
            bytes_moved: 10,
            serial_bytes: 4,
            inline_bytes: 0,
            invocations: 3,
            cost_usd: 0.000002,
        }
    }

    #[test]
    fn a_failed_configuration_is_a_row_and_the_sweep_goes_on() {
        let configs = [
            (64, PlanKind::Fused),
            (1024, PlanKind::Paper),
            (1024, PlanKind::Fused),
        ]
        .map(|(bytes, plan)| Configuration {
            bytes,
            plan,
            splits: 2,
            transfer: Transfer::Store,
        });
        let mut ran = Vec::new();
        let mut lines = Vec::new();
        let (csv, failed) = sweep(
            configs,
            |c| {
                ran.push(c.bytes);
                match c.plan {
                    PlanKind::Paper => {
                        Err("planning failed: a value \"too big\", over the bound".into())
                    }
                    PlanKind::Fused | PlanKind::Resident => Ok(measured(c.bytes as f64 / 8.0)),
                }
            },
            |l| lines.push(l.to_owned()),
        );
        assert_eq!(ran, [64, 1024, 1024], "every configuration ran");
        assert_eq!(failed, 1);
        assert_eq!(lines.len(), 3, "one table line per configuration");
        let csv: Vec<&str> = csv.lines().collect();
        assert_eq!(csv[0], CSV_HEADER.trim_end());
        assert_eq!(
            csv[1],
            "64,fused,2,8.000,100.000,0.080,10,4,3,0.000002000,store,0,"
        );
        assert_eq!(
            csv[2],
            "1024,paper,2,,,,,,,,store,,\"planning failed: a value \"\"too big\"\", over the bound\""
        );
        assert_eq!(
            csv[3],
            "1024,fused,2,128.000,100.000,1.280,10,4,3,0.000002000,store,0,"
        );
        let columns = |line: &str| line.split(',').count();
        assert_eq!(columns(csv[0]), columns(csv[1]));
    }

    #[test]
    fn a_failed_row_in_the_table_names_the_reason() {
        let row = Row {
            config: Configuration {
                bytes: 1024,
                plan: PlanKind::Paper,
                splits: 2,
                transfer: Transfer::Inline,
            },
            outcome: Err("planning failed: over the store's largest value".into()),
        };
        let line = table_line(&row);
        assert!(
            line.contains("paper") && line.contains("failed: planning failed"),
            "{line}"
        );
    }
}
