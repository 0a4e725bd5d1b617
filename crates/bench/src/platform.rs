//! `seqless bench platform`'s figures: one row per figure with the median of its
//! samples and, where it has one, the baseline measured in the same run and the ratio.

use crate::stats::median;

/// The CSV's header line.
const CSV_HEADER: &str = "figure,bytes,median_ms,baseline_ms,ratio\n";

/// The rows measured so far, as CSV.
pub struct Figures {
    csv: String,
}

impl Default for Figures {
    fn default() -> Self {
        Self {
            csv: CSV_HEADER.into(),
        }
    }
}

impl Figures {
    /// The table's header line.
    pub fn table_header() -> String {
        format!(
            "{:<26} {:>9} {:>10} {:>11} {:>7}",
            "figure", "bytes", "median_ms", "baseline_ms", "ratio"
        )
    }

    /// Adds figure `name` at input size `bytes` (0 where there is none): the median of
    /// `samples_ms` against `baseline_ms`; returns its table line.
    pub fn add(
        &mut self,
        name: &str,
        bytes: usize,
        samples_ms: &[f64],
        baseline_ms: Option<f64>,
    ) -> String {
        let median_ms = median(samples_ms).unwrap_or(f64::NAN);
        let ratio = baseline_ms.map(|b| median_ms / b);
        let cell = |x: Option<f64>, prec: usize, missing: &str| {
            x.map_or_else(|| missing.to_owned(), |v| format!("{v:.prec$}"))
        };
        self.csv.push_str(&format!(
            "{name},{bytes},{median_ms:.3},{},{}\n",
            cell(baseline_ms, 3, ""),
            cell(ratio, 3, ""),
        ));
        format!(
            "{name:<26} {bytes:>9} {median_ms:>10.3} {:>11} {:>7}",
            cell(baseline_ms, 3, "-"),
            cell(ratio, 2, "-"),
        )
    }

    /// Every row added, as CSV with a header line.
    pub fn csv(&self) -> &str {
        &self.csv
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_medians_against_their_baseline() {
        let mut figures = Figures::default();
        let line = figures.add("warm", 0, &[3.0, 1.0, 2.0], None);
        assert!(line.starts_with("warm") && line.ends_with('-'), "{line}");
        let line = figures.add("local_vs_inproc", 4096, &[4.0, 8.0, 6.0], Some(4.0));
        assert!(line.contains("6.000") && line.ends_with("1.50"), "{line}");
        let csv: Vec<&str> = figures.csv().lines().collect();
        assert_eq!(csv[0], CSV_HEADER.trim_end());
        assert_eq!(csv[1], "warm,0,2.000,,");
        assert_eq!(csv[2], "local_vs_inproc,4096,6.000,4.000,1.500");
        assert_eq!(Figures::table_header().split_whitespace().count(), 5);
    }
}
