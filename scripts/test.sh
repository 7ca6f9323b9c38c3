#!/usr/bin/env bash
# The test suite: everything CI runs. Installs what the tests need on a fresh Debian 12.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
rust_need
# nats-server: the NATS JetStream replication tests start their own on a free loopback port
# (atomikctl enables libatomik's `nats` feature by default, so the workspace builds it).
apt_need nats-server
echo "==> cargo test (workspace)"
cargo test --workspace --all-targets
cargo test --workspace --doc
