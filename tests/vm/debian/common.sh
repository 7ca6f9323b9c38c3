# Settings of the Debian-server VM mode (sourced): Debian's own stock kernel, a trixie userland.
source "$(dirname "${BASH_SOURCE[0]}")/../common.sh"
DEB_DIR=$VM_DIR/debian
# The stock kernel (trixie-backports) and the rustc Debian built it with (trixie main).
DEB_KVER=${DEB_KVER:-7.3.4+deb13-amd64}
DEB_KPKGV=${DEB_KPKGV:-7.3.4-1~bpo13+1}
DEB_RUSTV=${DEB_RUSTV:-1.85.1+dfsg1-1+deb13u1}
DEB_BINDGENV=${DEB_BINDGENV:-0.71.1-6}
# A kernel atomik does not support (trixie's 6.12): its headers must install without failing.
DEB_OTHER_HEADERS=${DEB_OTHER_HEADERS:-linux-headers-amd64}
# The original SDK, fetched from PyPI on the host.
SDK_WHEEL_VERSION=0.4.0
DEB_CACHE=$ATOMIK_CACHE/debian
SOURCES="deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $DEBIAN_MIRROR trixie main
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $DEBIAN_MIRROR trixie-backports main"

# Key of a cached root: the script that makes it and the versions it installs.
deb_key() { { cat "$@"; echo "$DEB_KVER $DEB_KPKGV $DEB_RUSTV $DEB_BINDGENV $DEBIAN_MIRROR"; } | sha256sum | cut -c1-12; }

# Runs a command in a root with /proc mounted (never the host's /dev: debootstrap made the nodes).
in_root() {
  local root=$1; shift
  mountpoint -q "$root/proc" || mount -t proc proc "$root/proc"
  local rc=0
  chroot "$root" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 \
    DEBIAN_FRONTEND=noninteractive "$@" || rc=$?
  umount "$root/proc" 2>/dev/null || umount -l "$root/proc"
  return $rc
}

# debootstrap --variant=minbase trixie into $1 (with trixie-backports in its sources).
make_root() {
  local root=$1
  command -v debootstrap >/dev/null || apt-get install -y -q --no-install-recommends debootstrap >&2
  rm -rf "$root.tmp"
  debootstrap --variant=minbase trixie "$root.tmp" "$DEBIAN_MIRROR" >&2
  printf '%s\n' "$SOURCES" >"$root.tmp/etc/apt/sources.list"
  in_root "$root.tmp" apt-get update -q >&2
}
