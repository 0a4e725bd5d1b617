//! When queries arrive and how long they are: the trace both deployments see.

use std::path::{Path, PathBuf};
use std::str::FromStr;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Exp, LogNormal};
use serde::{Deserialize, Serialize};

use crate::SimError;
use crate::error::check_range;

/// How queries arrive. Open processes fix the arrival times in advance, the
/// same for both deployments; the closed loop models benchmark clients that
/// wait for each answer, as a load generator with N concurrent requests does.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum ArrivalProcess {
    /// Evenly spaced arrivals: the load with no randomness at all.
    Constant {
        /// Queries per second.
        rate_qps: f64,
    },
    /// Independent arrivals (exponential gaps): many uncoordinated users.
    Poisson {
        /// Mean queries per second.
        rate_qps: f64,
    },
    /// Alternating bursts and lulls (Poisson within each), which is what
    /// exercises cold starts and the scaling limit.
    Bursty(Bursts),
    /// A Poisson process whose rate follows a sine, like daily traffic:
    /// `mean × (1 + amplitude × sin(2π t / period))`.
    Diurnal {
        /// Mean queries per second.
        mean_rate_qps: f64,
        /// Relative swing, 0 to 1.
        amplitude: f64,
        /// Period, seconds.
        period_s: f64,
    },
    /// Timestamps from a file, one per line in seconds (`#` comments and blank
    /// lines skipped), to replay a recorded trace. Times at or after the
    /// window's end are dropped.
    File {
        /// The trace file.
        path: PathBuf,
    },
    /// `clients` users each sending a query, waiting for the answer, thinking
    /// for `think_s`, and sending the next.
    ClosedLoop {
        /// Concurrent clients.
        clients: u32,
        /// Pause between an answer and the next query, seconds.
        think_s: f64,
    },
}

/// The bursts and lulls of [`ArrivalProcess::Bursty`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bursts {
    /// Rate during a burst.
    pub on_rate_qps: f64,
    /// Rate between bursts (may be 0).
    pub off_rate_qps: f64,
    /// Burst length, seconds.
    pub on_s: f64,
    /// Lull length, seconds.
    pub off_s: f64,
}

impl Bursts {
    fn validate(&self) -> Result<(), SimError> {
        check_range("arrivals.on_rate_qps", self.on_rate_qps, 0.0, true)?;
        check_range("arrivals.off_rate_qps", self.off_rate_qps, 0.0, false)?;
        check_range("arrivals.on_s", self.on_s, 0.0, true)?;
        check_range("arrivals.off_s", self.off_s, 0.0, false)
    }

    /// Mean rate over a burst and the lull after it, q/s.
    fn mean_rate(&self) -> f64 {
        (self.on_rate_qps * self.on_s + self.off_rate_qps * self.off_s) / (self.on_s + self.off_s)
    }

    /// Both rates scaled so that the mean is `rate_qps`; the lengths kept.
    fn with_mean_rate(&self, rate_qps: f64) -> Bursts {
        let k = rate_qps / self.mean_rate();
        Bursts {
            on_rate_qps: self.on_rate_qps * k,
            off_rate_qps: self.off_rate_qps * k,
            ..*self
        }
    }

    /// Appends arrival times (µs) from 0 to `duration_s`, a burst first.
    fn arrivals(&self, rng: &mut StdRng, duration_s: f64, times: &mut Vec<u64>) {
        let mut start = 0.0;
        while start < duration_s {
            let mid = (start + self.on_s).min(duration_s);
            poisson_in(rng, self.on_rate_qps, start, mid, times);
            let end = (mid + self.off_s).min(duration_s);
            poisson_in(rng, self.off_rate_qps, mid, end, times);
            start = end;
        }
    }
}

