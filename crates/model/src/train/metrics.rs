//! Classification metrics for `eval` and the training report.

use serde::Serialize;

/// Accuracy, macro-F1 and the confusion matrix over a labelled set.
#[derive(Debug, Clone, Serialize)]
pub struct Evaluation {
    /// Fraction of documents whose predicted label is the true one.
    pub accuracy: f64,
    /// Unweighted mean of per-label F1, so rare labels count as much as common ones.
    pub macro_f1: f64,
    /// Number of documents.
    pub n: usize,
    /// Label names, indexing the matrix.
    pub labels: Vec<String>,
    /// `confusion[true][predicted]` counts.
    pub confusion: Vec<Vec<usize>>,
    /// Per-label F1, in `labels` order.
    pub f1: Vec<f64>,
}

impl Evaluation {
    /// Scores `(true, predicted)` label-index pairs over `labels`.
    pub fn from_pairs(labels: &[String], pairs: impl IntoIterator<Item = (usize, usize)>) -> Self {
        let k = labels.len();
        let mut confusion = vec![vec![0usize; k]; k];
        let mut n = 0;
        for (t, p) in pairs {
            confusion[t][p] += 1;
            n += 1;
        }
        let correct: usize = (0..k).map(|i| confusion[i][i]).sum();
        let f1: Vec<f64> = (0..k)
            .map(|i| {
                let tp = confusion[i][i] as f64;
                let predicted: usize = (0..k).map(|t| confusion[t][i]).sum();
                let actual: usize = confusion[i].iter().sum();
                let denom = predicted as f64 + actual as f64;
                if denom == 0.0 { 0.0 } else { 2.0 * tp / denom }
            })
            .collect();
        let present: Vec<f64> = (0..k)
            .filter(|&i| {
                confusion[i].iter().sum::<usize>() > 0 || (0..k).any(|t| confusion[t][i] > 0)
            })
            .map(|i| f1[i])
            .collect();
        Self {
            accuracy: if n == 0 {
                0.0
            } else {
                correct as f64 / n as f64
            },
            macro_f1: if present.is_empty() {
                0.0
            } else {
                present.iter().sum::<f64>() / present.len() as f64
            },
            n,
            labels: labels.to_vec(),
            confusion,
            f1,
        }
    }

    /// A fixed-width table of the confusion matrix, rows true and columns predicted.
    pub fn render_confusion(&self) -> String {
        let width = self
            .labels
            .iter()
            .map(String::len)
            .max()
            .unwrap_or(1)
            .max(4)
            + 1;
        let mut out = format!("{:>width$}", "true\\pred");
        for l in &self.labels {
            out.push_str(&format!("{l:>width$}"));
        }
        out.push('\n');
        for (l, row) in self.labels.iter().zip(&self.confusion) {
            out.push_str(&format!("{l:>width$}"));
            for c in row {
                out.push_str(&format!("{c:>width$}"));
            }
            out.push('\n');
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn macro_f1_by_hand() {
        let labels = vec!["a".to_string(), "b".to_string()];
        // a: tp 2, fn 1 (predicted b), fp 0 -> f1 = 4/5; b: tp 1, fp 1 -> f1 = 2/3.
        let e = Evaluation::from_pairs(&labels, [(0, 0), (0, 0), (0, 1), (1, 1)]);
        assert_eq!(e.n, 4);
        assert!((e.accuracy - 0.75).abs() < 1e-12);
        assert!((e.macro_f1 - (0.8 + 2.0 / 3.0) / 2.0).abs() < 1e-12);
        assert_eq!(e.confusion, vec![vec![2, 1], vec![0, 1]]);
    }
}
