//! The kernel engine of page-change detection (REGION_* ioctls): fingerprints equal to the
//! userspace ones, changed pages equal to what was written and to what the userspace engine
//! (`atomik::track::region::Tracker`) reports on the same workload, ptrace-style access
//! checks, and the errno of every bad request.

use crate::check::Report;
use crate::dev::{errno, Dev, R};
use crate::system::{become_user, in_child};
use atomik::abi::*;
use atomik::track::fingerprint::fingerprint;
use atomik::track::ranges::{coalesce, Range};
use atomik::track::region::{Detector, Tracker, TrackerOptions};
use std::collections::BTreeSet;

const PAGE: u64 = 4096;

pub(crate) fn watch(d: &Dev, pid: i32, start: u64, len: u64) -> R<RegionWatch> {
    let mut w = RegionWatch { pid, start, len, ..Default::default() };
    d.raw(IOCTL_REGION_WATCH, &mut w as *mut _ as usize)?;
    Ok(w)
}

/// REGION_CHECK with a bitmap and fingerprints sized for `pages`; returns the reply, the
/// changed page indices and the fingerprints.
pub(crate) fn check(d: &Dev, id: u32, pages: u64) -> R<(RegionCheck, BTreeSet<u64>, Vec<u64>)> {
    let mut bitmap = vec![0u8; pages.div_ceil(8) as usize];
    let mut fps = vec![0u64; pages as usize];
    let mut c = RegionCheck {
        id,
        bitmap: bitmap.as_mut_ptr() as u64,
        bitmap_len: bitmap.len() as u64,
        fingerprints: fps.as_mut_ptr() as u64,
        fingerprints_len: fps.len() as u64,
        ..Default::default()
    };
    d.raw(IOCTL_REGION_CHECK, &mut c as *mut _ as usize)?;
    let changed = (0..pages).filter(|i| bitmap[(i / 8) as usize] & (1 << (i % 8)) != 0).collect();
    Ok((c, changed, fps))
}

/// REGION_CHECK without buffers.
fn check_counts(d: &Dev, id: u32) -> R<RegionCheck> {
    let mut c = RegionCheck { id, ..Default::default() };
    d.raw(IOCTL_REGION_CHECK, &mut c as *mut _ as usize)?;
    Ok(c)
}

pub(crate) fn by_id(d: &Dev, cmd: u32, id: u32) -> R<()> {
    let mut r = RegionId { id, reserved: 0 };
    d.raw(cmd, &mut r as *mut _ as usize).map(|_| ())
}

/// Content of a page as a function of a content id: distinct ids give distinct pages; an id
/// with the top bit set is the page of the id without it with words 0 and 1 swapped (a change
/// an XOR-fold would miss).
pub(crate) fn content(id: u64) -> Vec<u8> {
    let base = id & !(1 << 63);
    let mut words: Vec<u64> =
        (0..512u64).map(|j| splitmix(base.wrapping_mul(4096).wrapping_add(j))).collect();
    if id >> 63 == 1 {
        words.swap(0, 1);
    }
    words.iter().flat_map(|w| w.to_le_bytes()).collect()
}

pub(crate) fn splitmix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// An anonymous private mapping, unmapped on drop.
pub(crate) struct Anon {
    pub(crate) addr: u64,
    pages: u64,
}

impl Anon {
    pub(crate) fn new(pages: u64) -> R<Anon> {
        // SAFETY: a fresh anonymous mapping chosen by the kernel.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                (pages * PAGE) as usize,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(errno());
        }
        Ok(Anon { addr: p as u64, pages })
    }

    pub(crate) fn write(&self, page: u64, bytes: &[u8]) {
        assert!(page < self.pages && bytes.len() == PAGE as usize);
        // SAFETY: the page is inside this live read-write mapping; 4096 bytes are copied.
        unsafe {
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), (self.addr + page * PAGE) as *mut u8, bytes.len())
        };
    }

    pub(crate) fn read(&self, page: u64) -> Vec<u8> {
        assert!(page < self.pages);
        // SAFETY: the page is inside this live mapping and readable when this is called.
        unsafe { std::slice::from_raw_parts((self.addr + page * PAGE) as *const u8, PAGE as usize) }.to_vec()
    }

    pub(crate) fn protect(&self, page: u64, prot: i32) -> R<()> {
        // SAFETY: changes the protection of one page of this mapping.
        if unsafe { libc::mprotect((self.addr + page * PAGE) as *mut _, PAGE as usize, prot) } != 0 {
            return Err(errno());
        }
        Ok(())
    }

    fn range(&self) -> Range {
        Range::new(self.addr, self.addr + self.pages * PAGE)
    }
}

