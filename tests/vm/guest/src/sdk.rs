//! The original ATOMiK SDK's ioctls (type 'A', `libatomik/src/sdk_abi.rs`): semantics against a
//! model of every table, the documented errors with nothing changed, the limits, fd privacy,
//! tables freed with their fd, concurrent ops on one fd, and a fuzzer whose every success is
//! checked against the model.

use crate::check::Report;
use crate::dev::{Dev, R};
use crate::fuzz::Rng;
use atomik::sdk_abi::*;

fn call<T>(d: &Dev, cmd: u32, v: &mut T) -> R<()> {
    d.raw(cmd, v as *mut T as usize).map(|_| ())
}

fn create(d: &Dev, n: u32) -> R<u32> {
    let mut c = SdkCreateTable { num_contexts: n, table_id: 0 };
    call(d, SDK_IOCTL_CREATE_TABLE, &mut c)?;
    Ok(c.table_id)
}
fn destroy(d: &Dev, id: u32) -> R<()> {
    call(d, SDK_IOCTL_DESTROY_TABLE, &mut SdkTableId { table_id: id })
}
fn op(d: &Dev, cmd: u32, table_id: u32, addr: u32, value: u64) -> R<u64> {
    let mut o = SdkContextOp { table_id, addr, value };
    call(d, cmd, &mut o)?;
    Ok(o.value)
}
fn load(d: &Dev, t: u32, a: u32, v: u64) -> R<()> {
    op(d, SDK_IOCTL_LOAD, t, a, v).map(|_| ())
}
fn accum(d: &Dev, t: u32, a: u32, v: u64) -> R<()> {
    op(d, SDK_IOCTL_ACCUM, t, a, v).map(|_| ())
}
fn read(d: &Dev, t: u32, a: u32) -> R<u64> {
    op(d, SDK_IOCTL_READ, t, a, 0)
}
fn swap(d: &Dev, t: u32, a: u32, new_reference: u64) -> R<u64> {
    let mut s = SdkSwap { table_id: t, addr: a, new_reference, old_state: 0 };
    call(d, SDK_IOCTL_SWAP, &mut s)?;
    Ok(s.old_state)
}
fn info(d: &Dev) -> R<SdkInfo> {
    let mut i = SdkInfo::default();
    call(d, SDK_IOCTL_GET_INFO, &mut i)?;
    Ok(i)
}

/// What an fd's tables must hold: per table id, (reference, accumulator) per context, and the
/// ops GET_INFO must count.
#[derive(Default)]
struct Model {
    tables: Vec<(u32, Vec<(u64, u64)>)>,
    ops: u64,
}

impl Model {
    fn ctx(&mut self, id: u32, addr: u32) -> Option<&mut (u64, u64)> {
        let t = self.tables.iter_mut().find(|(i, _)| *i == id)?;
        t.1.get_mut(addr as usize)
    }
    fn contexts(&self) -> usize {
        self.tables.iter().map(|(_, t)| t.len()).sum()
    }
    /// Every context of every table, read through the fd, equals the model (the READs count).
    fn check(&mut self, d: &Dev) -> Result<(), String> {
        for (id, t) in &self.tables {
            for (a, (r, acc)) in t.iter().enumerate() {
                let got = ok!(read(d, *id, a as u32));
                ensure!(got == r ^ acc, "table {id} addr {a}: {got:#x}, model {:#x}", r ^ acc);
            }
            self.ops += t.len() as u64;
        }
        let i = ok!(info(d));
        ensure!(i.ops_total == self.ops, "ops_total {}, model {}", i.ops_total, self.ops);
        Ok(())
    }
    /// Applies a successful op; `out` is what the kernel returned (READ, SWAP).
    fn apply(&mut self, cmd: u32, id: u32, addr: u32, value: u64, out: u64) -> Result<(), String> {
        let c = self
            .ctx(id, addr)
            .ok_or_else(|| format!("ioctl {cmd:#x} succeeded on table {id} addr {addr}"))?;
        let state = c.0 ^ c.1;
        match cmd {
            SDK_IOCTL_LOAD => *c = (value, 0),
            SDK_IOCTL_ACCUM => c.1 ^= value,
            SDK_IOCTL_READ => ensure!(out == state, "READ {id}/{addr}: {out:#x}, model {state:#x}"),
            SDK_IOCTL_SWAP => {
                ensure!(out == state, "SWAP {id}/{addr}: {out:#x}, model {state:#x}");
                *c = (if value == 0 { state } else { value }, 0);
            }
            _ => return Err(format!("modelled an unknown command {cmd:#x}")),
        }
        self.ops += 1;
        Ok(())
    }
}

