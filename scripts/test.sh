#!/usr/bin/env bash
# The test suite, as the README gives it: formatting, lints, then every test of every crate
# with every feature. It installs nothing: the tests that need redis-server or schemathesis
# fail with a message saying how to install them (.ci/run installs both).
set -euo pipefail
cd "$(dirname "$0")/.."

cargo fmt --all --check
cargo clippy --workspace --all-targets --all-features -- -D warnings
cargo test --workspace --all-features