impl Drop for Anon {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly this mapping.
        unsafe { libc::munmap(self.addr as *mut _, (self.pages * PAGE) as usize) };
    }
}

pub fn run(report: &mut Report) {
    report.run("region: GET_INFO has FEATURE_REGION", || {
        let d = ok!(Dev::open());
        ensure!(ok!(d.info()).features & FEATURE_REGION != 0, "FEATURE_REGION not set");
        Ok(())
    });
    report
        .run("region: own pages — kernel fingerprints equal userspace ones; changes, checkpoint", own_pages);
    report.run("region: unreadable pages (PROT_NONE, munmap) are counted and changed", unreadable_pages);
    for det in [Detector::FullRescan, Detector::SoftDirty, Detector::UffdWp] {
        report
            .run(&format!("region: differential vs userspace engine ({})", det.name()), || differential(det));
    }
    report.run("region: another uid, a non-dumpable process, root: EPERM; same uid: allowed", permissions);
    report.run("region: bad requests get EINVAL/EFAULT/ENOTTY/ENOMEM/ENOSPC/ESRCH", bad_requests);
    report.run("region: the watched process exits: ESRCH; regions are per fd", gone_and_per_fd);
}

fn own_pages() -> Result<(), String> {
    let n = 40;
    let m = ok!(Anon::new(n));
    for i in 0..n {
        m.write(i, &content(i + 1));
    }
    let d = ok!(Dev::open());
    let w = ok!(watch(&d, 0, m.addr, n * PAGE));
    ensure!(w.id != 0 && w.unreadable == 0, "watch reply {w:?}");
    let (c, changed, fps) = ok!(check(&d, w.id, n));
    ensure!(c.pages == n && c.changed == 0 && changed.is_empty(), "untouched: {c:?}");
    for i in 0..n {
        ensure!(
            fps[i as usize] == fingerprint(&m.read(i)),
            "page {i}: kernel and userspace fingerprints differ"
        );
    }
    // Changed, silently rewritten, changed then restored, words swapped.
    m.write(3, &content(100));
    m.write(4, &content(5));
    m.write(7, &content(200));
    m.write(7, &content(8));
    m.write(9, &content(10 | 1 << 63));
    m.write(n - 1, &content(300));
    let (c, changed, fps) = ok!(check(&d, w.id, n));
    let want: BTreeSet<u64> = [3, 9, n - 1].into();
    ensure!(changed == want && c.changed == 3, "changed {changed:?} ({}), want {want:?}", c.changed);
    for i in 0..n {
        ensure!(fps[i as usize] == fingerprint(&m.read(i)), "page {i}: fingerprint after writes");
    }
    // Still changed at the next check: the baseline moves only at a checkpoint.
    ensure!(ok!(check_counts(&d, w.id)).changed == 3, "changes forgotten without a checkpoint");
    ok!(by_id(&d, IOCTL_REGION_CHECKPOINT, w.id));
    ensure!(ok!(check_counts(&d, w.id)).changed == 0, "changes left after a checkpoint");
    // Back to the old content is a change against the new baseline.
    m.write(3, &content(4));
    let (_, changed, _) = ok!(check(&d, w.id, n));
    ensure!(changed == [3].into(), "after reverting page 3: {changed:?}");
    ok!(by_id(&d, IOCTL_REGION_UNWATCH, w.id));
    fails_with!(check_counts(&d, w.id), libc::EINVAL);
    Ok(())
}

