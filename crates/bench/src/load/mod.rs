//! A closed-loop load generator for a running server (`seqless bench load`): `concurrency`
//! clients each send their next query as soon as the previous one is answered, which
//! measures the throughput the server sustains and the latency it costs at that load.

mod chart;

pub(crate) use chart::clients_panels;
pub use chart::load_chart;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;

use crate::BenchError;
use crate::stats::{quantile, rank};

/// Distinct queries a run cycles through, so caches see realistic variety.
pub const DISTINCT_TEXTS: usize = 64;

/// What to send and how.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// The server's base URL, such as `http://127.0.0.1:8080`.
    pub url: String,
    /// Bearer token, if the server requires one.
    pub token: Option<String>,
    /// Timed requests per run (after a warm-up of one request per client).
    pub requests: usize,
    /// Runs per concurrency level; the median run is reported.
    pub runs: usize,
}

/// One concurrency level's result: medians over the runs.
#[derive(Debug, Clone, Serialize)]
pub struct LoadPoint {
    /// Clients sending at once.
    pub concurrency: usize,
    /// Timed requests per run.
    pub requests: usize,
    /// Failed requests (non-2xx or transport errors) over all runs.
    pub errors: usize,
    /// Answered queries per second (median run).
    pub qps: f64,
    /// Median latency, ms (median run).
    pub p50_ms: f64,
    /// 99th-percentile latency, ms (median run).
    pub p99_ms: f64,
    /// Throughput relative to the first level of the same sweep (the baseline).
    pub speedup: f64,
}

/// The [`DISTINCT_TEXTS`] queries of `bytes` bytes a load run sends: cut from `corpus`
/// when given, else random words.
pub fn texts(corpus: Option<&str>, bytes: usize) -> Vec<String> {
    match corpus {
        Some(corpus) => texts_from(corpus, bytes, DISTINCT_TEXTS),
        None => random_texts(bytes, DISTINCT_TEXTS, 0),
    }
}

/// `count` texts of exactly `bytes` bytes each: random lower-case words, so every query differs
/// while staying valid UTF-8 and JSON-safe.
pub fn random_texts(bytes: usize, count: usize, seed: u64) -> Vec<String> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..count.max(1))
        .map(|_| {
            let mut text = String::with_capacity(bytes);
            while text.len() < bytes {
                let word = rng.random_range(1..10);
                for _ in 0..word.min(bytes - text.len()) {
                    text.push(rng.random_range(b'a'..=b'z') as char);
                }
                if text.len() < bytes {
                    text.push(' ');
                }
            }
            text
        })
        .collect()
}

/// `count` texts of `bytes` bytes cut from `corpus` (repeated as needed), at evenly spread
/// offsets, each ending on a character boundary (so possibly a few bytes short).
pub fn texts_from(corpus: &str, bytes: usize, count: usize) -> Vec<String> {
    if corpus.is_empty() {
        return random_texts(bytes, count, 0);
    }
    let repeated = corpus.repeat(bytes / corpus.len() + 2);
    let stride = corpus.len() / count.max(1) + 1;
    (0..count.max(1))
        .map(|i| {
            let start = floor_boundary(&repeated, (i * stride) % corpus.len());
            let end = floor_boundary(&repeated, start + bytes);
            repeated[start..end].to_owned()
        })
        .collect()
}

fn floor_boundary(s: &str, mut i: usize) -> usize {
    i = i.min(s.len());
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// Latencies of one timed run.
struct Run {
    seconds: f64,
    latencies_ms: Vec<f64>,
    errors: usize,
    first_error: Option<String>,
}

/// Sends `requests` queries from `concurrency` clients, cycling over `texts`.
async fn run_once(
    client: &reqwest::Client,
    options: &LoadOptions,
    texts: &Arc<Vec<String>>,
    concurrency: usize,
    requests: usize,
) -> Run {
    let next = Arc::new(AtomicUsize::new(0));
    let endpoint = format!("{}/v1/classify", options.url.trim_end_matches('/'));
    let started = Instant::now();
    let clients = (0..concurrency.max(1)).map(|_| {
        let (client, next, texts, endpoint) = (
            client.clone(),
            next.clone(),
            texts.clone(),
            endpoint.clone(),
        );
        let token = options.token.clone();
        tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut errors = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= requests {
                    break;
                }
                let body = serde_json::json!({ "text": texts[i % texts.len()] });
                let mut request = client.post(&endpoint).json(&body);
                if let Some(token) = &token {
                    request = request.bearer_auth(token);
                }
                let sent = Instant::now();
                match request.send().await {
                    Ok(response) if response.status().is_success() => {
                        // Read the whole body: the answer is part of the latency.
                        match response.bytes().await {
                            Ok(_) => latencies.push(sent.elapsed().as_secs_f64() * 1e3),
                            Err(e) => errors.push(e.to_string()),
                        }
                    }
                    Ok(response) => {
                        let status = response.status();
                        let text = response.text().await.unwrap_or_default();
                        errors.push(format!("{status}: {text}"));
                    }
                    Err(e) => errors.push(e.to_string()),
                }
            }
            (latencies, errors)
        })
    });
    let mut run = Run {
        seconds: 0.0,
        latencies_ms: Vec::with_capacity(requests),
        errors: 0,
        first_error: None,
    };
    for client in futures_util::future::join_all(clients).await {
        let (latencies, errors) = client.unwrap_or_else(|e| (Vec::new(), vec![e.to_string()]));
        run.latencies_ms.extend(latencies);
        run.errors += errors.len();
        if run.first_error.is_none() {
            run.first_error = errors.into_iter().next();
        }
    }
    run.seconds = started.elapsed().as_secs_f64();
    run
}

