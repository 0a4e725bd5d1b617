use serde::{Deserialize, Serialize};

use crate::{Arch, Pricing};

/// Lambda's billed duration for a measured run, defined with the Lambda wire shapes and
/// re-exported so the coordinator and the simulator price what the platform bills.
pub use seqless_wire::billed_ms;

/// GB-seconds, Lambda's duration unit: configured memory in GB (1024 MB) times
/// billed seconds. Written once so every term uses the same conversion.
pub fn gb_seconds(billed_ms: u64, memory_mb: u32) -> f64 {
    gb_seconds_f64(billed_ms as f64, memory_mb)
}

/// [`gb_seconds`] for a mean duration, which need not be a whole millisecond.
pub(crate) fn gb_seconds_f64(billed_ms: f64, memory_mb: u32) -> f64 {
    f64::from(memory_mb) / 1024.0 * (billed_ms / 1000.0)
}

/// What one invocation costs: the request fee plus its duration. INIT is not
/// included because it belongs to the cold start, not the request; see
/// [`query_cost`].
pub fn invocation_cost(p: &Pricing, arch: Arch, billed_ms: u64, memory_mb: u32) -> f64 {
    p.lambda.request_usd() + gb_seconds(billed_ms, memory_mb) * p.lambda.gb_second_usd(arch)
}

/// One invocation as Lambda bills it: the unit the coordinator records per
/// stage function in a query trace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BilledInvocation {
    /// Billed handler duration in ms (already rounded up; see [`billed_ms`]).
    pub billed_ms: u64,
    /// The function's configured memory.
    pub memory_mb: u32,
    /// Billed INIT duration in ms if this invocation was a cold start, else 0.
    pub init_billed_ms: u64,
    /// How many queries' stages ran in the invocation (a cross-query batch; 1 alone): the
    /// query pays this share of the request and of the durations.
    pub shared_by: u32,
}

impl BilledInvocation {
    /// The query's share of the invocation: 1 / [`shared_by`](Self::shared_by) (a count
    /// of 0 reads as 1).
    pub fn share(&self) -> f64 {
        1.0 / f64::from(self.shared_by.max(1))
    }
}

/// A query's Lambda bill split by term, so a trace shows whether requests,
/// duration or cold starts dominate.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct CostBreakdown {
    /// Request fees.
    pub requests_usd: f64,
    /// Handler duration.
    pub duration_usd: f64,
    /// INIT (cold start) duration; zero when [`crate::LambdaPricing::bill_init`]
    /// is off.
    pub init_usd: f64,
    /// The sum of the three.
    pub total_usd: f64,
}

/// The Lambda bill of one query's invocations. The master, the cache and data
/// transfer are shared across queries and so are priced by [`crate::FullCost`]
/// over a period, not here.
pub fn query_cost(p: &Pricing, arch: Arch, invocations: &[BilledInvocation]) -> CostBreakdown {
    let gb_s_price = p.lambda.gb_second_usd(arch);
    let requests_usd =
        invocations.iter().map(BilledInvocation::share).sum::<f64>() * p.lambda.request_usd();
    let duration_usd: f64 = invocations
        .iter()
        .map(|i| gb_seconds(i.billed_ms, i.memory_mb) * gb_s_price * i.share())
        .sum();
    let init_usd: f64 = if p.lambda.bill_init {
        invocations
            .iter()
            .map(|i| gb_seconds(i.init_billed_ms, i.memory_mb) * gb_s_price * i.share())
            .sum()
    } else {
        0.0
    };
    CostBreakdown {
        requests_usd,
        duration_usd,
        init_usd,
        total_usd: requests_usd + duration_usd + init_usd,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-12 * b.abs().max(1e-9)
    }

    #[test]
    fn one_invocation_is_request_plus_gb_seconds() {
        let p = Pricing::default();
        // 1 s at 1024 MB = 1 GB-s.
        let c = invocation_cost(&p, Arch::X86_64, 1000, 1024);
        assert!(close(c, 0.2e-6 + 0.0000166667), "{c}");
        let c = invocation_cost(&p, Arch::Arm64, 500, 2048);
        assert!(close(c, 0.2e-6 + 0.0000133334), "{c}");
        assert!(close(gb_seconds(100, 128), 0.0125));
    }

    #[test]
    fn init_is_billed_only_when_switched_on() {
        let mut p = Pricing::default();
        let invs = [
            BilledInvocation {
                billed_ms: 100,
                memory_mb: 1024,
                init_billed_ms: 400,
                shared_by: 1,
            },
            BilledInvocation {
                billed_ms: 100,
                memory_mb: 1024,
                init_billed_ms: 0,
                shared_by: 1,
            },
        ];
        let on = query_cost(&p, Arch::X86_64, &invs);
        assert!(close(on.requests_usd, 0.4e-6));
        assert!(close(on.duration_usd, 0.2 * 0.0000166667));
        assert!(close(on.init_usd, 0.4 * 0.0000166667));
        assert!(close(
            on.total_usd,
            on.requests_usd + on.duration_usd + on.init_usd
        ));
        p.lambda.bill_init = false;
        let off = query_cost(&p, Arch::X86_64, &invs);
        assert_eq!(off.init_usd, 0.0);
        assert!(close(off.total_usd, on.total_usd - on.init_usd));
        assert_eq!(query_cost(&p, Arch::X86_64, &[]), CostBreakdown::default());
    }
}
