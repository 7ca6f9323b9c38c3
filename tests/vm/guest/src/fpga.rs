//! Suite `fpga` (tests/vm/run.sh --fpga): the guest sees the RTL as a PCI device (QEMU's
//! vfio-user-pci client, `atomikctl vfio-user` serving the Verilator model on the host). First
//! libatomik's userspace FPGA backend and atomikctl drive it through sysfs `resource0`; then
//! the module's PCI path (kmod/pci.rs): the device bound, FEATURE_FPGA, banks created on the
//! device checked op by op against a model, ACCUM through the mapped window, isolation between
//! banks, every refusal with its errno.

use crate::check::Report;
use crate::dev::{name, Dev, Map, R};
use crate::fuzz::Rng;
use atomik::abi::*;
use std::process::{Command, Stdio};

/// The PCI function with the register map's vendor:device, e.g. `0000:00:04.0`.
fn find_function() -> Result<String, String> {
    let dir = atomik::backend::fpga::pci_function().ok_or_else(|| {
        let (vendor, device) = atomik::backend::fpga::pci_id();
        format!("no PCI function {vendor:04x}:{device:04x} in /sys/bus/pci/devices")
    })?;
    Ok(dir.file_name().unwrap_or_default().to_string_lossy().into_owned())
}

fn create_fpga(d: &Dev, n: &str, slots: u64, op: u32, shards: u32) -> R<()> {
    let mut c = BankCreate { name: name(n), slots, op, mode: 0o600, shards, flags: BANK_CREATE_FPGA };
    d.raw(IOCTL_BANK_CREATE, &mut c as *mut BankCreate as usize).map(|_| ())
}

fn combine(op: u32, a: u64, b: u64) -> u64 {
    if op == OP_ADD {
        a.wrapping_add(b)
    } else {
        a ^ b
    }
}

/// A model slot: (reference, accumulator).
type Model = Vec<(u64, u64)>;

/// `n` random ops on an attached FPGA bank, each checked against the model.
fn random_ops(d: &Dev, op: u32, model: &mut Model, n: u32, seed: u64) -> Result<(), String> {
    let mut rng = Rng(seed);
    // LOAD and SWAP leave the accumulator at the identity, 0 for both operators.
    let id = 0;
    for k in 0..n {
        let slot = rng.next() % model.len() as u64;
        let v = rng.next();
        let (r, a) = model[slot as usize];
        let state = combine(op, r, a);
        match rng.next() % 7 {
            0 => {
                ok!(d.load(slot, v));
                model[slot as usize] = (v, id);
            }
            1 | 2 => {
                ok!(d.accum(slot, v));
                model[slot as usize].1 = combine(op, a, v);
            }
            3 => {
                let got = ok!(d.read(slot));
                ensure!(got == state, "op {k}: READ slot {slot} = {got:#x}, model {state:#x}");
            }
            6 => {
                let got = ok!(d.is_clean(slot));
                ensure!(got == (a == id), "op {k}: IS_CLEAN slot {slot} = {got}, accumulator {a:#x}");
            }
            4 => {
                let got = ok!(d.swap(slot));
                ensure!(got == state, "op {k}: SWAP slot {slot} = {got:#x}, model {state:#x}");
                model[slot as usize] = (state, id);
            }
            _ => {
                let got = ok!(d.swap_set(slot, v));
                ensure!(got == state, "op {k}: SWAP_SET slot {slot} = {got:#x}, model {state:#x}");
                model[slot as usize] = (v, id);
            }
        }
    }
    Ok(())
}

fn check_all(d: &Dev, op: u32, model: &Model, what: &str) -> Result<(), String> {
    for (slot, &(r, a)) in model.iter().enumerate() {
        let got = ok!(d.read(slot as u64));
        ensure!(got == combine(op, r, a), "{what}: slot {slot} = {got:#x}, model {:#x}", combine(op, r, a));
    }
    Ok(())
}

fn store(map: &Map, slot: u64, v: u64) {
    assert!((slot as usize + 1) * 8 <= map.len);
    // SAFETY: an aligned word inside the live mapping of the ACCUM window: one 64-bit store,
    // one posted write to the device.
    unsafe { std::ptr::write_volatile(map.ptr.add(slot as usize * 8) as *mut u64, v) };
}

/// atomik.ko's sysfs files that unbind and bind a PCI function.
const UNBIND: &str = "/sys/bus/pci/drivers/atomik/unbind";
const BIND: &str = "/sys/bus/pci/drivers/atomik/bind";

