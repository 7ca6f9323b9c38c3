//! Written-page detection with the `PAGEMAP_SCAN` ioctl (Linux ≥ 6.7) over memory that is
//! write-protected with userfaultfd in asynchronous mode (`UFFD_FEATURE_WP_ASYNC`).
//!
//! The kernel clears a page's uffd-wp bit on its first write without any fault handler;
//! `PAGEMAP_SCAN` returns the written pages as compact ranges and, with
//! `PM_SCAN_WP_MATCHING`, write-protects them again in the same walk. This is the
//! replacement for soft-dirty on kernels built without CONFIG_MEM_SOFT_DIRTY.
//!
//! The userfaultfd must be created by the process that owns the memory ([`WpArm::arm`]).
//! Any process with ptrace read access can then scan it through `/proc/PID/pagemap`.

use super::error::{Result, TrackError};
use super::pagemap::Pagemap;
use super::ranges::{Range, PAGE};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// Category: async write-protection is enabled for the page.
pub const PAGE_IS_WPALLOWED: u64 = 1 << 0;
/// Category: written since it was last write-protected.
pub const PAGE_IS_WRITTEN: u64 = 1 << 1;
/// Category: page is present.
pub const PAGE_IS_PRESENT: u64 = 1 << 3;
/// Category: page is swapped out.
pub const PAGE_IS_SWAPPED: u64 = 1 << 4;
/// Category: page maps the shared zero page.
pub const PAGE_IS_PFNZERO: u64 = 1 << 5;
/// Flag: write-protect the matched pages.
pub const PM_SCAN_WP_MATCHING: u64 = 1 << 0;
/// Flag: fail with EPERM on a page without async write-protection.
pub const PM_SCAN_CHECK_WPASYNC: u64 = 1 << 1;

/// `struct pm_scan_arg` from `<linux/fs.h>`.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
struct PmScanArg {
    size: u64,
    flags: u64,
    start: u64,
    end: u64,
    walk_end: u64,
    vec: u64,
    vec_len: u64,
    max_pages: u64,
    category_inverted: u64,
    category_mask: u64,
    category_anyof_mask: u64,
    return_mask: u64,
}
const _: () = assert!(size_of::<PmScanArg>() == 96);

/// `struct page_region` from `<linux/fs.h>`.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
struct PageRegion {
    start: u64,
    end: u64,
    categories: u64,
}
const _: () = assert!(size_of::<PageRegion>() == 24);

const fn iowr(ty: u32, nr: u32, size: usize) -> u64 {
    ((3u32 << 30) | ((size as u32) << 16) | (ty << 8) | nr) as u64
}

/// `_IOWR('f', 16, struct pm_scan_arg)`.
const PAGEMAP_SCAN: u64 = iowr(b'f' as u32, 16, size_of::<PmScanArg>());

#[repr(C)]
struct UffdioApi {
    api: u64,
    features: u64,
    ioctls: u64,
}
#[repr(C)]
struct UffdioRange {
    start: u64,
    len: u64,
}
#[repr(C)]
struct UffdioRegister {
    range: UffdioRange,
    mode: u64,
    ioctls: u64,
}
#[repr(C)]
struct UffdioWriteprotect {
    range: UffdioRange,
    mode: u64,
}
const UFFD_API: u64 = 0xAA;
const UFFD_FEATURE_WP_UNPOPULATED: u64 = 1 << 13;
const UFFD_FEATURE_WP_ASYNC: u64 = 1 << 15;
const UFFD_USER_MODE_ONLY: i32 = 1;
const UFFDIO_API: u64 = iowr(0xAA, 0x3F, size_of::<UffdioApi>());
const UFFDIO_REGISTER: u64 = iowr(0xAA, 0x00, size_of::<UffdioRegister>());
const UFFDIO_WRITEPROTECT: u64 = iowr(0xAA, 0x06, size_of::<UffdioWriteprotect>());
const UFFDIO_REGISTER_MODE_WP: u64 = 1 << 1;
const UFFDIO_WRITEPROTECT_MODE_WP: u64 = 1 << 0;

fn sys(pid: i32, call: &'static str) -> TrackError {
    TrackError::Sys { pid, call, source: io::Error::last_os_error() }
}

