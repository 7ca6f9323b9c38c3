//! Bad input: over 100,000 random ioctls (random command numbers and sizes; null, unmapped,
//! kernel-space, non-canonical and page-straddling pointers; random request contents with huge
//! counts and out-of-range slots) plus random mmaps, as root and as another uid. Every atomik
//! command must fail with one of the documented errnos or succeed; afterwards the device must
//! still work (and the harness checks the kernel log stays clean). Requests sometimes sit in a
//! read-only page (replies cannot be written), and every success on the fuzzed bank is checked
//! against a model of its slots (as is the whole bank every 2,000 calls): a failed call must
//! have changed nothing.

use crate::check::Report;
use crate::dev::{Dev, Map};
use crate::system::{become_user, in_child};
use atomik::abi::*;

/// xorshift64: reproducible from the seed printed with each run.
pub struct Rng(pub u64);
impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    pub fn pick<T: Copy>(&mut self, xs: &[T]) -> T {
        xs[self.below(xs.len() as u64) as usize]
    }
}

const CMDS: &[u32] = &[
    IOCTL_GET_INFO,
    IOCTL_BANK_CREATE,
    IOCTL_BANK_OPEN,
    IOCTL_BANK_DESTROY,
    IOCTL_BANK_LIST,
    IOCTL_LOAD,
    IOCTL_ACCUM,
    IOCTL_READ,
    IOCTL_SWAP,
    IOCTL_SWAP_SET,
    IOCTL_IS_CLEAN,
    IOCTL_BATCH,
    IOCTL_BANK_STATS,
];
const NAMES: &[&str] = &["fuzz-bank", "fz-0", "fz-1", "fz-2", "fz-3", ".bad", "", "fz/4"];
const ALLOWED: &[i32] = &[
    libc::ENOTTY,
    libc::EINVAL,
    libc::EFAULT,
    libc::EACCES,
    libc::EPERM,
    libc::ENOENT,
    libc::EEXIST,
    libc::EBUSY,
    libc::EBADFD,
    libc::E2BIG,
    libc::ENOMEM,
    libc::ENOSPC,
];

/// Two pages: the first read-write scratch for requests, the second PROT_NONE, so a request
/// placed at the end of the first straddles into a faulting page.
struct Scratch {
    map: *mut u8,
}

impl Scratch {
    fn new() -> Scratch {
        // SAFETY: fresh anonymous mapping; the second page is then made inaccessible.
        unsafe {
            let p = libc::mmap(
                std::ptr::null_mut(),
                8192,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            ) as *mut u8;
            assert!(p as *mut libc::c_void != libc::MAP_FAILED);
            libc::mprotect(p.add(4096) as *mut _, 4096, libc::PROT_NONE);
            Scratch { map: p }
        }
    }
    fn bytes(&mut self) -> &mut [u8] {
        // SAFETY: the first page is ours and read-write.
        unsafe { std::slice::from_raw_parts_mut(self.map, 4096) }
    }
    fn put<T: Copy>(&mut self, at: usize, v: T) -> usize {
        let at = at.min(4096 - std::mem::size_of::<T>()) & !7;
        // SAFETY: `at + size_of::<T>()` is inside the first page; unaligned write allowed.
        unsafe { std::ptr::write_unaligned(self.map.add(at) as *mut T, v) };
        self.map as usize + at
    }
}

fn some_slot(r: &mut Rng) -> u64 {
    match r.below(4) {
        0 => r.below(40),
        1 => r.pick(&[u64::MAX, 1 << 40, 1 << 63, 32, 31, 1_000_000]),
        _ => r.below(32),
    }
}

