//! Holding out by package: every file of a package lands in the same split, so a test
//! document never shares an author, a code base or boilerplate with a training one.

use rand::{rngs::StdRng, seq::SliceRandom};

/// The three splits, in the order their files are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Split {
    /// Fits the model and the baseline.
    Train,
    /// Tunes the baseline's smoothing; never trained on.
    Valid,
    /// Held out: the reported figures.
    Test,
}

impl Split {
    /// All splits.
    pub const ALL: [Split; 3] = [Split::Train, Split::Valid, Split::Test];

    /// The file stem: `train`, `valid`, `test`.
    pub fn name(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Valid => "valid",
            Split::Test => "test",
        }
    }
}

/// Fraction of a language's packages held out for test, and for validation.
const TEST_FRACTION: f64 = 0.2;
const VALID_FRACTION: f64 = 0.1;

/// Assigns one language's packages (given sorted) to splits: a seeded shuffle, then a
/// fifth to test and a tenth to validation, at least one each; `None` when there are too
/// few packages (under 3) to hold any out.
pub fn assign(packages: &[String], rng: &mut StdRng) -> Option<Vec<(String, Split)>> {
    let n = packages.len();
    if n < 3 {
        return None;
    }
    let n_test = ((n as f64 * TEST_FRACTION).round() as usize).max(1);
    let n_valid = ((n as f64 * VALID_FRACTION).round() as usize).max(1);
    let mut order = packages.to_vec();
    order.shuffle(rng);
    Some(
        order
            .into_iter()
            .enumerate()
            .map(|(i, p)| {
                let split = if i < n_test {
                    Split::Test
                } else if i < n_test + n_valid {
                    Split::Valid
                } else {
                    Split::Train
                };
                (p, split)
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;

    #[test]
    fn every_split_gets_a_package_and_the_seed_decides() {
        let packages: Vec<String> = (0..10).map(|i| format!("p{i}")).collect();
        let a = assign(&packages, &mut StdRng::seed_from_u64(1)).unwrap();
        let count = |s| a.iter().filter(|(_, x)| *x == s).count();
        assert_eq!(
            (count(Split::Test), count(Split::Valid), count(Split::Train)),
            (2, 1, 7)
        );
        assert_eq!(a, assign(&packages, &mut StdRng::seed_from_u64(1)).unwrap());
        assert_ne!(a, assign(&packages, &mut StdRng::seed_from_u64(2)).unwrap());
        assert!(assign(&packages[..2], &mut StdRng::seed_from_u64(1)).is_none());
    }
}
