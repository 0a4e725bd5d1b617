//! Shared by the integration tests that start the local Lambda platform.

use std::path::Path;
use std::time::Duration;

use seqless_functions::lambda_api::DEFAULT_FUNCTION_PREFIX;
use seqless_platform::PlatformOptions;
use seqless_store::testing::RedisServer;

/// The binary under test, which is also the function processes' executable.
pub const SEQLESS: &str = env!("CARGO_BIN_EXE_seqless");

/// A platform on a free loopback port running `seqless function` processes of the model
/// in `model_dir` over `redis`: 4 processes, small serial stages at 256 MB.
pub fn platform_options(model_dir: &Path, redis: &RedisServer) -> PlatformOptions {
    PlatformOptions {
        listen: "127.0.0.1:0".parse().unwrap(),
        model_dir: model_dir.to_path_buf(),
        store_url: redis.url(),
        key_prefix: "seqless:".into(),
        ttl_secs: 60,
        worker_exe: SEQLESS.into(),
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
