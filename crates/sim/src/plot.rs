//! Charts of a run or a sweep, as SVG or PNG (chosen by the file extension).
//!
//! Text in PNGs is drawn with an embedded subset of DejaVu Sans (ASCII only;
//! see `assets/LICENSE-DejaVu.txt`), so no system font library is needed; SVGs
//! name the `sans-serif` family and leave drawing the text to the viewer.

use std::io::BufWriter;
use std::path::Path;
use std::sync::OnceLock;

use plotters::coord::Shift;
use plotters::coord::ranged1d::ValueFormatter;
use plotters::prelude::*;
use plotters::style::{FontStyle, register_font};

use crate::sweep::{LoadLevel, SizeSweep, Sweep};
use crate::{SimError, SimReport};

const FONT: &[u8] = include_bytes!("../assets/DejaVuSans-subset.ttf");
const SERVERLESS: RGBColor = RGBColor(31, 119, 180);
const INSTANCES: RGBColor = RGBColor(214, 39, 40);
const REFERENCE: RGBColor = RGBColor(120, 120, 120);
/// The fleets of a size sweep, in order: red, then brown.
const FLEETS: [RGBColor; 2] = [INSTANCES, RGBColor(140, 86, 75)];
const PERCENTILE_SHADES: [RGBColor; 3] = [
    RGBColor(44, 160, 44),
    RGBColor(255, 127, 14),
    RGBColor(148, 103, 189),
];

#[derive(Clone, Copy, PartialEq)]
enum Stroke {
    /// A line through measured points, each marked.
    Measured,
    /// A plain line, for dense series such as timelines.
    Line,
    /// A dashed line, for references (offered load, capacity, break-even).
    Dashed,
}

struct Series {
    label: String,
    points: Vec<(f64, f64)>,
    color: RGBColor,
    stroke: Stroke,
}

fn series(
    label: impl Into<String>,
    points: Vec<(f64, f64)>,
    color: RGBColor,
    stroke: Stroke,
) -> Series {
    Series {
        label: label.into(),
        points,
        color,
        stroke,
    }
}

struct Panel {
    title: String,
    x_label: String,
    y_label: String,
    series: Vec<Series>,
    /// A logarithmic x axis, for loads and lengths swept over decades.
    log_x: bool,
    /// A logarithmic y axis, for latencies and costs that span orders of
    /// magnitude.
    log_y: bool,
}

/// A chart as data, so one drawing routine serves every figure and backend.
struct Figure {
    /// Above all panels: what was run (model, input size, load, machine).
    title: String,
    panels: Vec<Panel>,
    /// One y range for all panels, so side-by-side panels compare by eye.
    shared_y: bool,
    width: u32,
    height: u32,
}

fn ensure_font() -> Result<(), String> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let ok =
        *REGISTERED.get_or_init(|| register_font("sans-serif", FontStyle::Normal, FONT).is_ok());
    ok.then_some(())
        .ok_or_else(|| "the embedded font could not be loaded".to_string())
}

/// The points a panel can draw: finite, and positive on a log axis.
fn drawable(panel: &Panel, points: &[(f64, f64)]) -> Vec<(f64, f64)> {
    points
        .iter()
        .filter(|(x, y)| {
            x.is_finite()
                && y.is_finite()
                && (!panel.log_x || *x > 0.0)
                && (!panel.log_y || *y > 0.0)
        })
        .copied()
        .collect()
}

/// An axis range around `values`, padded by 8%; from zero on linear axes,
/// padded by a factor on log ones.
fn bounds(values: impl Iterator<Item = f64>, log: bool) -> (f64, f64) {
    let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    });
    match (lo.is_finite(), log) {
        (false, false) => (0.0, 1.0),
        (false, true) => (1.0, 10.0),
        (true, false) => {
            let lo = lo.min(0.0);
            let hi = if hi - lo < 1e-12 { lo + 1.0 } else { hi };
            (lo, hi + (hi - lo) * 0.08)
        }
        (true, true) => (lo / 1.5, hi * 1.5),
    }
}