impl ArrivalProcess {
    /// An arrival process written as a JSON object, or as the bare kind `constant` or
    /// `poisson` at `rate` q/s (else at `self`'s mean rate), as `seqless simulate
    /// --arrivals` takes it.
    pub fn with_spec(&self, spec: &str, rate: Option<f64>) -> Result<ArrivalProcess, SimError> {
        let spec = spec.trim();
        let refuse = |reason: String| SimError::Config {
            field: "arrivals".into(),
            reason,
        };
        if spec.starts_with('{') {
            return serde_json::from_str(spec)
                .map_err(|e| refuse(format!("{spec} is not an arrival process: {e}")));
        }
        let rate = rate.or_else(|| self.mean_rate()).ok_or_else(|| {
            refuse(format!(
                "{spec} needs a rate: the configured arrivals have no mean rate"
            ))
        })?;
        check_range("arrivals rate", rate, 0.0, true)?;
        match spec {
            "constant" => Ok(ArrivalProcess::Constant { rate_qps: rate }),
            "poisson" => Ok(ArrivalProcess::Poisson { rate_qps: rate }),
            other => Err(refuse(format!(
                "{other:?}: expected constant, poisson, or a JSON object such as \
                 '{{\"kind\":\"bursty\",\"on_rate_qps\":500,\"off_rate_qps\":0,\"on_s\":5,\"off_s\":25}}'"
            ))),
        }
    }

    pub(crate) fn validate(&self) -> Result<(), SimError> {
        match self {
            ArrivalProcess::Constant { rate_qps } | ArrivalProcess::Poisson { rate_qps } => {
                check_range("arrivals.rate_qps", *rate_qps, 0.0, true)
            }
            ArrivalProcess::Bursty(bursts) => bursts.validate(),
            ArrivalProcess::Diurnal {
                mean_rate_qps,
                amplitude,
                period_s,
            } => {
                check_range("arrivals.mean_rate_qps", *mean_rate_qps, 0.0, true)?;
                check_range("arrivals.amplitude", *amplitude, 0.0, false)?;
                check_range(
                    "arrivals.amplitude (1 - amplitude)",
                    1.0 - amplitude,
                    0.0,
                    false,
                )?;
                check_range("arrivals.period_s", *period_s, 0.0, true)
            }
            ArrivalProcess::File { .. } => Ok(()),
            ArrivalProcess::ClosedLoop { clients, think_s } => {
                check_range("arrivals.clients", f64::from(*clients), 1.0, false)?;
                check_range("arrivals.think_s", *think_s, 0.0, false)
            }
        }
    }

    /// The process's mean rate, q/s, where it has one: file traces and closed loops have
    /// none (their rate comes from the file or from the answers).
    pub fn mean_rate(&self) -> Option<f64> {
        match self {
            ArrivalProcess::Constant { rate_qps } | ArrivalProcess::Poisson { rate_qps } => {
                Some(*rate_qps)
            }
            ArrivalProcess::Bursty(bursts) => Some(bursts.mean_rate()),
            ArrivalProcess::Diurnal { mean_rate_qps, .. } => Some(*mean_rate_qps),
            ArrivalProcess::File { .. } | ArrivalProcess::ClosedLoop { .. } => None,
        }
    }

    /// The same process rescaled to a mean of `rate_qps`, keeping its shape
    /// (burst ratio, diurnal swing), so a sweep varies load and nothing else.
    /// File traces and closed loops have no rate to set and are refused.
    pub fn with_rate(&self, rate_qps: f64) -> Result<ArrivalProcess, SimError> {
        check_range("sweep rate", rate_qps, 0.0, true)?;
        Ok(match self {
            ArrivalProcess::Constant { .. } => ArrivalProcess::Constant { rate_qps },
            ArrivalProcess::Poisson { .. } => ArrivalProcess::Poisson { rate_qps },
            ArrivalProcess::Bursty(bursts) => {
                ArrivalProcess::Bursty(bursts.with_mean_rate(rate_qps))
            }
            ArrivalProcess::Diurnal {
                amplitude,
                period_s,
                ..
            } => ArrivalProcess::Diurnal {
                mean_rate_qps: rate_qps,
                amplitude: *amplitude,
                period_s: *period_s,
            },
            ArrivalProcess::File { .. } | ArrivalProcess::ClosedLoop { .. } => {
                return Err(SimError::Config {
                    field: "arrivals".into(),
                    reason: "is a file trace or closed loop, which has no rate to sweep; \
                             use constant, poisson, bursty or diurnal"
                        .into(),
                });
            }
        })
    }
}

