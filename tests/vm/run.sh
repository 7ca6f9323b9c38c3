#!/bin/bash
# The VM test of /dev/atomik, in one command:
#   tests/vm/run.sh [--debug] [--suites a,b,...] [--bench] [--fpga] [--no-dkms] [--param NAME=VALUE]...
# Installs the toolchain from the registries (tests/vm/toolchain.sh), builds and caches the
# kernel under ~/.cache/atomik (tests/vm/kernel.sh; --debug: the KASAN + lockdep kernel built
# with clang 19 in a Debian trixie build root, tests/vm/debug-kernel.sh), builds atomik.ko and
# the static test binaries, boots QEMU (TCG, 2 vCPUs), runs the suites, and fails on any test
# failure or on any Oops/BUG/WARNING/KASAN/lockdep/panic line in the kernel log.
# Without --no-dkms it also proves `dkms build` and `dkms install` against the built kernel
# (tests/vm/dkms.sh). --bench runs only the in-VM benchmark and prints its ratios. --param
# sets a module parameter (atomik.NAME=VALUE on the kernel command line, which the guest's
# /init passes to finit_module), overriding the harness's small limits below. --fpga boots
# QEMU 11 (trixie-backports) with the RTL as a PCI device (tests/vm/fpga.sh) and runs the
# suite `fpga`: libatomik and atomikctl on the device, and the module's PCI path.
set -euo pipefail
source "$(dirname "$0")/common.sh"

DEBUG=0; SUITES=""; BENCH=0; DKMS=1; PARAMS=(); FPGA=0
while [ $# -gt 0 ]; do
  case $1 in
    --debug) DEBUG=1 ;;
    --suites) SUITES=$2; shift ;;
    --bench) BENCH=1; SUITES=bench ;;
    --no-dkms) DKMS=0 ;;
    --fpga) FPGA=1; SUITES=fpga; DKMS=0 ;;
    --param) [[ ${2:-} == [a-z_]*=* ]] || die "--param wants NAME=VALUE"; PARAMS+=("$2"); shift ;;
    -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
    *) die "unknown argument $1 (see --help)" ;;
  esac
  shift
done
T0=$SECONDS

"$VM_DIR/toolchain.sh"
KBUILD_HOST=$("$VM_DIR/kernel.sh")    # gen_init_cpio comes from here in both routes
if [ $DEBUG = 1 ]; then
  KBUILD=$("$VM_DIR/debug-kernel.sh")
  KO=$("$VM_DIR/debug-kernel.sh" --module)
  MEM=1G; TIMEOUT=1500; FLAVOUR=debug
else
  KBUILD=$KBUILD_HOST
  KO=$("$VM_DIR/module.sh" "$KBUILD" "$ATOMIK_CACHE/kmod-build/$CHECKOUT-$(basename "$KBUILD")" "${KMAKE_FLAGS[@]}")
  MEM=512M; TIMEOUT=900; FLAVOUR=normal
  [ $FPGA = 1 ] && FLAVOUR=fpga
fi
log "module: $KO"

# Static test binaries (host cargo; static glibc so they run as /init on a bare initramfs).
# One build directory per checkout: runs from two worktrees at once must not build over or
# pack each other's binaries. (The ETXTBSY once blamed on this was the initramfs outgrowing
# the VM, below.)
export CARGO_TARGET_DIR=$ATOMIK_CACHE/target-vm-$CHECKOUT
# No debug info in what the VM runs: the initramfs is unpacked into the VM's RAM, and with the
# release profile's debug info (atomikctl alone was 77 MB) it outgrew a 512 MiB VM
# ("Initramfs unpacking failed: write error": the last files missing or left open, ETXTBSY).
export CARGO_PROFILE_RELEASE_DEBUG=0 CARGO_PROFILE_RELEASE_STRIP=debuginfo
STATIC=(env RUSTFLAGS="-C target-feature=+crt-static" cargo)
TGT=x86_64-unknown-linux-gnu
"${STATIC[@]}" build -q --release --target $TGT --manifest-path "$VM_DIR/guest/Cargo.toml"
BIN=$CARGO_TARGET_DIR/$TGT/release
EXTRA=()
if [ -f "$VM_DIR/extras.sh" ]; then
  # Library test binaries, atomikctl: one "file <dest> <src> 0755 0 0" line each.
  # Not a process substitution: a failed build must stop the run, not leave files out.
  lines=$(CARGO_TARGET_DIR=$CARGO_TARGET_DIR "$VM_DIR/extras.sh") || die "extras.sh failed (see above)"
  mapfile -t EXTRA <<<"$lines"
fi