/// Random LOAD/ACCUM/READ/SWAP (with and without a new reference) and GET_INFO over several
/// tables of one fd, each checked against the model.
fn random_ops(seed: u64, n: u32) -> Result<(), String> {
    let d = ok!(Dev::open());
    let mut r = Rng(seed);
    let mut m = Model::default();
    for size in [1u32, 7, 256, 4096] {
        let id = ok!(create(&d, size));
        ensure!(m.tables.iter().all(|(i, _)| *i != id), "table id {id} given twice");
        m.tables.push((id, vec![(0, 0); size as usize]));
    }
    for _ in 0..n {
        let k = r.below(m.tables.len() as u64) as usize;
        let (id, len) = (m.tables[k].0, m.tables[k].1.len() as u64);
        let a = r.below(len) as u32;
        let v = match r.below(4) {
            0 => 0,
            1 => 1 << r.below(64),
            _ => r.next(),
        };
        match r.below(9) {
            0 | 1 => {
                ok!(load(&d, id, a, v));
                m.apply(SDK_IOCTL_LOAD, id, a, v, 0)?;
            }
            2..=4 => {
                ok!(accum(&d, id, a, v));
                m.apply(SDK_IOCTL_ACCUM, id, a, v, 0)?;
            }
            5 | 6 => {
                let out = ok!(read(&d, id, a));
                m.apply(SDK_IOCTL_READ, id, a, 0, out)?;
            }
            7 => {
                let out = ok!(swap(&d, id, a, v));
                m.apply(SDK_IOCTL_SWAP, id, a, v, out)?;
            }
            _ => {
                let i = ok!(info(&d));
                ensure!(
                    i.ops_total == m.ops && i.version == SDK_VERSION && i.backend == 0 && i.fp_enabled == 0,
                    "GET_INFO {i:?}, model ops {}",
                    m.ops
                );
            }
        }
    }
    m.check(&d)
}

