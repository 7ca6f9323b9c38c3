# The RTL on the guest's PCI bus, for `run.sh --fpga` (sourced by run.sh, not run):
# `atomikctl vfio-user` (feature vfio-user: the Verilator model of hw/rtl behind the vfio_user
# crate's server) on the host, and QEMU >= 10.1 from trixie-backports (tests/vm/qemu-root.sh,
# its own root under the cache) whose `vfio-user-pci` client connects to it. The cache is
# bind-mounted into that root at the same path, so kernel, initramfs, serial log and socket
# keep their paths.
#   fpga_start DIR   builds and starts the server (socket and log in DIR), mounts the root;
#                    sets QEMU_RUN (the QEMU command) and QEMU_DEVICE (its -device words)
#   fpga_stop        stops the server and unmounts (also run on exit)

# Slots of the simulated device: 1024 is two pages of each window (two banks mapped side by
# side in the guest suite).
FPGA_SLOTS=1024

fpga_start() {
  local dir=$1
  QROOT=$("$VM_DIR/qemu-root.sh")
  # The host build of the server: its own target directory (not the static guest build), a
  # debug build without NATS (the model's C++ is optimised by build.rs either way).
  local tgt=$ATOMIK_CACHE/target-vfio-$CHECKOUT
  log "fpga: building atomikctl --features vfio-user ($FPGA_SLOTS-slot RTL model) in $tgt"
  ATOMIK_RTL_SLOTS=$FPGA_SLOTS CARGO_TARGET_DIR=$tgt cargo build -q -p atomikctl \
    --no-default-features --features vfio-user --manifest-path "$REPO/Cargo.toml"
  FPGA_SOCK=$dir/vfio-user.sock
  rm -f "$FPGA_SOCK"
  "$tgt/debug/atomikctl" vfio-user --socket "$FPGA_SOCK" 2>"$dir/vfio-user.log" &
  FPGA_SERVER=$!
  trap fpga_stop EXIT
  local i
  for i in $(seq 100); do [ -S "$FPGA_SOCK" ] && break; sleep 0.1; done
  [ -S "$FPGA_SOCK" ] || { cat "$dir/vfio-user.log" >&2; die "fpga: the vfio-user server made no socket"; }
  # One run at a time uses the root's mounts (another checkout may be booting from it).
  exec 8>"$QROOT.lock"
  flock 8
  mkdir -p "$QROOT$ATOMIK_CACHE"
  mountpoint -q "$QROOT$ATOMIK_CACHE" || mount --bind "$ATOMIK_CACHE" "$QROOT$ATOMIK_CACHE"
  mountpoint -q "$QROOT/proc" || mount -t proc proc "$QROOT/proc"
  QEMU_RUN=(chroot "$QROOT" qemu-system-x86_64)
  # The socket is a SocketAddress (a struct): only the JSON form of -device can set it.
  QEMU_DEVICE=(-device "{\"driver\":\"vfio-user-pci\",\"socket\":{\"type\":\"unix\",\"path\":\"$FPGA_SOCK\"}}")
  log "fpga: $(chroot "$QROOT" qemu-system-x86_64 --version | head -1), server pid $FPGA_SERVER"
}

fpga_stop() {
  if [ -n "${FPGA_SERVER:-}" ]; then
    kill "$FPGA_SERVER" 2>/dev/null || true
    wait "$FPGA_SERVER" 2>/dev/null || true
  fi
  FPGA_SERVER=
  if [ -n "${QROOT:-}" ]; then
    umount "$QROOT/proc" "$QROOT$ATOMIK_CACHE" 2>/dev/null || true
  fi
  return 0
}
