#!/usr/bin/env bash
# Chaos runs of `atomikctl sync` with real daemons and a real nats-server (tests/chaos/README.md).
#   scripts/chaos.sh --short   CI: each transport × operator once, 25 s of faults each (2–3.5 min)
#   scripts/chaos.sh --long    a campaign: 3 runs of each combination (12 runs), 60 s each (~15 min)
# Further arguments go to atomik-chaos, e.g. `--seed 7`, `--exclude dir-loss`, `--json`, `--keep`.
# Exit status: atomik-chaos's (0 iff every run passed; a failed run's directory is kept and printed).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
case "${1:-}" in
    --short) preset=(--runs 1 --seconds 25) ;;
    --long) preset=(--runs 3 --seconds 60) ;;
    *)
        echo "usage: scripts/chaos.sh --short|--long [atomik-chaos options]" >&2
        exit 2
        ;;
esac
shift
rust_need
apt_need nats-server
echo "==> cargo build -p atomikctl -p atomik-chaos"
cargo build -q -p atomikctl -p atomik-chaos
target="${CARGO_TARGET_DIR:-target}"
echo "==> atomik-chaos ${preset[*]} $*"
ATOMIKCTL="$target/debug/atomikctl" exec "$target/debug/atomik-chaos" "${preset[@]}" "$@"