/// Asynchronous write-protection of some of this process's own memory. Keep it alive for
/// as long as the memory is tracked: dropping it closes the userfaultfd and disarms.
#[derive(Debug)]
pub struct WpArm {
    fd: OwnedFd,
    ranges: Vec<Range>,
}

impl WpArm {
    /// Registers `ranges` (page aligned, mapped, private anonymous or shmem) of the calling
    /// process for async write-protection and write-protects them now.
    pub fn arm(ranges: &[Range]) -> Result<WpArm> {
        let me = std::process::id() as i32;
        // SAFETY: plain syscall with integer flags; the result is checked below.
        let fd = unsafe {
            libc::syscall(libc::SYS_userfaultfd, libc::O_CLOEXEC | libc::O_NONBLOCK | UFFD_USER_MODE_ONLY)
        };
        if fd < 0 {
            return Err(sys(me, "userfaultfd"));
        }
        // SAFETY: fd is a freshly created descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
        let mut api = UffdioApi {
            api: UFFD_API,
            features: UFFD_FEATURE_WP_ASYNC | UFFD_FEATURE_WP_UNPOPULATED,
            ioctls: 0,
        };
        // SAFETY: UFFDIO_API takes a pointer to a live, writable struct uffdio_api.
        if unsafe { libc::ioctl(fd.as_raw_fd(), UFFDIO_API as _, &mut api) } < 0 {
            return Err(sys(me, "UFFDIO_API(WP_ASYNC)"));
        }
        for r in ranges {
            if !r.is_page_aligned() {
                return Err(TrackError::BadRange {
                    pid: me,
                    start: r.start,
                    end: r.end,
                    why: "not page aligned",
                });
            }
            let mut reg = UffdioRegister {
                range: UffdioRange { start: r.start, len: r.end - r.start },
                mode: UFFDIO_REGISTER_MODE_WP,
                ioctls: 0,
            };
            // SAFETY: UFFDIO_REGISTER takes a pointer to a live, writable uffdio_register.
            if unsafe { libc::ioctl(fd.as_raw_fd(), UFFDIO_REGISTER as _, &mut reg) } < 0 {
                return Err(sys(me, "UFFDIO_REGISTER(WP)"));
            }
            let mut wp = UffdioWriteprotect {
                range: UffdioRange { start: r.start, len: r.end - r.start },
                mode: UFFDIO_WRITEPROTECT_MODE_WP,
            };
            // SAFETY: UFFDIO_WRITEPROTECT takes a pointer to a live uffdio_writeprotect.
            if unsafe { libc::ioctl(fd.as_raw_fd(), UFFDIO_WRITEPROTECT as _, &mut wp) } < 0 {
                return Err(sys(me, "UFFDIO_WRITEPROTECT"));
            }
        }
        Ok(WpArm { fd, ranges: ranges.to_vec() })
    }

    /// The armed ranges.
    pub fn ranges(&self) -> &[Range] {
        &self.ranges
    }
}

impl AsRawFd for WpArm {
    fn as_raw_fd(&self) -> i32 {
        self.fd.as_raw_fd()
    }
}

/// Runs `PAGEMAP_SCAN` over `range` with `query` (flags and category masks), appending the
/// matching pages to `out` as ranges.
fn scan(pm: &Pagemap, range: Range, query: PmScanArg, out: &mut Vec<Range>) -> Result<()> {
    scan_regions(pm, range, query, |r, _| out.push(r))
}

/// Runs `PAGEMAP_SCAN` over `range` with `query`, giving each matching run of pages with
/// the same categories (of `query.return_mask`) to `f`.
fn scan_regions(pm: &Pagemap, range: Range, query: PmScanArg, mut f: impl FnMut(Range, u64)) -> Result<()> {
    let mut regions = [PageRegion::default(); 256];
    let mut start = range.start;
    while start < range.end {
        let mut arg = PmScanArg {
            size: size_of::<PmScanArg>() as u64,
            start,
            end: range.end,
            vec: regions.as_mut_ptr() as u64,
            vec_len: regions.len() as u64,
            ..query
        };
        // SAFETY: PAGEMAP_SCAN reads and writes `arg` (live, correctly sized) and writes at
        // most vec_len PageRegions into `regions`, which has that many.
        let n = unsafe { libc::ioctl(pm.file().as_raw_fd(), PAGEMAP_SCAN as _, &mut arg) };
        if n < 0 {
            return Err(sys(pm.pid(), "PAGEMAP_SCAN"));
        }
        for r in &regions[..n as usize] {
            f(Range::new(r.start, r.end), r.categories);
        }
        if arg.walk_end <= start {
            break;
        }
        start = arg.walk_end;
    }
    Ok(())
}

