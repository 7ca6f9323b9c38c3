//! Fuzzing of the ioctls that take variable user buffers — REGION_WATCH, REGION_CHECK,
//! REGION_CHECKPOINT, REGION_UNWATCH, BANK_LIST, and the BANK_CREATE/OPEN/DESTROY that change
//! what BANK_LIST returns — with requests and result buffers placed across a page boundary
//! into a page that is, for the call, unmapped, PROT_NONE or read-only.
//!
//! Every outcome is checked against models: of the banks BANK_LIST shows (the list when the
//! fuzzer starts, plus what its successful creates add and its destroys remove: nothing else
//! runs meanwhile), and of the regions of the fd over memory whose content and
//! readability the fuzzer knows page by page. A success must return exactly what the model
//! says (lists in order, region bitmaps, counts, fingerprints); an error must leave the model's
//! state true (a check that fails records nothing; a watch that fails leaves no region, which
//! the ENOSPC limit would reveal).

use crate::check::Report;
use crate::dev::Dev;
use crate::fuzz::Rng;
use crate::system::{become_user, in_child};
use atomik::abi::*;
use atomik::track::fingerprint::fingerprint;
use std::mem::size_of;

const PAGE: usize = 4096;
const NAMES: &[&str] = &["fn-a", "fn-b", "fn-c", "fn-d", "fn-e", "fn-f", ".bad", ""];
const ALLOWED: &[i32] = &[
    libc::EINVAL,
    libc::EFAULT,
    libc::EACCES,
    libc::ENOENT,
    libc::EEXIST,
    libc::EBUSY,
    libc::E2BIG,
    libc::ENOMEM,
    libc::ENOSPC,
    libc::ESRCH,
    libc::EPERM,
];

/// How the page after the scratch page is, for one call.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Guard {
    Unmapped,
    NoAccess,
    ReadOnly,
}

/// A read-write page followed by a guard page whose state changes per call: a request or a
/// result buffer placed at the end of the first straddles into it.
struct Scratch {
    base: *mut u8,
    guard: Guard,
}

impl Scratch {
    fn new() -> Scratch {
        // SAFETY: a fresh anonymous mapping of two pages.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                2 * PAGE,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        assert!(p != libc::MAP_FAILED);
        let mut s = Scratch { base: p as *mut u8, guard: Guard::ReadOnly };
        s.set_guard(Guard::NoAccess);
        s
    }

    fn addr(&self) -> usize {
        self.base as usize
    }

    fn guard_addr(&self) -> *mut libc::c_void {
        // SAFETY: one page past the start of our two-page mapping.
        unsafe { self.base.add(PAGE) as *mut libc::c_void }
    }

    fn set_guard(&mut self, g: Guard) {
        if g == self.guard {
            return;
        }
        // SAFETY: only the second page of our own mapping is unmapped, remapped at the same
        // address (nothing else maps there: this process is single-threaded) or reprotected.
        unsafe {
            if self.guard == Guard::Unmapped {
                let p = libc::mmap(
                    self.guard_addr(),
                    PAGE,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED_NOREPLACE,
                    -1,
                    0,
                );
                assert!(p == self.guard_addr());
            }
            match g {
                Guard::Unmapped => assert!(libc::munmap(self.guard_addr(), PAGE) == 0),
                Guard::NoAccess => assert!(libc::mprotect(self.guard_addr(), PAGE, libc::PROT_NONE) == 0),
                Guard::ReadOnly => {
                    assert!(libc::mprotect(self.guard_addr(), PAGE, libc::PROT_READ | libc::PROT_WRITE) == 0);
                    std::ptr::write_bytes(self.base.add(PAGE), 0xa5, PAGE);
                    assert!(libc::mprotect(self.guard_addr(), PAGE, libc::PROT_READ) == 0);
                }
            }
        }
        self.guard = g;
    }

