//! The fixed baseline: multinomial naive Bayes over byte n-grams, with the additive
//! smoothing and the longest n-gram order chosen on a validation split.
//!
//! Every n-gram of orders 1 to N in a document is one draw from its class's multinomial;
//! a class's probability for an n-gram is `(count + alpha) / (total + alpha * V)` over the
//! training documents of the class, V being the number of distinct n-grams seen in
//! training. N-grams never seen in training carry no evidence and are skipped. Orders 1
//! and 2 are counted exactly; longer n-grams share 2^21 hashed buckets per order, which
//! keeps the tables in memory at the cost of rare collisions.

use rayon::prelude::*;
use seqless_model::ModelError;
use seqless_model::train::{Evaluation, Example};
use serde::Serialize;

/// The longest n-gram order the search tries.
pub const MAX_ORDER: usize = 5;
/// The smoothing values the search tries.
pub const ALPHAS: [f64; 8] = [1e-4, 1e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.3, 1.0];
const HASH_BITS: u32 = 21;

/// The buckets of one n-gram order: every value for orders 1-2, hashed above.
fn buckets(order: usize) -> usize {
    if order <= 2 {
        1 << (8 * order)
    } else {
        1 << HASH_BITS
    }
}

fn bucket(gram: &[u8]) -> usize {
    let key = gram.iter().fold(0u64, |k, &b| (k << 8) | u64::from(b));
    if gram.len() <= 2 {
        key as usize
    } else {
        // splitmix64's finaliser: every input bit moves the top bits taken.
        let mut z = key.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z >> (64 - HASH_BITS)) as usize
    }
}

/// A document's n-grams: per order, `(bucket, occurrences)` sorted by bucket.
fn features(text: &[u8], max_order: usize) -> Vec<Vec<(u32, u32)>> {
    (1..=max_order)
        .map(|n| {
            let mut ids: Vec<u32> = text.windows(n).map(|g| bucket(g) as u32).collect();
            ids.sort_unstable();
            let mut out: Vec<(u32, u32)> = Vec::new();
            for id in ids {
                match out.last_mut() {
                    Some((last, count)) if *last == id => *count += 1,
                    _ => out.push((id, 1)),
                }
            }
            out
        })
        .collect()
}

/// Class-conditional n-gram counts from the training documents.
struct Counts {
    labels: Vec<String>,
    /// Per order: `buckets(order) * classes` counts, bucket-major.
    tables: Vec<Vec<u32>>,
    /// Per order and class: n-grams counted.
    totals: Vec<Vec<f64>>,
    /// Per order: buckets seen in any class.
    vocab: Vec<usize>,
    /// Per class: log of its share of the training documents.
    log_prior: Vec<f64>,
}

/// A point of the search: longest order and smoothing.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Params {
    /// N-grams of orders 1 to `order` are counted.
    pub order: usize,
    /// Additive smoothing.
    pub alpha: f64,
}

impl Counts {
    /// Counts the n-grams of orders 1 to [`MAX_ORDER`] of `train`; the labels are those
    /// of `train`, sorted.
    fn fit(train: &[Example]) -> Self {
        let mut labels: Vec<String> = train.iter().map(|e| e.label.clone()).collect();
        labels.sort();
        labels.dedup();
        let k = labels.len();
        let mut tables: Vec<Vec<u32>> = (1..=MAX_ORDER).map(|n| vec![0; buckets(n) * k]).collect();
        let mut totals = vec![vec![0.0; k]; MAX_ORDER];
        let mut docs = vec![0usize; k];
        for e in train {
            let c = labels.binary_search(&e.label).expect("label from train");
            docs[c] += 1;
            for n in 1..=MAX_ORDER {
                for g in e.text.windows(n) {
                    let slot = &mut tables[n - 1][bucket(g) * k + c];
                    *slot = slot.saturating_add(1);
                }
                totals[n - 1][c] += e.text.len().saturating_sub(n - 1) as f64;
            }
        }
        let vocab = tables
            .iter()
            .map(|t| {
                t.chunks(k.max(1))
                    .filter(|row| row.iter().any(|&x| x > 0))
                    .count()
            })
            .collect();
        let n_docs = train.len() as f64;
        let log_prior = docs.iter().map(|&d| (d as f64 / n_docs).ln()).collect();
        Self {
            labels,
            tables,
            totals,
            vocab,
            log_prior,
        }
    }

