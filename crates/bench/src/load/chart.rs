//! Charts against concurrent clients: the load sweep's throughput, and p50 and p99
//! latency, and the panels the simulator's validation chart shares with it.

use std::path::Path;

use seqless_sim::plot::{MeasuredLine, MeasuredPanel, measured_chart};

use super::LoadPoint;
use crate::BenchError;

/// Draws `points` at `path` (.svg or .png): throughput and latency (log scale) side by
/// side, each panel captioned with `title`.
pub fn load_chart(title: &str, points: &[LoadPoint], path: &Path) -> Result<(), BenchError> {
    let line = |label: &str, y: fn(&LoadPoint) -> f64| MeasuredLine {
        label: label.into(),
        points: points
            .iter()
            .map(|p| (p.concurrency as f64, y(p)))
            .collect(),
        predicted: false,
    };
    let panels = clients_panels(
        title,
        vec![line("throughput", |p| p.qps)],
        vec![line("p50", |p| p.p50_ms), line("p99", |p| p.p99_ms)],
    );
    Ok(measured_chart(&panels, path)?)
}

/// The two panels of a chart against concurrent clients: throughput, and latency on a log
/// scale, captioned `{title}: throughput` and `{title}: latency`.
pub(crate) fn clients_panels(
    title: &str,
    throughput: Vec<MeasuredLine>,
    latency: Vec<MeasuredLine>,
) -> [MeasuredPanel; 2] {
    let panel = |what: &str, y_label: &str, lines, log_y| MeasuredPanel {
        title: format!("{title}: {what}"),
        x_label: "concurrent clients".into(),
        y_label: y_label.into(),
        lines,
        log_y,
    };
    [
        panel("throughput", "queries/s", throughput, false),
        panel("latency", "latency (ms)", latency, true),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_both_panels() {
        let point = |concurrency, qps| LoadPoint {
            concurrency,
            requests: 10,
            errors: 0,
            qps,
            p50_ms: 2.0,
            p99_ms: 9.0,
            speedup: qps / 100.0,
        };
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("load.svg");
        load_chart("test", &[point(1, 100.0), point(4, 350.0)], &path).unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        for text in ["test: throughput", "test: latency", "p99"] {
            assert!(svg.contains(text), "no {text:?} in the chart");
        }
    }
}