    /// Where to put `len` bytes: inside the first page, or straddling into the guard.
    fn place(&self, r: &mut Rng, len: usize) -> usize {
        let len = len.clamp(1, PAGE);
        let off = match r.below(3) {
            0 => PAGE - len,                                    // ends at the boundary
            1 => PAGE - len + 1 + r.below(len as u64) as usize, // crosses it
            _ => r.below((PAGE - len + 1) as u64) as usize & !7,
        };
        self.addr() + off.min(PAGE - 1)
    }

    /// Whether `[addr, addr + len)` is readable / writable during the call.
    fn readable(&self, addr: usize, len: usize) -> bool {
        addr + len <= self.addr() + PAGE || self.guard == Guard::ReadOnly
    }
    fn writable(&self, addr: usize, len: usize) -> bool {
        addr + len <= self.addr() + PAGE
    }

    /// Writes `v` at `addr`, as far as it lies in the first page (the rest of a straddling
    /// request is the guard's content, or a fault).
    fn put<T: Copy>(&mut self, addr: usize, v: T) {
        // SAFETY: `v` is plain data; the copy is clipped to the first page, which is ours.
        unsafe {
            let bytes = std::slice::from_raw_parts(&v as *const T as *const u8, size_of::<T>());
            let room = (self.addr() + PAGE).saturating_sub(addr).min(bytes.len());
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), addr as *mut u8, room);
        }
    }

    /// Reads a `T` at `addr` when it is readable now.
    fn get<T: Copy>(&self, addr: usize) -> Option<T> {
        if !self.readable(addr, size_of::<T>()) {
            return None;
        }
        // SAFETY: readable memory of ours (checked), read unaligned.
        Some(unsafe { std::ptr::read_unaligned(addr as *const T) })
    }

    /// What the kernel reads as the request at `addr`: our bytes, then the read-only guard's
    /// (0xa5) when it straddles; `None` when it cannot be read.
    fn request<T: Copy>(&self, addr: usize) -> Option<T> {
        self.get(addr)
    }
}

/// Memory whose pages the fuzzer changes, with one guard page on each side that is never
/// readable: regions are taken from `[-1, DATA + 1)` pages of it.
const DATA: usize = 8;

struct Area {
    base: *mut u8,
    content: Vec<Vec<u8>>,
    readable: Vec<bool>,
}

impl Area {
    fn new(r: &mut Rng) -> Area {
        // SAFETY: a fresh anonymous mapping; both end pages made inaccessible.
        let p = unsafe {
            let p = libc::mmap(
                std::ptr::null_mut(),
                (DATA + 2) * PAGE,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            );
            assert!(p != libc::MAP_FAILED);
            let p = p as *mut u8;
            assert!(libc::mprotect(p as *mut _, PAGE, libc::PROT_NONE) == 0);
            assert!(libc::mprotect(p.add((DATA + 1) * PAGE) as *mut _, PAGE, libc::PROT_NONE) == 0);
            p.add(PAGE)
        };
        let mut a = Area { base: p, content: vec![vec![0; PAGE]; DATA], readable: vec![true; DATA] };
        for i in 0..DATA {
            a.scribble(r, i);
        }
        a
    }

    fn page(&self, i: usize) -> *mut u8 {
        // SAFETY: `i < DATA`: inside the data pages of our mapping.
        unsafe { self.base.add(i * PAGE) }
    }

    fn scribble(&mut self, r: &mut Rng, i: usize) {
        if !self.readable[i] {
            return;
        }
        for _ in 0..1 + r.below(4) {
            let at = r.below(PAGE as u64) as usize;
            let v = r.next() as u8;
            self.content[i][at] = v;
            // SAFETY: a readable, writable data page of ours.
            unsafe { *self.page(i).add(at) = v };
        }
    }

    /// One random change: new bytes in a page, or a page made unreadable or readable again.
    fn mutate(&mut self, r: &mut Rng) {
        let i = r.below(DATA as u64) as usize;
        match r.below(6) {
            0 => {
                let prot =
                    if self.readable[i] { libc::PROT_NONE } else { libc::PROT_READ | libc::PROT_WRITE };
                // SAFETY: reprotects one data page of ours.
                assert!(unsafe { libc::mprotect(self.page(i) as *mut _, PAGE, prot) } == 0);
                self.readable[i] = !self.readable[i];
            }
            _ => self.scribble(r, i),
        }
    }

