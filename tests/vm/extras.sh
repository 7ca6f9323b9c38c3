#!/bin/bash
# Builds, statically, what the VM runs besides /init: libatomik's test binaries (to run on
# /dev/atomik and on the userspace default), atomikctl, and the C example that uses only
# atomik.h (libatomik/examples/c/mapped.c). Prints gen_init_cpio "file" lines.
# Uses CARGO_TARGET_DIR from the caller (run.sh puts it in the cache).
set -euo pipefail
source "$(dirname "$0")/common.sh"
TGT=x86_64-unknown-linux-gnu
export RUSTFLAGS="-C target-feature=+crt-static"
cd "$REPO"
# Only the tests of banks and backends (a list, so tests of other parts added later do not land
# here by accident): the C header check needs a C compiler, the page tracker needs /proc
# features (pagemap, soft-dirty, process_vm_readv) and replication needs networking, which the
# minimal VM kernel leaves out; none of them touches a backend.
cargo test -q -p atomik --release --no-run --target $TGT --message-format=json 2>/dev/null |
  python3 -c '
import json, sys, os
for line in sys.stdin:
    try: m = json.loads(line)
    except ValueError: continue
    if m.get("reason") == "compiler-artifact" and m.get("profile", {}).get("test") and m.get("executable"):
        name = m["target"]["name"]
        if m["target"]["kind"] != ["lib"] and name not in ("algebra", "bank", "shards", "soft_files", "stress", "swap_set", "robust_seqlock"): continue
        kind = "lib" if m["target"]["kind"] == ["lib"] else name
        print("file /libtests/%s %s 0755 0 0" % (kind, m["executable"]))
'
cargo build -q -p atomikctl --release --target $TGT >&2
echo "file /bin/atomikctl $CARGO_TARGET_DIR/$TGT/release/atomikctl 0755 0 0"
mkdir -p "$CARGO_TARGET_DIR/c"
cc -std=c11 -D_GNU_SOURCE -Wall -Werror -O2 -static -I libatomik/include \
  -o "$CARGO_TARGET_DIR/c/atomik-mapped" libatomik/examples/c/mapped.c >&2
echo "file /bin/atomik-mapped $CARGO_TARGET_DIR/c/atomik-mapped 0755 0 0"