/// How long queries are, in bytes of input.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum LengthDistribution {
    /// Every query the same length.
    Fixed {
        /// Bytes.
        bytes: usize,
    },
    /// Uniform between two lengths, inclusive.
    Uniform {
        /// Shortest, bytes.
        min_bytes: usize,
        /// Longest, bytes.
        max_bytes: usize,
    },
    /// Log-normal: most texts short, a long tail of long documents.
    LogNormal {
        /// Median length, bytes.
        median_bytes: f64,
        /// Standard deviation of ln(length).
        sigma: f64,
    },
    /// Lengths drawn uniformly at random from a file, one integer per line.
    File {
        /// The file.
        path: PathBuf,
    },
}

impl LengthDistribution {
    pub(crate) fn validate(&self) -> Result<(), SimError> {
        match self {
            LengthDistribution::Fixed { bytes } => {
                check_range("lengths.bytes", *bytes as f64, 1.0, false)
            }
            LengthDistribution::Uniform {
                min_bytes,
                max_bytes,
            } => {
                check_range("lengths.min_bytes", *min_bytes as f64, 1.0, false)?;
                if max_bytes < min_bytes {
                    return Err(SimError::Config {
                        field: "lengths.max_bytes".into(),
                        reason: format!("is {max_bytes}, below min_bytes {min_bytes}"),
                    });
                }
                Ok(())
            }
            LengthDistribution::LogNormal {
                median_bytes,
                sigma,
            } => {
                check_range("lengths.median_bytes", *median_bytes, 1.0, false)?;
                check_range("lengths.sigma", *sigma, 0.0, false)
            }
            LengthDistribution::File { .. } => Ok(()),
        }
    }
}

/// Reads one value per line; `#` comments and blank lines are skipped, and
/// a bad line is reported with its number.
fn read_lines<T: FromStr>(path: &Path, what: &str) -> Result<Vec<(usize, T)>, SimError> {
    let text = std::fs::read_to_string(path).map_err(|cause| SimError::Io {
        path: path.to_path_buf(),
        cause,
    })?;
    let mut values = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let token = line.split('#').next().unwrap_or("").trim();
        if token.is_empty() {
            continue;
        }
        let value = token.parse().map_err(|_| SimError::TraceLine {
            path: path.to_path_buf(),
            line: i + 1,
            reason: format!("`{token}` is not {what}"),
        })?;
        values.push((i + 1, value));
    }
    if values.is_empty() {
        return Err(SimError::TraceLine {
            path: path.to_path_buf(),
            line: 0,
            reason: format!("no {what} in the file"),
        });
    }
    Ok(values)
}

/// Seconds to whole microseconds, the simulator's clock unit; rounding up
/// keeps every modelled delay at least as long as its calibration says.
pub(crate) fn us(seconds: f64) -> u64 {
    (seconds * 1e6).ceil() as u64
}

/// Poisson arrivals at `rate` over `[start, end)` seconds, appended to `out`.
fn poisson_in(rng: &mut StdRng, rate: f64, start: f64, end: f64, out: &mut Vec<u64>) {
    // A zero rate (a silent lull) has no arrivals; validation refuses negatives.
    if rate <= 0.0 {
        return;
    }
    let Ok(gap) = Exp::new(rate) else { return };
    let mut t = start + gap.sample(rng);
    while t < end {
        out.push(us(t));
        t += gap.sample(rng);
    }
}

/// Where arrivals come from during one deployment's run.
pub(crate) enum ArrivalPlan {
    /// Fixed arrival times, µs, ascending.
    Open(Vec<u64>),
    /// Clients that send again `think_us` after each answer.
    Closed { clients: u32, think_us: u64 },
}

