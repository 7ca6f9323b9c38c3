//! Copy-on-write detection by the kernel engine (REGION_COW): a parent fills pages and forks,
//! the child writes some with new bytes and some with the bytes already there; the kernel's
//! shared / break / identical-copy figures must equal what was done, equal the userspace
//! engine's (pagemap PFNs, root only) on the same processes, reach an unprivileged user
//! watching its own processes, and be refused for another user's process.

use crate::check::Report;
use crate::dev::{Dev, R};
use crate::region::{as_uid, by_id, content, param, read_u64, write_u64, Anon, Child};
use crate::system::{become_user, in_child};
use atomik::abi::*;
use atomik::track::cow::{cow_breaks, identical_copies, sample_anon};
use std::path::Path;

const PAGE: u64 = 4096;
pub(crate) const N: u64 = 48;
/// Pages the child writes with new bytes, and with the bytes already there.
pub(crate) const NEW: [u64; 5] = [3, 7, 11, 20, 33];
pub(crate) const SAME: [u64; 4] = [0, 8, 21, 47];

pub(crate) fn watch_cow(d: &Dev, pid: i32, start: u64, pages: u64) -> R<RegionWatch> {
    let mut w = RegionWatch { pid, flags: REGION_WATCH_COW, start, len: pages * PAGE, ..Default::default() };
    d.raw(IOCTL_REGION_WATCH, &mut w as *mut _ as usize)?;
    Ok(w)
}

/// REGION_COW with per-page bits for `pages` pages.
pub(crate) fn cow(d: &Dev, id: u32, pages: u64) -> R<(RegionCow, Vec<u8>)> {
    let mut bits = vec![0xffu8; pages as usize];
    let mut c =
        RegionCow { id, page_bits: bits.as_mut_ptr() as u64, page_bits_len: pages, ..Default::default() };
    d.raw(IOCTL_REGION_COW, &mut c as *mut _ as usize)?;
    Ok((c, bits))
}

/// A parent process that fills `n` pages (content id `i + 1`) and forks a child that writes
/// on command; the parent only waits for the child, so its pages stay as they were.
pub(crate) struct Family {
    pub(crate) parent: Child,
    pub(crate) child: i32,
    pub(crate) addr: u64,
}

/// Command to the child: write page `i` with new bytes, or with its current bytes.
fn op(i: u64, same: bool) -> u64 {
    (if same { 2 << 32 } else { 1 << 32 }) | i
}

impl Family {
    /// As `uid` when given (dumpable, so that processes of the same uid may watch it).
    pub(crate) fn start(n: u64, uid: Option<u32>) -> Result<Family, String> {
        let (parent, addr) = Child::spawn(move |cmd, ack| {
            if let Some(uid) = uid {
                // SAFETY: credential syscalls and prctl in the forked process.
                let ok = unsafe {
                    libc::setgroups(0, std::ptr::null()) == 0
                        && libc::setgid(uid) == 0
                        && libc::setuid(uid) == 0
                        && libc::prctl(libc::PR_SET_DUMPABLE, 1, 0, 0, 0) == 0
                };
                if !ok {
                    write_u64(ack, 0);
                    return 1;
                }
            }
            let Ok(m) = Anon::new(n) else {
                write_u64(ack, 0);
                return 1;
            };
            for i in 0..n {
                m.write(i, &content(i + 1));
            }
            // SAFETY: fork(2); the child loops on commands and _exit()s.
            let pid = unsafe { libc::fork() };
            if pid == 0 {
                // The allocations a command makes, made once now: their heap pages are copied
                // here, not during a measured interval (atomikctl counts whole processes).
                drop((m.read(0), content(1000)));
                while let Some(c) = read_u64(cmd) {
                    let (kind, i) = (c >> 32, c & 0xffff_ffff);
                    if c == u64::MAX || i >= n {
                        break;
                    }
                    let bytes = if kind == 2 { m.read(i) } else { content(1000 + i) };
                    m.write(i, &bytes);
                    write_u64(ack, c);
                }
                // SAFETY: leaves without running the parent's destructors.
                unsafe { libc::_exit(0) };
            }
            write_u64(ack, m.addr);
            write_u64(ack, pid.max(0) as u64);
            // SAFETY: waits for our own child.
            unsafe { libc::waitpid(pid, std::ptr::null_mut(), 0) };
            0
        })?;
        let child = read_u64(parent.ack).unwrap_or(0) as i32;
        if addr == 0 || child <= 0 {
            return Err(format!("COW family (uid {uid:?}) failed to set up"));
        }
        Ok(Family { parent, child, addr })
    }