/// A request for `cmd` with random but plausible contents, in the scratch page.
fn structured(r: &mut Rng, s: &mut Scratch, cmd: u32, entries: &mut [BatchEntry]) -> usize {
    let at = if r.below(8) == 0 { 4096 - r.below(80) as usize } else { 0 };
    match cmd {
        IOCTL_BANK_CREATE => {
            let name = crate::dev::name(r.pick(NAMES));
            let any = r.below(100_000);
            let slots = r.pick(&[0, 1, 17, 4096, u64::MAX, 1 << 40, any]);
            let c = BankCreate {
                name,
                slots,
                op: r.below(3) as u32,
                mode: r.below(0o2000) as u32,
                shards: r.below(20) as u32,
                flags: (r.below(4) == 0) as u32,
            };
            s.put(at, c)
        }
        IOCTL_BANK_OPEN => {
            let o = BankOpen {
                name: crate::dev::name(r.pick(NAMES)),
                access: r.below(5) as u32,
                op: 0,
                slots: 0,
                map_size: 0,
            };
            s.put(at, o)
        }
        IOCTL_BANK_DESTROY => {
            // Never the bank the other fds use: keep that one alive.
            let n = r.pick(&NAMES[1..]);
            s.put(at, BankName { name: crate::dev::name(n) })
        }
        IOCTL_BATCH => {
            for e in entries.iter_mut() {
                *e = BatchEntry {
                    kind: r.below(6) as u32,
                    status: r.next() as i32,
                    slot: some_slot(r),
                    value: r.next(),
                };
            }
            let ptr = match r.below(6) {
                0 => 0,
                1 => 0xffff_8880_0000_0000,
                2 => s.map as u64 + 4096 - 24,
                _ => entries.as_ptr() as u64,
            };
            let count = r.pick(&[
                0,
                1,
                7,
                entries.len() as u32,
                (entries.len() + 1) as u32,
                BATCH_MAX,
                BATCH_MAX + 1,
                u32::MAX,
            ]);
            s.put(at, Batch { entries: ptr, count, done: r.next() as u32 })
        }
        _ => s.put(at, SlotOp { slot: some_slot(r), value: r.next() }),
    }
}

/// What successful slot ops on "fuzz-bank" (32 slots, ADD) must have done: every success is
/// checked against this model, every failure must have changed nothing.
struct Model {
    state: [u64; 32],
}

/// A copy of `T` at user address `addr` when it lies inside `[lo, hi)` (memory of ours that is
/// readable), else `None`.
fn peek<T: Copy>(addr: usize, lo: usize, hi: usize) -> Option<T> {
    let end = addr.checked_add(std::mem::size_of::<T>())?;
    if addr < lo || end > hi {
        return None;
    }
    // SAFETY: the range is inside a readable mapping of ours (checked above).
    Some(unsafe { std::ptr::read_unaligned(addr as *const T) })
}

impl Model {
    /// Applies one successful op of `kind` with input `value`; `out` is what the kernel
    /// returned for it (READ, SWAP, SWAP_SET).
    fn apply(&mut self, kind: u32, slot: u64, value: u64, out: u64) -> Result<(), String> {
        let st = &mut self.state[slot as usize];
        match kind {
            KIND_LOAD => *st = value,
            KIND_ACCUM => *st = st.wrapping_add(value),
            KIND_READ | KIND_SWAP => ensure!(out == *st, "kind {kind} slot {slot}: {out}, model {}", *st),
            KIND_SWAP_SET => {
                ensure!(out == *st, "SWAP_SET slot {slot}: {out}, model {}", *st);
                *st = value;
            }
            _ => return Err(format!("success of unknown kind {kind}")),
        }
        Ok(())
    }

    fn check(&self, d: &Dev) -> Result<(), String> {
        for (i, want) in self.state.iter().enumerate() {
            let got = ok!(d.read(i as u64));
            ensure!(got == *want, "slot {i}: {got}, model {want}");
        }
        Ok(())
    }
}

