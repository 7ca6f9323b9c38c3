#!/usr/bin/env bash
# The test suite: everything CI runs. Installs what the tests need on a fresh Debian 12.
#   ATOMIK_SKIP_VM=1 skips the two VM runs of the kernel module (for quick local runs).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
rust_need
# nats-server: the NATS JetStream replication tests start their own on a free loopback port
# (atomikctl enables libatomik's `nats` feature by default, so the workspace builds it).
apt_need nats-server
# prometheus: the exporter test (atomikctl/tests/track_exporter.rs) starts a real Prometheus
# on a loopback port, lets it scrape `atomikctl exporter` and reads the series back.
apt_need prometheus
export ATOMIK_REQUIRE_PROMETHEUS=1
echo "==> cargo test (workspace)"
cargo test --workspace --all-targets
cargo test --workspace --doc
echo "==> hw: register map drift, Verilator lint, cocotb regression of the RTL (hw/README.md)"
hw/test.sh
echo "==> the FPGA backend against the Verilator-compiled RTL (feature rtl-model): libatomik, then atomikctl end to end"
cargo test -p atomik --features rtl-model --test fpga_rtl
cargo test -p atomikctl --features rtl-model --test fpga_cli
echo "==> the RTL model as a vfio-user PCI device (feature vfio-user) against the vfio_user crate's client"
cargo test -p atomikctl --features vfio-user --test vfio_user
echo "==> chaos: atomikctl sync under faults, every replica against the ledger (tests/chaos/README.md)"
scripts/chaos.sh --short
if [ "${ATOMIK_SKIP_VM:-0}" = 1 ]; then
    echo "==> ATOMIK_SKIP_VM=1: kernel module VM runs skipped"
    exit 0
fi
echo "==> VM: /dev/atomik on a normal kernel (all suites, then the DKMS proof)"
tests/vm/run.sh
echo "==> VM: the module's PCI path against the RTL (QEMU 11 vfio-user-pci + atomikctl vfio-user)"
tests/vm/run.sh --fpga
echo "==> VM: the same suites on a KASAN + lockdep kernel"
tests/vm/run.sh --debug --no-dkms
echo "==> VM: the PCI path on the KASAN + lockdep kernel (about 1.5 min warm)"
tests/vm/run.sh --debug --fpga
