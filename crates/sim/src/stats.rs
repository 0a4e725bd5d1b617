//! The one rule every bench and the simulator summarise samples by.
//!
//! **Nearest rank**: the `q`-quantile of `n` samples is the smallest sample that at
//! least `q · n` of them do not exceed, the sample of rank `⌈q · n⌉` (at least 1) in
//! ascending order. It is always a sample that was measured, never an interpolation
//! between two, so a median run can be picked as a whole (its own latencies, its own
//! baseline) and the same rule serves figures and runs. The median is the 0.5-quantile:
//! the middle sample of an odd count, the lower of the two middle ones of an even count.
//! No samples have no quantile (`None`).

/// The 0-based index, in ascending order, of the `q`-quantile of `n` samples; `None`
/// when `n` is 0. `q` is clamped to `[0, 1]`.
pub fn rank(n: usize, q: f64) -> Option<usize> {
    if n == 0 {
        return None;
    }
    let rank = (q.clamp(0.0, 1.0) * n as f64).ceil() as usize;
    Some(rank.clamp(1, n) - 1)
}

/// The `q`-quantile of `samples` (in any order).
pub fn quantile(samples: &[f64], q: f64) -> Option<f64> {
    let i = rank(samples.len(), q)?;
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    Some(sorted[i])
}

/// The median of `samples` (in any order): [`quantile`] at 0.5.
pub fn median(samples: &[f64]) -> Option<f64> {
    quantile(samples, 0.5)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_quantiles() {
        let v: Vec<f64> = (1..=100).rev().map(f64::from).collect();
        assert_eq!(quantile(&v, 0.5), Some(50.0));
        assert_eq!(quantile(&v, 0.99), Some(99.0));
        assert_eq!(quantile(&v, 1.0), Some(100.0));
        assert_eq!(quantile(&v, 0.0), Some(1.0));
        assert_eq!(quantile(&[3.0], 0.99), Some(3.0));
        assert_eq!(quantile(&[], 0.5), None);
    }

    #[test]
    fn medians_are_samples() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), Some(2.0), "the lower middle");
        assert_eq!(rank(4, 0.5), Some(1));
        assert_eq!(rank(5, 0.5), Some(2));
        assert_eq!(rank(0, 0.5), None);
    }
}
