# Shared settings for the VM harness scripts (sourced, not run).
# Everything heavy lives in the cache, outside the repository.
ATOMIK_CACHE=${ATOMIK_CACHE:-$HOME/.cache/atomik}
VM_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$VM_DIR/../.." && pwd)
# Per-checkout build and boot directories: runs from two checkouts (worktrees) at once must not
# build each other's module or share a serial log.
CHECKOUT=$(printf '%s' "$REPO" | sha256sum | cut -c1-8)

# Kernel: Debian's linux-source package from trixie-backports (downloaded, never installed).
KPKG=linux-source-7.3
KPKG_VERSION=${KPKG_VERSION:-7.3.4-1~bpo13+1}
KSRC=$ATOMIK_CACHE/src/linux-$KPKG_VERSION/linux-source-7.3

# Rust: Debian's rustc-web (the version the kernel's `core` source matches), bindgen from crates.io,
# libclang >= 17 from PyPI (bookworm ships <= 16).
RUSTC_BIN=/usr/bin/rustc
BINDGEN_VERSION=0.73.2
LIBCLANG_VERSION=18.1.1
TOOLS=$ATOMIK_CACHE/tools
BINDGEN_BIN=$TOOLS/bin/bindgen
VENV=$ATOMIK_CACHE/venv-libclang-$LIBCLANG_VERSION
export LIBCLANG_PATH=$VENV/lib/python3.11/site-packages/clang/native

# The rustup toolchain may come first in PATH: name the kernel's tools on every make.
KMAKE_FLAGS=(RUSTC=/usr/bin/rustc HOSTRUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc "BINDGEN=$BINDGEN_BIN")
JOBS=${JOBS:-2}

DEBIAN_MIRROR=${DEBIAN_MIRROR:-$(grep -hs '^URIs:' /etc/apt/sources.list.d/*.sources | awk '{print $2}' | grep -v security | head -1)}
DEBIAN_MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}

log() { printf '[vm %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# Build directory of the normal kernel, keyed by source version + config fragment + rustc + bindgen.
kernel_key() {
  { echo "$KPKG_VERSION"; cat "$VM_DIR/config.fragment" "$@"; "$RUSTC_BIN" --version; echo "bindgen $BINDGEN_VERSION"; } \
    | sha256sum | cut -c1-12
}

# Makes a minimal Debian trixie root at $1 with debootstrap (anew) and installs the packages
# named after it from trixie-backports (debug-kernel.sh's build root, qemu-root.sh's QEMU).
# Only /proc is mounted meanwhile: never bind the host's /dev into a root (debootstrap made the
# few device nodes apt needs).
trixie_root() {
  local root=$1; shift
  local security=${DEBIAN_SECURITY:-$(grep -hs '^URIs:' /etc/apt/sources.list.d/*.sources | awk '{print $2}' | grep security | head -1)}
  security=${security:-http://deb.debian.org/debian-security}
  command -v debootstrap >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends debootstrap >&2
  rm -rf "$root"
  debootstrap --variant=minbase trixie "$root" "$DEBIAN_MIRROR" >&2
  cat >"$root/etc/apt/sources.list" <<L
deb $DEBIAN_MIRROR trixie main
deb $DEBIAN_MIRROR trixie-updates main
deb $security trixie-security main
deb $DEBIAN_MIRROR trixie-backports main
L
  mount -t proc proc "$root/proc"
  # shellcheck disable=SC2064
  trap "umount '$root/proc' 2>/dev/null || true" EXIT
  chroot "$root" apt-get update -q >&2
  DEBIAN_FRONTEND=noninteractive chroot "$root" apt-get install -y -q --no-install-recommends \
    -t trixie-backports "$@" >&2
  umount "$root/proc"; trap - EXIT
}
