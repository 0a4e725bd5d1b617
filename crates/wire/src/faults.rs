//! Fault injection, shared by the local platform (`seqless platform`) and the in-process
//! invoker: the settings, the seeded per-invocation draw, and what a function process is
//! told to do. The caller (the coordinator) sees only the faults' effects, as it would on
//! AWS Lambda at scale: throttles (429), crashed instances (`Runtime.ExitError`), function
//! errors and stragglers.

use std::collections::VecDeque;
use std::fmt;
use std::str::FromStr;
use std::sync::Mutex;
use std::time::Duration;

/// Per-invocation rates of injected faults, seeded so that a run repeats: the n-th
/// invocation the platform receives always draws the same fault. At most one fault is
/// injected per invocation, so the rates add up to at most 1.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct FaultInjection {
    /// Seed of the draw.
    pub seed: u64,
    /// The stage runs, then its answer is replaced by a retryable function error.
    pub error_rate: f64,
    /// The stage runs, then the instance dies before answering (a function process
    /// aborts itself); the caller sees only `Runtime.ExitError`.
    pub crash_rate: f64,
    /// The stage is held back before it runs, by `delay_factor` times the fault-free
    /// median duration of its function: a straggler.
    pub delay_rate: f64,
    /// A delay as a multiple of the function's fault-free median duration.
    pub delay_factor: f64,
    /// The invocation is refused with 429 `TooManyRequestsException` and never runs.
    pub throttle_rate: f64,
}

/// Settings that cannot work, named.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("fault injection: {0}")]
pub struct FaultSettingsError(String);

/// The keys of [`FaultInjection`]'s text form, `seed=7,error=0.1,crash=0.02,...`.
const KEYS: &str = "seed, error, crash, delay, delay-factor, throttle";

impl FaultInjection {
    /// Refuses rates outside 0..=1, rates that add up to more than 1, and a delay factor
    /// that is negative or not finite, naming the setting.
    pub fn validate(&self) -> Result<(), FaultSettingsError> {
        for (name, rate) in self.rates() {
            if !(0.0..=1.0).contains(&rate) {
                return Err(FaultSettingsError(format!(
                    "the {name} rate {rate} is outside 0..=1"
                )));
            }
        }
        let sum: f64 = self.rates().iter().map(|(_, r)| r).sum();
        if sum > 1.0 + 1e-9 {
            return Err(FaultSettingsError(format!(
                "the rates add up to {sum}, over 1; at most one fault is injected per invocation"
            )));
        }
        if !self.delay_factor.is_finite() || self.delay_factor < 0.0 {
            return Err(FaultSettingsError(format!(
                "the delay factor {} must be a finite multiple (0 or more) of the median duration",
                self.delay_factor
            )));
        }
        if self.delay_rate > 0.0 && self.delay_factor == 0.0 {
            return Err(FaultSettingsError(
                "a delay rate needs a delay factor above 0 (delay-factor=10 holds a stage for 10 times its median)".into(),
            ));
        }
        Ok(())
    }

    /// Whether any fault can be drawn.
    pub fn is_active(&self) -> bool {
        self.rates().iter().any(|(_, r)| *r > 0.0)
    }

    fn rates(&self) -> [(&'static str, f64); 4] {
        [
            ("throttle", self.throttle_rate),
            ("crash", self.crash_rate),
            ("error", self.error_rate),
            ("delay", self.delay_rate),
        ]
    }
}

impl FromStr for FaultInjection {
    type Err = FaultSettingsError;

    /// Reads `seed=7,error=0.1,crash=0.02,delay=0.05,delay-factor=10,throttle=0.05`; keys
    /// left out are 0, and the result is validated.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let mut faults = Self::default();
        for item in text.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            let (key, value) = item.split_once('=').ok_or_else(|| {
                FaultSettingsError(format!("{item:?}: expected KEY=VALUE with a key of {KEYS}"))
            })?;
            let (key, value) = (key.trim(), value.trim());
            if key == "seed" {
                faults.seed = value.parse().map_err(|_| {
                    FaultSettingsError(format!("seed={value:?} is not a whole number"))
                })?;
                continue;
            }
            let number: f64 = value
                .parse()
                .map_err(|_| FaultSettingsError(format!("{key}={value:?} is not a number")))?;
            let field = match key {
                "error" => &mut faults.error_rate,
                "crash" => &mut faults.crash_rate,
                "delay" => &mut faults.delay_rate,
                "delay-factor" => &mut faults.delay_factor,
                "throttle" => &mut faults.throttle_rate,
                other => {
                    return Err(FaultSettingsError(format!(
                        "{other:?} is not a setting; expected one of {KEYS}"
                    )));
                }
            };
            *field = number;
        }
        faults.validate()?;
        Ok(faults)
    }
}