fn y_bounds<'a>(panels: impl Iterator<Item = &'a Panel>) -> (f64, f64) {
    let mut log = false;
    let values: Vec<f64> = panels
        .flat_map(|p| {
            log |= p.log_y;
            p.series.iter().flat_map(move |s| drawable(p, &s.points))
        })
        .map(|(_, y)| y)
        .collect();
    bounds(values.into_iter(), log)
}

/// Short tick labels: no trailing zeros, k/M/G for thousands and up, exponents only for
/// tiny values.
fn tick(v: &f64) -> String {
    let v = *v;
    let short = |x: f64| {
        format!("{x:.3}")
            .trim_end_matches('0')
            .trim_end_matches('.')
            .to_string()
    };
    match v.abs() {
        a if a >= 1e9 => format!("{}G", short(v / 1e9)),
        a if a >= 1e6 => format!("{}M", short(v / 1e6)),
        a if a >= 1e4 => format!("{}k", short(v / 1e3)),
        a if a != 0.0 && a < 1e-2 => format!("{v:.1e}"),
        _ => short(v),
    }
}

fn draw_panel<DB: DrawingBackend>(
    panel: &Panel,
    area: &DrawingArea<DB, Shift>,
    shared_y: Option<(f64, f64)>,
) -> Result<(), String>
where
    DB::ErrorType: 'static,
{
    let (x0, x1) = bounds(
        panel
            .series
            .iter()
            .flat_map(|s| drawable(panel, &s.points).into_iter().map(|(x, _)| x)),
        panel.log_x,
    );
    let (y0, y1) = shared_y.unwrap_or_else(|| y_bounds(std::iter::once(panel)));
    let mut builder = ChartBuilder::on(area);
    builder
        .caption(&panel.title, ("sans-serif", 17))
        .margin(12)
        .x_label_area_size(45)
        .y_label_area_size(70);
    let text = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    match (panel.log_x, panel.log_y) {
        (false, false) => fill(
            builder.build_cartesian_2d(x0..x1, y0..y1).map_err(text)?,
            panel,
        ),
        (false, true) => fill(
            builder
                .build_cartesian_2d(x0..x1, (y0..y1).log_scale())
                .map_err(text)?,
            panel,
        ),
        (true, false) => fill(
            builder
                .build_cartesian_2d((x0..x1).log_scale(), y0..y1)
                .map_err(text)?,
            panel,
        ),
        (true, true) => fill(
            builder
                .build_cartesian_2d((x0..x1).log_scale(), (y0..y1).log_scale())
                .map_err(text)?,
            panel,
        ),
    }
}

/// Mesh, series and legend, for linear and log axes alike.
fn fill<'a, DB, X, Y>(
    mut chart: ChartContext<'a, DB, Cartesian2d<X, Y>>,
    panel: &Panel,
) -> Result<(), String>
where
    DB: DrawingBackend + 'a,
    DB::ErrorType: 'static,
    X: Ranged<ValueType = f64> + ValueFormatter<f64>,
    Y: Ranged<ValueType = f64> + ValueFormatter<f64>,
{
    let text = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    chart
        .configure_mesh()
        .x_desc(&panel.x_label)
        .y_desc(&panel.y_label)
        .x_label_formatter(&tick)
        .y_label_formatter(&tick)
        .draw()
        .map_err(text)?;
    for s in &panel.series {
        let points = drawable(panel, &s.points);
        let style = ShapeStyle {
            color: s.color.to_rgba(),
            filled: true,
            stroke_width: 2,
        };
        let legend = move |(x, y): (i32, i32)| PathElement::new(vec![(x, y), (x + 20, y)], style);
        let drawn = if s.stroke == Stroke::Dashed {
            chart.draw_series(DashedLineSeries::new(points.clone(), 6, 4, style))
        } else {
            chart.draw_series(LineSeries::new(points.clone(), style))
        };
        drawn.map_err(text)?.label(s.label.as_str()).legend(legend);
        if s.stroke == Stroke::Measured {
            chart
                .draw_series(points.iter().map(|&p| Circle::new(p, 3, style)))
                .map_err(text)?;
        }
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font(("sans-serif", 14))
        .draw()
        .map_err(text)
}

fn draw<DB: DrawingBackend>(fig: &Figure, root: DrawingArea<DB, Shift>) -> Result<(), String>
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let root = if fig.title.is_empty() {
        root
    } else {
        root.titled(&fig.title, ("sans-serif", 20))
            .map_err(|e| e.to_string())?
    };
    let areas = root.split_evenly((1, fig.panels.len().max(1)));
    let shared = fig.shared_y.then(|| y_bounds(fig.panels.iter()));
    for (panel, area) in fig.panels.iter().zip(&areas) {
        draw_panel(panel, area, shared)?;
    }
    root.present().map_err(|e| e.to_string())
}

