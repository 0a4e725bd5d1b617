//! Injected faults (`seqless platform --faults`): the seeded draw per invocation, and each
//! function's fault-free median duration, which sizes a delay. A throttle is the platform's
//! own refusal; a crash, an error or a delay is done by the function process, told through
//! the invocation's client context, so a crash is a real process dying and the caller
//! sees only what Lambda would show it.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use seqless_wire::faults::{
    Fault, FaultDice, FaultInjection, FaultSettingsError, MedianWindow, WorkerFault,
};

/// What one invocation gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Drawn {
    /// Refused with 429 before any process is involved.
    Throttle,
    /// Told to the function process.
    Worker(WorkerFault),
}

/// The platform's fault injector.
pub struct Injector {
    dice: FaultDice,
    medians: Mutex<HashMap<String, MedianWindow>>,
}

impl Injector {
    /// An injector for `settings`; `None` when no fault can be drawn.
    pub fn new(settings: FaultInjection) -> Result<Option<Self>, FaultSettingsError> {
        let dice = FaultDice::new(settings)?;
        Ok(settings.is_active().then(|| Self {
            dice,
            medians: Mutex::default(),
        }))
    }

    fn medians(&self) -> std::sync::MutexGuard<'_, HashMap<String, MedianWindow>> {
        self.medians.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The next invocation's fault, for `function`. A delay is skipped until the function
    /// has a fault-free duration to take a multiple of.
    pub fn draw(&self, function: &str) -> Option<Drawn> {
        match self.dice.roll()? {
            Fault::Throttle => Some(Drawn::Throttle),
            Fault::Crash => Some(Drawn::Worker(WorkerFault::Crash)),
            Fault::Error => Some(Drawn::Worker(WorkerFault::Error)),
            Fault::Delay => {
                let median = self.medians().get(function)?.median()?;
                let delay = median.mul_f64(self.dice.settings().delay_factor);
                Some(Drawn::Worker(WorkerFault::Delay(delay)))
            }
        }
    }

    /// Records a successful invocation with no fault.
    pub fn fault_free(&self, function: &str, duration: Duration) {
        self.medians()
            .entry(function.to_owned())
            .or_default()
            .record(duration);
    }
}

impl Drawn {
    /// The fault's name, for metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Throttle => Fault::Throttle.as_str(),
            Self::Worker(WorkerFault::Crash) => Fault::Crash.as_str(),
            Self::Worker(WorkerFault::Error) => Fault::Error.as_str(),
            Self::Worker(WorkerFault::Delay(_)) => Fault::Delay.as_str(),
        }
    }
}