/// The fault drawn for one invocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Fault {
    /// Refused with 429; never runs.
    Throttle,
    /// Runs, then the instance dies before answering.
    Crash,
    /// Runs, then answers a retryable error.
    Error,
    /// Held back by a multiple of its function's median, then runs.
    Delay,
}

impl Fault {
    /// A short name, for metrics and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Throttle => "throttle",
            Self::Crash => "crash",
            Self::Error => "error",
            Self::Delay => "delay",
        }
    }
}

/// The seeded per-invocation draw: SplitMix64 (a fixed, documented generator, so a seed
/// means the same faults in every build), one number per invocation, mapped onto the rates
/// laid end to end.
#[derive(Debug)]
pub struct FaultDice {
    settings: FaultInjection,
    state: Mutex<u64>,
}

impl FaultDice {
    /// A draw for validated `settings`.
    pub fn new(settings: FaultInjection) -> Result<Self, FaultSettingsError> {
        settings.validate()?;
        Ok(Self {
            settings,
            state: Mutex::new(settings.seed),
        })
    }

    /// The settings drawn from.
    pub fn settings(&self) -> &FaultInjection {
        &self.settings
    }

    /// The next invocation's fault, if any.
    pub fn roll(&self) -> Option<Fault> {
        if !self.settings.is_active() {
            return None;
        }
        let bits = {
            let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
            *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = *state;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        };
        // The top 53 bits as a uniform number in [0, 1).
        let u = (bits >> 11) as f64 / (1u64 << 53) as f64;
        let s = &self.settings;
        let mut edge = 0.0;
        for (fault, rate) in [
            (Fault::Throttle, s.throttle_rate),
            (Fault::Crash, s.crash_rate),
            (Fault::Error, s.error_rate),
            (Fault::Delay, s.delay_rate),
        ] {
            edge += rate;
            if u < edge {
                return Some(fault);
            }
        }
        None
    }
}

/// The median of a function's recent fault-free durations, which sizes an injected delay
/// so that a straggler is slow relative to its own stage kind, whatever the input size.
#[derive(Debug, Default)]
pub struct MedianWindow {
    recent: VecDeque<Duration>,
}

/// Durations a [`MedianWindow`] keeps.
const WINDOW: usize = 255;

impl MedianWindow {
    /// Adds a fault-free duration, forgetting the oldest beyond the window.
    pub fn record(&mut self, duration: Duration) {
        if self.recent.len() == WINDOW {
            self.recent.pop_front();
        }
        self.recent.push_back(duration);
    }

    /// The median of the window; `None` before the first sample.
    pub fn median(&self) -> Option<Duration> {
        let mut sorted: Vec<Duration> = self.recent.iter().copied().collect();
        sorted.sort_unstable();
        sorted.get(sorted.len() / 2).copied()
    }
}

/// The function process's environment variable that lets it act on [`WorkerFault`]s; the
/// local platform sets it only when faults are injected, so a deployed function never
/// crashes itself on a caller's say-so.
pub const FAULTS_ENV: &str = "SEQLESS_INJECT_FAULTS";

/// The key in the invocation's client context (`Lambda-Runtime-Client-Context`, the Runtime
/// API's one channel from the platform to the function per invocation) that carries a
/// [`WorkerFault`].
pub const FAULT_CONTEXT_KEY: &str = "seqless-fault";

/// The message of an injected function error.
pub const INJECTED_ERROR: &str =
    "injected fault: the stage ran, and its answer was replaced by this error";

/// What a function process is told to do with one invocation (a throttle never reaches
/// it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkerFault {
    /// Run the stage, then abort the process before answering.
    Crash,
    /// Run the stage, then answer a retryable error.
    Error,
    /// Wait this long, then run the stage.
    Delay(Duration),
}