fn save(fig: &Figure, path: &Path) -> Result<(), SimError> {
    let refuse = |reason: String| SimError::Plot {
        path: path.to_path_buf(),
        reason,
    };
    let io = |cause| SimError::Io {
        path: path.to_path_buf(),
        cause,
    };
    ensure_font().map_err(refuse)?;
    let size = (fig.width, fig.height);
    match path.extension().and_then(|e| e.to_str()) {
        Some("svg") => {
            let mut svg = String::new();
            draw(
                fig,
                SVGBackend::with_string(&mut svg, size).into_drawing_area(),
            )
            .map_err(refuse)?;
            std::fs::write(path, svg).map_err(io)
        }
        Some("png") => {
            let mut rgb = vec![0u8; fig.width as usize * fig.height as usize * 3];
            draw(
                fig,
                BitMapBackend::with_buffer(&mut rgb, size).into_drawing_area(),
            )
            .map_err(refuse)?;
            let file = std::fs::File::create(path).map_err(io)?;
            let mut encoder = png::Encoder::new(BufWriter::new(file), fig.width, fig.height);
            encoder.set_color(png::ColorType::Rgb);
            encoder.set_depth(png::BitDepth::Eight);
            let mut writer = encoder.write_header().map_err(|e| refuse(e.to_string()))?;
            writer
                .write_image_data(&rgb)
                .map_err(|e| refuse(e.to_string()))?;
            writer.finish().map_err(|e| refuse(e.to_string()))
        }
        _ => Err(refuse(
            "unsupported file type; use a .svg or .png extension".into(),
        )),
    }
}

/// The sweep's x axis: clients for closed-loop sweeps, else offered q/s.
fn load_axis(sweep: &Sweep) -> (&'static str, Vec<f64>, bool) {
    let closed = !sweep.points.is_empty()
        && sweep
            .points
            .iter()
            .all(|p| matches!(p.level, LoadLevel::Concurrency(_)));
    let xs = sweep
        .points
        .iter()
        .map(|p| match p.level {
            LoadLevel::Concurrency(c) if closed => f64::from(c),
            _ => p.offered_qps,
        })
        .collect();
    let label = if closed {
        "concurrent clients"
    } else {
        "offered load (queries/s)"
    };
    (label, xs, !closed)
}

/// A fleet's panel title: size, type and the baseline its service times come from
/// (the part of [`crate::InstanceConfig::basis`] before its colon).
fn fleet_title(count: u32, instance_type: &str, basis: &str) -> String {
    let baseline = basis.split(':').next().unwrap_or(basis);
    format!("{count} x {instance_type} ({baseline})")
}

/// Throughput against load, serverless and instances side by side on one
/// y scale: the paper's Figures 4 and 5, where serverless keeps rising and the
/// instances flatten at their capacity.
pub fn throughput_vs_load(sweep: &Sweep, path: impl AsRef<Path>) -> Result<(), SimError> {
    let (x_label, xs, open) = load_axis(sweep);
    let along = |f: &dyn Fn(&crate::SweepPoint) -> f64| -> Vec<(f64, f64)> {
        xs.iter()
            .zip(&sweep.points)
            .map(|(&x, p)| (x, f(p)))
            .collect()
    };
    let offered = || {
        series(
            "offered load",
            along(&|p| p.offered_qps),
            REFERENCE,
            Stroke::Dashed,
        )
    };
    let mut left = vec![series(
        "throughput",
        along(&|p| p.serverless.throughput_qps),
        SERVERLESS,
        Stroke::Measured,
    )];
    let mut right = vec![
        series(
            "throughput",
            along(&|p| p.instances.throughput_qps),
            INSTANCES,
            Stroke::Measured,
        ),
        series(
            "capacity",
            along(&|p| p.instance_capacity_qps),
            INSTANCES,
            Stroke::Dashed,
        ),
    ];
    if open {
        left.push(offered());
        right.push(offered());
    }
    let panel = |title: String, series| Panel {
        title,
        x_label: x_label.into(),
        y_label: "throughput (queries/s)".into(),
        series,
        log_x: true,
        log_y: true,
    };
    save(
        &Figure {
            title: format!("Throughput vs load: {}", sweep.context),
            panels: vec![
                panel("Serverless (Lambda)".into(), left),
                panel(
                    fleet_title(sweep.instances, &sweep.instance_type, &sweep.instance_basis),
                    right,
                ),
            ],
            shared_y: true,
            width: 1200,
            height: 500,
        },
        path.as_ref(),
    )
}

