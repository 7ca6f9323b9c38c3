#!/bin/bash
# Runs inside the Debian-server VM (atomik-vmtest.service, output on the serial console), as an
# administrator would on a fresh server: apt install from the local repository on the test
# disk, DKMS, modprobe, udev group, users in and outside it, the sync unit with a peer, the
# original SDK, unload, and an unsupported kernel's headers. Ends with one verdict line.
set -uo pipefail
T=/srv/t
KVER=$(cat $T/kver)
PASS=0 FAIL=0
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
ok() { echo "ok   $1"; PASS=$((PASS + 1)); }
bad() { echo "FAIL $1"; FAIL=$((FAIL + 1)); }
# step NAME COMMAND...: runs it, prints ok/FAIL with the last lines of its output on failure.
step() {
  local name=$1 start=$SECONDS out; shift
  if out=$("$@" 2>&1); then ok "$name ($((SECONDS - start)) s)"; else bad "$name: $(echo "$out" | tail -15)"; fi
}
as() { local u=$1; shift; runuser -u "$u" -- env ATOMIK_BACKEND=device "$@"; }
# Waits up to $1 s for the command to succeed.
until_ok() { local n=$1; shift; for _ in $(seq "$n"); do "$@" >/dev/null 2>&1 && return 0; sleep 1; done; "$@"; }

echo "ATOMIK-DEBIAN: kernel $(uname -r), $(. /etc/os-release; echo "$PRETTY_NAME")"
[ "$(uname -r)" = "$KVER" ] && ok "booted Debian's stock kernel $KVER" || bad "running $(uname -r), not $KVER"
# No network: the local repository is the only apt source.
mv /etc/apt/sources.list /etc/apt/sources.list.offline
echo "deb [trusted=yes] file:$T/repo ./" >/etc/apt/sources.list.d/atomik-local.list
step "apt-get update (local repository)" apt-get update -q
step "apt install atomikctl atomik-dkms atomik-kbuild-$KVER (DKMS builds atomik.ko)" \
  env DEBIAN_FRONTEND=noninteractive apt-get install -y -q atomikctl atomik-dkms "atomik-kbuild-$KVER"
