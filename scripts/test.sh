#!/usr/bin/env bash
# The test suite, as the README gives it: formatting, lints, the deployment template's
# checks, every test of every crate with every feature, then scripts/reproduce.sh --quick.
# It installs nothing: the tests that need redis-server or schemathesis, and the template
# checks (cfn-lint, sam), fail with a message saying how to install them (.ci/run installs
# them).
set -euo pipefail
cd "$(dirname "$0")/.."

cargo fmt --all --check
cargo clippy --workspace --all-targets --all-features -- -D warnings
deploy/check.sh
cargo test --workspace --all-features
# The simulated results regenerate and are complete (small runs, into a temporary
# directory), with the binary the tests just built.
SEQLESS=target/debug/seqless scripts/reproduce.sh --quick