    fn write(&self, i: u64, same: bool) -> Result<(), String> {
        write_u64(self.parent.cmd, op(i, same));
        match read_u64(self.parent.ack) {
            Some(v) if v == op(i, same) => Ok(()),
            other => Err(format!("child write of page {i}: ack {other:?}")),
        }
    }

    /// The child writes `NEW` with new bytes and `SAME` with the same bytes.
    pub(crate) fn write_all(&self) -> Result<(), String> {
        for &i in &NEW {
            self.write(i, false)?;
        }
        for &i in &SAME {
            self.write(i, true)?;
        }
        Ok(())
    }
}

/// The per-page bits expected after `write_all`, against a sample taken right after the fork.
fn expected_bits(i: u64) -> u8 {
    if NEW.contains(&i) {
        COW_PAGE_ANON | COW_PAGE_BROKE
    } else if SAME.contains(&i) {
        COW_PAGE_ANON | COW_PAGE_BROKE | COW_PAGE_IDENTICAL
    } else {
        COW_PAGE_ANON | COW_PAGE_SHARED
    }
}

/// The kernel's figures for the child before and after `write_all`, checked against the
/// truth: returns an error naming the first difference.
fn kernel_sees(d: &Dev, f: &Family) -> Result<(), String> {
    let w = ok!(watch_cow(d, f.child, f.addr, N));
    let (c0, bits0) = ok!(cow(d, w.id, N));
    ensure!(
        (c0.pages, c0.anon, c0.shared, c0.breaks, c0.identical) == (N, N, N, 0, 0),
        "before the writes: {c0:?}"
    );
    ensure!(bits0.iter().all(|&b| b == COW_PAGE_ANON | COW_PAGE_SHARED), "bits before: {bits0:?}");
    f.write_all()?;
    let (c1, bits1) = ok!(cow(d, w.id, N));
    let k = NEW.len() as u64 + SAME.len() as u64;
    ensure!(
        (c1.anon, c1.shared, c1.breaks, c1.identical) == (N, N - k, k, SAME.len() as u64),
        "after {} new and {} same writes: {c1:?}",
        NEW.len(),
        SAME.len()
    );
    for i in 0..N {
        ensure!(bits1[i as usize] == expected_bits(i), "page {i}: bits {:#x}", bits1[i as usize]);
    }
    // Breaks count since the previous sample: none now; then one more (a still-shared page
    // written with the same bytes), while rewriting a page already copied is no break.
    let (c2, _) = ok!(cow(d, w.id, N));
    ensure!((c2.shared, c2.breaks, c2.identical) == (N - k, 0, 0), "a sample with no writes: {c2:?}");
    f.write(3, false)?;
    f.write(5, true)?;
    let (c3, bits3) = ok!(cow(d, w.id, N));
    ensure!((c3.shared, c3.breaks, c3.identical) == (N - k - 1, 1, 1), "two more writes: {c3:?}");
    ensure!(bits3[5] == COW_PAGE_ANON | COW_PAGE_BROKE | COW_PAGE_IDENTICAL, "page 5: {:#x}", bits3[5]);
    ensure!(bits3[3] == COW_PAGE_ANON, "page 3 (rewritten copy): {:#x}", bits3[3]);
    Ok(())
}

