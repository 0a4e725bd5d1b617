use serde::Serialize;

use crate::fmt::count;

// The paper's figures, in exact integers: nano-dollars and counts. Working in
// integers is what lets `paper_cost` reproduce $3.944 to the last digit instead
// of to within floating-point error.
const QUERIES: u64 = 1_800_000;
const INVOCATIONS_PER_QUERY: u64 = 10;
const REQUEST_NUSD_PER_MILLION: u64 = 200_000_000; // $0.20 per 1M requests
const MASTER_NUSD_PER_HOUR: u64 = 188_000_000; // $0.188
const ELASTICACHE_NUSD_PER_HOUR: u64 = 156_000_000; // $0.156
const GPU_NUSD_PER_HOUR: u64 = 900_000_000; // p2.xlarge, $0.90
const GPU_UTILISATION_PERCENT: u64 = 50;
const NANO: f64 = 1e9;

/// The paper's cost comparison, every term kept, so that `seqless cost --paper`
/// can show where $3.944 comes from and what it leaves out.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PaperCost {
    /// Queries compared: what one p2.xlarge serves in an hour at 50% utilisation.
    pub queries: u64,
    /// Lambda invocations per query in the paper's deployment.
    pub invocations_per_query: u64,
    /// All invocations: `queries × invocations_per_query`.
    pub invocations: u64,
    /// Lambda's request price the paper used, USD per 1M requests.
    pub request_usd_per_million: f64,
    /// `invocations × $0.2 / 1M` = $3.6.
    pub lambda_requests_usd: f64,
    /// One hour of the master node = $0.188.
    pub master_usd: f64,
    /// One hour of ElastiCache = $0.156.
    pub elasticache_usd: f64,
    /// The serverless total = $3.944.
    pub serverless_usd: f64,
    /// p2.xlarge hourly price = $0.90.
    pub gpu_hourly_usd: f64,
    /// The utilisation the paper assumed for the GPU instance (0.5).
    pub gpu_utilisation: f64,
    /// The instance's implied full capacity, queries per second (1,000): the
    /// 1.8 M queries are half of what it could serve in the hour.
    pub gpu_capacity_qps: f64,
    /// The GPU side's total for the same queries: one hour = $0.90.
    pub gpu_usd: f64,
    /// How many times the GPU hour the serverless bill is (≈ 4.38).
    pub serverless_over_gpu: f64,
}

/// Reproduces the paper's arithmetic exactly. It exists as a fixed reference:
/// the fuller model ([`crate::FullCost`]) must agree with it when its extra
/// terms are zeroed, and a reader can see which terms the paper left out.
pub fn paper_cost() -> PaperCost {
    let invocations = QUERIES * INVOCATIONS_PER_QUERY;
    let requests_nusd = invocations * REQUEST_NUSD_PER_MILLION / 1_000_000;
    let serverless_nusd = requests_nusd + MASTER_NUSD_PER_HOUR + ELASTICACHE_NUSD_PER_HOUR;
    let capacity_per_hour = QUERIES * 100 / GPU_UTILISATION_PERCENT;
    PaperCost {
        queries: QUERIES,
        invocations_per_query: INVOCATIONS_PER_QUERY,
        invocations,
        request_usd_per_million: REQUEST_NUSD_PER_MILLION as f64 / NANO,
        lambda_requests_usd: requests_nusd as f64 / NANO,
        master_usd: MASTER_NUSD_PER_HOUR as f64 / NANO,
        elasticache_usd: ELASTICACHE_NUSD_PER_HOUR as f64 / NANO,
        serverless_usd: serverless_nusd as f64 / NANO,
        gpu_hourly_usd: GPU_NUSD_PER_HOUR as f64 / NANO,
        gpu_utilisation: GPU_UTILISATION_PERCENT as f64 / 100.0,
        gpu_capacity_qps: capacity_per_hour as f64 / 3600.0,
        gpu_usd: GPU_NUSD_PER_HOUR as f64 / NANO,
        serverless_over_gpu: serverless_nusd as f64 / GPU_NUSD_PER_HOUR as f64,
    }
}

impl PaperCost {
    /// The comparison as text, one line per term, with the omitted charges
    /// named, for `seqless cost --paper`. Dollar figures print in Rust's
    /// shortest exact form, so $3.944 reads as the paper wrote it.
    pub fn render(&self) -> String {
        let capacity = (self.gpu_capacity_qps * 3600.0).round() as u64;
        let lines = [
            format!(
                "The paper's comparison: {} queries, one hour",
                count(self.queries)
            ),
            "Serverless".to_string(),
            format!(
                "  Lambda requests  {} queries x {} invocations x ${} per 1M = ${}",
                count(self.queries),
                self.invocations_per_query,
                self.request_usd_per_million,
                self.lambda_requests_usd
            ),
            format!(
                "  Master node      1 h x ${}/h = ${}",
                self.master_usd, self.master_usd
            ),
            format!(
                "  ElastiCache      1 h x ${}/h = ${}",
                self.elasticache_usd, self.elasticache_usd
            ),
            format!("  Total            ${}", self.serverless_usd),
            "GPU instance".to_string(),
            format!(
                "  p2.xlarge        1 h x ${}/h at {}% utilisation ({} of {} queries/h) = ${}",
                self.gpu_hourly_usd,
                self.gpu_utilisation * 100.0,
                count(self.queries),
                count(capacity),
                self.gpu_usd
            ),
            format!("Serverless / GPU = {:.2}x", self.serverless_over_gpu),
            "Left out by the paper: Lambda duration (GB-s), INIT (cold start) duration, \
             cache traffic between Availability Zones."
                .to_string(),
        ];
        lines.join("\n") + "\n"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reproduces_the_paper_exactly() {
        let p = paper_cost();
        assert_eq!(p.queries, 1_800_000);
        assert_eq!(p.invocations, 18_000_000);
        assert_eq!(p.request_usd_per_million, 0.2);
        assert_eq!(p.lambda_requests_usd, 3.6);
        assert_eq!(p.master_usd, 0.188);
        assert_eq!(p.elasticache_usd, 0.156);
        assert_eq!(p.serverless_usd, 3.944);
        assert_eq!(p.gpu_usd, 0.9);
        assert_eq!(p.gpu_utilisation, 0.5);
        assert_eq!(p.gpu_capacity_qps, 1000.0);
        assert!((p.serverless_over_gpu - 3.944 / 0.9).abs() < 1e-15);
    }

    #[test]
    fn render_shows_every_term() {
        let text = paper_cost().render();
        for needle in [
            "1,800,000 queries x 10 invocations x $0.2 per 1M = $3.6",
            "$0.188",
            "$0.156",
            "Total            $3.944",
            "$0.9/h at 50% utilisation (1,800,000 of 3,600,000 queries/h) = $0.9",
            "4.38x",
            "GB-s",
        ] {
            assert!(text.contains(needle), "missing {needle:?} in\n{text}");
        }
    }
}