step "dkms status: installed for $KVER" sh -c "dkms status atomik | grep -q '$KVER.*installed'"
# Why DKMS failed, on the console (the image is a snapshot: nothing of the VM's disk is kept).
if ! dkms status atomik | grep -q "$KVER.*installed"; then
  for f in /var/lib/dkms/atomik/*/build/make.log; do
    [ -f "$f" ] && sed "s|^|atomik-debian: $f: |" "$f"
  done
fi
step "modinfo: alias devname:atomik" sh -c "modinfo -F alias atomik | grep -qx devname:atomik"
step "modprobe atomik" modprobe atomik
step "group atomik exists (sysusers)" getent group atomik
udevadm settle
step "udev: /dev/atomik is root:atomik 0660" sh -c '[ "$(stat -c "%U:%G %a" /dev/atomik)" = "root:atomik 660" ]'
step "modules-load.d names atomik" grep -qx atomik /usr/lib/modules-load.d/atomik.conf
useradd -m -G atomik alice && useradd -m bob
step "alice (in group atomik) creates and uses a bank on /dev/atomik" sh -c '
  runuser -u alice -- env ATOMIK_BACKEND=device atomikctl bank create demo --slots 256 --op add --mode 0660 &&
  runuser -u alice -- env ATOMIK_BACKEND=device atomikctl accum demo 7 5 &&
  runuser -u alice -- env ATOMIK_BACKEND=device atomikctl accum demo 7 2 &&
  [ "$(runuser -u alice -- env ATOMIK_BACKEND=device atomikctl read demo 7)" = 0x0000000000000007 ] &&
  runuser -u alice -- env ATOMIK_BACKEND=device atomikctl status | grep -qi device'
bob_rc=0; out=$(as bob atomikctl read demo 7 2>&1) || bob_rc=$?
# The node's mode refuses him (EACCES on open): atomikctl's "backend not available", exit 1.
if [ $bob_rc = 1 ] && echo "$out" | grep -q '/dev/atomik: Permission denied'; then
  ok "bob (not in the group) is refused: exit 1 ($out)"
else
  bad "bob: exit $bob_rc: $out"
fi

# The sync unit joins a peer (a second daemon serving bank "peer" on loopback).
step "atomikctl ships /etc/atomik/sync and the unit" test -d /etc/atomik/sync -a -f /usr/lib/systemd/system/atomik-sync@.service
umask 077
printf 'a long shared secret for the demo\n' >/etc/atomik/sync/demo.secret
cp /etc/atomik/sync/demo.secret /root/peer.secret
umask 022
cat >/etc/atomik/sync/demo.conf <<CONF
MODE=join
ARGS=--bank demo --slots 256 --op add --peer 127.0.0.1:7400
ATOMIK_BACKEND=device
CONF
ATOMIK_BACKEND=device atomikctl sync serve --bank peer --slots 256 --op add --listen 127.0.0.1:7400 \
  --data /var/tmp/peer --secret-file /root/peer.secret >/var/tmp/peer.log 2>&1 &
PEER=$!
step "systemctl start atomik-sync@demo" systemctl start atomik-sync@demo
sleep 2
step "atomik-sync@demo is active" systemctl is-active atomik-sync@demo
MAIN=$(systemctl show -p MainPID --value atomik-sync@demo)
step "the secret is not on the daemon's command line" sh -c "! tr '\0' ' ' </proc/$MAIN/cmdline | grep -q 'shared secret'"
step "the peer gets the bank's state (7 at slot 7)" \
  until_ok 60 sh -c '[ "$(ATOMIK_BACKEND=device atomikctl read peer 7)" = 0x0000000000000007 ]'
ATOMIK_BACKEND=device atomikctl accum peer 9 40
step "the bank gets the peer's ACCUM (40 at slot 9)" \
  until_ok 60 sh -c '[ "$(runuser -u alice -- env ATOMIK_BACKEND=device atomikctl read demo 9)" = 0x0000000000000028 ]'
step "systemctl stop atomik-sync@demo: a clean stop (exit 0)" sh -c '
  systemctl stop atomik-sync@demo &&
  [ "$(systemctl show -p ExecMainStatus --value atomik-sync@demo)" = 0 ] &&
  [ "$(systemctl show -p Result --value atomik-sync@demo)" = success ]'
kill -TERM $PEER; wait $PEER

# The original SDK, unmodified, against its own pure-Python model.
step "pip install atomik-core $(cat $T/sdk_version) (wheel from PyPI, unmodified)" \
  pip install -q --no-index --break-system-packages "$T"/atomik_core-*.whl
out=$(runuser -u alice -- python3 $T/sdk_check.py 2>&1) && ok "SDK: $out" || bad "SDK: $(echo "$out" | tail -15)"

# Unload once nothing holds the module.
as alice atomikctl bank rm demo >/dev/null 2>&1
ATOMIK_BACKEND=device atomikctl bank rm peer >/dev/null 2>&1
step "modprobe -r atomik after the banks are released" modprobe -r atomik
step "atomik is unloaded" sh -c '! grep -q "^atomik " /proc/modules'

# A kernel atomik does not support: installing its headers must not fail (DKMS skips it).
out=$(env DEBIAN_FRONTEND=noninteractive apt-get install -y -q linux-headers-amd64 2>&1); rc=$?
if [ $rc = 0 ] && ! dpkg --audit | grep -q .; then
  ok "apt install of an unsupported kernel's headers succeeds: $(echo "$out" | grep -im1 -E 'atomik|BUILD_EXCLUSIVE' || echo 'atomik not mentioned')"
else
  bad "apt install linux-headers-amd64: exit $rc: $(echo "$out" | tail -15)"
fi
step "dpkg: every package configured" sh -c '! dpkg -l | grep -E "^(iF|iU|iH|.H|rc?F)"'
# Debian's headers without atomik-kbuild-KVER: the check names what is missing and the fix.
apt-get remove -y -q "atomik-kbuild-$KVER" >/dev/null 2>&1
out=$(dkms build atomik/0.1.0 -k "$KVER" --force 2>&1; cat /var/lib/dkms/atomik/0.1.0/build/make.log 2>/dev/null)
echo "$out" | grep -q "apt install" && echo "$out" | grep -q "atomik-kbuild-$KVER" &&
  ok "without the Rust products the check says: $(echo "$out" | grep -m1 -E 'skipped|cannot build')" ||
  bad "without the Rust products: $(echo "$out" | tail -10)"

echo "atomik-debian: $PASS passed, $FAIL failed"
[ $FAIL = 0 ] && [ $PASS -gt 0 ] && echo "ATOMIK-DEBIAN-RESULT: PASS" || echo "ATOMIK-DEBIAN-RESULT: FAIL"