fn in_range(a: u64, start: u64) -> bool {
    (start..start + N * PAGE).contains(&a)
}

/// Root: the kernel engine on the child and on the parent, and the userspace engine on the
/// same processes, agree with each other and with what was written.
fn differential() -> Result<(), String> {
    let proc_root = Path::new("/proc");
    let d = ok!(Dev::open());
    let f = Family::start(N, None)?;
    let wc = ok!(watch_cow(&d, f.child, f.addr, N));
    let wp = ok!(watch_cow(&d, f.parent.pid, f.addr, N));
    let before = sample_anon(proc_root, f.child).map_err(|e| format!("userspace sample: {e}"))?;
    ensure!(before.pfn_visible, "root sees no PFNs");
    let us_shared = before.shared.iter().filter(|(a, _)| in_range(*a, f.addr)).count() as u64;
    let (k0, _) = ok!(cow(&d, wc.id, N));
    ensure!(k0.shared == N && us_shared == N, "shared before: kernel {}, userspace {us_shared}", k0.shared);
    f.write_all()?;
    let (k1, _) = ok!(cow(&d, wc.id, N));
    let b = cow_breaks(proc_root, &before).map_err(|e| format!("userspace breaks: {e}"))?;
    let copied: Vec<(u64, u64)> =
        b.copied_pages.iter().copied().filter(|(a, _)| in_range(*a, f.addr)).collect();
    let same = identical_copies(proc_root, f.child, f.parent.pid, &copied)
        .map_err(|e| format!("userspace identical copies: {e}"))?;
    let now = sample_anon(proc_root, f.child).map_err(|e| format!("userspace sample: {e}"))?;
    let us_shared_now = now.shared.iter().filter(|(a, _)| in_range(*a, f.addr)).count() as u64;
    let k = (NEW.len() + SAME.len()) as u64;
    ensure!(
        (k1.breaks, k1.identical, k1.shared) == (k, SAME.len() as u64, N - k),
        "kernel after the writes: {k1:?}"
    );
    ensure!(
        (copied.len() as u64, same.compared, same.identical, us_shared_now)
            == (k1.breaks, k1.breaks, k1.identical, k1.shared),
        "userspace: {} copied, {same:?}, {us_shared_now} shared; kernel {k1:?}",
        copied.len()
    );
    // The parent kept its pages: the ones the child copied are now mapped once, the same
    // pages as before, so they are no longer shared and are not breaks.
    let (p1, _) = ok!(cow(&d, wp.id, N));
    ensure!((p1.anon, p1.shared, p1.breaks) == (N, N - k, 0), "parent: {p1:?}");
    Ok(())
}

/// uid 1000 watching its own processes gets the figures from the module, which the userspace
/// engine cannot give it (no PFNs); its watch of root's and of uid 1001's processes is refused.
fn unprivileged() -> Result<(), String> {
    let own = Family::start(N, Some(1000))?;
    let other = Family::start(N, Some(1001))?;
    let me = std::process::id() as i32;
    let root_pages = ok!(Anon::new(1));
    in_child(become_user, || {
        let d = ok!(Dev::open());
        let before =
            sample_anon(Path::new("/proc"), own.child).map_err(|e| format!("pagemap as uid 1000: {e}"))?;
        ensure!(!before.pfn_visible, "uid 1000 sees PFNs");
        kernel_sees(&d, &own)?;
        let b = cow_breaks(Path::new("/proc"), &before).map_err(|e| e.to_string())?;
        ensure!(b.copied.is_none(), "the userspace engine counted copies without PFNs: {b:?}");
        fails_with!(watch_cow(&d, other.child, other.addr, N), libc::EPERM);
        fails_with!(watch_cow(&d, me, root_pages.addr, 1), libc::EPERM);
        Ok(())
    })?;
    // uid 1001 cannot watch uid 1000's family either.
    in_child(as_uid(1001), || {
        let d = ok!(Dev::open());
        fails_with!(watch_cow(&d, own.parent.pid, own.addr, N), libc::EPERM);
        Ok(())
    })
}

