#!/usr/bin/env bash
# Quick start on the userspace default (no kernel module): builds atomikctl, creates a bank,
# accumulates into it from several processes at once and reads the converged state.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
rust_need
cargo build --release -q -p atomikctl
ctl=target/release/atomikctl
bank="quickstart-$$"
procs=${PROCS:-4}
per=${PER:-100000}
trap '$ctl bank rm "$bank" >/dev/null 2>&1 || true' EXIT

$ctl status
$ctl bank create "$bank" --slots 4 --op add
echo "==> $procs processes each ACCUMulate $per deltas (slot = i mod 4, delta = process number)"
for p in $(seq 1 "$procs"); do
    awk -v n="$per" -v p="$p" 'BEGIN { for (i = 0; i < n; i++) print i % 4, p }' | $ctl accum "$bank" - &
done
wait
echo "==> converged state (each slot = $per/4 x (1+...+$procs)):"
$ctl read "$bank" --all
expect=$(( per / 4 * procs * (procs + 1) / 2 ))
got=$($ctl --json read "$bank" 0 | sed 's/.*"value":\([0-9]*\).*/\1/')
if [ "$got" = "$expect" ]; then echo "OK: slot 0 = $got as expected"; else echo "MISMATCH: slot 0 = $got, expected $expect"; exit 1; fi
echo "==> benchmark: atomikctl bench"
$ctl bench