fn errors() -> Result<(), String> {
    let d = ok!(Dev::open());
    fails_with!(create(&d, 0), libc::EINVAL);
    fails_with!(create(&d, SDK_MAX_CONTEXTS + 1), libc::EINVAL);
    fails_with!(create(&d, u32::MAX), libc::EINVAL);
    let big = ok!(create(&d, SDK_MAX_CONTEXTS));
    ok!(load(&d, big, SDK_MAX_CONTEXTS - 1, 5));
    fails_with!(load(&d, big, SDK_MAX_CONTEXTS, 5), libc::EINVAL);
    fails_with!(read(&d, big, u32::MAX), libc::EINVAL);
    ensure!(ok!(read(&d, big, SDK_MAX_CONTEXTS - 1)) == 5, "last context of a full-size table");
    let t = ok!(create(&d, 4));
    ok!(load(&d, t, 3, 0xF0));
    let ops = ok!(info(&d)).ops_total;
    // Unknown tables, out-of-range addresses: EINVAL, nothing counted.
    for bad in [0, 257, u32::MAX, t + 100] {
        fails_with!(accum(&d, bad, 0, 1), libc::EINVAL);
        fails_with!(swap(&d, bad, 0, 1), libc::EINVAL);
        fails_with!(destroy(&d, bad), libc::EINVAL);
    }
    fails_with!(accum(&d, t, 4, 1), libc::EINVAL);
    fails_with!(swap(&d, t, 4, 1), libc::EINVAL);
    ensure!(ok!(info(&d)).ops_total == ops, "failed ops were counted");
    // A table of another fd does not exist here.
    let other = ok!(Dev::open());
    fails_with!(read(&other, t, 3), libc::EINVAL);
    fails_with!(destroy(&other, t), libc::EINVAL);
    ensure!(ok!(info(&other)).ops_total == 0, "ops_total is per fd");
    // The fd's open mode caps the ops, as for atomik's own: READ needs read, LOAD/ACCUM write,
    // SWAP both.
    let ro = ok!(Dev::open_flags(libc::O_RDONLY));
    let rt = ok!(create(&ro, 2));
    fails_with!(load(&ro, rt, 0, 1), libc::EACCES);
    fails_with!(accum(&ro, rt, 0, 1), libc::EACCES);
    fails_with!(swap(&ro, rt, 0, 0), libc::EACCES);
    ensure!(ok!(read(&ro, rt, 0)) == 0, "read on O_RDONLY");
    let wo = ok!(Dev::open_flags(libc::O_WRONLY));
    let wt = ok!(create(&wo, 2));
    ok!(accum(&wo, wt, 1, 9));
    fails_with!(read(&wo, wt, 1), libc::EACCES);
    fails_with!(swap(&wo, wt, 1, 0), libc::EACCES);
    // Unwritable replies: EFAULT before anything changes.
    let page = ReadOnlyPage::new();
    let sw = page.put(SdkSwap { table_id: t, addr: 3, new_reference: 7, old_state: 0 });
    fails_with!(d.raw(SDK_IOCTL_SWAP, sw), libc::EFAULT);
    ensure!(ok!(read(&d, t, 3)) == 0xF0, "a failed SWAP changed the context");
    let cr = page.put(SdkCreateTable { num_contexts: 1, table_id: 0 });
    let tables_before = count_tables(&d)?;
    fails_with!(d.raw(SDK_IOCTL_CREATE_TABLE, cr), libc::EFAULT);
    ensure!(count_tables(&d)? == tables_before, "a failed CREATE_TABLE left a table");
    fails_with!(
        d.raw(SDK_IOCTL_READ, page.put(SdkContextOp { table_id: t, addr: 3, value: 0 })),
        libc::EFAULT
    );
    fails_with!(d.raw(SDK_IOCTL_GET_INFO, page.put(SdkInfo::default())), libc::EFAULT);
    // A LOAD only reads its request: fine from a read-only page.
    ok!(d.raw(SDK_IOCTL_LOAD, page.put(SdkContextOp { table_id: t, addr: 2, value: 0x77 })));
    ensure!(ok!(read(&d, t, 2)) == 0x77, "LOAD from a read-only request");
    for bad_ptr in [0usize, 0x1000, 0xffff_8880_0000_0000] {
        fails_with!(d.raw(SDK_IOCTL_ACCUM, bad_ptr), libc::EFAULT);
        fails_with!(d.raw(SDK_IOCTL_CREATE_TABLE, bad_ptr), libc::EFAULT);
    }
    // The original's other commands (fingerprint regions, BATCH) are not served.
    for nr in [0x20u32, 0x21, 0x22, 0x30] {
        fails_with!(d.raw(sdk_ioc(3, nr, 16), 0), libc::ENOTTY);
    }
    // SWAP's new_reference: 0 keeps the state, another value replaces it.
    ok!(accum(&d, t, 3, 0x0F));
    ensure!(ok!(swap(&d, t, 3, 0)) == 0xFF, "swap returns the state");
    ensure!(ok!(read(&d, t, 3)) == 0xFF, "swap with 0 keeps the state");
    ensure!(ok!(swap(&d, t, 3, 0x1234)) == 0xFF, "swap returns the state");
    ensure!(ok!(read(&d, t, 3)) == 0x1234, "swap sets new_reference");
    ok!(destroy(&d, t));
    fails_with!(read(&d, t, 0), libc::EINVAL);
    fails_with!(destroy(&d, t), libc::EINVAL);
    Ok(())
}

/// Tables on `d` (fills the fd to its limit and empties it again: only for small tests).
fn count_tables(d: &Dev) -> Result<u32, String> {
    let mut made = Vec::new();
    loop {
        match create(d, 1) {
            Ok(id) => made.push(id),
            Err(e) if e == libc::ENOSPC => break,
            Err(e) => return Err(format!("create while counting: {}", crate::check::errname(e))),
        }
    }
    for id in &made {
        ok!(destroy(d, *id));
    }
    Ok(SDK_MAX_TABLES - made.len() as u32)
}

