//! The id that namespaces one query's keys in the store.

use std::fmt;
use std::str::FromStr;

/// The id of one query, random (UUID v4) so that one query's keys cannot be
/// guessed or hit by another's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct QueryId(uuid::Uuid);

impl QueryId {
    /// A fresh random id.
    pub fn new() -> Self {
        Self(uuid::Uuid::new_v4())
    }

    /// The key for the tensor `name` of this query: `q:{uuid}:{name}` (the store
    /// adds its key prefix).
    pub fn key(&self, name: &str) -> String {
        format!("q:{}:{name}", self.0)
    }
}

impl Default for QueryId {
    /// A fresh random id, as [`QueryId::new`].
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for QueryId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl FromStr for QueryId {
    type Err = uuid::Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        uuid::Uuid::parse_str(s).map(Self)
    }
}

impl serde::Serialize for QueryId {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for QueryId {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_ids_are_random_and_round_trip() {
        let a = QueryId::new();
        assert_ne!(a, QueryId::new());
        assert_eq!(a.to_string().parse::<QueryId>().unwrap(), a);
        assert_eq!(a.key("x"), format!("q:{a}:x"));
        let json = serde_json::to_string(&a).unwrap();
        assert_eq!(json, format!("\"{a}\""));
        assert_eq!(serde_json::from_str::<QueryId>(&json).unwrap(), a);
        assert!(serde_json::from_str::<QueryId>("\"nope\"").is_err());
        assert!("nope".parse::<QueryId>().is_err());
    }
}