enum Lengths {
    Fixed(usize),
    Uniform(usize, usize),
    LogNormal(LogNormal<f64>),
    Empirical(Vec<usize>),
}

/// The resolved trace of a run: arrival plan, length sampler and seeds.
/// Built once per run and replayed for each deployment so both see the same
/// queries in the same order.
pub(crate) struct Workload {
    pub plan: ArrivalPlan,
    lengths: Lengths,
    length_seed: u64,
    max_len: usize,
    /// End of the arrival window, µs.
    pub window_us: u64,
}

// Distinct streams for arrival times and lengths, so that changing one
// distribution does not reshuffle the other.
const LENGTH_STREAM: u64 = 0x9E37_79B9_7F4A_7C15;

impl Workload {
    pub fn build(
        arrivals: &ArrivalProcess,
        lengths: &LengthDistribution,
        seed: u64,
        duration_s: f64,
        max_len: usize,
    ) -> Result<Workload, SimError> {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut times = Vec::new();
        let plan = match arrivals {
            ArrivalProcess::Constant { rate_qps } => {
                let n = (duration_s * rate_qps).ceil() as u64;
                times.extend((0..n).map(|i| us(i as f64 / rate_qps)));
                ArrivalPlan::Open(times)
            }
            ArrivalProcess::Poisson { rate_qps } => {
                poisson_in(&mut rng, *rate_qps, 0.0, duration_s, &mut times);
                ArrivalPlan::Open(times)
            }
            ArrivalProcess::Bursty(bursts) => {
                bursts.arrivals(&mut rng, duration_s, &mut times);
                ArrivalPlan::Open(times)
            }
            ArrivalProcess::Diurnal {
                mean_rate_qps,
                amplitude,
                period_s,
            } => {
                // Thinning: candidates at the peak rate, each kept with
                // probability rate(t) / peak.
                let peak = mean_rate_qps * (1.0 + amplitude);
                let mut candidates = Vec::new();
                poisson_in(&mut rng, peak, 0.0, duration_s, &mut candidates);
                times.extend(candidates.into_iter().filter(|&t_us| {
                    let t = t_us as f64 / 1e6;
                    let rate = mean_rate_qps
                        * (1.0 + amplitude * (std::f64::consts::TAU * t / period_s).sin());
                    rng.random::<f64>() * peak < rate
                }));
                ArrivalPlan::Open(times)
            }
            ArrivalProcess::File { path } => {
                let window = us(duration_s);
                for (line, t) in read_lines::<f64>(path, "a time in seconds")? {
                    if !(t.is_finite() && t >= 0.0) {
                        return Err(SimError::TraceLine {
                            path: path.clone(),
                            line,
                            reason: format!("time {t} is not a finite number of seconds >= 0"),
                        });
                    }
                    if us(t) < window {
                        times.push(us(t));
                    }
                }
                times.sort_unstable();
                ArrivalPlan::Open(times)
            }
            ArrivalProcess::ClosedLoop { clients, think_s } => ArrivalPlan::Closed {
                clients: *clients,
                think_us: us(*think_s),
            },
        };
        let lengths = match lengths {
            LengthDistribution::Fixed { bytes } => Lengths::Fixed(*bytes),
            LengthDistribution::Uniform {
                min_bytes,
                max_bytes,
            } => Lengths::Uniform(*min_bytes, *max_bytes),
            LengthDistribution::LogNormal {
                median_bytes,
                sigma,
            } => Lengths::LogNormal(LogNormal::new(median_bytes.ln(), *sigma).map_err(|e| {
                SimError::Config {
                    field: "lengths".into(),
                    reason: e.to_string(),
                }
            })?),
            LengthDistribution::File { path } => {
                let values = read_lines::<usize>(path, "a length in bytes (a whole number)")?;
                if let Some((line, _)) = values.iter().find(|(_, v)| *v == 0) {
                    return Err(SimError::TraceLine {
                        path: path.clone(),
                        line: *line,
                        reason: "a length must be at least 1 byte".into(),
                    });
                }
                Lengths::Empirical(values.into_iter().map(|(_, v)| v).collect())
            }
        };
        Ok(Workload {
            plan,
            lengths,
            length_seed: seed ^ LENGTH_STREAM,
            max_len,
            window_us: us(duration_s),
        })
    }