fn unreadable_pages() -> Result<(), String> {
    let n = 8;
    let m = ok!(Anon::new(n));
    for i in 0..n {
        m.write(i, &content(i + 50));
    }
    ok!(m.protect(2, libc::PROT_NONE));
    let d = ok!(Dev::open());
    let w = ok!(watch(&d, 0, m.addr, n * PAGE));
    ensure!(w.unreadable == 1, "PROT_NONE page at watch: unreadable {}", w.unreadable);
    let (c, changed, fps) = ok!(check(&d, w.id, n));
    ensure!(c.changed == 0 && c.unreadable == 1 && fps[2] == 0, "steady: {c:?}");
    ok!(m.protect(2, libc::PROT_READ | libc::PROT_WRITE));
    ok!(m.protect(5, libc::PROT_NONE));
    let (c, changed2, _) = ok!(check(&d, w.id, n));
    ensure!(changed.is_empty() && changed2 == [2, 5].into(), "readability flips: {changed2:?}");
    ensure!(c.unreadable == 1, "unreadable now {}", c.unreadable);
    // SAFETY: unmaps the last page of our own mapping (Drop unmaps the whole range again,
    // which is harmless for an already unmapped page).
    ensure!(unsafe { libc::munmap((m.addr + 7 * PAGE) as *mut _, PAGE as usize) } == 0, "munmap");
    let (c, changed, _) = ok!(check(&d, w.id, n));
    ensure!(changed == [2, 5, 7].into() && c.unreadable == 2, "after munmap: {changed:?} {c:?}");
    Ok(())
}

/// A forked child driven over two pipes: it first sends one `u64` (an address, 0 when its set
/// up failed), then answers each `u64` command; `u64::MAX` (sent on drop) makes it exit.
pub(crate) struct Child {
    pub(crate) pid: i32,
    pub(crate) cmd: i32,
    pub(crate) ack: i32,
}

impl Child {
    /// Forks a child running `body(command fd, answer fd)`, and reads its first answer.
    pub(crate) fn spawn(body: impl FnOnce(i32, i32) -> i32) -> Result<(Child, u64), String> {
        let (mut c, mut a) = ([0i32; 2], [0i32; 2]);
        // SAFETY: two pipe(2) calls into two-int arrays.
        if unsafe { libc::pipe(c.as_mut_ptr()) != 0 || libc::pipe(a.as_mut_ptr()) != 0 } {
            return Err(format!("pipe: errno {}", errno()));
        }
        // SAFETY: fork(2); the child runs `body` and _exit()s.
        let pid = unsafe { libc::fork() };
        if pid < 0 {
            return Err(format!("fork: errno {}", errno()));
        }
        if pid == 0 {
            let code = body(c[0], a[1]);
            // SAFETY: leaves the child without running the parent's destructors.
            unsafe { libc::_exit(code) };
        }
        // SAFETY: closing the child's ends in the parent.
        unsafe {
            libc::close(c[0]);
            libc::close(a[1]);
        }
        let child = Child { pid, cmd: c[1], ack: a[0] };
        let first = read_u64(child.ack).unwrap_or(0);
        Ok((child, first))
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        write_u64(self.cmd, u64::MAX);
        // SAFETY: closes our pipe ends and reaps our child.
        unsafe {
            libc::close(self.cmd);
            libc::close(self.ack);
            libc::waitpid(self.pid, std::ptr::null_mut(), 0);
        }
    }
}

/// The workload of the differential test: a child with `WORK_PAGES` pages at `range`.
struct Workload {
    child: Child,
    range: Range,
}

const WORK_PAGES: u64 = 96;

impl Workload {
    /// Forks a child that maps `WORK_PAGES` anonymous pages with known content (id `i + 1`),
    /// arms write-protection tracking itself when `arm`, and then applies round `r` of
    /// [`round_ops`] each time it is asked.
    fn start(arm: bool) -> Result<Workload, String> {
        let (child, start) = Child::spawn(|cmd, ack| child_main(cmd, ack, arm))?;
        if start == 0 {
            return Err("workload child could not map or arm its pages".into());
        }
        Ok(Workload { child, range: Range::new(start, start + WORK_PAGES * PAGE) })
    }

