//! `/proc/PID/pagemap` entries and soft-dirty bits.
//!
//! One u64 per virtual page: bits 0–54 PFN (zero without CAP_SYS_ADMIN), 55 soft-dirty,
//! 56 exclusively mapped, 57 uffd-wp, 61 file page or shared anon, 62 swapped, 63 present.

use super::error::{Result, TrackError, RIGHT_CLEAR_REFS, RIGHT_PTRACE_READ};
use super::ranges::{Range, PAGE};
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// One pagemap entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[repr(transparent)]
pub struct PageEntry(pub u64);

impl PageEntry {
    /// Page is in RAM.
    pub fn present(self) -> bool {
        self.0 >> 63 & 1 == 1
    }
    /// Page is in swap.
    pub fn swapped(self) -> bool {
        self.0 >> 62 & 1 == 1
    }
    /// File-backed page or shared anonymous page.
    pub fn file_or_shared(self) -> bool {
        self.0 >> 61 & 1 == 1
    }
    /// Mapped by exactly one page table entry (not shared copy-on-write, not KSM-merged).
    pub fn exclusive(self) -> bool {
        self.0 >> 56 & 1 == 1
    }
    /// Written since the last `clear_refs` 4 (only with CONFIG_MEM_SOFT_DIRTY).
    pub fn soft_dirty(self) -> bool {
        self.0 >> 55 & 1 == 1
    }
    /// Page frame number when present and visible (CAP_SYS_ADMIN), else `None`.
    pub fn pfn(self) -> Option<u64> {
        let pfn = self.0 & ((1 << 55) - 1);
        (self.present() && pfn != 0).then_some(pfn)
    }
    /// Present, private anonymous page (the kind copy-on-write and KSM deal with).
    pub fn anon_present(self) -> bool {
        self.present() && !self.file_or_shared()
    }
}

/// An open `/proc/PID/pagemap`.
#[derive(Debug)]
pub struct Pagemap {
    file: File,
    path: PathBuf,
    pid: i32,
}

impl Pagemap {
    /// Opens `/proc/PID/pagemap`.
    pub fn open(pid: i32) -> Result<Pagemap> {
        Pagemap::open_in(Path::new("/proc"), pid)
    }

    /// Opens `<proc_root>/PID/pagemap`.
    pub fn open_in(proc_root: &Path, pid: i32) -> Result<Pagemap> {
        let path = proc_root.join(pid.to_string()).join("pagemap");
        let file = File::open(&path)
            .map_err(|e| TrackError::proc_io(pid, &path, e, "opening pagemap", RIGHT_PTRACE_READ))?;
        Ok(Pagemap { file, path, pid })
    }

    /// The process.
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// The open file (for the PAGEMAP_SCAN ioctl).
    pub fn file(&self) -> &File {
        &self.file
    }

    /// Reads the entries of every page of `range` into `out` (cleared first).
    pub fn read(&self, range: Range, out: &mut Vec<PageEntry>) -> Result<()> {
        let n = range.pages() as usize;
        out.clear();
        out.resize(n, PageEntry(0));
        // SAFETY: PageEntry is repr(transparent) over u64; viewing the n initialised entries as 8n bytes is sound, and every
        // bit pattern is a valid u64.
        let bytes = unsafe { std::slice::from_raw_parts_mut(out.as_mut_ptr() as *mut u8, n * 8) };
        let mut done = 0;
        while done < bytes.len() {
            let off = (range.start / PAGE) * 8 + done as u64;
            match self.file.read_at(&mut bytes[done..], off) {
                Ok(0) => {
                    return Err(TrackError::BadRange {
                        pid: self.pid,
                        start: range.start,
                        end: range.end,
                        why: "pagemap ended early",
                    })
                }
                Ok(k) => done += k,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    return Err(TrackError::proc_io(
                        self.pid,
                        &self.path,
                        e,
                        "reading pagemap",
                        RIGHT_PTRACE_READ,
                    ))
                }
            }
        }
        Ok(())
    }
}

/// `/proc/kpageflags` bit: the page is a KSM page.
pub const KPF_KSM: u64 = 1 << 21;

/// The `/proc/kpageflags` word of each PFN, or `None` when the file is not readable (it
/// needs CAP_SYS_ADMIN).
pub fn kpageflags(pfns: &[u64]) -> Option<Vec<u64>> {
    kpage_words(Path::new("/proc/kpageflags"), pfns)
}

/// The `/proc/kpagecount` word of each PFN (how many page tables map the page), or `None`
/// when the file is not readable (it needs CAP_SYS_ADMIN).
pub fn kpagecount(pfns: &[u64]) -> Option<Vec<u64>> {
    kpage_words(Path::new("/proc/kpagecount"), pfns)
}

/// The 8-byte word of each PFN in a `/proc/kpage*` file, one `pread` per run of
/// consecutive PFNs. Not the `procfs` crate's readers: they read through an 8 KiB buffer
/// per PFN asked for (a sample of 500 forked processes' shared pages spent more time there
/// than in every pagemap read of the sample).
fn kpage_words(path: &Path, pfns: &[u64]) -> Option<Vec<u64>> {
    let f = File::open(path).ok()?;
    let mut out = vec![0u64; pfns.len()];
    let mut i = 0;
    while i < pfns.len() {
        let mut j = i + 1;
        while j < pfns.len() && pfns[j] == pfns[j - 1].wrapping_add(1) {
            j += 1;
        }
        // SAFETY: the j − i initialised u64s of `out` viewed as bytes; any bit pattern is a
        // valid u64.
        let bytes =
            unsafe { std::slice::from_raw_parts_mut(out[i..j].as_mut_ptr().cast::<u8>(), (j - i) * 8) };
        f.read_exact_at(bytes, pfns[i].checked_mul(8)?).ok()?;
        i = j;
    }
    Some(out)
}