    /// The page at index `i` of `[-1, DATA + 1)` as a check sees it: `None` when unreadable.
    fn seen(&self, i: i64) -> Option<Vec<u8>> {
        let i = usize::try_from(i).ok().filter(|&i| i < DATA)?;
        self.readable[i].then(|| self.content[i].clone())
    }

    fn addr_of(&self, i: i64) -> u64 {
        (self.base as i64 + i * PAGE as i64) as u64
    }
}

/// A region as the model knows it.
struct ModelRegion {
    id: u32,
    first: i64,
    baseline: Vec<Option<Vec<u8>>>,
    last: Vec<Option<Vec<u8>>>,
}

/// A bank as BANK_LIST must describe it.
fn entry(c: &BankCreate) -> BankListEntry {
    BankListEntry {
        name: c.name,
        slots: c.slots,
        bytes: BankLayout::new(c.slots, c.shards).map_or(0, |l| l.total_size),
        op: c.op,
        mode: c.mode,
        // SAFETY: plain id getters.
        uid: unsafe { libc::geteuid() },
        // SAFETY: as above.
        gid: unsafe { libc::getegid() },
        shards: c.shards,
        reserved: 0,
    }
}

fn valid_name(n: &[u8; NAME_LEN]) -> bool {
    let len = n.iter().position(|&b| b == 0).unwrap_or(NAME_LEN);
    len > 0
        && len < NAME_LEN
        && n[0] != b'.'
        && n[..len].iter().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(b))
}

fn same_name(a: &[u8; NAME_LEN], b: &[u8; NAME_LEN]) -> bool {
    let la = a.iter().position(|&x| x == 0).unwrap_or(NAME_LEN);
    let lb = b.iter().position(|&x| x == 0).unwrap_or(NAME_LEN);
    a[..la] == b[..lb]
}

struct Fuzzer {
    r: Rng,
    s: Scratch,
    area: Area,
    dev: Dev,
    banks: Vec<BankListEntry>,
    regions: Vec<ModelRegion>,
    max_regions: usize,
    checked: [u32; 7],
}

impl Fuzzer {
    fn call(&self, cmd: u32, arg: usize) -> Result<(), i32> {
        self.dev.raw(cmd, arg).map(|_| ())
    }

    fn name(&mut self) -> [u8; NAME_LEN] {
        crate::dev::name(self.r.pick(NAMES))
    }

    fn one(&mut self) -> Result<(), String> {
        let g = self.r.pick(&[Guard::Unmapped, Guard::NoAccess, Guard::ReadOnly]);
        self.s.set_guard(g);
        match self.r.below(8) {
            0 => self.create(),
            1 => self.destroy(),
            2 => self.open(),
            3 => self.list(),
            4 => self.watch(),
            5 | 6 => self.check(),
            _ => self.checkpoint_or_unwatch(),
        }
    }

    fn create(&mut self) -> Result<(), String> {
        let slots = self.r.pick(&[0, 1, 5, 64, 1 << 40]);
        let c = BankCreate {
            name: self.name(),
            slots,
            op: self.r.below(3) as u32,
            mode: self.r.pick(&[0o600, 0o644, 0o666, 0o1000]),
            shards: self.r.pick(&[0, 2, 17]),
            flags: self.r.pick(&[0, 0, 0, 0, 0, 0, BANK_CREATE_FPGA, 2]),
        };
        let at = self.s.place(&mut self.r, size_of::<BankCreate>());
        self.s.put(at, c);
        let seen: Option<BankCreate> = self.s.request(at);
        let res = self.call(IOCTL_BANK_CREATE, at);
        let present = self.banks.iter().position(|b| same_name(&b.name, &c.name));
        match res {
            Ok(()) => {
                ensure!(seen == Some(c), "CREATE succeeded on an unreadable request");
                ensure!(
                    present.is_none() && valid_name(&c.name) && c.flags == 0,
                    "CREATE {c:?} succeeded: taken, bad, or flagged"
                );
                self.banks.push(entry(&c));
            }
            Err(libc::EEXIST) => ensure!(present.is_some(), "EEXIST for a name that is free"),
            // This VM has no FPGA bound.
            Err(libc::ENODEV) => ensure!(c.flags == BANK_CREATE_FPGA, "ENODEV for CREATE {c:?}"),
            Err(e) => self.allowed(e, "CREATE")?,
        }
        self.checked[0] += 1;
        Ok(())
    }