/// Scans `range` of the process behind `pm` for written pages, appending them to `out`.
/// With `rearm`, write-protects them again in the same walk (so the next scan reports only
/// newer writes). Fails with EPERM (as [`TrackError::Sys`]) when part of the range is not
/// armed for async write-protection.
pub fn scan_written(pm: &Pagemap, range: Range, rearm: bool, out: &mut Vec<Range>) -> Result<()> {
    let query = PmScanArg {
        flags: PM_SCAN_CHECK_WPASYNC | if rearm { PM_SCAN_WP_MATCHING } else { 0 },
        category_mask: PAGE_IS_WRITTEN,
        return_mask: PAGE_IS_WRITTEN,
        ..Default::default()
    };
    scan(pm, range, query, out)
}

/// Pages of `range` in any of the `categories` (e.g. [`PAGE_IS_PFNZERO`]), appended to
/// `out` as ranges. Needs no write-protection. Fails with ENOTTY (as [`TrackError::Sys`])
/// on kernels before 6.7.
pub fn scan_category(pm: &Pagemap, range: Range, categories: u64, out: &mut Vec<Range>) -> Result<()> {
    let query = PmScanArg { category_anyof_mask: categories, return_mask: categories, ..Default::default() };
    scan(pm, range, query, out)
}

/// [`populated`], the pages mapping the zero page (as [`scan_category`] with
/// [`PAGE_IS_PFNZERO`]) and the swapped-out pages among them, in one walk of the page
/// tables, appended to `spans`, `zero` and `swapped`. Fails with ENOTTY (as
/// [`TrackError::Sys`]) on kernels before 6.7.
pub fn populated_and_zero(
    pm: &Pagemap,
    range: Range,
    spans: &mut Vec<Range>,
    zero: &mut Vec<Range>,
    swapped: &mut Vec<Range>,
) -> Result<()> {
    let query = PmScanArg {
        category_anyof_mask: PAGE_IS_PRESENT | PAGE_IS_SWAPPED,
        return_mask: PAGE_IS_PRESENT | PAGE_IS_SWAPPED | PAGE_IS_PFNZERO,
        ..Default::default()
    };
    scan_regions(pm, range, query, |r, cats| {
        if cats & PAGE_IS_PFNZERO != 0 {
            zero.push(r);
        }
        if cats & PAGE_IS_SWAPPED != 0 {
            swapped.push(r);
        }
        match spans.last_mut() {
            Some(last) if last.end == r.start => last.end = r.end,
            _ => spans.push(r),
        }
    })
}

/// Pages of `range` that are present or swapped (the populated ones), as ranges. Uses
/// `PAGEMAP_SCAN` (compact even for terabyte-sized reservations); on kernels without it,
/// reads pagemap in bounded chunks.
pub fn populated(pm: &Pagemap, range: Range, out: &mut Vec<Range>) -> Result<()> {
    if scan_category(pm, range, PAGE_IS_PRESENT | PAGE_IS_SWAPPED, out).is_ok() {
        return Ok(());
    }
    const CHUNK: u64 = 1 << 16;
    // Without PAGEMAP_SCAN every page costs 8 bytes of pagemap: refuse reservations too big
    // to read that way rather than stall.
    const MAX_FALLBACK: u64 = 64 << 30;
    if range.end - range.start > MAX_FALLBACK {
        return Err(TrackError::BadRange {
            pid: pm.pid(),
            start: range.start,
            end: range.end,
            why: "mapping over 64 GiB and no PAGEMAP_SCAN (Linux < 6.7) to find its used pages",
        });
    }
    let mut entries = Vec::new();
    let mut addr = range.start;
    while addr < range.end {
        let end = range.end.min(addr + CHUNK * PAGE);
        pm.read(Range::new(addr, end), &mut entries)?;
        let present = entries
            .iter()
            .enumerate()
            .filter(|(_, e)| e.present() || e.swapped())
            .map(|(i, _)| addr + i as u64 * PAGE);
        for r in super::ranges::coalesce(present) {
            match out.last_mut() {
                Some(last) if last.end == r.start => last.end = r.end,
                _ => out.push(r),
            }
        }
        addr = end;
    }
    Ok(())
}