/// Clears the soft-dirty bits of every page of `pid` (`echo 4 > /proc/PID/clear_refs`).
/// This is process-wide: another soft-dirty user of the same process (CRIU) is disturbed.
pub fn clear_soft_dirty(pid: i32) -> Result<()> {
    let path = PathBuf::from(format!("/proc/{pid}/clear_refs"));
    std::fs::write(&path, b"4")
        .map_err(|e| TrackError::proc_io(pid, &path, e, "clearing soft-dirty", RIGHT_CLEAR_REFS))
}

/// Whether this kernel tracks soft-dirty bits (CONFIG_MEM_SOFT_DIRTY). Probed once: a page
/// written for the first time is always soft-dirty when the feature exists.
pub fn soft_dirty_supported() -> bool {
    static SUPPORTED: OnceLock<bool> = OnceLock::new();
    *SUPPORTED.get_or_init(|| {
        let page = vec![0u8; 2 * PAGE as usize].into_boxed_slice();
        let addr = (page.as_ptr() as u64).div_ceil(PAGE) * PAGE;
        // SAFETY: addr lies inside `page` (it is rounded up by less than one page inside a
        // two-page buffer); a volatile write makes sure the store reaches the page.
        unsafe { std::ptr::write_volatile(addr as *mut u8, 1) };
        let mut e = Vec::new();
        let ok = Pagemap::open(std::process::id() as i32)
            .and_then(|pm| pm.read(Range::new(addr, addr + PAGE), &mut e))
            .is_ok();
        drop(page);
        ok && e.first().is_some_and(|e| e.present() && e.soft_dirty())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_bits() {
        let e = PageEntry(1 << 63 | 1 << 56 | 1 << 55 | 0x1234);
        assert!(e.present() && e.exclusive() && e.soft_dirty() && e.anon_present());
        assert!(!e.swapped() && !e.file_or_shared());
        assert_eq!(e.pfn(), Some(0x1234));
        assert_eq!(PageEntry(1 << 63).pfn(), None, "PFN hidden without CAP_SYS_ADMIN");
        assert!(!PageEntry(1 << 63 | 1 << 61).anon_present());
    }

    #[test]
    fn own_touched_page_is_present() {
        let buf = vec![7u8; 3 * PAGE as usize];
        let addr = (buf.as_ptr() as u64).div_ceil(PAGE) * PAGE;
        let pm = Pagemap::open(std::process::id() as i32).unwrap();
        let mut e = Vec::new();
        pm.read(Range::new(addr, addr + PAGE), &mut e).unwrap();
        assert!(e[0].present(), "{:#x}", e[0].0);
        println!("soft-dirty supported here: {}", soft_dirty_supported());
    }

    /// Our kpage reader gives what the `procfs` crate's readers give, for runs of
    /// consecutive PFNs and lone ones.
    #[test]
    fn kpage_words_match_the_procfs_crate() {
        let buf = vec![3u8; 16 * PAGE as usize];
        let addr = (buf.as_ptr() as u64).div_ceil(PAGE) * PAGE;
        let mut e = Vec::new();
        Pagemap::open(std::process::id() as i32)
            .unwrap()
            .read(Range::new(addr, addr + 8 * PAGE), &mut e)
            .unwrap();
        let mut pfns: Vec<u64> = e.iter().filter_map(|e| e.pfn()).collect();
        let (Some(first), Ok(mut flags), Ok(mut count)) =
            (pfns.first().copied(), procfs::KPageFlags::new(), procfs::KPageCount::new())
        else {
            println!("SKIP: PFNs or /proc/kpage* not readable (needs CAP_SYS_ADMIN)");
            return;
        };
        pfns.extend([first + 1, first + 2, first + 3, 1, first]);
        let want_flags: Vec<u64> =
            pfns.iter().map(|&p| flags.get_info(procfs::process::Pfn(p)).unwrap().bits()).collect();
        let want_count: Vec<u64> =
            pfns.iter().map(|&p| count.get_count_at_pfn(procfs::process::Pfn(p)).unwrap()).collect();
        // Flags that do not change while the pages stay mapped (LRU and the like do):
        // anonymous, no page, KSM, THP, zero page.
        let stable = |v: Vec<u64>| -> Vec<u64> {
            v.into_iter().map(|f| f & (1 << 12 | 1 << 20 | 1 << 21 | 1 << 22 | 1 << 24)).collect()
        };
        assert_eq!(stable(kpageflags(&pfns).unwrap()), stable(want_flags));
        assert_eq!(kpagecount(&pfns).unwrap(), want_count);
        assert!(
            want_count[..e.len().min(8)].iter().all(|&n| n >= 1),
            "our own pages are mapped: {want_count:?}"
        );
        drop(buf);
    }
}
