#!/bin/bash
# The Debian-server VM test, in one command:
#   tests/vm/debian/run.sh
# Boots Debian's unmodified stock kernel (linux-image-7.3.4+deb13-amd64) under QEMU TCG on a
# debootstrap'ed trixie userland (image.sh, cached), with a second disk holding a local apt
# repository (our .debs from packaging/build-debs.sh, atomik-kbuild-KVER from kbuild.sh, an
# unsupported kernel's headers), the original SDK's wheel from PyPI and guest.sh, which runs
# inside as an administrator would. Everything that can be built on the host is (the Rust
# products, the packages); the VM only installs, builds atomik.ko with DKMS and tests.
# Prints the guest's lines and a verdict; fails on any FAIL or kernel Oops/BUG/WARNING.
set -euo pipefail
source "$(dirname "$0")/common.sh"
T0=$SECONDS
need=()
command -v qemu-system-x86_64 >/dev/null || need+=(qemu-system-x86)
command -v dpkg-scanpackages >/dev/null || need+=(dpkg-dev)
command -v dh >/dev/null || need+=(debhelper)
command -v dh_dkms >/dev/null || need+=(dh-dkms)
command -v mke2fs >/dev/null || need+=(e2fsprogs)
if [ ${#need[@]} -gt 0 ]; then
  log "installing ${need[*]}"
  apt-get update -q >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${need[@]}" >&2
fi
# Seconds of each phase, printed with the verdict (cold and warm figures of the README).
phases=()
phase() { phases+=("$1 $((SECONDS - PT)) s"); PT=$SECONDS; }
PT=$SECONDS
IMG=$("$DEB_DIR/image.sh"); phase image
KB_DEB=$("$DEB_DIR/kbuild.sh"); phase kbuild-products
W=$DEB_CACHE/run
rm -rf "$W" && mkdir -p "$W/t/repo"
log "packages: packaging/build-debs.sh"
"$REPO/packaging/build-debs.sh" "$W/t/repo" >&2
cp "$KB_DEB" "$IMG"/other-kernel/*.deb "$W/t/repo/"
(cd "$W/t/repo" && dpkg-scanpackages --multiversion . /dev/null >Packages 2>/dev/null)
phase packages
WHEEL_DIR=$DEB_CACHE/wheel-$SDK_WHEEL_VERSION
if ! ls "$WHEEL_DIR"/atomik_core-*.whl >/dev/null 2>&1; then
  python3 -m pip download -q --no-deps --only-binary=:all: -d "$WHEEL_DIR.tmp" "atomik-core==$SDK_WHEEL_VERSION" >&2
  rm -rf "$WHEEL_DIR" && mv "$WHEEL_DIR.tmp" "$WHEEL_DIR"
fi
cp "$WHEEL_DIR"/atomik_core-*.whl "$DEB_DIR/guest.sh" "$DEB_DIR/sdk_check.py" "$W/t/"
echo "$DEB_KVER" >"$W/t/kver"; echo "$SDK_WHEEL_VERSION" >"$W/t/sdk_version"
mke2fs -q -t ext4 -L atomik-test -d "$W/t" "$W/test.ext4" "$(( $(du -sm "$W/t" | cut -f1) + 64 ))M"
phase "wheel and test disk"

LOGF=$W/serial.log
# No login prompt on the console: systemd starts serial-getty@ttyS0 (Type=idle) about when the
# test unit starts, and agetty's vhangup() of ttyS0 then cuts the test's output off the console
# (a run lost every line that way).
NO_GETTY=systemd.mask=serial-getty@ttyS0.service
log "boot: Debian's $DEB_KVER under QEMU TCG -smp 2 (about 10-20 min), serial log $LOGF"
# ATOMIK_VM_LOCK=FILE: boot only while holding flock on FILE (VM runs on a shared machine one at
# a time; the host-side steps above run meanwhile). The wait is a phase of its own.
if [ -n "${ATOMIK_VM_LOCK:-}" ]; then
  exec 9>>"$ATOMIK_VM_LOCK"
  flock 9
  phase "waiting for $ATOMIK_VM_LOCK"
fi
timeout 3000 qemu-system-x86_64 -accel tcg,thread=multi -cpu max -m 2G -smp 2 -nographic -no-reboot \
  -kernel "$IMG/vmlinuz" -initrd "$IMG/initrd.img" \
  -append "root=/dev/vda rw console=ttyS0 panic=-1 no_timer_check systemd.show_status=0 loglevel=4 $NO_GETTY" \
  -drive file="$IMG/disk.ext4",format=raw,if=virtio,snapshot=on \
  -drive file="$W/test.ext4",format=raw,if=virtio,readonly=on \
  -nic none -serial file:"$LOGF" -monitor none -display none || log "qemu exited with $?"
phase VM
[ -z "${ATOMIK_VM_LOCK:-}" ] || exec 9>&-
log "phases: $(IFS=,; echo "${phases[*]}")"
grep -aE '^(ok |FAIL|ATOMIK-|atomik-debian:)' "$LOGF" || true
BAD='Oops|BUG:|WARNING:|Kernel panic|Call Trace|soft lockup|blocked for more than'
if grep -aqE "$BAD" "$LOGF"; then
  grep -aE -B2 -A20 "$BAD" "$LOGF" | head -60 >&2
  echo "DEBIAN-VM-VERDICT: FAIL (kernel log)"; exit 1
fi
grep -aq 'ATOMIK-DEBIAN-RESULT: PASS' "$LOGF" || { tail -40 "$LOGF" >&2; echo "DEBIAN-VM-VERDICT: FAIL"; exit 1; }
echo "DEBIAN-VM-VERDICT: PASS ($((SECONDS - T0)) s in all: $(IFS=,; echo "${phases[*]}"))"