W=$ATOMIK_CACHE/vm-$FLAVOUR-$CHECKOUT
mkdir -p "$W"
{
  echo "dir /dev 0755 0 0"
  echo "nod /dev/console 0600 0 0 c 5 1"
  echo "dir /proc 0755 0 0"
  echo "dir /sys 0755 0 0"
  echo "dir /tmp 01777 0 0"
  echo "dir /bin 0755 0 0"
  echo "dir /libtests 0755 0 0"
  echo "file /init $BIN/atomik-vmtest 0755 0 0"
  echo "file /atomik.ko $KO 0644 0 0"
  printf '%s\n' "${EXTRA[@]}"
} >"$W/initramfs.list"
"$KBUILD_HOST/usr/gen_init_cpio" "$W/initramfs.list" | gzip -1 >"$W/initramfs.cpio.gz"
log "initramfs: $(du -h "$W/initramfs.cpio.gz" | cut -f1) compressed, $(gzip -dc "$W/initramfs.cpio.gz" | wc -c | numfmt --to=iec) unpacked (VM RAM $MEM)"

# Small limits, so the limit tests reach them quickly (max_total_bytes fits fewer banks of
# max_slots than max_banks_per_user; enough banks for the library tests running in parallel);
# --param words come after them and win.
# no_timer_check: under TCG on a busy host the IO-APIC timer check can fail spuriously at boot.
# no5lvl: QEMU's "max" CPU offers LA57, and Linux 7.3 derives pgtable_l5_enabled() from the boot
# CPU's feature words, which identify_cpu() zeroes and refills with interrupts already enabled
# (arch_cpu_finalize_init runs after local_irq_enable). An interrupt in that window makes KASAN
# compute its shadow range for 4-level paging and report a "wild-memory-access" on a valid
# 5-level address (a CI run died so at 0.002 s). 4-level paging has no such window.
APPEND="console=ttyS0 panic=-1 oops=panic loglevel=6 no_timer_check no5lvl"
for p in max_slots=65536 max_total_bytes=33554432 max_user_bytes=16777216 max_banks_per_user=48 "${PARAMS[@]}"; do
  APPEND="$APPEND atomik.$p"
done
# The detectors (config.fragment): a soft lockup or a hung task panics the VM, an RCU stall
# is reported (BAD below); the debug kernel also panics on any WARN.
APPEND="$APPEND softlockup_panic=1 hung_task_panic=1"
[ $DEBUG = 1 ] && APPEND="$APPEND panic_on_warn=1"
[ -n "$SUITES" ] && APPEND="$APPEND vmtest.suites=$SUITES"
LOGF=$W/serial.log
rm -f "$LOGF"
QEMU_RUN=(qemu-system-x86_64); QEMU_DEVICE=()
if [ $FPGA = 1 ]; then
  source "$VM_DIR/fpga.sh"
  fpga_start "$W"
fi
log "boot: QEMU TCG -smp 2 ($FLAVOUR kernel), serial log $LOGF"
start=$SECONDS
timeout "$TIMEOUT" "${QEMU_RUN[@]}" -accel tcg,thread=multi -cpu max -m "$MEM" -smp 2 \
  -nographic -no-reboot -kernel "$KBUILD/arch/x86/boot/bzImage" -initrd "$W/initramfs.cpio.gz" \
  -append "$APPEND" -serial file:"$LOGF" -monitor none -display none "${QEMU_DEVICE[@]}" || log "qemu exited with $?"
log "VM ran $((SECONDS - start)) s"
if [ $FPGA = 1 ]; then
  fpga_stop
  cat "$W/vfio-user.log" >&2
fi

grep -aE '^(ok |FAIL|ATOMIK-|vmtest:|fuzz |bench)' "$LOGF" || true
BAD='Oops|BUG:|WARNING:|KASAN|lockdep|Kernel panic|Call Trace|soft lockup|blocked for more than|detected stall|Initramfs unpacking failed'
if grep -aqE "$BAD" "$LOGF"; then
  log "kernel log has problems:"; grep -aE -B2 -A20 "$BAD" "$LOGF" | head -80 >&2
  echo "VM-VERDICT: FAIL (kernel log)"; exit 1
fi
# Not anchored: a kernel message may share the line; only a passing run prints this string.
if ! grep -aq 'ATOMIK-VM-RESULT: PASS' "$LOGF"; then
  tail -30 "$LOGF" >&2
  echo "VM-VERDICT: FAIL (tests)"; exit 1
fi

if [ $DKMS = 1 ] && [ $DEBUG = 0 ] && [ $BENCH = 0 ]; then
  "$VM_DIR/dkms.sh" "$KBUILD"
fi
echo "VM-VERDICT: PASS ($FLAVOUR kernel, $((SECONDS - T0)) s in all)"