    fn round(&self, r: u64) -> Result<(), String> {
        write_u64(self.child.cmd, r);
        match read_u64(self.child.ack) {
            Some(v) if v == r => Ok(()),
            other => Err(format!("workload round {r}: ack {other:?}")),
        }
    }
}

pub(crate) fn write_u64(fd: i32, v: u64) {
    // SAFETY: writes 8 bytes from a local.
    unsafe { libc::write(fd, v.to_le_bytes().as_ptr() as *const _, 8) };
}

pub(crate) fn read_u64(fd: i32) -> Option<u64> {
    let mut b = [0u8; 8];
    // SAFETY: reads up to 8 bytes into a local.
    let n = unsafe { libc::read(fd, b.as_mut_ptr() as *mut _, 8) };
    (n == 8).then(|| u64::from_le_bytes(b))
}

/// What round `r` writes, as (page, content id) in order, given the content ids before it: six
/// pages get new content, six are rewritten with their current content (silent writes), one
/// gets new content and then its content from just before, one has two words swapped.
fn round_ops(r: u64, current: &[u64]) -> Vec<(u64, u64)> {
    let pick = |k: u64| (splitmix(r * 1000 + k) % WORK_PAGES) as usize;
    let mut state = current.to_vec();
    let mut ops = Vec::new();
    for k in 0..6 {
        let p = pick(k);
        state[p] = 1000 * (r + 1) + k;
        ops.push((p as u64, state[p]));
    }
    for k in 10..16 {
        let p = pick(k);
        ops.push((p as u64, state[p]));
    }
    let p = pick(20);
    ops.push((p as u64, 777_000 + r));
    ops.push((p as u64, state[p]));
    let q = pick(30);
    state[q] ^= 1 << 63;
    ops.push((q as u64, state[q]));
    ops
}

fn child_main(cmd: i32, ack: i32, arm: bool) -> i32 {
    let Ok(m) = Anon::new(WORK_PAGES) else {
        write_u64(ack, 0);
        return 1;
    };
    let mut current: Vec<u64> = (1..=WORK_PAGES).collect();
    for (i, id) in current.iter().enumerate() {
        m.write(i as u64, &content(*id));
    }
    let _arm = if arm {
        match atomik::track::scan::WpArm::arm(&[m.range()]) {
            Ok(a) => Some(a),
            Err(e) => {
                println!("vmtest: workload child: arming write-protection: {e}");
                write_u64(ack, 0);
                return 1;
            }
        }
    } else {
        None
    };
    write_u64(ack, m.addr);
    while let Some(r) = read_u64(cmd) {
        if r == u64::MAX {
            break;
        }
        for (page, id) in round_ops(r, &current) {
            m.write(page, &content(id));
            current[page as usize] = id;
        }
        write_u64(ack, r);
    }
    0
}

/// Pages (as ranges of the workload's addresses) from page indices.
fn to_ranges(start: u64, pages: &BTreeSet<u64>) -> Vec<Range> {
    coalesce(pages.iter().map(|i| start + i * PAGE))
}

