#!/bin/bash
# QEMU with the vfio-user client (`-device vfio-user-pci`, QEMU >= 10.1): Debian trixie-backports'
# qemu-system-x86 (bookworm's 7.2 has no vfio-user client, trixie's own 10.0 neither) in a small
# trixie root of its own under the cache, made by debootstrap. Its own root, not the debug
# kernel's build root: that one is held (flock) for the whole of a kernel build, and installing
# QEMU's libraries into it would change them under a running clang.
#   qemu-root.sh          -> makes the root if needed, prints its path
# Run QEMU with `chroot ROOT qemu-system-x86_64 ...`; the cache is bind-mounted at the same path
# inside (kernel, initramfs, vfio-user socket), see run.sh --fpga.
set -euo pipefail
source "$(dirname "$0")/common.sh"
QEMU_VERSION=${QEMU_VERSION:-1:11.1.3+ds-2~bpo13+1}
QROOT=$ATOMIK_CACHE/qemu-root-$(printf '%s' "$QEMU_VERSION" | sha256sum | cut -c1-8)
STAMP=$QROOT/.atomik-ready
if [ -f "$STAMP" ]; then echo "$QROOT"; exit 0; fi
(
  flock 9
  [ -f "$STAMP" ] && exit 0
  log "qemu: making a trixie root with qemu-system-x86 $QEMU_VERSION in $QROOT"
  trixie_root "$QROOT" "qemu-system-x86=$QEMU_VERSION"
  chroot "$QROOT" apt-get clean
  chroot "$QROOT" qemu-system-x86_64 -device help 2>/dev/null | grep -q '"vfio-user-pci"' ||
    die "qemu-system-x86 $QEMU_VERSION in $QROOT has no vfio-user-pci device"
  touch "$STAMP"
) 9>"$QROOT.lock"
echo "$QROOT"
