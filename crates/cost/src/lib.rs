//! What serving a query costs, in US dollars.
//!
//! seqless trades an always-on GPU instance for many short function invocations.
//! Whether that is cheaper depends on load, so every layer of the system (the
//! coordinator's per-query trace, the `seqless cost` command and the simulator)
//! prices its work through this one crate:
//!
//! - [`Pricing`]: the price list, loaded from TOML. [`Pricing::default`] is the
//!   shipped `pricing.default.toml` (public AWS prices, us-east-1).
//! - [`invocation_cost`] and [`query_cost`]: what AWS Lambda bills for one
//!   invocation and for one query's invocations ([`CostBreakdown`]).
//! - [`paper_cost`]: the paper's own arithmetic ($3.944 serverless against $0.90
//!   for one p2.xlarge hour), term by term ([`PaperCost`]).
//! - [`FullCostInput`] → [`FullCost`]: the fuller model with duration, INIT,
//!   master, cache and traffic terms, cost per million queries and the
//!   break-even utilisation of an instance; [`summarise`] turns metered queries
//!   ([`QueryUsage`]) into its per-stage usage, and [`Comparison`] sets the result
//!   against an instance.
//!
//! ```
//! use seqless_cost::{query_cost, Arch, BilledInvocation, Pricing};
//!
//! let pricing = Pricing::default();
//! // One query: ten warm invocations of 100 ms each at 1024 MB.
//! let alone = BilledInvocation { billed_ms: 100, memory_mb: 1024, init_billed_ms: 0, shared_by: 1 };
//! let invocations = vec![alone; 10];
//! let cost = query_cost(&pricing, Arch::X86_64, &invocations);
//! assert!((cost.requests_usd - 10.0 * 0.2e-6).abs() < 1e-15);
//! assert!((cost.duration_usd - 1.0 * 0.0000166667).abs() < 1e-15); // 10 x 0.1 GB-s
//! assert_eq!(cost.init_usd, 0.0);
//! // The same invocations each shared by 4 queries' stages (a cross-query batch): this
//! // query pays a quarter of each.
//! let batched = vec![BilledInvocation { shared_by: 4, ..alone }; 10];
//! let quarter = query_cost(&pricing, Arch::X86_64, &batched);
//! assert!((quarter.total_usd - cost.total_usd / 4.0).abs() < 1e-15);
//! ```

#![warn(missing_docs)]

#[cfg(feature = "clap")]
mod cost_args;
mod error;
mod fmt;
mod full;
mod lambda;
mod paper;
mod pricing;
mod usage;

#[cfg(feature = "clap")]
pub use cost_args::CostArgs;
pub use error::CostError;
pub use fmt::count as format_count;
pub use full::{FullCost, FullCostInput, StageCost, StageUsage, UnitPrices};
pub use lambda::{
    BilledInvocation, CostBreakdown, billed_ms, gb_seconds, invocation_cost, query_cost,
};
pub use paper::{PaperCost, paper_cost};
pub use pricing::{Arch, DEFAULT_PRICING_TOML, DataTransferPricing, LambdaPricing, Pricing};
pub use usage::{
    Comparison, DEFAULT_INIT_MS, MeteredInvocation, QueryUsage, UsageSummary, summarise,
};
