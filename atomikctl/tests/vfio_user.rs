//! `atomikctl vfio-user` (feature `vfio-user`) against the `vfio_user` crate's own client: the
//! device a vfio-user client (QEMU's vfio-user-pci) sees is the RTL behind the register map's
//! IDs. Run: `cargo test -p atomikctl --features vfio-user --test vfio_user`.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use atomik::backend::fpga::regs;
use vfio_bindings::bindings::vfio::{
    VFIO_PCI_BAR0_REGION_INDEX as BAR0, VFIO_PCI_CONFIG_REGION_INDEX as CONFIG,
};
use vfio_user::Client;

fn start(sock: &Path) -> Child {
    let child = Command::new(env!("CARGO_BIN_EXE_atomikctl"))
        .args(["vfio-user", "--socket"])
        .arg(sock)
        .stderr(Stdio::piped())
        .spawn()
        .expect("atomikctl vfio-user");
    let t = Instant::now();
    while !sock.exists() {
        assert!(t.elapsed() < Duration::from_secs(30), "no socket at {}", sock.display());
        std::thread::sleep(Duration::from_millis(20));
    }
    child
}

fn read64(c: &mut Client, off: u64) -> u64 {
    let mut b = [0u8; 8];
    c.region_read(BAR0, off, &mut b).expect("BAR 0 read");
    u64::from_le_bytes(b)
}

fn write64(c: &mut Client, off: u64, v: u64) {
    c.region_write(BAR0, off, &v.to_le_bytes()).expect("BAR 0 write");
}

#[test]
fn a_vfio_user_client_finds_the_rtl_behind_the_register_maps_ids() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("s");
    let mut server = start(&sock);
    let mut c = Client::new(&sock).expect("connect");

    assert_eq!(c.region(CONFIG).map(|r| r.size), Some(256));
    assert_eq!(c.region(BAR0).map(|r| r.size), Some(regs::SIZE));
    let mut id = [0u8; 4];
    c.region_read(CONFIG, 0, &mut id).unwrap();
    assert_eq!(u32::from_le_bytes(id), (regs::ID_PCI_DEVICE_RESET << 16 | regs::ID_PCI_VENDOR_RESET) as u32);
    // Read-only config fields keep their values.
    c.region_write(CONFIG, 0, &[0; 4]).unwrap();
    c.region_read(CONFIG, 0, &mut id).unwrap();
    assert_eq!(u32::from_le_bytes(id) & 0xffff, regs::ID_PCI_VENDOR_RESET as u32);

    // BAR 0 is the RTL: its ID register, then operations through the windows.
    let want = regs::ID_MAGIC_RESET
        | regs::ID_PCI_VENDOR_RESET << regs::ID_PCI_VENDOR_LSB
        | regs::ID_PCI_DEVICE_RESET << regs::ID_PCI_DEVICE_LSB;
    assert_eq!(read64(&mut c, regs::ID), want);
    let slots = (read64(&mut c, regs::GEOMETRY) & regs::GEOMETRY_SLOTS_MASK) >> regs::GEOMETRY_SLOTS_LSB;
    assert_eq!(slots.to_string(), atomik::backend::fpga::rtl::MODEL_SLOTS);
    write64(&mut c, regs::LOAD_ADD_BASE + 8 * 3, 10);
    write64(&mut c, regs::ACCUM_BASE + 8 * 3, 5);
    write64(&mut c, regs::ACCUM_BASE + 8 * 3, u64::MAX);
    assert_eq!(read64(&mut c, regs::READ_BASE + 8 * 3), 14);
    assert_eq!(read64(&mut c, regs::SWAP_BASE + 8 * 3), 14);
    write64(&mut c, regs::ACCUM_BASE + 8 * 3, 1);
    assert_eq!(read64(&mut c, regs::READ_BASE + 8 * 3), 15);

    // What the RTL refuses reads as all ones and is counted; sub-64-bit accesses never reach it.
    assert_eq!(read64(&mut c, regs::ERRORS), 0);
    assert_eq!(read64(&mut c, regs::ACCUM_BASE), u64::MAX);
    assert_eq!(read64(&mut c, regs::ERRORS), 1);
    let mut half = [0u8; 4];
    c.region_read(BAR0, regs::ID, &mut half).unwrap();
    assert_eq!(half, [0xff; 4]);
    c.region_write(BAR0, regs::ACCUM_BASE + 8 * 3, &[1, 0, 0, 0]).unwrap();
    assert_eq!(read64(&mut c, regs::READ_BASE + 8 * 3), 15);

    // A device reset is the RTL's: a fresh model.
    c.reset().unwrap();
    assert_eq!(read64(&mut c, regs::READ_BASE + 8 * 3), 0);

    drop(c);
    let t = Instant::now();
    let status = loop {
        if let Some(s) = server.try_wait().unwrap() {
            break s;
        }
        assert!(t.elapsed() < Duration::from_secs(30), "server still running after its client left");
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut err = String::new();
    std::io::Read::read_to_string(server.stderr.as_mut().unwrap(), &mut err).unwrap();
    assert!(status.success(), "{status:?}: {err}");
    assert!(err.contains("client gone after"), "{err}");
}
