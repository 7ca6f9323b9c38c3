#!/usr/bin/env bash
# The test suite: everything CI runs. Installs what the tests need on a fresh Debian 12.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
rust_need
echo "==> cargo test (workspace)"
cargo test --workspace --all-targets
cargo test --workspace --doc