/// p50/p95/p99 latency against load for both deployments (log scale), where
/// cold starts and queueing show up as tails.
pub fn latency_vs_load(sweep: &Sweep, path: impl AsRef<Path>) -> Result<(), SimError> {
    let (x_label, xs, _) = load_axis(sweep);
    let side = |title: String, pick: fn(&crate::SweepPoint) -> &crate::PointStats| {
        let line = |name: &str, color, f: fn(&crate::LatencyStats) -> f64| {
            let points = xs
                .iter()
                .zip(&sweep.points)
                .map(|(&x, p)| (x, f(&pick(p).latency)))
                .collect();
            series(name, points, color, Stroke::Measured)
        };
        Panel {
            title,
            x_label: x_label.into(),
            y_label: "latency (ms)".into(),
            series: vec![
                line("p50", PERCENTILE_SHADES[0], |l| l.p50_ms),
                line("p95", PERCENTILE_SHADES[1], |l| l.p95_ms),
                line("p99", PERCENTILE_SHADES[2], |l| l.p99_ms),
            ],
            log_x: true,
            log_y: true,
        }
    };
    save(
        &Figure {
            title: format!("Latency vs load: {}", sweep.context),
            panels: vec![
                side("Serverless (Lambda)".into(), |p| &p.serverless),
                side(
                    fleet_title(sweep.instances, &sweep.instance_type, &sweep.instance_basis),
                    |p| &p.instances,
                ),
            ],
            shared_y: true,
            width: 1200,
            height: 500,
        },
        path.as_ref(),
    )
}

/// A run's queries and load in a few words, for titles.
fn report_context(report: &SimReport) -> String {
    format!(
        "{}, {}",
        crate::describe_lengths(&report.config.lengths),
        crate::describe_arrivals(&report.config.arrivals)
    )
}

/// Bytes classified per second against input length, at one load, log-log: serverless,
/// each fleet and the offered bytes/s (dashed) on one chart, so where a deployment
/// falls below the offered line it has saturated.
pub fn throughput_vs_size(sweep: &SizeSweep, path: impl AsRef<Path>) -> Result<(), SimError> {
    let x = |p: &crate::SizePoint| p.bytes as f64;
    let mut lines = vec![
        series(
            "offered",
            sweep
                .points
                .iter()
                .map(|p| (x(p), p.offered_qps * x(p)))
                .collect(),
            REFERENCE,
            Stroke::Dashed,
        ),
        series(
            "serverless (Lambda)",
            sweep
                .points
                .iter()
                .map(|p| (x(p), p.serverless_bytes_per_s))
                .collect(),
            SERVERLESS,
            Stroke::Measured,
        ),
    ];
    for (i, label) in fleet_labels(sweep).into_iter().enumerate() {
        lines.push(series(
            label,
            sweep
                .points
                .iter()
                .map(|p| (x(p), p.fleets[i].bytes_per_s))
                .collect(),
            FLEETS[i % FLEETS.len()],
            Stroke::Measured,
        ));
    }
    save(
        &Figure {
            title: format!("Throughput vs input size: {}", sweep.context),
            panels: vec![Panel {
                title: "bytes classified per second".into(),
                x_label: "input size (bytes)".into(),
                y_label: "bytes/s".into(),
                series: lines,
                log_x: true,
                log_y: true,
            }],
            shared_y: false,
            width: 1000,
            height: 550,
        },
        path.as_ref(),
    )
}