    /// Per class, the log-likelihood terms of each order taken alone at this smoothing:
    /// `(sum of m * ln(count + alpha), n-grams seen)` for orders 1..=MAX_ORDER.
    fn order_terms(&self, features: &[Vec<(u32, u32)>], alpha: f64) -> Vec<(Vec<f64>, f64)> {
        let k = self.labels.len();
        features
            .iter()
            .enumerate()
            .map(|(o, grams)| {
                let table = &self.tables[o];
                let mut sums = vec![0.0; k];
                let mut seen = 0.0;
                for &(b, m) in grams {
                    let row = &table[b as usize * k..(b as usize + 1) * k];
                    if row.iter().all(|&x| x == 0) {
                        continue;
                    }
                    seen += f64::from(m);
                    for (s, &x) in sums.iter_mut().zip(row) {
                        *s += f64::from(m) * (f64::from(x) + alpha).ln();
                    }
                }
                (sums, seen)
            })
            .collect()
    }

    /// The predicted class for every order 1..=MAX_ORDER, from one document's terms.
    fn predict_orders(&self, terms: &[(Vec<f64>, f64)], alpha: f64) -> Vec<usize> {
        let k = self.labels.len();
        let mut sums = vec![0.0; k];
        let (mut seen, mut vocab) = (0.0, 0.0);
        let mut totals = vec![0.0; k];
        (0..terms.len())
            .map(|o| {
                seen += terms[o].1;
                vocab += self.vocab[o] as f64;
                for (s, t) in sums.iter_mut().zip(&terms[o].0) {
                    *s += t;
                }
                for (t, own) in totals.iter_mut().zip(&self.totals[o]) {
                    *t += own;
                }
                argmax(
                    (0..k).map(|c| {
                        self.log_prior[c] + sums[c] - seen * (totals[c] + alpha * vocab).ln()
                    }),
                )
            })
            .collect()
    }

    /// The predicted class of one document under `params`.
    fn predict(&self, text: &[u8], params: Params) -> usize {
        let f = features(text, params.order);
        let terms = self.order_terms(&f, params.alpha);
        self.predict_orders(&terms, params.alpha)[params.order - 1]
    }
}

fn argmax(scores: impl Iterator<Item = f64>) -> usize {
    scores
        .enumerate()
        .fold((0, f64::NEG_INFINITY), |best, (i, s)| {
            if s > best.1 { (i, s) } else { best }
        })
        .0
}

/// One point of the search, scored on the validation documents.
#[derive(Debug, Clone, Serialize)]
pub struct GridPoint {
    /// The parameters.
    #[serde(flatten)]
    pub params: Params,
    /// Validation accuracy.
    pub accuracy: f64,
    /// Validation macro-F1.
    pub macro_f1: f64,
}

/// The tuned baseline and its scores.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Every point tried, in search order.
    pub grid: Vec<GridPoint>,
    /// The point with the best validation macro-F1 (then accuracy, then the earliest).
    pub chosen: Params,
    /// Its scores on the validation documents.
    pub valid: Evaluation,
    /// Its scores on the test documents: the reported figures.
    pub test: Evaluation,
}

fn truth(counts: &Counts, docs: &[Example], what: &str) -> seqless_model::Result<Vec<usize>> {
    docs.iter()
        .enumerate()
        .map(|(i, e)| {
            counts.labels.binary_search(&e.label).map_err(|_| {
                ModelError::Input(format!(
                    "{what} document {} has label {:?}, absent from the training documents",
                    i + 1,
                    e.label
                ))
            })
        })
        .collect()
}

