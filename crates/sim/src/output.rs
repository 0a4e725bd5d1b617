//! The files `seqless simulate --out DIR` writes: the report, its CSVs and its charts.
//!
//! Every file is first written into a fresh directory beside `DIR` and moved into `DIR`
//! only once all of them were written, so a failure (a plot that cannot be drawn, a full
//! disk) leaves `DIR` as it was rather than half-written.

use std::path::{Path, PathBuf};

use crate::{SimError, SimReport, SizeSweep, Sweep, plot};

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> SimError + '_ {
    move |cause| SimError::Io {
        path: path.to_path_buf(),
        cause,
    }
}

/// Writes `contents` to `dir/name`, naming the file in any error; returns the name.
fn write(dir: &Path, name: &str, contents: &str) -> Result<String, SimError> {
    let path = dir.join(name);
    std::fs::write(&path, contents).map_err(io(&path))?;
    Ok(name.into())
}

/// Draws one chart into `dir/name`; returns the name.
fn draw(
    dir: &Path,
    name: &str,
    chart: &dyn Fn(&Path) -> Result<(), SimError>,
) -> Result<String, SimError> {
    chart(&dir.join(name)).map(|()| name.into())
}

/// Every file of a run, written into `dir`; returns their names.
fn write_all(
    dir: &Path,
    report: &SimReport,
    sweep: Option<&Sweep>,
    sizes: Option<&SizeSweep>,
) -> Result<Vec<String>, SimError> {
    let mut written = vec![
        write(dir, "report.json", &(report.to_json() + "\n"))?,
        write(dir, "timeline.csv", &report.timeline_csv())?,
        write(dir, "queries.csv", &report.queries_csv())?,
        draw(dir, "cost_vs_utilisation.svg", &|p| {
            plot::cost_vs_utilisation(report, p)
        })?,
        draw(dir, "timeline.svg", &|p| plot::timeline(report, p))?,
    ];
    if let Some(sweep) = sweep {
        written.extend(sweep_files(
            dir,
            ("sweep", "load"),
            (sweep.to_json(), sweep.to_csv()),
            &|p| plot::throughput_vs_load(sweep, p),
            &|p| plot::latency_vs_load(sweep, p),
        )?);
    }
    if let Some(sizes) = sizes {
        written.extend(sweep_files(
            dir,
            ("size_sweep", "size"),
            (sizes.to_json(), sizes.to_csv()),
            &|p| plot::throughput_vs_size(sizes, p),
            &|p| plot::latency_vs_size(sizes, p),
        )?);
    }
    Ok(written)
}

/// A sweep's files: `{stem}.json`, `{stem}.csv`, `throughput_vs_{axis}` (SVG and PNG) and
/// `latency_vs_{axis}.svg`.
fn sweep_files(
    dir: &Path,
    (stem, axis): (&str, &str),
    (json, csv): (String, String),
    throughput: &dyn Fn(&Path) -> Result<(), SimError>,
    latency: &dyn Fn(&Path) -> Result<(), SimError>,
) -> Result<Vec<String>, SimError> {
    let mut written = vec![
        write(dir, &format!("{stem}.json"), &(json + "\n"))?,
        write(dir, &format!("{stem}.csv"), &csv)?,
    ];
    for ext in ["svg", "png"] {
        written.push(draw(
            dir,
            &format!("throughput_vs_{axis}.{ext}"),
            throughput,
        )?);
    }
    written.push(draw(dir, &format!("latency_vs_{axis}.svg"), latency)?);
    Ok(written)
}

/// Writes the report, CSVs and plots (and the sweeps', if any) into `dir`, creating it;
/// returns what was written. Files of `dir` this run does not write are left alone.
pub fn write_outputs(
    dir: &Path,
    report: &SimReport,
    sweep: Option<&Sweep>,
    sizes: Option<&SizeSweep>,
) -> Result<Vec<PathBuf>, SimError> {
    let parent = match dir.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&parent).map_err(io(&parent))?;
    let name = dir
        .file_name()
        .map_or_else(|| "out".into(), |n| n.to_string_lossy().into_owned());
    let staging = parent.join(format!(".{name}.partial-{}", std::process::id()));
    std::fs::create_dir_all(&staging).map_err(io(&staging))?;
    let result = write_all(&staging, report, sweep, sizes).and_then(|names| {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        names
            .into_iter()
            .map(|n| {
                let to = dir.join(&n);
                std::fs::rename(staging.join(&n), &to).map_err(io(&to))?;
                Ok(to)
            })
            .collect()
    });
    // Best effort: the staging directory is empty on success and disposable on failure.
    let _ = std::fs::remove_dir_all(&staging);
    result
}