    fn destroy(&mut self) -> Result<(), String> {
        let b = BankName { name: self.name() };
        let at = self.s.place(&mut self.r, size_of::<BankName>());
        self.s.put(at, b);
        let readable = self.s.request::<BankName>(at).is_some();
        let present = self.banks.iter().position(|x| same_name(&x.name, &b.name));
        match self.call(IOCTL_BANK_DESTROY, at) {
            Ok(()) => {
                ensure!(readable, "DESTROY succeeded on an unreadable request");
                let i = present.ok_or("DESTROY of a bank the model does not have")?;
                self.banks.remove(i);
            }
            Err(libc::ENOENT) => ensure!(present.is_none(), "ENOENT on DESTROY of an existing bank"),
            Err(e) => self.allowed(e, "DESTROY")?,
        }
        self.checked[1] += 1;
        Ok(())
    }

    fn open(&mut self) -> Result<(), String> {
        let o = BankOpen { name: self.name(), access: self.r.below(4) as u32, op: 0, slots: 0, map_size: 0 };
        let at = self.s.place(&mut self.r, size_of::<BankOpen>());
        self.s.put(at, o);
        let readable = self.s.request::<BankOpen>(at).is_some();
        let present = self.banks.iter().find(|x| same_name(&x.name, &o.name)).copied();
        let fresh = ok!(Dev::open());
        match fresh.raw(IOCTL_BANK_OPEN, at) {
            Ok(_) => {
                ensure!(
                    readable && self.s.writable(at, size_of::<BankOpen>()),
                    "OPEN succeeded, request not writable"
                );
                let e = present.ok_or("OPEN of a bank the model does not have")?;
                let reply: BankOpen = self.s.get(at).unwrap();
                ensure!(
                    reply.slots == e.slots && reply.op == e.op && reply.map_size == e.bytes,
                    "OPEN reply {reply:?} for {e:?}"
                );
            }
            Err(libc::ENOENT) => ensure!(present.is_none(), "ENOENT on OPEN of an existing bank"),
            Err(e) => {
                self.allowed(e, "OPEN")?;
                // No side effect: the fd is not attached.
                fails_with!(fresh.read(0), libc::EBADFD);
            }
        }
        self.checked[2] += 1;
        Ok(())
    }

    fn list(&mut self) -> Result<(), String> {
        let capacity = self.r.pick(&[0u32, 1, 2, 3, 8, BATCH_MAX + 1]);
        let bytes = capacity.min(8) as usize * size_of::<BankListEntry>();
        let entries = if self.r.below(6) == 0 { 0 } else { self.s.place(&mut self.r, bytes.max(1)) };
        let req = BankList { entries: entries as u64, capacity, count: self.r.next() as u32 };
        let at = self.s.place(&mut self.r, size_of::<BankList>());
        // The request may overlap the entries: write the request last, read it back first.
        self.s.put(at, req);
        let seen: Option<BankList> = self.s.request(at);
        match self.call(IOCTL_BANK_LIST, at) {
            Ok(()) => {
                let seen = seen.ok_or("LIST succeeded on an unreadable request")?;
                ensure!(seen.capacity <= BATCH_MAX, "LIST accepted capacity {}", seen.capacity);
                let reply: BankList = self.s.get(at).ok_or("LIST succeeded, reply unreadable")?;
                ensure!(self.s.writable(at, size_of::<BankList>()), "LIST succeeded, reply not writable");
                ensure!(
                    reply.count as usize == self.banks.len(),
                    "LIST count {} model {}",
                    reply.count,
                    self.banks.len()
                );
                let n = (seen.capacity as usize).min(self.banks.len());
                let at_e = seen.entries as usize;
                ensure!(
                    n == 0 || self.s.writable(at_e, n * size_of::<BankListEntry>()),
                    "LIST wrote into the guard"
                );
                // Entries the request overlaps were overwritten by the reply; compare the rest.
                for k in 0..n {
                    let a = at_e + k * size_of::<BankListEntry>();
                    if a < at + size_of::<BankList>() && at < a + size_of::<BankListEntry>() {
                        continue;
                    }
                    let got: BankListEntry = self.s.get(a).unwrap();
                    ensure!(got == self.banks[k], "LIST entry {k}: {got:?}, model {:?}", self.banks[k]);
                }
            }
            Err(e) => self.allowed(e, "LIST")?,
        }
        self.checked[3] += 1;
        Ok(())
    }