/// p50 (solid, marked) and p99 (dashed) latency against input length for every
/// deployment, log-log, with the serial TFiLM floor of the calibration (grey) below
/// which no serverless query can finish.
pub fn latency_vs_size(sweep: &SizeSweep, path: impl AsRef<Path>) -> Result<(), SimError> {
    let x = |p: &crate::SizePoint| p.bytes as f64;
    let mut lines = Vec::new();
    let mut both = |label: &str, color, f: &dyn Fn(&crate::SizePoint) -> &crate::PointStats| {
        let at = |g: fn(&crate::LatencyStats) -> f64| -> Vec<(f64, f64)> {
            sweep
                .points
                .iter()
                .map(|p| (x(p), g(&f(p).latency)))
                .collect()
        };
        lines.push(series(
            format!("{label} p50"),
            at(|l| l.p50_ms),
            color,
            Stroke::Measured,
        ));
        lines.push(series(
            format!("{label} p99"),
            at(|l| l.p99_ms),
            color,
            Stroke::Dashed,
        ));
    };
    both("serverless", SERVERLESS, &|p| &p.serverless);
    for (i, label) in fleet_labels(sweep).into_iter().enumerate() {
        both(&label, FLEETS[i % FLEETS.len()], &|p| &p.fleets[i].stats);
    }
    let floor: Vec<(f64, f64)> = sweep
        .points
        .iter()
        .filter_map(|p| Some((x(p), p.tfilm_floor_ms?)))
        .collect();
    if !floor.is_empty() {
        lines.push(series("serial TFiLM floor", floor, REFERENCE, Stroke::Line));
    }
    save(
        &Figure {
            title: format!("Latency vs input size: {}", sweep.context),
            panels: vec![Panel {
                title: "p50 (solid) and p99 (dashed)".into(),
                x_label: "input size (bytes)".into(),
                y_label: "latency (ms)".into(),
                series: lines,
                log_x: true,
                log_y: true,
            }],
            shared_y: false,
            width: 1000,
            height: 600,
        },
        path.as_ref(),
    )
}

/// The fleets' legend entries, from the first point (every point has the same fleets).
fn fleet_labels(sweep: &SizeSweep) -> Vec<String> {
    sweep
        .points
        .first()
        .map(|p| p.fleets.iter().map(|f| f.legend.clone()).collect())
        .unwrap_or_default()
}

/// Cost per million queries against the utilisation of one instance, with
/// this run's serverless cost as a flat line: where they cross is the
/// break-even utilisation below which serverless is cheaper.
pub fn cost_vs_utilisation(report: &SimReport, path: impl AsRef<Path>) -> Result<(), SimError> {
    let inst = &report.instances;
    let per_instance_qps = inst.capacity_qps / f64::from(inst.instances);
    let us: Vec<f64> = (1..=50).map(|i| f64::from(i) / 50.0).collect();
    let instance_cost = |u: f64| inst.hourly_usd / (per_instance_qps * 3600.0 * u) * 1e6;
    let serverless = report.serverless.cost.cost_per_million_queries_usd;
    let mut lines = vec![
        series(
            format!("{} (${}/h)", inst.instance_type, inst.hourly_usd),
            us.iter().map(|&u| (u, instance_cost(u))).collect(),
            INSTANCES,
            Stroke::Line,
        ),
        series(
            "serverless (this run)",
            us.iter().map(|&u| (u, serverless)).collect(),
            SERVERLESS,
            Stroke::Line,
        ),
    ];
    if let Some(u) = report.break_even_utilisation.filter(|u| *u <= 1.0) {
        let (lo, hi) = (serverless.min(instance_cost(1.0)), instance_cost(us[0]));
        lines.push(series(
            format!("break-even {:.1}%", u * 100.0),
            vec![(u, lo), (u, hi)],
            REFERENCE,
            Stroke::Dashed,
        ));
    }
    save(
        &Figure {
            title: format!("Cost per query: {}", report_context(report)),
            panels: vec![Panel {
                title: "Cost per million queries vs instance utilisation".into(),
                x_label: "utilisation of one instance".into(),
                y_label: "USD per million queries".into(),
                series: lines,
                log_x: false,
                log_y: true,
            }],
            shared_y: false,
            width: 800,
            height: 500,
        },
        path.as_ref(),
    )
}

