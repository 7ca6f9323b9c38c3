#!/bin/bash
# Builds, statically, what the VM runs besides /init: libatomik's test binaries (to run on
# /dev/atomik and on the userspace default) and atomikctl. Prints gen_init_cpio "file" lines.
# Uses CARGO_TARGET_DIR from the caller (run.sh puts it in the cache).
set -euo pipefail
source "$(dirname "$0")/common.sh"
TGT=x86_64-unknown-linux-gnu
export RUSTFLAGS="-C target-feature=+crt-static"
cd "$REPO"
# Only the tests of banks and backends: the C header check needs a C compiler, and the page
# tracker's tests need /proc features (pagemap, soft-dirty, process_vm_readv) the minimal VM
# kernel leaves out; neither touches a backend.
cargo test -q -p atomik --release --no-run --target $TGT --message-format=json 2>/dev/null |
  python3 -c '
import json, sys, os
for line in sys.stdin:
    try: m = json.loads(line)
    except ValueError: continue
    if m.get("reason") == "compiler-artifact" and m.get("profile", {}).get("test") and m.get("executable"):
        name = m["target"]["name"]
        if name == "c_header" or name.startswith("track"): continue
        kind = "lib" if m["target"]["kind"] == ["lib"] else name
        print("file /libtests/%s %s 0755 0 0" % (kind, m["executable"]))
'
cargo build -q -p atomikctl --release --target $TGT >&2
echo "file /bin/atomikctl $CARGO_TARGET_DIR/$TGT/release/atomikctl 0755 0 0"
