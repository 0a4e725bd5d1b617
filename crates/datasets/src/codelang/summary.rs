//! The counts `seqless data codelang` prints: documents, packages and median length per
//! split and language.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

use super::documents::Document;

/// Median of `values` (the mean of the middle two for an even count); 0 for none.
pub fn median(values: &mut [usize]) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.sort_unstable();
    let mid = values.len() / 2;
    if values.len() % 2 == 1 {
        values[mid] as f64
    } else {
        (values[mid - 1] + values[mid]) as f64 / 2.0
    }
}

/// A table row per language and a total: documents, packages, median bytes.
pub fn table(name: &str, docs: &[Document]) -> String {
    let mut by_label: BTreeMap<&str, Vec<&Document>> = BTreeMap::new();
    for d in docs {
        by_label.entry(&d.label).or_default().push(d);
    }
    let row = |label: &str, docs: &[&Document]| {
        let packages: BTreeSet<&str> = docs.iter().map(|d| d.package.as_str()).collect();
        let mut lengths: Vec<usize> = docs.iter().map(|d| d.text.len()).collect();
        format!(
            "{name:<13} {label:<11} {:>9} {:>9} {:>13.0}\n",
            docs.len(),
            packages.len(),
            median(&mut lengths)
        )
    };
    let mut out = String::new();
    for (label, group) in &by_label {
        out.push_str(&row(label, group));
    }
    let all: Vec<&Document> = docs.iter().collect();
    out.push_str(&row("all", &all));
    out
}

/// The header of [`table`]'s rows.
pub fn header() -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<13} {:<11} {:>9} {:>9} {:>13}",
        "split", "label", "documents", "packages", "median bytes"
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(&mut [5, 1, 3]), 3.0);
        assert_eq!(median(&mut [4, 1, 3, 2]), 2.5);
        assert_eq!(median(&mut []), 0.0);
    }
}