/// Runs every concurrency level in order, `options.runs` times each, and reports the median
/// run of each level (by throughput) with its speedup over the first level.
pub async fn sweep(
    options: &LoadOptions,
    texts: Vec<String>,
    levels: &[usize],
) -> Result<Vec<LoadPoint>, BenchError> {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(levels.iter().copied().max().unwrap_or(1))
        .timeout(Duration::from_secs(300))
        .build()
        .map_err(BenchError::Client)?;
    let texts = Arc::new(texts);
    let mut points: Vec<LoadPoint> = Vec::new();
    for &concurrency in levels {
        // Warm-up: open the connections and warm the function instances.
        run_once(&client, options, &texts, concurrency, concurrency).await;
        let mut runs = Vec::new();
        for _ in 0..options.runs.max(1) {
            let run = run_once(&client, options, &texts, concurrency, options.requests).await;
            if run.latencies_ms.is_empty() {
                return Err(BenchError::AllFailed {
                    url: options.url.clone(),
                    first: run.first_error.unwrap_or_default(),
                });
            }
            runs.push(run);
        }
        let errors = runs.iter().map(|r| r.errors).sum();
        let qps = |r: &Run| r.latencies_ms.len() as f64 / r.seconds;
        runs.sort_by(|a, b| qps(a).total_cmp(&qps(b)));
        let median = &runs[rank(runs.len(), 0.5).unwrap_or(0)];
        let qps = qps(median);
        let baseline = points.first().map_or(qps, |p| p.qps);
        points.push(LoadPoint {
            concurrency,
            requests: options.requests,
            errors,
            qps,
            p50_ms: quantile(&median.latencies_ms, 0.5).unwrap_or(f64::NAN),
            p99_ms: quantile(&median.latencies_ms, 0.99).unwrap_or(f64::NAN),
            speedup: qps / baseline,
        });
    }
    Ok(points)
}

/// The points as a plain-text table, for the terminal.
pub fn render_table(points: &[LoadPoint]) -> String {
    let mut out = format!(
        "{:>11} {:>8} {:>6} {:>10} {:>9} {:>9} {:>8}\n",
        "concurrency", "requests", "errors", "queries/s", "p50 ms", "p99 ms", "speedup"
    );
    for p in points {
        out.push_str(&format!(
            "{:>11} {:>8} {:>6} {:>10.1} {:>9.2} {:>9.2} {:>7.2}x\n",
            p.concurrency, p.requests, p.errors, p.qps, p.p50_ms, p.p99_ms, p.speedup
        ));
    }
    out
}

/// The points as CSV with a header row.
pub fn to_csv(points: &[LoadPoint]) -> String {
    let mut out = String::from("concurrency,requests,errors,qps,p50_ms,p99_ms,speedup\n");
    for p in points {
        out.push_str(&format!(
            "{},{},{},{:.2},{:.3},{:.3},{:.3}\n",
            p.concurrency, p.requests, p.errors, p.qps, p.p50_ms, p.p99_ms, p.speedup
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_have_the_asked_size() {
        for bytes in [1, 2, 7, 4096] {
            for t in random_texts(bytes, 3, 1) {
                assert_eq!(t.len(), bytes);
            }
        }
        for t in texts_from("héllo wörld ", 50, 4) {
            assert!(t.len() <= 50 && t.len() >= 48, "{}", t.len());
        }
    }

    #[test]
    fn a_corpus_gives_texts_cut_from_it() {
        let cut = texts(Some("abc "), 10);
        assert_eq!(cut.len(), DISTINCT_TEXTS);
        assert!(cut.iter().all(|t| t.len() == 10 && t.contains("abc")));
        assert_eq!(texts(None, 10), random_texts(10, DISTINCT_TEXTS, 0));
    }
}