/// Whether every page of `ranges` in the process behind `pm` is armed for async
/// write-protection, so that [`scan_written`] works there.
pub fn is_armed(pm: &Pagemap, ranges: &[Range]) -> bool {
    let mut sink = Vec::new();
    ranges.iter().all(|r| scan_written(pm, *r, false, &mut sink).is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::track::ranges::PAGE;
    use memmap2::{Advice, MmapMut};

    #[test]
    fn one_walk_gives_populated_pages_and_zero_page_mappings() {
        let len = 16 * PAGE as usize;
        // A private anonymous mapping, none populated; no huge zero page (advice only: the
        // result is ignored, as without THP the kernel refuses it).
        let mut m = MmapMut::map_anon(len).unwrap();
        let _ = m.advise(Advice::NoHugePage);
        let base = m.as_ptr() as u64;
        for i in 0..4 {
            m[i * PAGE as usize] = 1;
        }
        for i in 6..8 {
            // SAFETY: inside the 16-page mapping above; a read of an untouched page maps the
            // zero page (volatile: the value is not used).
            unsafe { std::ptr::read_volatile(m.as_ptr().add(i * PAGE as usize)) };
        }
        let pm = Pagemap::open(std::process::id() as i32).unwrap();
        let whole = Range::new(base, base + len as u64);
        let (mut spans, mut zero, mut swapped) = (Vec::new(), Vec::new(), Vec::new());
        match populated_and_zero(&pm, whole, &mut spans, &mut zero, &mut swapped) {
            Ok(()) => {
                let pages = |a: u64, b: u64| Range::new(base + a * PAGE, base + b * PAGE);
                assert_eq!(spans, vec![pages(0, 4), pages(6, 8)]);
                assert_eq!(zero, vec![pages(6, 8)]);
                assert_eq!(swapped, vec![], "no swap here");
                let mut alone = Vec::new();
                populated(&pm, whole, &mut alone).unwrap();
                assert_eq!(alone, spans, "the same populated pages as the separate scan");
            }
            Err(e) => println!("SKIP: no PAGEMAP_SCAN here: {e}"),
        }
    }

    #[test]
    fn reports_exactly_the_written_pages_then_rearms() {
        let len = 16 * PAGE as usize;
        // A private anonymous mapping, none populated.
        let mut m = MmapMut::map_anon(len).unwrap();
        let base = m.as_ptr() as u64;
        // Touch half the pages before arming, leave the rest unpopulated.
        for i in 0..8 {
            m[i * PAGE as usize] = 1;
        }
        let whole = Range::new(base, base + len as u64);
        let arm = match WpArm::arm(&[whole]) {
            Ok(a) => a,
            Err(e) => {
                println!("SKIP: userfaultfd async write-protect unavailable here: {e}");
                return;
            }
        };
        let pm = Pagemap::open(std::process::id() as i32).unwrap();
        assert!(is_armed(&pm, &[whole]));
        let mut w = Vec::new();
        scan_written(&pm, whole, true, &mut w).unwrap();
        assert_eq!(w, vec![], "nothing written since arming");
        for i in [3usize, 4, 12] {
            m[i * PAGE as usize + 5] = 9;
        }
        scan_written(&pm, whole, true, &mut w).unwrap();
        assert_eq!(
            w,
            vec![
                Range::new(base + 3 * PAGE, base + 5 * PAGE),
                Range::new(base + 12 * PAGE, base + 13 * PAGE)
            ]
        );
        w.clear();
        scan_written(&pm, whole, true, &mut w).unwrap();
        assert_eq!(w, vec![], "re-armed by the previous scan");
        drop(arm);
    }
}
