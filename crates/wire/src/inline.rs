//! Values that travel inside an invocation instead of through the store: a stage's inputs
//! in its event, its outputs in its result. Small activations then skip two store round
//! trips and the store itself, within Lambda's limit on a synchronous invocation's request
//! and response.

use std::ops::Range;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Lambda's limit on a synchronous invocation's request, and separately on its response:
/// 6 MB, JSON included.
pub const LAMBDA_PAYLOAD_BYTES: u64 = 6 * 1024 * 1024;

/// One value, or a window of its rows, in the store's encoding (header and payload), so
/// that a function reads it exactly as it would read the store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InlineValue {
    /// Store key name (relative to the query), as the stage names it.
    pub key: String,
    /// The row (along the first dimension) of the whole value that the blob's first row
    /// is: a reader that needs only some rows is sent only those.
    #[serde(default)]
    pub first_row: usize,
    /// The encoded tensor, base64 in JSON.
    #[serde(serialize_with = "to_base64", deserialize_with = "from_base64")]
    pub blob: Vec<u8>,
}

impl InlineValue {
    /// The rows of this blob that hold the value's rows `rows`, or `None` when the blob
    /// does not hold all of them.
    pub fn local_rows(&self, rows: &Range<usize>) -> Option<Range<usize>> {
        let start = rows.start.checked_sub(self.first_row)?;
        Some(start..start + rows.len())
    }
}

/// What `bytes` of blob cost in an invocation's JSON: base64, quotes and the key around it.
pub fn inline_json_bytes(key: &str, blob_bytes: u64) -> u64 {
    const FIELDS: u64 = 64;
    blob_bytes.div_ceil(3) * 4 + key.len() as u64 + FIELDS
}

fn to_base64<S: Serializer>(blob: &[u8], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&STANDARD.encode(blob))
}

fn from_base64<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
    let text = String::deserialize(d)?;
    STANDARD
        .decode(text.as_bytes())
        .map_err(|e| serde::de::Error::custom(format!("blob is not base64: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blobs_travel_as_base64_and_their_json_size_is_bounded() {
        let value = InlineValue {
            key: "c0.3.max".into(),
            first_row: 7,
            blob: (0..=255).collect(),
        };
        let json = serde_json::to_string(&value).unwrap();
        assert!(
            json.len() as u64 <= inline_json_bytes(&value.key, 256),
            "{json}"
        );
        assert_eq!(serde_json::from_str::<InlineValue>(&json).unwrap(), value);
        let bad = r#"{"key": "k", "blob": "not base64!"}"#;
        let err = serde_json::from_str::<InlineValue>(bad).unwrap_err();
        assert!(err.to_string().contains("not base64"), "{err}");
    }

    #[test]
    fn a_window_maps_value_rows_to_blob_rows() {
        let value = InlineValue {
            key: "k".into(),
            first_row: 10,
            blob: Vec::new(),
        };
        assert_eq!(value.local_rows(&(12..15)), Some(2..5));
        assert_eq!(value.local_rows(&(9..11)), None);
    }
}