    fn watch(&mut self) -> Result<(), String> {
        let first = self.r.below(DATA as u64 + 2) as i64 - 1;
        let pages = 1 + self.r.below((DATA as i64 + 1 - first) as u64);
        let pid = match self.r.below(8) {
            0 => 0x7fff_fff0,
            1 => -3,
            // SAFETY: getpid has no preconditions.
            2 => unsafe { libc::getpid() },
            _ => 0,
        };
        let mut w = RegionWatch {
            pid,
            flags: 0,
            start: self.area.addr_of(first),
            len: pages * PAGE as u64,
            ..Default::default()
        };
        match self.r.below(10) {
            0 => w.start += 8,
            1 => w.len = 0,
            // A reserved bit (bit 0 is REGION_WATCH_COW, a valid request).
            2 => w.flags = 2,
            _ => {}
        }
        let at = self.s.place(&mut self.r, size_of::<RegionWatch>());
        self.s.put(at, w);
        let seen: Option<RegionWatch> = self.s.request(at);
        let res = self.call(IOCTL_REGION_WATCH, at);
        let truth: Vec<Option<Vec<u8>>> = (first..first + pages as i64).map(|i| self.area.seen(i)).collect();
        match res {
            Ok(()) => {
                ensure!(
                    seen == Some(w) && self.s.writable(at, size_of::<RegionWatch>()),
                    "WATCH succeeded on a bad buffer"
                );
                ensure!(
                    w.flags & !REGION_WATCH_COW == 0 && w.len != 0 && w.start.is_multiple_of(PAGE as u64),
                    "WATCH accepted {w:?}"
                );
                ensure!(pid == 0 || pid == std::process::id() as i32, "WATCH of pid {pid} succeeded");
                let reply: RegionWatch = self.s.get(at).unwrap();
                ensure!(
                    reply.id != 0 && self.regions.iter().all(|m| m.id != reply.id),
                    "WATCH id {}",
                    reply.id
                );
                let unreadable = truth.iter().filter(|p| p.is_none()).count() as u64;
                ensure!(
                    reply.unreadable == unreadable,
                    "WATCH unreadable {} model {unreadable}",
                    reply.unreadable
                );
                ensure!(self.regions.len() < self.max_regions, "WATCH past max_regions_per_fd");
                self.regions.push(ModelRegion { id: reply.id, first, baseline: truth.clone(), last: truth });
            }
            Err(libc::ENOSPC) => ensure!(
                self.regions.len() >= self.max_regions,
                "ENOSPC with {} regions of {}: a failed WATCH left a region behind",
                self.regions.len(),
                self.max_regions
            ),
            Err(e) => self.allowed(e, "WATCH")?,
        }
        self.checked[4] += 1;
        Ok(())
    }