impl fmt::Display for WorkerFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Crash => f.write_str("crash"),
            Self::Error => f.write_str("error"),
            Self::Delay(d) => write!(f, "delay:{}", d.as_micros()),
        }
    }
}

impl FromStr for WorkerFault {
    type Err = FaultSettingsError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "crash" => Ok(Self::Crash),
            "error" => Ok(Self::Error),
            _ => text
                .strip_prefix("delay:")
                .and_then(|us| us.parse().ok())
                .map(|us| Self::Delay(Duration::from_micros(us)))
                .ok_or_else(|| FaultSettingsError(format!("unknown worker fault {text:?}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_parse_and_bad_ones_are_named() {
        let f: FaultInjection =
            "seed=7, error=0.1,crash=0.02,delay=0.05,delay-factor=10,throttle=0.05"
                .parse()
                .unwrap();
        assert_eq!(
            f,
            FaultInjection {
                seed: 7,
                error_rate: 0.1,
                crash_rate: 0.02,
                delay_rate: 0.05,
                delay_factor: 10.0,
                throttle_rate: 0.05,
            }
        );
        assert!(!FaultInjection::default().is_active());
        assert!(f.is_active());
        for (text, names) in [
            ("crash=1.5", "crash rate 1.5"),
            ("error=-0.1", "error rate -0.1"),
            ("error=0.6,crash=0.6", "add up to"),
            ("delay=0.1", "delay factor above 0"),
            ("delay-factor=-1", "delay factor -1"),
            ("delay-factor=inf", "delay factor inf"),
            ("errors=0.1", "\"errors\" is not a setting"),
            ("error", "KEY=VALUE"),
            ("error=lots", "not a number"),
            ("seed=-1", "whole number"),
            ("error=NaN", "error rate NaN"),
        ] {
            let err = text.parse::<FaultInjection>().unwrap_err().to_string();
            assert!(err.contains(names), "{text}: {err}");
            assert!(err.starts_with("fault injection: "), "{err}");
        }
    }

    #[test]
    fn the_draw_repeats_for_a_seed_and_follows_the_rates() {
        let settings: FaultInjection =
            "seed=3,throttle=0.1,crash=0.2,error=0.3,delay=0.1,delay-factor=2"
                .parse()
                .unwrap();
        let draw = |seed| {
            let dice = FaultDice::new(FaultInjection { seed, ..settings }).unwrap();
            (0..20_000).map(|_| dice.roll()).collect::<Vec<_>>()
        };
        let a = draw(3);
        assert_eq!(a, draw(3));
        assert_ne!(a, draw(4));
        let share = |fault| a.iter().filter(|f| **f == fault).count() as f64 / a.len() as f64;
        for (fault, rate) in [
            (Some(Fault::Throttle), 0.1),
            (Some(Fault::Crash), 0.2),
            (Some(Fault::Error), 0.3),
            (Some(Fault::Delay), 0.1),
            (None, 0.3),
        ] {
            assert!(
                (share(fault) - rate).abs() < 0.02,
                "{fault:?}: {}",
                share(fault)
            );
        }
        let off = FaultDice::new(FaultInjection::default()).unwrap();
        assert!((0..100).all(|_| off.roll().is_none()));
        assert!(
            FaultDice::new(FaultInjection {
                crash_rate: 2.0,
                ..settings
            })
            .is_err()
        );
    }

    #[test]
    fn the_median_window_forgets_old_durations() {
        let mut w = MedianWindow::default();
        assert_eq!(w.median(), None);
        for ms in [5, 1, 3] {
            w.record(Duration::from_millis(ms));
        }
        assert_eq!(w.median(), Some(Duration::from_millis(3)));
        for _ in 0..WINDOW {
            w.record(Duration::from_millis(100));
        }
        assert_eq!(w.median(), Some(Duration::from_millis(100)));
    }

    #[test]
    fn worker_faults_round_trip() {
        for fault in [
            WorkerFault::Crash,
            WorkerFault::Error,
            WorkerFault::Delay(Duration::from_micros(1234)),
        ] {
            assert_eq!(fault.to_string().parse::<WorkerFault>(), Ok(fault));
        }
        assert!("explode".parse::<WorkerFault>().is_err());
    }
}