/// The same workload seen by both engines: after every round, the kernel's changed pages equal
/// the userspace engine's and the truth (pages whose content differs from the last
/// checkpoint), and the kernel's fingerprints equal those in the userspace engine's bank.
fn differential(det: Detector) -> Result<(), String> {
    let work = Workload::start(det == Detector::UffdWp)?;
    let d = ok!(Dev::open());
    let w = ok!(watch(&d, work.child.pid, work.range.start, WORK_PAGES * PAGE));
    ensure!(w.unreadable == 0, "workload pages unreadable: {}", w.unreadable);
    let opts = TrackerOptions { detector: Some(det), ..Default::default() };
    let mut tracker = Tracker::watch(work.child.pid, &[work.range], opts)
        .map_err(|e| format!("userspace Tracker::watch: {e}"))?;
    ensure!(tracker.detector() == det, "userspace engine chose {:?}", tracker.detector());
    let mut current: Vec<u64> = (1..=WORK_PAGES).collect();
    let mut baseline = current.clone();
    for r in 0..8u64 {
        for (page, id) in round_ops(r, &current) {
            current[page as usize] = id;
        }
        work.round(r)?;
        let truth: BTreeSet<u64> =
            (0..WORK_PAGES).filter(|&i| current[i as usize] != baseline[i as usize]).collect();
        let (c, kernel, fps) = ok!(check(&d, w.id, WORK_PAGES));
        let user = tracker.check().map_err(|e| format!("round {r}: userspace check: {e}"))?;
        ensure!(kernel == truth, "round {r}: kernel changed {kernel:?}, truth {truth:?}");
        ensure!(c.changed == truth.len() as u64, "round {r}: kernel count {}", c.changed);
        ensure!(
            user.changed == to_ranges(work.range.start, &kernel),
            "round {r}: userspace changed {:?}, kernel {:?}",
            user.changed,
            to_ranges(work.range.start, &kernel)
        );
        for i in 0..WORK_PAGES {
            let want = fingerprint(&content(current[i as usize]));
            let bank = tracker.bank().read(i).map_err(|e| format!("bank read: {e}"))?;
            ensure!(
                fps[i as usize] == want && bank == want,
                "round {r} page {i}: kernel fp, userspace bank, truth differ"
            );
        }
        // Checkpoint on even rounds only: odd rounds accumulate over two rounds of writes.
        if r % 2 == 0 {
            ok!(by_id(&d, IOCTL_REGION_CHECKPOINT, w.id));
            tracker.checkpoint().map_err(|e| format!("userspace checkpoint: {e}"))?;
            baseline = current.clone();
        }
    }
    Ok(())
}

/// A child that drops to `uid`, makes itself dumpable or not, maps one page and waits until the
/// returned guard is dropped. Returns (pid, page address, guard).
fn target(uid: u32, dumpable: bool) -> Result<(i32, u64, Child), String> {
    let (child, addr) = Child::spawn(|cmd, ack| {
        // SAFETY: credential syscalls and prctl in the child.
        let ok = unsafe {
            libc::setgroups(0, std::ptr::null()) == 0
                && libc::setgid(uid) == 0
                && libc::setuid(uid) == 0
                && (!dumpable || libc::prctl(libc::PR_SET_DUMPABLE, 1, 0, 0, 0) == 0)
        };
        let m = Anon::new(1);
        match (ok, &m) {
            (true, Ok(m)) => {
                m.write(0, &content(9));
                write_u64(ack, m.addr);
            }
            _ => write_u64(ack, 0),
        }
        let _ = read_u64(cmd);
        0
    })?;
    if addr == 0 {
        return Err(format!("target child for uid {uid} failed to set up"));
    }
    Ok((child.pid, addr, child))
}

pub(crate) fn as_uid(uid: u32) -> impl FnOnce() -> Result<(), String> {
    move || {
        // SAFETY: plain credential syscalls in a child process.
        unsafe {
            if libc::setgroups(0, std::ptr::null()) != 0 || libc::setgid(uid) != 0 || libc::setuid(uid) != 0 {
                return Err(format!("dropping to uid {uid}: errno {}", errno()));
            }
        }
        Ok(())
    }
}

