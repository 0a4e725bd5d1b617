//! Checks [`ModelConfig::forward_peak_bytes`] against a real forward: loads a model, runs
//! one forward of the given length, and prints the estimate next to the growth of this
//! process's peak resident memory (`VmHWM` in /proc/self/status, Linux only).
//!
//! ```sh
//! cargo run --release -p seqless-model --example peak_memory -- models/langid 1048576
//! ```
//!
//! Run one length per process: the high-water mark only rises.

use std::path::Path;

use seqless_model::TfilmModel;

/// A `kB` field of /proc/self/status, in bytes.
fn status_bytes(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("reading /proc/self/status");
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|value| value.trim().strip_suffix("kB")?.trim().parse::<u64>().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/self/status"))
        * 1024
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [dir, len] = args.as_slice() else {
        eprintln!("usage: peak_memory MODEL_DIR LENGTH_BYTES");
        std::process::exit(2);
    };
    let len: usize = len.parse().unwrap_or_else(|_| {
        eprintln!("error: LENGTH_BYTES must be a number of bytes, got {len:?}");
        std::process::exit(2);
    });
    let model = TfilmModel::load(Path::new(dir)).expect("loading the model");
    let text: Vec<u8> = b"lorem ipsum dolor sit amet "
        .iter()
        .copied()
        .cycle()
        .take(len)
        .collect();
    // Start the rayon pool and fault in the weights, so only the forward's own buffers grow.
    model.forward(b"warm-up").expect("the warm-up forward");
    // Writing 5 to clear_refs resets VmHWM to the current resident size.
    let reset = std::fs::write("/proc/self/clear_refs", "5").is_ok();
    let before = status_bytes("VmRSS");
    let before_peak = status_bytes("VmHWM");
    model.forward(&text).expect("the forward");
    let peak = status_bytes("VmHWM");
    let grew = peak
        - if reset {
            before
        } else {
            before_peak.max(before)
        };
    let estimate = model.config.forward_peak_bytes(len);
    let mib = |b: u64| b as f64 / f64::from(1 << 20);
    println!(
        "bytes={len} padded={} threads={} estimate_mib={:.1} measured_mib={:.1} estimate/measured={:.2}",
        model.config.padded_len(len),
        rayon::current_num_threads(),
        mib(estimate),
        mib(grew),
        estimate as f64 / grew.max(1) as f64,
    );
}
