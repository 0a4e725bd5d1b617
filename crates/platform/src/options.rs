//! The platform's settings, and the functions they define.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use seqless_wire::lambda::{FUNCTION_KINDS, MEMORY_MB, function_name};

use crate::PlatformError;

/// Everything `seqless platform` is started with.
#[derive(Debug, Clone)]
pub struct PlatformOptions {
    /// Address of the Invoke API (port 0 picks a free one).
    pub listen: SocketAddr,
    /// Model directory the function processes load (`SEQLESS_MODEL`).
    pub model_dir: PathBuf,
    /// Store URL the function processes use (`SEQLESS_STORE`); never `memory`.
    pub store_url: String,
    /// Store key prefix (`SEQLESS_KEY_PREFIX`), the coordinator's.
    pub key_prefix: String,
    /// Expiry of the keys functions write, seconds (`SEQLESS_TTL_SECS`).
    pub ttl_secs: u64,
    /// The function binary, run as `<worker_exe> function` (by default `seqless` itself).
    pub worker_exe: PathBuf,
    /// Function names are this prefix plus the stage kind.
    pub function_prefix: String,
    /// Function processes alive at once, over all functions (Lambda's concurrency limit).
    pub max_concurrency: usize,
    /// Invocations that may wait for a free process; one more is throttled (HTTP 429).
    /// 0 throttles as soon as every process is busy, as Lambda does.
    pub queue_bound: usize,
    /// An idle process is stopped after this long.
    pub idle_timeout: Duration,
    /// An invocation running longer is failed and its process killed.
    pub timeout: Duration,
    /// Memory size of every function (billing, `AWS_LAMBDA_FUNCTION_MEMORY_SIZE`).
    pub memory_mb: u32,
    /// Memory sizes by stage kind (`tfilm` -> 256), overriding `memory_mb`.
    pub function_memory: BTreeMap<String, u32>,
}

/// How long a new process may take to reach its first `/next` (Lambda's init limit).
pub const INIT_TIMEOUT: Duration = Duration::from_secs(10);

/// One function the platform serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionSpec {
    /// Its name, such as `seqless-conv`.
    pub name: String,
    /// Its memory size in MB.
    pub memory_mb: u32,
}

/// Reads `tfilm=256,head=256` into memory sizes by stage kind.
pub fn parse_function_memory(text: &str) -> Result<BTreeMap<String, u32>, String> {
    let mut sizes = BTreeMap::new();
    for item in text.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        let (kind, mb) = item
            .split_once('=')
            .ok_or_else(|| format!("{item:?}: expected KIND=MB, such as tfilm=256"))?;
        let kind = kind.trim();
        if !FUNCTION_KINDS.iter().any(|k| k.as_str() == kind) {
            return Err(format!(
                "{kind:?} is not a stage kind; expected conv, tfilm, head or classifier"
            ));
        }
        let mb: u32 = mb
            .trim()
            .parse()
            .map_err(|_| format!("{item:?}: {mb:?} is not a number of MB"))?;
        sizes.insert(kind.to_owned(), mb);
    }
    Ok(sizes)
}

impl PlatformOptions {
    /// Refuses settings that cannot work, naming the setting.
    pub fn validate(&self) -> Result<(), PlatformError> {
        let bad = |m: String| Err(PlatformError::Options(m));
        if self.store_url.trim() == "memory" {
            return bad("--store memory: function processes share no memory, so they need a shared store; give a redis:// URL".into());
        }
        if !self.model_dir.join("config.json").is_file() {
            return bad(format!(
                "--model {}: no config.json there",
                self.model_dir.display()
            ));
        }
        if self.max_concurrency == 0 {
            return bad("--concurrency must be at least 1".into());
        }
        if self.timeout.is_zero() {
            return bad("--timeout-secs must be positive".into());
        }
        let sizes = std::iter::once(("default", self.memory_mb))
            .chain(self.function_memory.iter().map(|(k, v)| (k.as_str(), *v)));
        for (kind, mb) in sizes {
            if !MEMORY_MB.contains(&mb) {
                return bad(format!(
                    "memory size {mb} MB for {kind} is outside Lambda's {}..={} MB",
                    MEMORY_MB.start(),
                    MEMORY_MB.end()
                ));
            }
        }
        Ok(())
    }

    /// The functions served: one per stage kind.
    pub fn functions(&self) -> Vec<FunctionSpec> {
        FUNCTION_KINDS
            .iter()
            .map(|kind| FunctionSpec {
                name: function_name(&self.function_prefix, *kind),
                memory_mb: self
                    .function_memory
                    .get(kind.as_str())
                    .copied()
                    .unwrap_or(self.memory_mb),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn function_memory_parses_and_names_what_is_wrong() {
        let sizes = parse_function_memory("tfilm=256, head=512").unwrap();
        assert_eq!(sizes["tfilm"], 256);
        assert_eq!(sizes["head"], 512);
        assert!(parse_function_memory("").unwrap().is_empty());
        assert!(
            parse_function_memory("lstm=256")
                .unwrap_err()
                .contains("lstm")
        );
        assert!(
            parse_function_memory("tfilm")
                .unwrap_err()
                .contains("KIND=MB")
        );
        assert!(
            parse_function_memory("tfilm=lots")
                .unwrap_err()
                .contains("lots")
        );
    }
}
