//! Charts come out as valid SVG and PNG files.

mod common;

use common::{small_config, temp_dir};
use seqless_sim::{LoadLevel, SimError, SyntheticShape, plot, run, sweep};

fn check_svg(path: &std::path::Path) {
    let text = std::fs::read_to_string(path).unwrap();
    assert!(
        text.trim_start().starts_with("<svg"),
        "{}",
        &text[..80.min(text.len())]
    );
    let doc = roxmltree::Document::parse(&text).unwrap();
    assert_eq!(doc.root_element().tag_name().name(), "svg");
    assert!(
        doc.descendants().any(|n| n.has_tag_name("text")),
        "no labels"
    );
}

fn check_png(path: &std::path::Path) {
    let bytes = std::fs::read(path).unwrap();
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
    let decoder = png::Decoder::new(std::io::Cursor::new(bytes));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    assert!(info.width > 0 && info.height > 0);
    // Not blank: some pixels are not white.
    assert!(buf[..info.buffer_size()].iter().any(|&b| b < 200));
}

#[test]
fn every_chart_writes_valid_svg_and_png() {
    let mut config = small_config(1.0);
    config.duration_s = 5.0;
    let shape = SyntheticShape::default();
    let levels: Vec<LoadLevel> = [20.0, 80.0, 160.0]
        .into_iter()
        .map(LoadLevel::Rate)
        .collect();
    let sweep = sweep(&config, &shape, &levels).unwrap();
    config.arrivals = config.arrivals.with_rate(60.0).unwrap();
    let report = run(&config, &shape).unwrap();
    let dir = temp_dir("plots");
    for ext in ["svg", "png"] {
        let files = [
            dir.join(format!("throughput.{ext}")),
            dir.join(format!("latency.{ext}")),
            dir.join(format!("cost.{ext}")),
            dir.join(format!("timeline.{ext}")),
        ];
        plot::throughput_vs_load(&sweep, &files[0]).unwrap();
        plot::latency_vs_load(&sweep, &files[1]).unwrap();
        plot::cost_vs_utilisation(&report, &files[2]).unwrap();
        plot::timeline(&report, &files[3]).unwrap();
        for f in &files {
            if ext == "svg" {
                check_svg(f)
            } else {
                check_png(f)
            }
        }
    }
    let err = plot::timeline(&report, dir.join("chart.gif")).unwrap_err();
    assert!(matches!(err, SimError::Plot { .. }), "{err}");
    assert!(err.to_string().contains("chart.gif"));
}