/// Fits on `train`, searches [`ALPHAS`] x orders 1..=[`MAX_ORDER`] on `valid`, and scores
/// the chosen point on `test`. The test documents play no part in the choice.
pub fn tune_and_test(
    train: &[Example],
    valid: &[Example],
    test: &[Example],
) -> seqless_model::Result<Report> {
    let counts = Counts::fit(train);
    if counts.labels.len() < 2 {
        return Err(ModelError::Input(
            "the training documents need at least two labels".into(),
        ));
    }
    let valid_truth = truth(&counts, valid, "validation")?;
    let test_truth = truth(&counts, test, "test")?;
    let valid_features: Vec<_> = valid
        .par_iter()
        .map(|e| features(&e.text, MAX_ORDER))
        .collect();
    let mut grid = Vec::new();
    // predictions[alpha][order - 1][doc]
    let predictions: Vec<Vec<Vec<usize>>> = ALPHAS
        .iter()
        .map(|&alpha| {
            let per_doc: Vec<Vec<usize>> = valid_features
                .par_iter()
                .map(|f| counts.predict_orders(&counts.order_terms(f, alpha), alpha))
                .collect();
            (0..MAX_ORDER)
                .map(|o| per_doc.iter().map(|p| p[o]).collect())
                .collect()
        })
        .collect();
    for order in 1..=MAX_ORDER {
        for (a, &alpha) in ALPHAS.iter().enumerate() {
            let e = Evaluation::from_pairs(
                &counts.labels,
                valid_truth
                    .iter()
                    .copied()
                    .zip(predictions[a][order - 1].iter().copied()),
            );
            grid.push(GridPoint {
                params: Params { order, alpha },
                accuracy: e.accuracy,
                macro_f1: e.macro_f1,
            });
        }
    }
    let best = grid.iter().enumerate().fold(0, |best, (i, g)| {
        let b = &grid[best];
        if (g.macro_f1, g.accuracy) > (b.macro_f1, b.accuracy) {
            i
        } else {
            best
        }
    });
    let chosen = grid[best].params;
    // The grid runs over orders, then over every alpha: its index says which alpha.
    let a = best % ALPHAS.len();
    let valid_eval = Evaluation::from_pairs(
        &counts.labels,
        valid_truth
            .iter()
            .copied()
            .zip(predictions[a][chosen.order - 1].iter().copied()),
    );
    let test_predicted: Vec<usize> = test
        .par_iter()
        .map(|e| counts.predict(&e.text, chosen))
        .collect();
    let test_eval =
        Evaluation::from_pairs(&counts.labels, test_truth.into_iter().zip(test_predicted));
    Ok(Report {
        grid,
        chosen,
        valid: valid_eval,
        test: test_eval,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ex(text: &str, label: &str) -> Example {
        Example {
            text: text.as_bytes().to_vec(),
            label: label.into(),
        }
    }

    #[test]
    fn features_count_every_ngram_once() {
        let f = features(b"abab", 3);
        assert_eq!(f[0], vec![(u32::from(b'a'), 2), (u32::from(b'b'), 2)]);
        let ab = (u32::from(b'a') << 8) | u32::from(b'b');
        let ba = (u32::from(b'b') << 8) | u32::from(b'a');
        assert_eq!(f[1], vec![(ab, 2), (ba, 1)]);
        assert_eq!(f[2].iter().map(|&(_, m)| m).sum::<u32>(), 2);
    }

    #[test]
    fn learns_classes_told_apart_only_by_longer_ngrams() {
        // Both classes use the same bytes equally often; only their order differs, so
        // order 1 cannot separate them and the search must pick a longer order.
        let train = vec![
            ex("abcabcabcabc", "x"),
            ex("bcabcabca", "x"),
            ex("acbacbacbacb", "y"),
            ex("cbacbacba", "y"),
        ];
        let valid = vec![ex("abcab", "x"), ex("acbac", "y")];
        let test = vec![ex("cabcabc", "x"), ex("bacbacb", "y")];
        let report = tune_and_test(&train, &valid, &test).unwrap();
        assert!(report.chosen.order >= 2, "{:?}", report.chosen);
        assert_eq!(report.test.accuracy, 1.0);
        assert_eq!(report.grid.len(), MAX_ORDER * ALPHAS.len());
        let unigram = report.grid.iter().find(|g| g.params.order == 1).unwrap();
        assert!(
            unigram.accuracy < 1.0,
            "unigrams should not separate the classes"
        );
    }

    #[test]
    fn unknown_label_is_an_input_error() {
        let train = vec![ex("aaaa", "x"), ex("bbbb", "y")];
        let err = tune_and_test(&train, &[ex("cc", "z")], &[ex("aa", "x")]).unwrap_err();
        assert!(err.to_string().contains("validation document 1"), "{err}");
    }
}