fn limits() -> Result<(), String> {
    let d = ok!(Dev::open());
    let mut ids = Vec::new();
    for k in 0..SDK_MAX_TABLES {
        let id = ok!(create(&d, 1 + k % 3));
        ids.push(id);
    }
    ids.sort_unstable();
    ids.dedup();
    ensure!(ids.len() == SDK_MAX_TABLES as usize, "ids not distinct");
    fails_with!(create(&d, 1), libc::ENOSPC);
    ok!(destroy(&d, ids[100]));
    ensure!(ok!(create(&d, 1)) == ids[100], "a destroyed table's id is reused");
    fails_with!(create(&d, 1), libc::ENOSPC);
    // Another fd has its own 256.
    let other = ok!(Dev::open());
    ok!(create(&other, 1));
    Ok(())
}

/// 40 fds, each with 16 full-size tables (16 MiB), closed in turn: 640 MiB in all in a VM of
/// 512 MiB, so tables not freed with their fd would run the VM out of memory.
fn freed_with_fd() -> Result<(), String> {
    for round in 0..40 {
        let d = ok!(Dev::open());
        for _ in 0..16 {
            let id = ok!(create(&d, SDK_MAX_CONTEXTS));
            ok!(accum(&d, id, round, 1));
        }
    }
    Ok(())
}

/// Two threads ACCUM distinct bits into one context of one fd while a third SWAPs (new
/// reference 0): every SWAP sees a superset of the bits before, the end state has every bit.
fn concurrent() -> Result<(), String> {
    let d = ok!(Dev::open());
    let t = ok!(create(&d, 1));
    let fd = d.fd;
    let failed = std::sync::atomic::AtomicBool::new(false);
    let mut swaps = Vec::new();
    std::thread::scope(|s| {
        for half in 0..2u64 {
            let failed = &failed;
            s.spawn(move || {
                let dev = Dev { fd };
                for bit in 0..32 {
                    if accum(&dev, t, 0, 1 << (half * 32 + bit)).is_err() {
                        failed.store(true, std::sync::atomic::Ordering::Relaxed);
                    }
                }
                std::mem::forget(dev);
            });
        }
        for _ in 0..200 {
            swaps.push(swap(&d, t, 0, 0));
        }
    });
    ensure!(!failed.into_inner(), "an ACCUM failed");
    let mut prev = 0u64;
    for s in swaps {
        let s = ok!(s);
        ensure!(s & prev == prev, "SWAP lost bits: {prev:#x} then {s:#x}");
        prev = s;
    }
    ensure!(ok!(read(&d, t, 0)) == u64::MAX, "end state has every delta exactly once");
    Ok(())
}

/// A page of ours made read-only after a request is written into it.
struct ReadOnlyPage(*mut u8);
impl ReadOnlyPage {
    fn new() -> ReadOnlyPage {
        // SAFETY: a fresh anonymous mapping of one page.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                4096,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        assert!(p != libc::MAP_FAILED);
        ReadOnlyPage(p as *mut u8)
    }
    /// Writes `v` at the start of the page, leaves the page read-only; returns its address.
    fn put<T: Copy>(&self, v: T) -> usize {
        // SAFETY: our page, made writable for the write, then read-only again.
        unsafe {
            libc::mprotect(self.0 as *mut _, 4096, libc::PROT_READ | libc::PROT_WRITE);
            std::ptr::write_unaligned(self.0 as *mut T, v);
            libc::mprotect(self.0 as *mut _, 4096, libc::PROT_READ);
        }
        self.0 as usize
    }
}
impl Drop for ReadOnlyPage {
    fn drop(&mut self) {
        // SAFETY: unmaps the page this value owns.
        unsafe { libc::munmap(self.0 as *mut _, 4096) };
    }
}

const CMDS: &[u32] = &[
    SDK_IOCTL_CREATE_TABLE,
    SDK_IOCTL_DESTROY_TABLE,
    SDK_IOCTL_LOAD,
    SDK_IOCTL_ACCUM,
    SDK_IOCTL_READ,
    SDK_IOCTL_SWAP,
    SDK_IOCTL_GET_INFO,
];
const ALLOWED: &[i32] = &[libc::EINVAL, libc::EFAULT, libc::ENOSPC, libc::ENOMEM, libc::ENOTTY];