    /// A fresh length sampler: every deployment draws the same sequence.
    pub fn length_sampler(&self) -> LengthSampler<'_> {
        LengthSampler {
            workload: self,
            rng: StdRng::seed_from_u64(self.length_seed),
        }
    }

    /// Arrival times known before the run starts: all of an open trace, or
    /// every closed-loop client's first query at time 0.
    pub fn initial_arrivals(&self) -> Vec<u64> {
        match &self.plan {
            ArrivalPlan::Open(times) => times.clone(),
            ArrivalPlan::Closed { clients, .. } => vec![0; *clients as usize],
        }
    }

    /// When the client whose query completed at `t` sends its next one, if
    /// that is still inside the window.
    pub fn next_after_completion(&self, t: u64) -> Option<u64> {
        match &self.plan {
            ArrivalPlan::Open(_) => None,
            ArrivalPlan::Closed { think_us, .. } => {
                Some(t + think_us).filter(|&next| next < self.window_us)
            }
        }
    }
}

/// Draws query lengths in arrival order.
pub(crate) struct LengthSampler<'a> {
    workload: &'a Workload,
    rng: StdRng,
}

impl LengthSampler<'_> {
    pub fn next_len(&mut self) -> usize {
        let len = match &self.workload.lengths {
            Lengths::Fixed(n) => *n,
            Lengths::Uniform(lo, hi) => self.rng.random_range(*lo..=*hi),
            Lengths::LogNormal(d) => d.sample(&mut self.rng).round() as usize,
            Lengths::Empirical(values) => values[self.rng.random_range(0..values.len())],
        };
        len.clamp(1, self.workload.max_len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn times(process: &ArrivalProcess, seed: u64, duration_s: f64) -> Vec<u64> {
        let w = Workload::build(
            process,
            &LengthDistribution::Fixed { bytes: 1 },
            seed,
            duration_s,
            10,
        )
        .unwrap();
        w.initial_arrivals()
    }

    #[test]
    fn processes_have_their_mean_rate() {
        let c = times(&ArrivalProcess::Constant { rate_qps: 10.0 }, 1, 100.0);
        assert_eq!(c.len(), 1000);
        assert_eq!(c[1] - c[0], 100_000);
        let p = times(&ArrivalProcess::Poisson { rate_qps: 50.0 }, 1, 100.0);
        assert!((4700..5300).contains(&p.len()), "{}", p.len());
        assert!(p.windows(2).all(|w| w[0] <= w[1]));
        let bursty = ArrivalProcess::Bursty(Bursts {
            on_rate_qps: 100.0,
            off_rate_qps: 0.0,
            on_s: 1.0,
            off_s: 4.0,
        });
        let b = times(&bursty, 1, 100.0);
        assert!((1800..2200).contains(&b.len()), "{}", b.len());
        assert!(b.iter().all(|&t| t % 5_000_000 < 1_000_000));
        let d = times(
            &ArrivalProcess::Diurnal {
                mean_rate_qps: 50.0,
                amplitude: 0.8,
                period_s: 100.0,
            },
            1,
            100.0,
        );
        let first_half = d.iter().filter(|&&t| t < 50_000_000).count();
        assert!(
            first_half > 3 * (d.len() - first_half),
            "{first_half} of {}",
            d.len()
        );
    }

    #[test]
    fn bursty_fields_stand_beside_the_kind_and_no_other_is_read() {
        let json =
            r#"{"kind":"bursty","on_rate_qps":500.0,"off_rate_qps":0.0,"on_s":5.0,"off_s":25.0}"#;
        let bursty: ArrivalProcess = serde_json::from_str(json).unwrap();
        let want = Bursts {
            on_rate_qps: 500.0,
            off_rate_qps: 0.0,
            on_s: 5.0,
            off_s: 25.0,
        };
        assert_eq!(bursty, ArrivalProcess::Bursty(want));
        assert_eq!(serde_json::to_string(&bursty).unwrap(), json);
        let typo = json.replace("}", r#","of_s":1}"#);
        let err = serde_json::from_str::<ArrivalProcess>(&typo).unwrap_err();
        assert!(
            err.to_string().starts_with(
                "unknown field `of_s`, expected one of `on_rate_qps`, `off_rate_qps`, `on_s`, `off_s`"
            ),
            "{err}"
        );
    }

    #[test]
    fn mean_rates() {
        let bursty = ArrivalProcess::Bursty(Bursts {
            on_rate_qps: 100.0,
            off_rate_qps: 10.0,
            on_s: 1.0,
            off_s: 9.0,
        });
        assert_eq!(bursty.mean_rate(), Some(19.0));
        assert_eq!(
            ArrivalProcess::Poisson { rate_qps: 3.0 }.mean_rate(),
            Some(3.0)
        );
        let closed = ArrivalProcess::ClosedLoop {
            clients: 2,
            think_s: 0.0,
        };
        assert_eq!(closed.mean_rate(), None);
    }

    #[test]
    fn with_rate_keeps_the_shape() {
        let b = ArrivalProcess::Bursty(Bursts {
            on_rate_qps: 100.0,
            off_rate_qps: 10.0,
            on_s: 1.0,
            off_s: 9.0,
        });
        let ArrivalProcess::Bursty(Bursts {
            on_rate_qps,
            off_rate_qps,
            ..
        }) = b.with_rate(38.0).unwrap()
        else {
            panic!("kind changed")
        };
        assert!((on_rate_qps - 200.0).abs() < 1e-9 && (off_rate_qps - 20.0).abs() < 1e-9);
        let closed = ArrivalProcess::ClosedLoop {
            clients: 1,
            think_s: 0.0,
        };
        assert!(closed.with_rate(1.0).is_err());
    }

    #[test]
    fn lengths_are_clamped_and_repeatable() {
        let w = Workload::build(
            &ArrivalProcess::Constant { rate_qps: 1.0 },
            &LengthDistribution::LogNormal {
                median_bytes: 1000.0,
                sigma: 3.0,
            },
            3,
            1.0,
            5000,
        )
        .unwrap();
        let a: Vec<usize> = {
            let mut s = w.length_sampler();
            (0..1000).map(|_| s.next_len()).collect()
        };
        let mut s = w.length_sampler();
        assert!(a.iter().all(|&n| (1..=5000).contains(&n)));
        assert!(a.contains(&5000));
        assert!(a.iter().all(|&n| n == s.next_len()));
    }

    #[test]
    fn trace_files_report_the_bad_line() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let path = dir.join("times.txt");
        std::fs::write(&path, "# recorded\n0.5\n0.1\n\n2.0 # late\nabc\n").unwrap();
        let process = ArrivalProcess::File { path: path.clone() };
        let lengths = LengthDistribution::Fixed { bytes: 1 };
        let err = Workload::build(&process, &lengths, 0, 10.0, 10)
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("times.txt:6") && err.contains("abc"), "{err}");
        std::fs::write(&path, "0.5\n0.1\n2.0\n20\n").unwrap();
        assert_eq!(times(&process, 0, 10.0), vec![100_000, 500_000, 2_000_000]);
        let len_path = dir.join("lengths.txt");
        std::fs::write(&len_path, "10\n0\n").unwrap();
        let lengths = LengthDistribution::File { path: len_path };
        let err = Workload::build(&process, &lengths, 0, 10.0, 10)
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("lengths.txt:2"), "{err}");
    }
}