/// `calls` random ioctls from `seed` against "fuzz-bank" (made by the caller), then, when the
/// bank is `mapped` (in memory), 2,000 random mmaps of it.
fn fuzz(seed: u64, calls: u32, mapped: bool) -> Result<(), String> {
    let mut r = Rng(seed);
    let mut s = Scratch::new();
    let attached = ok!(Dev::open());
    ok!(attached.attach("fuzz-bank", ACCESS_READ | ACCESS_WRITE));
    let loose = ok!(Dev::open());
    let mut loose_on_fuzz_bank = false;
    let fpga_bound = ok!(attached.info()).features & FEATURE_FPGA != 0;
    // 64 random entries, then 16 zeroed ones (valid LOADs of slot 0 to 0) that a count one
    // past the 64 reads: all of it is readable and modeled.
    let mut entries = vec![BatchEntry::default(); 80];
    let mut outcomes = [0u32; 3];
    let mut model = Model { state: [0; 32] };
    let mut modeled = 0u32;
    for (i, st) in model.state.iter_mut().enumerate() {
        *st = ok!(attached.read(i as u64));
    }
    let scratch = (s.map as usize, s.map as usize + 4096);
    let ents = (entries.as_ptr() as usize, entries.as_ptr() as usize + entries.len() * 24);
    for call in 0..calls {
        let cmd = match r.below(10) {
            0..=3 => r.pick(CMDS),
            4..=5 => ioc(r.below(4) as u32, r.below(0x20) as u32, r.below(0x4000) as usize),
            6..=7 => {
                let c = r.pick(CMDS);
                (c & !(0x3fff << 16)) | ((r.below(200) as u32) << 16)
            }
            _ => r.next() as u32,
        };
        let arg = match r.below(12) {
            0 => 0,
            1 => 0x1000,
            2 => 0xffff_8880_0000_0000,
            3 => 0xffff_ffff_8100_0000,
            4 => 0x8000_0000_0000_0000,
            5 => r.next() as usize,
            6 => {
                for b in s.bytes().iter_mut() {
                    *b = r.next() as u8;
                }
                s.map as usize + r.below(4096) as usize
            }
            _ => structured(&mut r, &mut s, cmd, &mut entries[..64]),
        };
        let is_loose = r.below(3) == 0;
        let dev = if is_loose { &loose } else { &attached };
        let typed = (cmd >> 8) & 0xff == IOC_MAGIC;
        // Sometimes the request page is read-only for the call: replies cannot be written.
        let read_only = r.below(8) == 0;
        if read_only {
            // SAFETY: changes the protection of our own scratch page.
            unsafe { libc::mprotect(s.map as *mut _, 4096, libc::PROT_READ) };
        }
        // What the request says, read before the call (the kernel may write results into it).
        let op_in: Option<SlotOp> = peek(arg, scratch.0, scratch.1);
        let create_in: Option<BankCreate> = peek(arg, scratch.0, scratch.1);
        let batch_in: Option<(Batch, Vec<BatchEntry>)> =
            peek::<Batch>(arg, scratch.0, scratch.1).and_then(|b| {
                let (p, n) = (b.entries as usize, b.count as usize);
                let lo = if p >= ents.0 && p < ents.1 { ents } else { scratch };
                let v: Option<Vec<BatchEntry>> = (0..n.min(BATCH_MAX as usize))
                    .map(|k| peek(p.checked_add(k * 24)?, lo.0, lo.1))
                    .collect();
                v.map(|v| (b, v))
            });
        let on_model = !is_loose || loose_on_fuzz_bank;
        let result = dev.raw(cmd, arg);
        if read_only {
            // SAFETY: as above, back to read-write.
            unsafe { libc::mprotect(s.map as *mut _, 4096, libc::PROT_READ | libc::PROT_WRITE) };
        }
        if result.is_ok() && on_model {
            let kind = match cmd {
                IOCTL_LOAD => Some(KIND_LOAD),
                IOCTL_ACCUM => Some(KIND_ACCUM),
                IOCTL_READ => Some(KIND_READ),
                IOCTL_SWAP => Some(KIND_SWAP),
                IOCTL_SWAP_SET => Some(KIND_SWAP_SET),
                _ => None,
            };
            if cmd == IOCTL_IS_CLEAN {
                let op = op_in.ok_or_else(|| "IS_CLEAN succeeded on an unreadable request".to_owned())?;
                let out: SlotOp = peek(arg, scratch.0, scratch.1).unwrap_or(op);
                ensure!(out.value <= 1, "IS_CLEAN answered {}", out.value);
            }
            if let Some(kind) = kind {
                let op = op_in.ok_or_else(|| format!("ioctl {cmd:#x} succeeded on an unreadable request"))?;
                let out: SlotOp = peek(arg, scratch.0, scratch.1).unwrap_or(op);
                model.apply(kind, op.slot, op.value, out.value)?;
                modeled += 1;
            }
            if cmd == IOCTL_BATCH {
                let (b, before) =
                    batch_in.ok_or_else(|| "BATCH succeeded on an unreadable request".to_owned())?;
                let p = b.entries as usize;
                let lo = if p >= ents.0 && p < ents.1 { ents } else { scratch };
                for (k, e) in before.iter().enumerate() {
                    let after: BatchEntry = peek(p + k * 24, lo.0, lo.1).unwrap_or(*e);
                    ensure!(after.status == 0, "BATCH succeeded with entry {k} status {}", after.status);
                    model.apply(e.kind, e.slot, e.value, after.value)?;
                }
                modeled += 1;
            }
        }
        if result.is_ok() && is_loose && cmd == IOCTL_BANK_OPEN {
            let o: Option<BankOpen> = peek(arg, scratch.0, scratch.1);
            loose_on_fuzz_bank = o.is_some_and(|o| o.name.starts_with(b"fuzz-bank\0"));
        }
        if call % 2000 == 1999 {
            model.check(&attached)?;
        }
        // FIO* and other generic VFS ioctls are handled before the driver; only atomik's own
        // command space has documented errnos.
        match result {
            Ok(_) => outcomes[0] += 1,
            Err(_) if !typed => outcomes[1] += 1,
            // ENODEV: a create on the FPGA with none bound, and only that.
            Err(libc::ENODEV) if cmd == IOCTL_BANK_CREATE => {
                ensure!(
                    !fpga_bound && create_in.is_some_and(|c| c.flags == BANK_CREATE_FPGA),
                    "BANK_CREATE {create_in:?}: ENODEV (an FPGA is bound: {fpga_bound})"
                );
                outcomes[2] += 1;
            }
            Err(e) => {
                ensure!(
                    ALLOWED.contains(&e),
                    "ioctl {cmd:#x} arg {arg:#x}: unexpected {}",
                    crate::check::errname(e)
                );
                outcomes[2] += 1;
            }
        }
    }
    model.check(&attached)?;
    if !mapped {
        println!(
            "fuzz seed {seed:#x}: {calls} ioctls: {} ok ({modeled} checked against the model)",
            outcomes[0]
        );
        return Ok(());
    }
    // Random mmaps of the attached bank.
    let size = ok!(attached.stats()).slots;
    let pages = BankLayout::new(size, 0).unwrap().total_size / 4096;
    let mut maps = 0;
    for _ in 0..2_000 {
        let len = (r.below(pages + 3) as usize) * 4096 + r.below(2) as usize;
        let off = r.below(pages + 2) as usize;
        let prot =
            r.pick(&[libc::PROT_READ, libc::PROT_READ | libc::PROT_WRITE, libc::PROT_WRITE, libc::PROT_EXEC]);
        let flags = r.pick(&[libc::MAP_SHARED, libc::MAP_PRIVATE]);
        match attached.map(len, off, prot, flags) {
            Ok(m) => {
                maps += 1;
                let writable = prot & libc::PROT_WRITE != 0;
                ensure!(
                    (flags == libc::MAP_SHARED || !writable)
                        && prot != libc::PROT_EXEC
                        && (off as u64) < pages,
                    "bad mmap accepted: len {len} off {off} prot {prot} flags {flags}"
                );
                check_map(&m, off)?;
            }
            Err(e) => ensure!(
                [libc::EINVAL, libc::EACCES].contains(&e),
                "mmap len {len} off {off}: {}",
                crate::check::errname(e)
            ),
        }
    }
    println!(
        "fuzz seed {seed:#x}: {calls} ioctls: {} ok ({modeled} slot ops and batches checked against the model), {} atomik errors, {} other; {maps} mmaps accepted",
        outcomes[0], outcomes[2], outcomes[1]
    );
    Ok(())
}

