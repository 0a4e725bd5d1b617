//! The files `seqless simulate --out DIR` writes: the report, its CSVs and its charts.

use std::path::{Path, PathBuf};

use crate::{SimError, SimReport, Sweep, plot};

/// Writes `contents` to `dir/name`, naming the file in any error; returns the path.
fn write(dir: &Path, name: &str, contents: &str) -> Result<PathBuf, SimError> {
    let path = dir.join(name);
    std::fs::write(&path, contents).map_err(|cause| SimError::Io {
        path: path.clone(),
        cause,
    })?;
    Ok(path)
}

/// Writes the report, CSVs and plots (and the sweep's, if any) into `dir`, creating it;
/// returns what was written.
pub fn write_outputs(
    dir: &Path,
    report: &SimReport,
    sweep: Option<&Sweep>,
) -> Result<Vec<PathBuf>, SimError> {
    std::fs::create_dir_all(dir).map_err(|cause| SimError::Io {
        path: dir.to_path_buf(),
        cause,
    })?;
    let mut written = vec![
        write(dir, "report.json", &(report.to_json() + "\n"))?,
        write(dir, "timeline.csv", &report.timeline_csv())?,
        write(dir, "queries.csv", &report.queries_csv())?,
    ];
    let draw = |name: &str, chart: &dyn Fn(&Path) -> Result<(), SimError>| {
        let path = dir.join(name);
        chart(&path).map(|()| path)
    };
    written.push(draw("cost_vs_utilisation.svg", &|p| {
        plot::cost_vs_utilisation(report, p)
    })?);
    written.push(draw("timeline.svg", &|p| plot::timeline(report, p))?);
    if let Some(sweep) = sweep {
        written.push(write(dir, "sweep.json", &(sweep.to_json() + "\n"))?);
        written.push(write(dir, "sweep.csv", &sweep.to_csv())?);
        for name in ["throughput_vs_load.svg", "throughput_vs_load.png"] {
            written.push(draw(name, &|p| plot::throughput_vs_load(sweep, p))?);
        }
        written.push(draw("latency_vs_load.svg", &|p| {
            plot::latency_vs_load(sweep, p)
        })?);
    }
    Ok(written)
}
