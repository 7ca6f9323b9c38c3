#!/bin/sh
# Installs the C ABI of libatomik under PREFIX (default /usr/local): lib/libatomik_capi.so and
# .a, include/atomik_capi.h, lib/pkgconfig/atomik-capi.pc. Then:
#   cc prog.c $(pkg-config --cflags --libs atomik-capi)
# ATOMIK_CAPI_BUILT=DIR installs the libraries already built in DIR instead of running
# `cargo build --release -p atomik-capi` (the test of this script uses it).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
prefix=${1:-/usr/local}
built=${ATOMIK_CAPI_BUILT:-}
if [ -z "$built" ]; then
    cargo build --release -p atomik-capi --manifest-path "$here/../Cargo.toml" >&2
    built=$(cargo metadata --format-version 1 --no-deps --manifest-path "$here/../Cargo.toml" |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/release
fi
version=$(sed -n 's/^version = "\(.*\)"/\1/p' "$here/../Cargo.toml" | head -1)
mkdir -p "$prefix/lib/pkgconfig" "$prefix/include"
install -m 0755 "$built/libatomik_capi.so" "$prefix/lib/"
install -m 0644 "$built/libatomik_capi.a" "$prefix/lib/"
install -m 0644 "$here/include/atomik_capi.h" "$prefix/include/"
sed -e "s|@PREFIX@|$prefix|" -e "s|@VERSION@|$version|" "$here/atomik-capi.pc.in" >"$prefix/lib/pkgconfig/atomik-capi.pc"
echo "$prefix"