fn check_map(m: &Map, off: usize) -> Result<(), String> {
    if off == 0 {
        ensure!(m.header().magic == BANK_MAGIC, "header missing");
    }
    Ok(())
}

pub fn run(report: &mut Report) {
    report.run("fuzz: 60,000 random ioctls as root + 50,000 as uid 1000, then the device works", || {
        let d = ok!(Dev::open());
        let _ = d.destroy("fuzz-bank");
        ok!(d.create("fuzz-bank", 32, OP_ADD, 0o666, 0));
        let before = ok!(d.info()).bank_count;
        in_child(|| Ok(()), || fuzz(0x1234_5678_9abc_def1, 60_000, true))?;
        in_child(become_user, || fuzz(0x0fed_cba9_8765_4321, 50_000, true))?;
        // The device still works.
        for n in NAMES {
            let _ = d.destroy(n);
        }
        let info = ok!(d.info());
        ensure!(info.bank_count == before - 1, "leftover banks: {info:?}");
        ok!(d.create("fuzz-after", 8, OP_XOR, 0o600, 0));
        ok!(d.attach("fuzz-after", ACCESS_READ | ACCESS_WRITE));
        ok!(d.load(7, 0xAA));
        ok!(d.accum(7, 0x0F));
        ensure!(ok!(d.read(7)) == 0xA5, "device works after fuzzing");
        ok!(d.destroy("fuzz-after"));
        Ok(())
    });
}