/// Random commands of type 'A' (the served ones, others, wrong sizes), random contents and
/// pointers (null, kernel, read-only, straddling into an unmapped page); every success is
/// applied to the model, every failure must have changed nothing (the whole model is compared
/// every 5,000 calls and at the end).
fn fuzz(seed: u64, calls: u32) -> Result<(), String> {
    let d = ok!(Dev::open());
    let mut r = Rng(seed);
    let mut m = Model::default();
    // Three pages: read-write, read-only, none.
    // SAFETY: a fresh anonymous mapping; the protections of our own pages are changed.
    let base = unsafe {
        let p = libc::mmap(
            std::ptr::null_mut(),
            3 * 4096,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        );
        assert!(p != libc::MAP_FAILED);
        libc::mprotect((p as *mut u8).add(8192) as *mut _, 4096, libc::PROT_NONE);
        p as usize
    };
    let mut outcomes = [0u32; 2];
    for call_no in 0..calls {
        let cmd = match r.below(10) {
            0..=6 => r.pick(CMDS),
            7 => sdk_ioc(r.below(4) as u32, r.below(0x50) as u32, r.below(64) as usize),
            _ => (r.pick(CMDS) & !(0x3fff << 16)) | ((r.below(48) as u32) << 16),
        };
        let live: Vec<u32> = m.tables.iter().map(|(i, _)| *i).collect();
        let id = match r.below(8) {
            0 => {
                let any = r.next() as u32;
                r.pick(&[0, 257, u32::MAX, any])
            }
            _ if !live.is_empty() => r.pick(&live),
            _ => r.below(4) as u32 + 1,
        };
        let len = m.tables.iter().find(|(i, _)| *i == id).map_or(4, |(_, t)| t.len() as u64);
        let addr = match r.below(8) {
            0 => r.pick(&[len as u32, u32::MAX, 65_536]),
            _ => r.below(len) as u32,
        };
        let value = if r.below(4) == 0 { 0 } else { r.next() };
        // Tables stay small enough for the model checks to READ every context (a full-size
        // table only while there is little else).
        let any = r.below(1000) as u32;
        let num = match r.pick(&[0, 1, 2, 17, 300, 65_536, 65_537, u32::MAX, any]) {
            SDK_MAX_CONTEXTS if m.contexts() > 1_000 => 2,
            n if n <= SDK_MAX_CONTEXTS && m.contexts() > 20_000 => 0,
            n => n,
        };
        let mut req = [0u8; 24];
        match cmd {
            SDK_IOCTL_CREATE_TABLE => req[..4].copy_from_slice(&num.to_le_bytes()),
            SDK_IOCTL_GET_INFO => {}
            _ => {
                req[..4].copy_from_slice(&id.to_le_bytes());
                req[4..8].copy_from_slice(&addr.to_le_bytes());
                req[8..16].copy_from_slice(&value.to_le_bytes());
            }
        }
        if r.below(10) == 0 {
            for b in req.iter_mut() {
                *b = r.next() as u8;
            }
        }
        // Where the request goes: the read-write page, the read-only one, straddling into the
        // unmapped page, or a bad pointer.
        let (arg, writable) = match r.below(12) {
            0 => (0, false),
            1 => (0xffff_8880_0000_0000, false),
            2 => (base + 8192 - 8, false),
            3 | 4 => (base + 4096, false),
            _ => (base, true),
        };
        // SAFETY: writes into our first two pages (the second made writable for it).
        unsafe {
            libc::mprotect((base + 4096) as *mut _, 4096, libc::PROT_READ | libc::PROT_WRITE);
            let at = if arg == base + 8192 - 8 { arg } else { arg & !0xfff };
            if at >= base && at < base + 8192 {
                std::ptr::copy_nonoverlapping(req.as_ptr(), at as *mut u8, (base + 8192 - at).min(24));
            }
            libc::mprotect((base + 4096) as *mut _, 4096, libc::PROT_READ);
        }
        let result = d.raw(cmd, arg);
        let word = |at: usize| -> u64 {
            // SAFETY: `at` is inside the first page, readable.
            unsafe { std::ptr::read_unaligned((base + at) as *const u64) }
        };
        match result {
            Ok(_) => {
                outcomes[0] += 1;
                // Only a request wholly inside our two readable pages can succeed.
                let size = ((cmd >> 16) & 0x3fff) as usize;
                let full = arg >= base && arg + size <= base + 8192;
                ensure!(full, "ioctl {cmd:#x} succeeded with request at {arg:#x}");
                let rid = u32::from_le_bytes(req[..4].try_into().unwrap());
                let raddr = u32::from_le_bytes(req[4..8].try_into().unwrap());
                let rval = u64::from_le_bytes(req[8..16].try_into().unwrap());
                match cmd {
                    SDK_IOCTL_CREATE_TABLE => {
                        ensure!(writable, "CREATE_TABLE succeeded with a read-only reply");
                        let new = (word(0) >> 32) as u32;
                        ensure!(m.tables.iter().all(|(i, _)| *i != new), "table id {new} given twice");
                        ensure!(
                            m.tables.len() < SDK_MAX_TABLES as usize,
                            "table {} on one fd",
                            m.tables.len() + 1
                        );
                        m.tables.push((new, vec![(0, 0); rid as usize]));
                    }
                    SDK_IOCTL_DESTROY_TABLE => {
                        let k = m.tables.iter().position(|(i, _)| *i == rid);
                        let k = k.ok_or_else(|| format!("DESTROY_TABLE of unknown {rid} succeeded"))?;
                        m.tables.remove(k);
                    }
                    SDK_IOCTL_GET_INFO => {
                        ensure!(writable, "GET_INFO succeeded with a read-only reply");
                        let ops = word(16);
                        ensure!(ops == m.ops, "GET_INFO ops_total {ops}, model {}", m.ops);
                    }
                    SDK_IOCTL_LOAD | SDK_IOCTL_ACCUM => m.apply(cmd, rid, raddr, rval, 0)?,
                    SDK_IOCTL_READ => {
                        ensure!(writable, "READ succeeded with a read-only reply");
                        m.apply(cmd, rid, raddr, 0, word(8))?;
                    }
                    SDK_IOCTL_SWAP => {
                        ensure!(writable, "SWAP succeeded with a read-only reply");
                        m.apply(cmd, rid, raddr, rval, word(16))?;
                    }
                    _ => return Err(format!("unserved command {cmd:#x} succeeded")),
                }
            }
            Err(e) => {
                outcomes[1] += 1;
                if e == libc::ENOSPC {
                    ensure!(
                        m.tables.len() == SDK_MAX_TABLES as usize,
                        "ENOSPC with {} tables",
                        m.tables.len()
                    );
                }
                ensure!(
                    ALLOWED.contains(&e),
                    "ioctl {cmd:#x} arg {arg:#x}: unexpected {}",
                    crate::check::errname(e)
                );
            }
        }
        if call_no % 5000 == 4999 {
            m.check(&d)?;
        }
    }
    m.check(&d)?;
    // SAFETY: unmaps the scratch pages.
    unsafe { libc::munmap(base as *mut _, 3 * 4096) };
    println!(
        "sdk fuzz seed {seed:#x}: {calls} ioctls: {} ok (checked against the model), {} refused; {} tables live",
        outcomes[0],
        outcomes[1],
        m.tables.len()
    );
    Ok(())
}

pub fn run(report: &mut Report) {
    report.run("sdk: 20,000 random LOAD/ACCUM/READ/SWAP/GET_INFO on 4 tables match the model", || {
        random_ops(0x5eed_0001, 20_000)
    });
    report.run("sdk: documented errors (EINVAL, EACCES, EFAULT, ENOTTY), nothing changed", errors);
    report.run("sdk: 256 tables per fd (ENOSPC), ids distinct and reused, per fd", limits);
    report.run("sdk: tables freed with their fd (40 x 16 MiB in a 512 MiB VM)", freed_with_fd);
    report.run("sdk: concurrent ACCUMs and SWAPs on one fd land exactly once", concurrent);
    report.run("sdk: fuzz 30,000 random 'A' ioctls, successes checked against the model", || {
        fuzz(0xa70_5d4_f022, 30_000)
    });
}
