//! The simulator's validation table (`scripts/validate-sim.sh` writes it: each query size at
//! each number of clients, measured on this machine and predicted by `seqless simulate`) as
//! a chart: for each size, throughput beside p50 and p99 latency, each prediction dashed in
//! the colour of what it predicts.

use std::path::Path;

use seqless_sim::plot::{MeasuredLine, measured_chart};
use serde::Deserialize;

use crate::BenchError;
use crate::load::clients_panels;

/// One row of the table: one query size at one number of clients. Other columns (the
/// relative errors) are read past.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ValidationRow {
    /// Every query's size, bytes.
    pub bytes: usize,
    /// Closed-loop clients.
    pub clients: usize,
    /// Queries/s `seqless bench load` measured.
    pub measured_qps: f64,
    /// Queries/s the simulator predicted.
    pub predicted_qps: f64,
    /// Measured median latency, ms.
    pub measured_p50_ms: f64,
    /// Predicted median latency, ms.
    pub predicted_p50_ms: f64,
    /// Measured 99th-percentile latency, ms.
    pub measured_p99_ms: f64,
    /// Predicted 99th-percentile latency, ms.
    pub predicted_p99_ms: f64,
}

/// One column of the table.
type Column = fn(&ValidationRow) -> f64;

/// Reads the table at `path`, naming the file, and the line and column, in any refusal.
pub fn read_validation(path: &Path) -> Result<Vec<ValidationRow>, BenchError> {
    let refuse = |reason: String| BenchError::Table {
        path: path.to_path_buf(),
        reason,
    };
    let mut reader = csv::Reader::from_path(path).map_err(|e| refuse(e.to_string()))?;
    let headers = reader.headers().map_err(|e| refuse(e.to_string()))?.clone();
    let rows = reader
        .deserialize()
        .collect::<Result<Vec<ValidationRow>, csv::Error>>()
        .map_err(|e| refuse(where_in(&e, &headers)))?;
    if rows.is_empty() {
        return Err(refuse("no rows".into()));
    }
    Ok(rows)
}

/// A refused value's line and column, by name, and why; the error as it is otherwise.
fn where_in(err: &csv::Error, headers: &csv::StringRecord) -> String {
    match err.kind() {
        csv::ErrorKind::Deserialize {
            pos: Some(pos),
            err: cause,
        } => {
            let column = cause
                .field()
                .and_then(|i| headers.get(usize::try_from(i).ok()?))
                .unwrap_or("?");
            format!("line {}, column `{column}`: {}", pos.line(), cause.kind())
        }
        _ => err.to_string(),
    }
}

/// Draws `rows` at `path` (.svg or .png): a throughput and a latency panel (log scale) per
/// query size, in the order the sizes first appear, clients along x.
pub fn validation_chart(rows: &[ValidationRow], path: &Path) -> Result<(), BenchError> {
    let mut sizes: Vec<usize> = Vec::new();
    for row in rows {
        if !sizes.contains(&row.bytes) {
            sizes.push(row.bytes);
        }
    }
    let mut panels = Vec::new();
    for bytes in sizes {
        let mut at_size: Vec<&ValidationRow> = rows.iter().filter(|r| r.bytes == bytes).collect();
        at_size.sort_by_key(|r| r.clients);
        // A quantity's measured line, then its prediction.
        let pair = |name: &str, measured: Column, predicted: Column| {
            [
                (measured, "measured", false),
                (predicted, "predicted", true),
            ]
            .map(|(y, what, predicted)| MeasuredLine {
                label: format!("{name}{what}"),
                points: at_size.iter().map(|r| (r.clients as f64, y(r))).collect(),
                predicted,
            })
        };
        panels.extend(clients_panels(
            &format!("{bytes} B"),
            pair("", |r| r.measured_qps, |r| r.predicted_qps).into(),
            [
                pair("p50 ", |r| r.measured_p50_ms, |r| r.predicted_p50_ms),
                pair("p99 ", |r| r.measured_p99_ms, |r| r.predicted_p99_ms),
            ]
            .concat(),
        ));
    }
    Ok(measured_chart(&panels, path)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str = "bytes,clients,measured_qps,predicted_qps,measured_p50_ms,\
        predicted_p50_ms,measured_p99_ms,predicted_p99_ms,qps_error";

    #[test]
    fn reads_the_table_and_draws_a_pair_of_panels_per_size() {
        let dir = tempfile::tempdir().unwrap();
        let table = dir.path().join("validation.csv");
        let body = [
            "4096,2,160,190,12,9,20,21,0.19",
            "4096,1,144,134,7,7,9,13,-0.07",
            "65536,1,20,22,50,48,70,80,0.1",
        ];
        std::fs::write(&table, format!("{HEADER}\n{}\n", body.join("\n"))).unwrap();
        let rows = read_validation(&table).unwrap();
        assert_eq!(rows.len(), 3);
        assert_eq!((rows[1].bytes, rows[1].clients), (4096, 1));
        assert_eq!(rows[2].predicted_p99_ms, 80.0);
        let chart = dir.path().join("validation.svg");
        validation_chart(&rows, &chart).unwrap();
        let svg = std::fs::read_to_string(&chart).unwrap();
        for title in ["4096 B: throughput", "4096 B: latency", "65536 B: latency"] {
            assert!(svg.contains(title), "{title} missing");
        }
        assert!(svg.contains("p99 predicted"));
    }

    #[test]
    fn a_bad_table_is_refused_naming_the_file_line_and_column() {
        let dir = tempfile::tempdir().unwrap();
        let table = dir.path().join("validation.csv");
        std::fs::write(&table, format!("{HEADER}\n4096,1,fast,1,1,1,1,1,0\n")).unwrap();
        let err = read_validation(&table).unwrap_err().to_string();
        assert!(
            err.contains("validation.csv") && err.contains("line 2, column `measured_qps`"),
            "{err}"
        );
        std::fs::write(&table, format!("{HEADER}\n")).unwrap();
        let err = read_validation(&table).unwrap_err().to_string();
        assert!(err.contains("no rows"), "{err}");
        let err = read_validation(&dir.path().join("absent.csv"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("absent.csv"), "{err}");
    }
}