/// The same ioctl fuzz with "fuzz-bank" on the FPGA (suite fpga, the device bound): every
/// successful slot op and batch on it is checked against the model, and random creates with
/// `BANK_CREATE_FPGA` compete for the device's slots. The mmap half checks the memory layout
/// and stays with the memory banks; the fpga suite tests the window's mmap refusals itself.
pub fn run_on_fpga(report: &mut Report) {
    report.run(
        "fuzz: 20,000 random ioctls as root + 10,000 as uid 1000 on a bank on the FPGA, then it works",
        || {
            let d = ok!(Dev::open());
            let _ = d.destroy("fuzz-bank");
            let mut c = BankCreate {
                name: crate::dev::name("fuzz-bank"),
                slots: 32,
                op: OP_ADD,
                mode: 0o666,
                shards: 0,
                flags: BANK_CREATE_FPGA,
            };
            ok!(d.raw(IOCTL_BANK_CREATE, &mut c as *mut BankCreate as usize));
            let before = ok!(d.info()).bank_count;
            in_child(|| Ok(()), || fuzz(0x5eed_f00d_0bad_cafe, 20_000, false))?;
            in_child(become_user, || fuzz(0x7357_7357_1234_4321, 10_000, false))?;
            let a = ok!(Dev::open());
            let o = ok!(a.attach("fuzz-bank", ACCESS_READ | ACCESS_WRITE));
            ensure!(o.access & BANK_OPEN_FPGA != 0, "fuzz-bank is on the FPGA: {o:?}");
            ok!(a.load(3, 40));
            ok!(a.accum(3, 2));
            ensure!(ok!(a.read(3)) == 42, "the FPGA bank works after fuzzing");
            drop(a);
            for n in NAMES {
                let _ = d.destroy(n);
            }
            ensure!(ok!(d.info()).bank_count == before - 1, "leftover banks");
            Ok(())
        },
    );
}