fn permissions() -> Result<(), String> {
    let (dumpable, addr, _g1) = target(1000, true)?;
    let (secret, saddr, _g2) = target(1000, false)?;
    let me = std::process::id() as i32;
    let own = ok!(Anon::new(1));
    // Same uid, dumpable: allowed, and the fingerprint is that of the page.
    in_child(become_user, || {
        let d = ok!(Dev::open());
        let w = ok!(watch(&d, dumpable, addr, PAGE));
        let (_, _, fps) = ok!(check(&d, w.id, 1));
        ensure!(fps[0] == fingerprint(&content(9)), "fingerprint through another process");
        // Same uid but not dumpable (dropped privileges without PR_SET_DUMPABLE): EPERM.
        fails_with!(watch(&d, secret, saddr, PAGE), libc::EPERM);
        // Root's process (the test itself): EPERM.
        fails_with!(watch(&d, me, own.addr, PAGE), libc::EPERM);
        // The userspace engine is refused too.
        ensure!(
            Tracker::watch(me, &[own.range()], TrackerOptions::default()).is_err(),
            "userspace engine read root's pages"
        );
        Ok(())
    })?;
    // Another uid: EPERM for both engines.
    in_child(as_uid(1001), || {
        let d = ok!(Dev::open());
        fails_with!(watch(&d, dumpable, addr, PAGE), libc::EPERM);
        let r = Range::new(addr, addr + PAGE);
        ensure!(
            Tracker::watch(dumpable, &[r], TrackerOptions::default()).is_err(),
            "userspace engine read uid 1000's pages as uid 1001"
        );
        Ok(())
    })?;
    // Root (CAP_SYS_PTRACE) may watch both, the non-dumpable one included.
    let d = ok!(Dev::open());
    ok!(watch(&d, dumpable, addr, PAGE));
    ok!(watch(&d, secret, saddr, PAGE));
    Ok(())
}

/// A module parameter as the kernel command line sets it, else its default (Rust module
/// parameters are not in sysfs).
/// The module parameter `name` the module was loaded with (`default` when not set).
pub fn param(name: &str, default: u64) -> u64 {
    let params = crate::system::boot_params();
    let key = format!("{name}=");
    params.split_whitespace().find_map(|w| w.strip_prefix(key.as_str())?.parse().ok()).unwrap_or(default)
}