/// Where the userspace backend keeps its bank records in the guest.
const FPGA_DIR: &str = "/tmp/atomik-fpga";

/// libatomik's test binaries that run on any backend. The others test the shared-memory layout
/// (shards, the soft backend's files, the seqlock of mapped slots), or, `stress`, need 2,048
/// slots (the harness's device has 1,024) and millions of ops (each a trapped MMIO access here).
///
///
/// Each binary runs `RUNS` times in one boot: the bugs this found first (a destroyed bank's
/// slots handed out while a handle was open; SWAP_SETs of two banks racing for the one staging
/// word) showed in 1 to 2 runs of 6, with two test threads interleaving on two vCPUs.
const USERSPACE_LIBTESTS: &[&str] = &["algebra", "bank", "swap_set"];
const RUNS: usize = 3;

/// How atomikctl reaches the device: the userspace backend through sysfs `resource0` of the
/// PCI function, or the module (`/dev/atomik`, the default backend while it is loaded).
#[derive(Clone, Copy)]
enum Via<'a> {
    Sysfs(&'a str),
    Module,
}

fn ctl_cmd(via: Via) -> Command {
    let mut c = Command::new("/bin/atomikctl");
    match via {
        Via::Sysfs(bdf) => c
            .env("ATOMIK_BACKEND", "fpga")
            .env("ATOMIK_FPGA", format!("pci:{bdf}"))
            .env("ATOMIK_FPGA_DIR", FPGA_DIR),
        Via::Module => c.env_remove("ATOMIK_BACKEND").env_remove("ATOMIK_FPGA"),
    };
    c.stdin(Stdio::null());
    c
}

fn ctl_output(args: &[&str], via: Via) -> Result<std::process::Output, String> {
    ctl_cmd(via).args(args).output().map_err(|e| format!("atomikctl {args:?}: {e}"))
}

/// atomikctl's exit status and its stdout and stderr together.
fn ctl_any(args: &[&str], via: Via) -> Result<(bool, String), String> {
    let out = ctl_output(args, via)?;
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    Ok((out.status.success(), text))
}