    fn check(&mut self) -> Result<(), String> {
        let pick = (!self.regions.is_empty() && self.r.below(6) != 0)
            .then(|| self.r.below(self.regions.len() as u64) as usize);
        let id = pick.map_or(self.r.pick(&[0, 999_999]), |i| self.regions[i].id);
        let pages = pick.map_or(1, |i| self.regions[i].baseline.len());
        let want_bitmap = self.r.below(4) != 0;
        let want_fps = self.r.below(3) != 0;
        let bitmap = if want_bitmap { self.s.place(&mut self.r, pages.div_ceil(8)) } else { 0 };
        let fps = if want_fps { self.s.place(&mut self.r, pages * 8) } else { 0 };
        let mut c = RegionCheck {
            id,
            bitmap: bitmap as u64,
            bitmap_len: pages.div_ceil(8) as u64,
            fingerprints: fps as u64,
            fingerprints_len: pages as u64,
            ..Default::default()
        };
        match self.r.below(12) {
            0 => c.flags = 1,
            1 => c.bitmap_len = 0,
            2 => c.fingerprints_len = pages as u64 - 1,
            _ => {}
        }
        let at = self.s.place(&mut self.r, size_of::<RegionCheck>());
        self.s.put(at, c);
        let seen: Option<RegionCheck> = self.s.request(at);
        let res = self.call(IOCTL_REGION_CHECK, at);
        let Some(i) = pick.filter(|_| seen == Some(c)) else {
            match res {
                Ok(()) => {
                    return Err(format!("CHECK of id {id} succeeded (request readable: {})", seen.is_some()))
                }
                Err(e) => return self.allowed(e, "CHECK"),
            }
        };
        let m = &self.regions[i];
        let now: Vec<Option<Vec<u8>>> =
            (m.first..m.first + pages as i64).map(|k| self.area.seen(k)).collect();
        match res {
            Ok(()) => {
                ensure!(
                    c.flags == 0
                        && (bitmap == 0 || c.bitmap_len as usize >= pages.div_ceil(8))
                        && (fps == 0 || c.fingerprints_len as usize >= pages),
                    "CHECK accepted {c:?}"
                );
                ensure!(
                    self.s.writable(at, size_of::<RegionCheck>())
                        && (bitmap == 0 || self.s.writable(bitmap, pages.div_ceil(8)))
                        && (fps == 0 || self.s.writable(fps, pages * 8)),
                    "CHECK succeeded with a result buffer in the guard"
                );
                let reply: RegionCheck = self.s.get(at).unwrap();
                let changed: Vec<bool> = (0..pages).map(|k| m.baseline[k] != now[k]).collect();
                let n_changed = changed.iter().filter(|&&x| x).count() as u64;
                let n_unreadable = now.iter().filter(|p| p.is_none()).count() as u64;
                ensure!(
                    reply.pages == pages as u64 && reply.changed == n_changed && reply.unreadable == n_unreadable,
                    "CHECK reply {reply:?}: model {pages} pages, {n_changed} changed, {n_unreadable} unreadable"
                );
                let overlaps = |a: usize, len: usize| a < at + size_of::<RegionCheck>() && at < a + len;
                if bitmap != 0
                    && !overlaps(bitmap, pages.div_ceil(8))
                    && !(fps != 0 && fps < bitmap + pages.div_ceil(8) && bitmap < fps + pages * 8)
                {
                    for (k, &ch) in changed.iter().enumerate() {
                        // SAFETY: inside the bitmap, which is in our first page (checked writable).
                        let byte = unsafe { *((bitmap + k / 8) as *const u8) };
                        ensure!((byte >> (k % 8)) & 1 == ch as u8, "CHECK bitmap bit {k}: model {ch}");
                    }
                }
                if fps != 0 && !overlaps(fps, pages * 8) {
                    for (k, p) in now.iter().enumerate() {
                        let got: u64 = self.s.get(fps + k * 8).unwrap();
                        let want = p.as_ref().map_or(0, |b| fingerprint(b));
                        ensure!(got == want, "CHECK fingerprint {k}: {got:#x}, model {want:#x}");
                    }
                }
                self.regions[i].last = now;
            }
            // A failed check records nothing: `last` stays.
            Err(e) => self.allowed(e, "CHECK")?,
        }
        self.checked[5] += 1;
        Ok(())
    }

