//! Shared by the integration tests that start the local Lambda platform.

use std::path::{Path, PathBuf};
use std::time::Duration;

use seqless_functions::lambda_api::DEFAULT_FUNCTION_PREFIX;
use seqless_platform::PlatformOptions;
use seqless_store::testing::RedisServer;

/// The binary under test, which is also the function processes' executable.
pub const SEQLESS: &str = env!("CARGO_BIN_EXE_seqless");

/// Set to a function binary (such as the `bootstrap` deploy/build.sh builds) to run the
/// platform's function processes from it instead of the binary under test, so that an
/// artifact built apart from the tests passes the same equivalence tests.
pub const FUNCTION_BINARY_ENV: &str = "SEQLESS_FUNCTION_BINARY";

/// The function processes' executable: `$SEQLESS_FUNCTION_BINARY`, else [`SEQLESS`].
pub fn function_binary() -> PathBuf {
    match std::env::var_os(FUNCTION_BINARY_ENV).filter(|v| !v.is_empty()) {
        Some(exe) => {
            let exe = PathBuf::from(exe);
            assert!(
                exe.is_file(),
                "{FUNCTION_BINARY_ENV}={}: no such file",
                exe.display()
            );
            exe
        }
        None => SEQLESS.into(),
    }
}

/// A platform on a free loopback port running `seqless function` processes of the model
/// in `model_dir` over `redis`: 4 processes, small serial stages at 256 MB.
pub fn platform_options(model_dir: &Path, redis: &RedisServer) -> PlatformOptions {
    PlatformOptions {
        listen: "127.0.0.1:0".parse().unwrap(),
        model_dir: model_dir.to_path_buf(),
        store_url: redis.url(),
        key_prefix: "seqless:".into(),
        ttl_secs: 60,
        worker_exe: function_binary(),
        function_prefix: DEFAULT_FUNCTION_PREFIX.into(),
        max_concurrency: 4,
        queue_bound: 64,
        idle_timeout: Duration::from_secs(600),
        timeout: Duration::from_secs(60),
        memory_mb: 1024,
        function_memory: [("tfilm".to_owned(), 256), ("head".to_owned(), 256)]
            .into_iter()
            .collect(),
    }
}