fn bad_requests() -> Result<(), String> {
    let d = ok!(Dev::open());
    let m = ok!(Anon::new(4));
    let a = m.addr;
    fails_with!(watch(&d, 0, a + 8, PAGE), libc::EINVAL);
    fails_with!(watch(&d, 0, a, 0), libc::EINVAL);
    fails_with!(watch(&d, 0, a, PAGE + 1), libc::EINVAL);
    fails_with!(watch(&d, 0, !(PAGE - 1), 2 * PAGE), libc::EINVAL);
    fails_with!(watch(&d, -5, a, PAGE), libc::EINVAL);
    fails_with!(watch(&d, 0x3fff_fff0, a, PAGE), libc::ESRCH);
    let mut bad = RegionWatch { pid: 0, flags: 2, start: a, len: PAGE, ..Default::default() };
    fails_with!(d.raw(IOCTL_REGION_WATCH, &mut bad as *mut _ as usize), libc::EINVAL);
    bad.flags = 0;
    bad.reserved = 1;
    fails_with!(d.raw(IOCTL_REGION_WATCH, &mut bad as *mut _ as usize), libc::EINVAL);
    // Bad request pointers.
    fails_with!(d.raw(IOCTL_REGION_WATCH, 8), libc::EFAULT);
    fails_with!(d.raw(IOCTL_REGION_CHECK, 8), libc::EFAULT);
    fails_with!(d.raw(IOCTL_REGION_CHECKPOINT, 8), libc::EFAULT);
    // Unknown numbers and sizes.
    fails_with!(d.raw(ioc(IOC_READ | IOC_WRITE, 0x24, 40), 0), libc::ENOTTY);
    fails_with!(d.raw(ioc(IOC_READ | IOC_WRITE, 0x20, 48), 0), libc::ENOTTY);
    // Limits: one fd watches at most max_region_pages pages in all ...
    let limit = param("max_region_pages", 262_144);
    let w = ok!(watch(&d, 0, a, PAGE));
    fails_with!(watch(&d, 0, a, limit * PAGE), libc::ENOMEM);
    ok!(by_id(&d, IOCTL_REGION_UNWATCH, w.id));
    // ... and at most max_regions_per_fd regions.
    let max = param("max_regions_per_fd", 64) as usize;
    let mut ids = Vec::new();
    for _ in 0..max {
        ids.push(ok!(watch(&d, 0, a, PAGE)).id);
    }
    fails_with!(watch(&d, 0, a, PAGE), libc::ENOSPC);
    let distinct: BTreeSet<u32> = ids.iter().copied().collect();
    ensure!(distinct.len() == max && !distinct.contains(&0), "region ids not distinct and nonzero");
    for id in &ids[1..] {
        ok!(by_id(&d, IOCTL_REGION_UNWATCH, *id));
    }
    let id = ids[0];
    // Buffers: too short, bad pointers, reserved fields, unknown ids.
    let mut c = RegionCheck { id, bitmap: 8, bitmap_len: 1, ..Default::default() };
    fails_with!(d.raw(IOCTL_REGION_CHECK, &mut c as *mut _ as usize), libc::EFAULT);
    c = RegionCheck { id, fingerprints: 8, fingerprints_len: 1, ..Default::default() };
    fails_with!(d.raw(IOCTL_REGION_CHECK, &mut c as *mut _ as usize), libc::EFAULT);
    let mut fp = [0u64; 1];
    c = RegionCheck { id, fingerprints: fp.as_mut_ptr() as u64, fingerprints_len: 0, ..Default::default() };
    fails_with!(d.raw(IOCTL_REGION_CHECK, &mut c as *mut _ as usize), libc::EINVAL);
    let big = ok!(watch(&d, 0, a, 4 * PAGE));
    let mut byte = [0u8; 1];
    c = RegionCheck { id: big.id, bitmap: byte.as_mut_ptr() as u64, bitmap_len: 0, ..Default::default() };
    fails_with!(d.raw(IOCTL_REGION_CHECK, &mut c as *mut _ as usize), libc::EINVAL);
    c = RegionCheck { id: big.id, bitmap: byte.as_mut_ptr() as u64, bitmap_len: 1, ..Default::default() };
    ok!(d.raw(IOCTL_REGION_CHECK, &mut c as *mut _ as usize));
    c = RegionCheck { id, flags: 2, ..Default::default() };
    fails_with!(d.raw(IOCTL_REGION_CHECK, &mut c as *mut _ as usize), libc::EINVAL);
    let mut r = RegionId { id, reserved: 1 };
    fails_with!(d.raw(IOCTL_REGION_CHECKPOINT, &mut r as *mut _ as usize), libc::EINVAL);
    fails_with!(d.raw(IOCTL_REGION_UNWATCH, &mut r as *mut _ as usize), libc::EINVAL);
    for cmd in [IOCTL_REGION_CHECKPOINT, IOCTL_REGION_UNWATCH] {
        fails_with!(by_id(&d, cmd, 0), libc::EINVAL);
        fails_with!(by_id(&d, cmd, 0xdead_beef), libc::EINVAL);
    }
    fails_with!(check_counts(&d, 0xdead_beef), libc::EINVAL);
    ok!(by_id(&d, IOCTL_REGION_UNWATCH, id));
    fails_with!(by_id(&d, IOCTL_REGION_UNWATCH, id), libc::EINVAL);
    Ok(())
}

fn gone_and_per_fd() -> Result<(), String> {
    let d = ok!(Dev::open());
    let other = ok!(Dev::open());
    let w = {
        let work = Workload::start(false)?;
        let w = ok!(watch(&d, work.child.pid, work.range.start, WORK_PAGES * PAGE));
        ensure!(ok!(check_counts(&d, w.id)).changed == 0, "fresh region changed");
        fails_with!(check_counts(&other, w.id), libc::EINVAL);
        w
        // The workload exits here.
    };
    fails_with!(check_counts(&d, w.id), libc::ESRCH);
    ok!(by_id(&d, IOCTL_REGION_CHECKPOINT, w.id));
    ok!(by_id(&d, IOCTL_REGION_UNWATCH, w.id));
    // Regions left on a closed fd are freed with it (the unload suite then finds no user).
    let m = ok!(Anon::new(2));
    ok!(watch(&other, 0, m.addr, 2 * PAGE));
    drop(other);
    Ok(())
}
