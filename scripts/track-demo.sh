#!/usr/bin/env bash
# A small per-cgroup scene for `atomikctl top` (the README's example): under /atomik-demo,
# "cache" holds two processes with the same 32 MiB (duplicates) that change 1 MiB a second,
# "batch" a process whose two fork children share 64 MiB copy-on-write and rewrite 2 MiB a
# second each, one with new bytes, one with the bytes already there (see workload.py). Then
# one `top --once` over that subtree. Needs root and a writable cgroup v2.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
rust_need
apt_need python3
cargo build --release -q -p atomikctl
root=$(awk '$9 == "cgroup2" { print $5; exit }' /proc/self/mountinfo)
[ -n "$root" ] || { echo "no cgroup2 mount" >&2; exit 1; }
demo="$root/atomik-demo"
pids=()
cleanup() {
    for p in "${pids[@]}"; do pkill -P "$p" 2>/dev/null || true; kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    for d in "$demo/cache" "$demo/batch" "$demo"; do rmdir "$d" 2>/dev/null || true; done
}
trap cleanup EXIT
mkdir -p "$demo/cache" "$demo/batch"
start_in() { # start_in CGROUP COMMAND: runs COMMAND in a shell moved into CGROUP first
    local cg=$1; shift
    sh -c "echo \$\$ > '$demo/$cg/cgroup.procs' && exec sh -c '$*'" &
    pids+=($!)
}
w="$PWD/scripts/track-demo/workload.py"
start_in cache "exec python3 $w cache 32"
start_in cache "exec python3 $w cache 32"
start_in batch "exec python3 $w forker 64"
sleep 3
./target/release/atomikctl top --once --interval 2 --cgroup /atomik-demo --writes --dups "$@"