fn ctl(args: &[&str], via: Via) -> Result<String, String> {
    let out = ctl_output(args, via)?;
    ensure!(
        out.status.success(),
        "atomikctl {args:?}: {:?} {}",
        out.status,
        String::from_utf8_lossy(&out.stderr).trim()
    );
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Four atomikctl processes at once ACCUM 1, 2, 3 and 4 into slot 7 of bank `hits`.
fn accum_from_4_processes(via: Via) -> Result<(), String> {
    let children: Vec<_> = (1..=4u64)
        .map(|k| {
            ctl_cmd(via)
                .args(["accum", "hits", "7", &k.to_string()])
                .spawn()
                .map_err(|e| format!("atomikctl accum: {e}"))
        })
        .collect::<Result<_, _>>()?;
    for mut c in children {
        let st = c.wait().map_err(|e| e.to_string())?;
        ensure!(st.success(), "atomikctl accum: {st:?}");
    }
    Ok(())
}

fn sysfs_write(path: &str, value: &str) -> Result<(), String> {
    std::fs::write(path, value).map_err(|e| format!("writing {value} to {path}: {e}"))
}

/// With the device unbound from atomik.ko: libatomik's userspace backend and atomikctl on it.
fn userspace_backend(bdf: &str) -> Result<(), String> {
    let via = Via::Sysfs(bdf);
    let status = ctl(&["status"], via)?;
    ensure!(status.contains("fpga") && status.contains("ID matches"), "status: {status}");
    ensure!(status.contains("1024 slots"), "status does not show the model's geometry: {status}");
    let pci = format!("pci:{bdf}");
    let envs = [("ATOMIK_FPGA", pci.as_str()), ("ATOMIK_FPGA_DIR", FPGA_DIR)];
    for bin in crate::lib_suites::library_tests()? {
        let name = bin.file_name().unwrap().to_string_lossy().into_owned();
        if USERSPACE_LIBTESTS.contains(&name.as_str()) {
            for _ in 0..RUNS {
                crate::lib_suites::run_tests(&bin, "fpga", &envs, &[])?;
            }
        }
    }
    // atomikctl end to end: 4 processes ACCUM into one bank on the device.
    let _ = ctl_any(&["bank", "rm", "hits"], via);
    ctl(&["bank", "create", "hits", "--slots", "64", "--op", "add"], via)?;
    accum_from_4_processes(via)?;
    let read = ctl(&["read", "hits", "7"], via)?;
    ensure!(
        read.trim() == "0x000000000000000a",
        "read hits 7 after ACCUM 1+2+3+4 from 4 processes: {read:?}"
    );
    let swapped = ctl(&["swap", "hits", "7"], via)?;
    ensure!(swapped.trim() == "0x000000000000000a", "swap returns the state: {swapped:?}");
    ctl(&["accum", "hits", "7", "5"], via)?;
    ensure!(
        ctl(&["read", "hits", "7"], via)?.trim() == "0x000000000000000f",
        "ACCUM after SWAP builds on the new reference"
    );
    ctl(&["bank", "rm", "hits"], via)?;
    Ok(())
}

pub fn run(report: &mut Report) {
    let bdf = match find_function() {
        Ok(b) => b,
        Err(e) => return report.fail("fpga: the device is on the PCI bus", e),
    };
    println!("  atomik FPGA at PCI {bdf}");

    // libatomik's userspace FPGA backend maps BAR 0 through sysfs resource0 and finds the
    // device by its ID register; its bank records live in ATOMIK_FPGA_DIR. While atomik.ko is
    // bound, the module's slot allocator owns the device and the library must keep off it.
    report.run(
        "fpga: while atomik.ko is bound, the userspace backend refuses the device and says why",
        || {
            let (ok, text) = ctl_any(&["status"], Via::Sysfs(&bdf))?;
            ensure!(!text.contains("ID matches"), "status used the bound device: {text}");
            ensure!(text.contains("bound to atomik.ko") && text.contains(&bdf), "status (ok: {ok}): {text}");
            Ok(())
        },
    );
    report.run(
        "fpga: unbound from atomik.ko, the userspace backend drives the device: status, libatomik's tests, atomikctl",
        || {
            sysfs_write(UNBIND, &bdf)?;
            let driver = format!("/sys/bus/pci/devices/{bdf}/driver");
            ensure!(std::fs::read_link(&driver).is_err(), "still bound after unbind");
            let used = userspace_backend(&bdf);
            // Bound again whatever happened above: the suite's module tests follow.
            let bound = sysfs_write(BIND, &bdf).and_then(|()| {
                let link = std::fs::read_link(&driver).map_err(|e| format!("driver link after bind: {e}"))?;
                ensure!(link.ends_with("atomik"), "bound to {}", link.display());
                Ok(())
            });
            used.and(bound)
        },
    );

    report.run("fpga: atomik.ko bound the device and reports FEATURE_FPGA", || {
        let link = std::fs::read_link(format!("/sys/bus/pci/devices/{bdf}/driver"))
            .map_err(|e| format!("driver link: {e}"))?;
        ensure!(link.ends_with("atomik"), "bound to {}", link.display());
        let d = ok!(Dev::open());
        let info = ok!(d.info());
        ensure!(info.features & FEATURE_FPGA != 0, "GET_INFO features {:#x}", info.features);
        Ok(())
    });

    report.run(
        "fpga: banks on the device follow a model (LOAD/ACCUM/READ/SWAP/SWAP_SET, both operators)",
        || {
            let c = ok!(Dev::open());
            let _ = c.destroy("f-add");
            let _ = c.destroy("f-xor");
            ok!(create_fpga(&c, "f-add", 500, OP_ADD, 0));
            ok!(create_fpga(&c, "f-xor", 100, OP_XOR, 0));
            let add = ok!(Dev::open());
            let o = ok!(add.attach("f-add", ACCESS_READ | ACCESS_WRITE));
            ensure!(o.access & BANK_OPEN_FPGA != 0 && o.slots == 500 && o.op == OP_ADD, "{o:?}");
            ensure!(o.map_size == 4096, "500 slots take one page of the window, map_size {}", o.map_size);
            let xor = ok!(Dev::open());
            let ox = ok!(xor.attach("f-xor", ACCESS_READ | ACCESS_WRITE));
            ensure!(ox.access & BANK_OPEN_FPGA != 0 && ox.map_size == 4096, "{ox:?}");
            let mut ma: Model = vec![(0, 0); 500];
            let mut mx: Model = vec![(0, 0); 100];
            check_all(&add, OP_ADD, &ma, "fresh ADD bank")?;
            random_ops(&add, OP_ADD, &mut ma, 1500, 0x9e37_79b9_7f4a_7c15)?;
            random_ops(&xor, OP_XOR, &mut mx, 800, 0x2545_f491_4f6c_dd1d)?;
            check_all(&add, OP_ADD, &ma, "ADD bank after both")?;
            check_all(&xor, OP_XOR, &mx, "XOR bank after both")?;
            fails_with!(add.read(500), libc::EINVAL);
            fails_with!(xor.accum(100, 1), libc::EINVAL);
            // BATCH goes through the same ops.
            let mut e = [
                BatchEntry { kind: KIND_ACCUM, status: 0, slot: 3, value: 7 },
                BatchEntry { kind: KIND_READ, status: 0, slot: 3, value: 0 },
            ];
            ensure!(ok!(add.batch(&mut e)) == 2, "batch done");
            ensure!(
                e[1].value == combine(OP_ADD, ma[3].0, ma[3].1.wrapping_add(7)),
                "batch READ {:#x}",
                e[1].value
            );
            let st = ok!(add.stats());
            ensure!(st.slots == 500 && st.op == OP_ADD, "stats {st:?}");
            let (list, _) = ok!(c.list());
            ensure!(list.iter().any(|b| b.name == name("f-add") && b.slots == 500), "BANK_LIST lacks f-add");
            drop((add, xor));
            ok!(c.destroy("f-add"));
            ok!(c.destroy("f-xor"));
            Ok(())
        },
    );

    report.run("fpga: ACCUM through the mapped window is one store per op, exact from 2 threads", || {
        let c = ok!(Dev::open());
        let _ = c.destroy("f-map");
        ok!(create_fpga(&c, "f-map", 512, OP_ADD, 0));
        let d = ok!(Dev::open());
        let o = ok!(d.attach("f-map", ACCESS_READ | ACCESS_WRITE));
        let rw = libc::PROT_READ | libc::PROT_WRITE;
        fails_with!(d.map(8192, 0, rw, libc::MAP_SHARED), libc::EINVAL);
        fails_with!(d.map(4096, 1, rw, libc::MAP_SHARED), libc::EINVAL);
        fails_with!(d.map(4096, 0, rw, libc::MAP_PRIVATE), libc::EINVAL);
        let map = ok!(d.map(o.map_size as usize, 0, libc::PROT_WRITE, libc::MAP_SHARED));
        store(&map, 5, 40);
        store(&map, 5, 2);
        store(&map, 511, 9);
        ensure!(ok!(d.read(5)) == 42, "slot 5 after two mapped ACCUMs: {:#x}", ok!(d.read(5)));
        ensure!(ok!(d.read(511)) == 9, "slot 511");
        let per = 2000u64;
        std::thread::scope(|s| {
            s.spawn(|| (0..per).for_each(|_| store(&map, 9, 1)));
            s.spawn(|| (0..per).for_each(|_| store(&map, 9, 2)));
            (0..per).for_each(|_| {
                let _ = d.accum(9, 4);
            });
        });
        ensure!(ok!(d.read(9)) == 7 * per, "slot 9 after 3 x {per} concurrent ACCUMs: {}", ok!(d.read(9)));
        // A read-only attachment cannot map the window (it is written to).
        let r = ok!(Dev::open());
        ok!(r.attach("f-map", ACCESS_READ));
        fails_with!(r.map(4096, 0, libc::PROT_READ, libc::MAP_SHARED), libc::EACCES);
        drop(map);
        ok!(c.destroy("f-map"));
        Ok(())
    });

    report.run(
        "fpga: libatomik and atomikctl use the module's banks on the device (libatomik's tests, atomikctl end to end)",
        module_banks_through_libatomik,
    );

    crate::fuzz::run_on_fpga(report);

    report.run("fpga: refusals (flags, shards, no room, request bits) change nothing", || {
        let c = ok!(Dev::open());
        for n in ["f-a", "f-b", "f-d", "f-big"] {
            let _ = c.destroy(n);
        }
        // 600 slots take both pages of the windows: the whole device.
        ok!(create_fpga(&c, "f-big", 600, OP_ADD, 0));
        let big = ok!(Dev::open());
        let o = ok!(big.attach("f-big", ACCESS_READ | ACCESS_WRITE));
        ensure!(o.map_size == 8192, "600 slots take two pages of the window, map_size {}", o.map_size);
        fails_with!(create_fpga(&c, "f-bad", 1, OP_XOR, 0), libc::ENOSPC);
        drop(big);
        ok!(c.destroy("f-big"));
        let mut bad =
            BankCreate { name: name("f-bad"), slots: 8, op: OP_ADD, mode: 0o600, shards: 0, flags: 2 };
        fails_with!(c.raw(IOCTL_BANK_CREATE, &mut bad as *mut BankCreate as usize), libc::EINVAL);
        fails_with!(create_fpga(&c, "f-bad", 8, OP_ADD, 1), libc::EINVAL);
        fails_with!(create_fpga(&c, "f-bad", 1_000_000, OP_ADD, 0), libc::ENOMEM);
        // The device has 1024 slots, handed out a page (512) at a time: two banks fill it.
        ok!(create_fpga(&c, "f-a", 512, OP_XOR, 0));
        fails_with!(create_fpga(&c, "f-bad", 600, OP_XOR, 0), libc::ENOSPC);
        ok!(create_fpga(&c, "f-b", 1, OP_XOR, 0));
        fails_with!(create_fpga(&c, "f-bad", 1, OP_XOR, 0), libc::ENOSPC);
        fails_with!(c.attach("f-bad", ACCESS_READ), libc::ENOENT);
        let mut o = BankOpen {
            name: name("f-a"),
            access: ACCESS_READ | BANK_OPEN_FPGA,
            op: 0,
            slots: 0,
            map_size: 0,
        };
        fails_with!(c.raw(IOCTL_BANK_OPEN, &mut o as *mut BankOpen as usize), libc::EINVAL);
        // Destroying gives the slots back, and a new bank starts from the identity.
        let a = ok!(Dev::open());
        ok!(a.attach("f-a", ACCESS_READ | ACCESS_WRITE));
        ok!(a.accum(3, 0xff));
        drop(a);
        ok!(c.destroy("f-a"));
        ok!(create_fpga(&c, "f-d", 512, OP_ADD, 0));
        let d = ok!(Dev::open());
        ok!(d.attach("f-d", ACCESS_READ | ACCESS_WRITE));
        ensure!(ok!(d.read(3)) == 0, "a reused slot kept {:#x}", ok!(d.read(3)));
        drop(d);
        for n in ["f-b", "f-d"] {
            ok!(c.destroy(n));
        }
        Ok(())
    });

    report.run(
        "fpga: unbinding the device takes processes' window mappings down (SIGBUS, no stale store), rebinding serves again",
        || unbind_with_live_mappings(&bdf),
    );
}

/// A new 8-slot ADD bank `n` on the device, attached read-write on a fd of its own, and its
/// ACCUM window mapped.
fn mapped_fpga_bank(c: &Dev, n: &str) -> Result<(Dev, BankOpen, Map), String> {
    ok!(create_fpga(c, n, 8, OP_ADD, 0));
    let d = ok!(Dev::open());
    let o = ok!(d.attach(n, ACCESS_READ | ACCESS_WRITE));
    let map = ok!(d.map(o.map_size as usize, 0, libc::PROT_WRITE, libc::MAP_SHARED));
    Ok((d, o, map))
}

/// A parent and a forked child map a bank's ACCUM window and store through it; the device is
/// unbound; a store by either must then kill it with SIGBUS (the PTEs both had are gone, and
/// no fault maps the BAR again), where without the zap it would reach whatever the BAR address
/// is given to next. Bound again, the device serves new banks and mappings.
fn unbind_with_live_mappings(bdf: &str) -> Result<(), String> {
    let c = ok!(Dev::open());
    let _ = c.destroy("f-gone");
    let (d, o, map) = mapped_fpga_bank(&c, "f-gone")?;
    store(&map, 1, 5);
    ensure!(ok!(d.read(1)) == 5, "mapped ACCUM before unbind");
    // A child with the mapping (its PTE copied at fork) that stores when told to.
    let mut go = [0i32; 2];
    // SAFETY: pipe(2) into a two-int array.
    ensure!(unsafe { libc::pipe(go.as_mut_ptr()) } == 0, "pipe");
    // SAFETY: fork(2); the child only reads the pipe, stores to its mapping and _exit()s.
    let child = unsafe { libc::fork() };
    if child == 0 {
        let mut b = 0u8;
        // SAFETY: reads one byte into a local.
        unsafe { libc::read(go[0], &mut b as *mut u8 as *mut libc::c_void, 1) };
        store(&map, 2, 7);
        // SAFETY: ends the child without running the parent's destructors.
        unsafe { libc::_exit(0) };
    }
    ensure!(child > 0, "fork failed");
    let unbound = sysfs_write(UNBIND, bdf);
    // SAFETY: writes one byte to our pipe.
    unsafe { libc::write(go[1], b"g".as_ptr() as *const libc::c_void, 1) };
    let mut status = 0;
    // SAFETY: waits for our own child into a local int.
    unsafe { libc::waitpid(child, &mut status, 0) };
    // The parent's own store, in a child of its own so that SIGBUS ends only that one.
    // SAFETY: fork(2); the child stores and _exit()s.
    let own = unsafe { libc::fork() };
    if own == 0 {
        store(&map, 3, 9);
        // SAFETY: as above.
        unsafe { libc::_exit(0) };
    }
    let mut own_status = 0;
    // SAFETY: as above.
    unsafe { libc::waitpid(own, &mut own_status, 0) };
    let after = d.read(1);
    let mmap_after = d.map(o.map_size as usize, 0, libc::PROT_WRITE, libc::MAP_SHARED).err();
    drop(map);
    let bound = sysfs_write(BIND, bdf);
    unbound?;
    bound?;
    let sigbus = |st: i32| libc::WIFSIGNALED(st) && libc::WTERMSIG(st) == libc::SIGBUS;
    ensure!(sigbus(status), "the forked mapping's store after unbind: wait status {status:#x}, not SIGBUS");
    ensure!(
        sigbus(own_status),
        "the mapping's own store after unbind: wait status {own_status:#x}, not SIGBUS"
    );
    ensure!(after == Err(libc::ENODEV), "READ on the unbound device's bank: {after:?}");
    ensure!(mmap_after == Some(libc::ENODEV), "mmap after unbind: {mmap_after:?}");
    drop(d);
    ok!(c.destroy("f-gone"));
    // Bound again: a new bank and mapping work.
    let (e, _, map) = mapped_fpga_bank(&c, "f-again")?;
    store(&map, 4, 11);
    ensure!(ok!(e.read(4)) == 11, "mapped ACCUM after rebind");
    drop((map, e));
    ok!(c.destroy("f-again"));
    Ok(())
}

/// libatomik's device backend serves banks whose slots are on the FPGA: ioctls, and ACCUM
/// through the mapped window.
fn module_banks_through_libatomik() -> Result<(), String> {
    // libatomik's tests with every bank they make on the FPGA; one test at a time, since the
    // 1,024-slot device holds two banks (the module hands out whole pages of the windows).
    let envs = [("ATOMIK_TEST_FPGA", "1"), ("RUST_TEST_THREADS", "1")];
    for bin in crate::lib_suites::library_tests()? {
        let name = bin.file_name().unwrap().to_string_lossy().into_owned();
        if name == "bank" || name == "swap_set" {
            crate::lib_suites::run_tests(&bin, "device", &envs, &[])?;
        }
    }
    let via = Via::Module;
    let _ = ctl_any(&["bank", "rm", "hits"], via);
    ctl(&["bank", "create", "hits", "--slots", "64", "--op", "add", "--fpga"], via)?;
    accum_from_4_processes(via)?;
    let read = ctl(&["read", "hits", "7"], via)?;
    ensure!(
        read.trim() == "0x000000000000000a",
        "read hits 7 after ACCUM 1+2+3+4 from 4 processes: {read:?}"
    );
    let info: serde_json::Value = serde_json::from_str(&ctl(&["--json", "bank", "info", "hits"], via)?)
        .map_err(|e| format!("bank info --json: {e}"))?;
    ensure!(
        info["location"].as_str().is_some_and(|l| l.contains("slots on the FPGA"))
            && info["dirty_slots"] == 1,
        "bank info of an FPGA bank with one slot accumulated: {info}"
    );
    ensure!(
        ctl(&["swap", "hits", "7", "--set", "5"], via)?.trim() == "0x000000000000000a",
        "SWAP_SET returns the state"
    );
    ctl(&["accum", "hits", "7", "2"], via)?;
    ensure!(
        ctl(&["read", "hits", "7"], via)?.trim() == "0x0000000000000007",
        "ACCUM builds on the new reference"
    );
    let all: serde_json::Value = serde_json::from_str(&ctl(&["--json", "read", "hits", "--all"], via)?)
        .map_err(|e| format!("read --all --json: {e}"))?;
    let values = all["values"].as_array().map(|v| v.iter().map(|x| x.as_u64()).collect::<Vec<_>>());
    ensure!(
        values.as_ref().is_some_and(|v| v.len() == 64 && v[7] == Some(7) && v[8] == Some(0)),
        "read --all: {all}"
    );
    ctl(&["bank", "rm", "hits"], via)?;
    ensure!(ctl(&["read", "hits", "7"], via).is_err(), "read after rm");
    Ok(())
}