fn bad_requests() -> Result<(), String> {
    let d = ok!(Dev::open());
    let f = Family::start(N, None)?;
    let plain = ok!(crate::region::watch(&d, f.child, f.addr, N * PAGE));
    let mut c = RegionCow { id: plain.id, ..Default::default() };
    fails_with!(d.raw(IOCTL_REGION_COW, &mut c as *mut _ as usize), libc::EINVAL);
    for flags in [2, 3, 0x8000_0000] {
        let mut w = RegionWatch { pid: f.child, flags, start: f.addr, len: N * PAGE, ..Default::default() };
        fails_with!(d.raw(IOCTL_REGION_WATCH, &mut w as *mut _ as usize), libc::EINVAL);
    }
    let w = ok!(watch_cow(&d, f.child, f.addr, N));
    let mut c = RegionCow { id: w.id, flags: 1, ..Default::default() };
    fails_with!(d.raw(IOCTL_REGION_COW, &mut c as *mut _ as usize), libc::EINVAL);
    let mut c = RegionCow { id: w.id + 100, ..Default::default() };
    fails_with!(d.raw(IOCTL_REGION_COW, &mut c as *mut _ as usize), libc::EINVAL);
    let mut bits = vec![0u8; N as usize];
    let mut c = RegionCow {
        id: w.id,
        page_bits: bits.as_mut_ptr() as u64,
        page_bits_len: N - 1,
        ..Default::default()
    };
    fails_with!(d.raw(IOCTL_REGION_COW, &mut c as *mut _ as usize), libc::EINVAL);
    // Failed samples leave the previous one: after two writes, a bad bits buffer (EFAULT) and
    // a read-only request (EFAULT) change nothing, and the next sample still sees both breaks.
    f.write(1, false)?;
    f.write(2, true)?;
    let mut c = RegionCow { id: w.id, page_bits: 8, page_bits_len: N, ..Default::default() };
    fails_with!(d.raw(IOCTL_REGION_COW, &mut c as *mut _ as usize), libc::EFAULT);
    let ro = ok!(Anon::new(1));
    let req = RegionCow { id: w.id, ..Default::default() };
    // SAFETY: writes one request into our own page, then makes that page read-only.
    unsafe {
        std::ptr::write(ro.addr as *mut RegionCow, req);
        libc::mprotect(ro.addr as *mut _, PAGE as usize, libc::PROT_READ);
    }
    fails_with!(d.raw(IOCTL_REGION_COW, ro.addr as usize), libc::EFAULT);
    let (c, _) = ok!(cow(&d, w.id, N));
    ensure!((c.breaks, c.identical) == (2, 1), "after failed samples: {c:?}");
    // A COW record counts the region twice against max_region_pages.
    let limit = param("max_region_pages", 262_144);
    let d2 = ok!(Dev::open());
    let half = limit / 2 + 1;
    fails_with!(watch_cow(&d2, 0, 0x1000_0000_0000, half), libc::ENOMEM);
    // The family ends: its address space is gone.
    let (pid, addr) = (f.child, f.addr);
    drop(f);
    fails_with!(cow(&d, w.id, N), libc::ESRCH);
    fails_with!(watch_cow(&d, pid, addr, N), libc::ESRCH);
    ok!(by_id(&d, IOCTL_REGION_UNWATCH, w.id));
    fails_with!(cow(&d, w.id, N), libc::EINVAL);
    Ok(())
}

pub fn run(report: &mut Report) {
    report.run(
        "cow: kernel and userspace engines agree on shared pages, breaks, identical copies",
        differential,
    );
    report.run("cow: uid 1000 gets COW figures for its own processes; others' refused (EPERM)", unprivileged);
    report
        .run("cow: bad requests get EINVAL/EFAULT/ENOMEM/ESRCH; failed samples change nothing", bad_requests);
}
