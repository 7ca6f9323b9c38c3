#!/usr/bin/env bash
# Fails when the checked-in generated files differ from what hw/regs/atomik.rdl generates now.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
"$here/gen.sh" "$tmp"
status=0
for pair in "atomik_regs.h:$here/generated/atomik_regs.h" "atomik_regs.vh:$here/generated/atomik_regs.vh" \
            "regs.rs:$here/../../libatomik/src/backend/fpga/regs.rs"; do
    if ! diff -u "${pair#*:}" "$tmp/${pair%%:*}"; then
        echo "hw/regs: ${pair#*:} is out of date with atomik.rdl: run hw/regs/gen.sh" >&2
        status=1
    fi
done
[ $status = 0 ] && echo "hw/regs: generated files match atomik.rdl"
exit $status