/// Arrivals and completions per second over the run, for both deployments:
/// shows warm-up, bursts and backlog draining.
pub fn timeline(report: &SimReport, path: impl AsRef<Path>) -> Result<(), SimError> {
    let points = |t: &[crate::TimelinePoint],
                  f: &dyn Fn(&crate::TimelinePoint) -> f64|
     -> Vec<(f64, f64)> { t.iter().map(|p| (p.t_s, f(p))).collect() };
    let bucket_s = report.config.timeline_bucket_s;
    let (s, i) = (
        &report.serverless.stats.timeline,
        &report.instances.stats.timeline,
    );
    let fleet = fleet_title(
        report.instances.instances,
        &report.instances.instance_type,
        &report.config.instances.basis,
    );
    save(
        &Figure {
            title: format!("Timeline: {}", report_context(report)),
            panels: vec![Panel {
                title: "Throughput over time".into(),
                x_label: "time (s)".into(),
                y_label: "queries/s".into(),
                series: vec![
                    series(
                        "arrivals",
                        points(s, &|p| p.arrivals as f64 / bucket_s),
                        REFERENCE,
                        Stroke::Dashed,
                    ),
                    series(
                        "serverless",
                        points(s, &|p| p.throughput_qps),
                        SERVERLESS,
                        Stroke::Line,
                    ),
                    series(
                        fleet,
                        points(i, &|p| p.throughput_qps),
                        INSTANCES,
                        Stroke::Line,
                    ),
                ],
                log_x: false,
                log_y: false,
            }],
            shared_y: false,
            width: 1000,
            height: 450,
        },
        path.as_ref(),
    )
}

/// One measured line of a [`measured_chart`] panel.
#[derive(Debug, Clone, PartialEq)]
pub struct MeasuredLine {
    /// Legend entry.
    pub label: String,
    /// (x, y) points, in x order.
    pub points: Vec<(f64, f64)>,
    /// A prediction of the measured line before it: drawn dashed, in that line's colour.
    pub predicted: bool,
}

/// One panel of a [`measured_chart`].
#[derive(Debug, Clone, PartialEq)]
pub struct MeasuredPanel {
    /// Caption.
    pub title: String,
    /// X axis description.
    pub x_label: String,
    /// Y axis description.
    pub y_label: String,
    /// The lines, coloured in order.
    pub lines: Vec<MeasuredLine>,
    /// A logarithmic y axis (latencies).
    pub log_y: bool,
}

/// Measured lines, and predictions of them, in side-by-side panels, each on its own y
/// scale: the primitive the benchmarks' charts (`seqless-bench`) draw with, so every chart
/// of the project renders alike (same embedded font, marks and formats).
pub fn measured_chart(panels: &[MeasuredPanel], path: impl AsRef<Path>) -> Result<(), SimError> {
    let palette = [
        SERVERLESS,
        INSTANCES,
        PERCENTILE_SHADES[0],
        PERCENTILE_SHADES[1],
        PERCENTILE_SHADES[2],
    ];
    let colored = |lines: &[MeasuredLine]| {
        let mut colors = palette.iter().cycle();
        let mut color = palette[0];
        lines
            .iter()
            .map(|l| {
                let stroke = if l.predicted {
                    Stroke::Dashed
                } else {
                    color = *colors.next().expect("a cycle never ends");
                    Stroke::Measured
                };
                series(&l.label, l.points.clone(), color, stroke)
            })
            .collect()
    };
    let panels = panels
        .iter()
        .map(|p| Panel {
            title: p.title.clone(),
            x_label: p.x_label.clone(),
            y_label: p.y_label.clone(),
            series: colored(&p.lines),
            log_x: false,
            log_y: p.log_y,
        })
        .collect::<Vec<_>>();
    let width = 600 * panels.len().max(1) as u32;
    save(
        &Figure {
            title: String::new(),
            panels,
            shared_y: false,
            width,
            height: 500,
        },
        path.as_ref(),
    )
}
