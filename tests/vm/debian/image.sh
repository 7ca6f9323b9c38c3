#!/bin/bash
# The Debian-server VM's disk, cached: debootstrap --variant=minbase trixie plus what a server
# running atomik has before our packages (systemd, udev, dkms, python3 + pip, Debian's stock
# linux-image and linux-headers, the rustc Debian built that kernel with), as an ext4 image made
# from the directory by `mke2fs -d` (no loop mount). Prints the cache directory holding
# disk.ext4, vmlinuz, initrd.img and other-kernel/ (the .debs of an unsupported kernel's
# headers). Key: this script, common.sh and the versions.
set -euo pipefail
source "$(dirname "$0")/common.sh"
KEY=$(deb_key "$DEB_DIR/image.sh" "$DEB_DIR/common.sh")
OUT=$DEB_CACHE/image-$KEY
if [ -f "$OUT/.done" ]; then log "debian image: cached $OUT"; echo "$OUT"; exit 0; fi
ROOT=$DEB_CACHE/image-root-$KEY
log "debian image: debootstrap trixie into $ROOT (~1 min), then packages (~3 min)"
make_root "$ROOT"
rm -rf "$OUT.tmp" && mkdir -p "$OUT.tmp"
in_root "$ROOT.tmp" apt-get install -y -q --no-install-recommends \
  systemd-sysv udev kmod dkms python3 python3-pip initramfs-tools zstd \
  "linux-image-$DEB_KVER=$DEB_KPKGV" "linux-headers-$DEB_KVER=$DEB_KPKGV" linux-base/trixie-backports \
  "rustc=$DEB_RUSTV" "libstd-rust-1.85=$DEB_RUSTV" "libstd-rust-dev=$DEB_RUSTV" >&2
R=$ROOT.tmp
# What installing a kernel atomik does not support needs beyond this image: fetched now, into
# the VM's local apt repository (the VM has no network).
mkdir -p "$R/tmp/other/partial"
in_root "$R" apt-get install -y -q --no-install-recommends --download-only \
  -o Dir::Cache::archives=/tmp/other "$DEB_OTHER_HEADERS" >&2
echo atomik-server >"$R/etc/hostname"
printf '/dev/vda / ext4 rw,errors=remount-ro 0 1\n' >"$R/etc/fstab"
# No network, no clock sync, no timers: a quiet, fast boot under TCG.
for u in apt-daily.timer apt-daily-upgrade.timer dpkg-db-backup.timer e2scrub_all.timer fstrim.timer \
  systemd-timesyncd.service getty@tty1.service; do
  ln -sf /dev/null "$R/etc/systemd/system/$u"
done
# The test: the second disk (made per run by run.sh) carries the apt repository and guest.sh;
# the result is written to the serial console, then the VM powers off.
cat >"$R/etc/systemd/system/atomik-vmtest.service" <<'UNIT'
[Unit]
Description=atomik Debian-server VM test (tests/vm/debian/guest.sh from the test disk)
After=multi-user.target
[Service]
Type=oneshot
ExecStart=/bin/sh -c 'mkdir -p /srv/t && mount -o ro /dev/vdb /srv/t && /bin/bash /srv/t/guest.sh; systemctl poweroff'
StandardOutput=tty
StandardError=tty
TTYPath=/dev/ttyS0
TimeoutStartSec=infinity
[Install]
WantedBy=multi-user.target
UNIT
ln -sf /etc/systemd/system/atomik-vmtest.service "$R/etc/systemd/system/multi-user.target.wants/atomik-vmtest.service"
rm -f "$R/etc/machine-id" && touch "$R/etc/machine-id"
mkdir -p "$OUT.tmp/other-kernel"
mv "$R"/tmp/other/*.deb "$OUT.tmp/other-kernel/"
in_root "$R" apt-get clean
rm -rf "$R/var/lib/apt/lists/"*_Packages "$R/tmp/"*
cp "$R/boot/vmlinuz-$DEB_KVER" "$OUT.tmp/vmlinuz"
cp "$R/boot/initrd.img-$DEB_KVER" "$OUT.tmp/initrd.img"
size=$(( $(du -sm "$R" | cut -f1) + 1536 ))
mke2fs -q -t ext4 -L root -d "$R" "$OUT.tmp/disk.ext4" "${size}M"
rm -rf "$OUT" && mv "$OUT.tmp" "$OUT" && rm -rf "$R"
touch "$OUT/.done"
log "debian image: $OUT ($(du -sh "$OUT/disk.ext4" | cut -f1))"
echo "$OUT"
