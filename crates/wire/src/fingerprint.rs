//! Which model a process loaded, so a function can refuse work planned for another.

use std::fmt;

use serde::{Deserialize, Serialize};
use xxhash_rust::xxh3::Xxh3;

/// A fingerprint of a model directory: a 128-bit XXH3 of its config file and its weights
/// file, each prefixed with its length.
///
/// The coordinator plans with its copy of the config while the functions compute with
/// theirs; if the two differ, stages read keys of the wrong shape or count and fail deep in
/// a kernel. Every stage event carries the coordinator's fingerprint and the function
/// compares it with its own, which costs one hash of the files at load (well under a
/// millisecond per megabyte). XXH3 is a fixed, versioned algorithm, so builds with
/// different compilers agree; it detects accidents, not tampering.
///
/// The text form (`xxh3-128:` and 32 hex digits) names the algorithm, so another one can be
/// introduced later without two different hashes ever comparing equal.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ModelFingerprint(String);

impl ModelFingerprint {
    /// The fingerprint of a model whose config file holds `config` and whose weights file
    /// holds `weights`, byte for byte.
    pub fn of_files(config: &[u8], weights: &[u8]) -> Self {
        let mut hasher = Xxh3::new();
        for part in [config, weights] {
            hasher.update(&(part.len() as u64).to_le_bytes());
            hasher.update(part);
        }
        Self(format!("xxh3-128:{:032x}", hasher.digest128()))
    }

    /// The text form.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ModelFingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_to_either_file_or_their_boundary_changes_the_fingerprint() {
        let base = ModelFingerprint::of_files(b"{\"a\":1}", b"weights");
        assert_eq!(base, ModelFingerprint::of_files(b"{\"a\":1}", b"weights"));
        assert_ne!(base, ModelFingerprint::of_files(b"{\"a\":2}", b"weights"));
        assert_ne!(base, ModelFingerprint::of_files(b"{\"a\":1}", b"weightz"));
        // The same bytes split differently between the two files.
        assert_ne!(
            ModelFingerprint::of_files(b"ab", b"c"),
            ModelFingerprint::of_files(b"a", b"bc")
        );
        assert!(base.as_str().starts_with("xxh3-128:"));
        assert_eq!(base.as_str().len(), "xxh3-128:".len() + 32);
        let json = serde_json::to_string(&base).unwrap();
        assert_eq!(json, format!("\"{base}\""));
        assert_eq!(
            serde_json::from_str::<ModelFingerprint>(&json).unwrap(),
            base
        );
    }
}