    fn checkpoint_or_unwatch(&mut self) -> Result<(), String> {
        let unwatch = self.r.below(3) == 0;
        let pick = (!self.regions.is_empty() && self.r.below(6) != 0)
            .then(|| self.r.below(self.regions.len() as u64) as usize);
        let id = pick.map_or(self.r.pick(&[0, 999_999]), |i| self.regions[i].id);
        let req = RegionId { id, reserved: (self.r.below(10) == 0) as u32 };
        let at = self.s.place(&mut self.r, size_of::<RegionId>());
        self.s.put(at, req);
        let seen = self.s.request::<RegionId>(at);
        let cmd = if unwatch { IOCTL_REGION_UNWATCH } else { IOCTL_REGION_CHECKPOINT };
        match self.call(cmd, at) {
            Ok(()) => {
                ensure!(seen == Some(req), "{cmd:#x} succeeded on an unreadable request");
                let i = pick.ok_or(format!("{cmd:#x} of unknown id {id} succeeded"))?;
                // CHECKPOINT needs no reserved field; UNWATCH does: both read a RegionId.
                ensure!(req.reserved == 0, "{cmd:#x} accepted reserved {}", req.reserved);
                if unwatch {
                    self.regions.remove(i);
                } else {
                    let m = &mut self.regions[i];
                    m.baseline = m.last.clone();
                }
            }
            Err(e) => self.allowed(e, "CHECKPOINT/UNWATCH")?,
        }
        self.checked[6] += 1;
        Ok(())
    }

    fn allowed(&self, e: i32, what: &str) -> Result<(), String> {
        ensure!(ALLOWED.contains(&e), "{what}: unexpected {}", crate::check::errname(e));
        Ok(())
    }
}

fn fuzz(seed: u64, calls: u32) -> Result<(), String> {
    let mut r = Rng(seed);
    let area = Area::new(&mut r);
    let mut f = Fuzzer {
        r,
        s: Scratch::new(),
        area,
        dev: ok!(Dev::open()),
        banks: Vec::new(),
        regions: Vec::new(),
        max_regions: crate::region::param("max_regions_per_fd", 64) as usize,
        checked: [0; 7],
    };
    let (start, count) = ok!(f.dev.list());
    ensure!(count as usize == start.len(), "more than 256 banks before fuzzing");
    f.banks = start;
    for call in 0..calls {
        if f.r.below(3) == 0 {
            f.area.mutate(&mut f.r);
        }
        f.one().map_err(|e| format!("call {call}: {e}"))?;
    }
    f.s.set_guard(Guard::NoAccess);
    let (list, count) = ok!(f.dev.list());
    ensure!(count as usize == f.banks.len() && list == f.banks, "final list {list:?}, model {:?}", f.banks);
    let c = f.checked;
    println!(
        "fuzz buffers seed {seed:#x}: {calls} calls checked against the models: {} CREATE, {} DESTROY, {} OPEN, {} LIST, {} WATCH, {} CHECK, {} CHECKPOINT/UNWATCH",
        c[0], c[1], c[2], c[3], c[4], c[5], c[6]
    );
    Ok(())
}

pub fn run(report: &mut Report) {
    report.run("fuzz buffers: REGION_*, BANK_LIST, CREATE/OPEN/DESTROY straddling into unmapped, PROT_NONE and read-only pages, against models", || {
        let d = ok!(Dev::open());
        let used = ok!(d.info()).used_bytes;
        // Root's banks stay for the uid-1000 run, which must be refused them.
        in_child(|| Ok(()), || fuzz(0x5eed_0001_2345_6789, 12_000))?;
        in_child(become_user, || fuzz(0x5eed_0002_9876_5432, 8_000))?;
        for n in NAMES {
            let _ = d.destroy(n);
        }
        let now = ok!(d.info()).used_bytes;
        ensure!(now == used, "the fuzzers' banks still hold {now} bytes, {used} before");
        Ok(())
    });
}
