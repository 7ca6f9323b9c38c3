//! Copy-on-write figures from the kernel engine: `/dev/atomik`'s REGION_COW.
//!
//! The userspace engine ([`super::cow`]) tells a copy from the original by page frame
//! numbers, which pagemap shows only to CAP_SYS_ADMIN. The module knows which page each
//! address maps and answers, for any process the caller may watch (the access of
//! `/proc/PID/mem`), how many pages are shared, how many addresses got their own copy since
//! the previous sample, and how many of those copies kept the original's content. See
//! `RegionCow` in `abi.rs` for the exact definitions; no frame number leaves the kernel.

use super::error::{Result, TrackError};
use super::ranges::{Range, PAGE};
use crate::abi::{
    Info, RegionCow, RegionWatch, DEVICE_PATH, FEATURE_REGION, IOCTL_GET_INFO, IOCTL_REGION_COW,
    IOCTL_REGION_WATCH, REGION_WATCH_COW,
};
use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;

/// The figures of one sample, summed over the watched ranges.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KernelCowFigures {
    /// Anonymous present pages (not the zero page).
    pub anon: u64,
    /// Of those, shared copy-on-write (mapped more than once).
    pub shared: u64,
    /// COW breaks since the previous sample: addresses that got their own copy.
    pub breaks: u64,
    /// Of the breaks, copies whose content equals the shared original's.
    pub identical: u64,
}

/// REGION_COW regions over some ranges of one process, on one `/dev/atomik` fd (closing it
/// frees them).
pub struct KernelCow {
    pid: i32,
    dev: File,
    regions: Vec<u32>,
    ranges: Vec<Range>,
}

/// Whether `/dev/atomik` is there and offers regions (REGION_COW came with them).
pub fn available() -> bool {
    let Ok(dev) = File::open(DEVICE_PATH) else { return false };
    let mut info = Info::default();
    ioctl(&dev, IOCTL_GET_INFO, &mut info).is_ok() && info.features & FEATURE_REGION != 0
}

fn ioctl<T>(dev: &File, cmd: u32, arg: &mut T) -> io::Result<()> {
    // SAFETY: `cmd` is an atomik ioctl whose argument is a `T` (abi.rs pairs them); `arg` is a
    // valid, exclusive `T` for the duration of the call.
    if unsafe { libc::ioctl(dev.as_raw_fd(), cmd as _, arg as *mut T) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

impl KernelCow {
    /// Watches `ranges` of `pid` (0 = the caller) for copy-on-write; the first sample is taken
    /// now. Fails as REGION_WATCH does: permission (the access of `/proc/PID/mem`), no such
    /// process, or the module's limits (`max_region_pages`, `max_regions_per_fd`).
    pub fn watch(pid: i32, ranges: &[Range]) -> Result<KernelCow> {
        let dev = File::open(DEVICE_PATH).map_err(|e| TrackError::io(DEVICE_PATH, e))?;
        let mut k = KernelCow { pid, dev, regions: Vec::new(), ranges: ranges.to_vec() };
        for r in ranges {
            let mut w = RegionWatch {
                pid,
                flags: REGION_WATCH_COW,
                start: r.start,
                len: r.end - r.start,
                ..Default::default()
            };
            ioctl(&k.dev, IOCTL_REGION_WATCH, &mut w).map_err(|e| k.error("REGION_WATCH (COW)", e))?;
            k.regions.push(w.id);
        }
        Ok(k)
    }

    fn error(&self, call: &'static str, e: io::Error) -> TrackError {
        match e.raw_os_error() {
            Some(libc::EPERM) | Some(libc::EACCES) => TrackError::Permission {
                pid: self.pid,
                what: "watching copy-on-write through /dev/atomik",
                right: super::error::RIGHT_PTRACE_READ,
            },
            Some(libc::ESRCH) => TrackError::NoProcess { pid: self.pid },
            _ => TrackError::Sys { pid: self.pid, call, source: e },
        }
    }

    /// The next sample: figures since the previous one (the watch, or the last `sample`).
    pub fn sample(&mut self) -> Result<KernelCowFigures> {
        let mut f = KernelCowFigures::default();
        for &id in &self.regions {
            let mut c = RegionCow { id, ..Default::default() };
            ioctl(&self.dev, IOCTL_REGION_COW, &mut c).map_err(|e| self.error("REGION_COW", e))?;
            f.anon += c.anon;
            f.shared += c.shared;
            f.breaks += c.breaks;
            f.identical += c.identical;
        }
        Ok(f)
    }

    /// The watched ranges.
    pub fn ranges(&self) -> &[Range] {
        &self.ranges
    }

    /// Pages watched.
    pub fn pages(&self) -> u64 {
        self.ranges.iter().map(|r| (r.end - r.start) / PAGE).sum()
    }
}

/// What the monitor keeps per process: the kernel watch and the anonymous mappings it was
/// made for (re-made when they change).
pub struct ProcessCow {
    maps: Vec<Range>,
    cow: KernelCow,
}

/// Samples `pid`'s copy-on-write through the kernel, watching the populated parts of its
/// private anonymous writable mappings ([`super::monitor::default_ranges`]). `None` when the
/// watch was (re)made by this call: no interval to report yet.
pub fn sample_process(
    proc_root: &std::path::Path,
    pid: i32,
    slot: &mut Option<ProcessCow>,
) -> Result<Option<KernelCowFigures>> {
    let maps = super::monitor::anon_mappings(proc_root, pid)?;
    if let Some(p) = slot.as_mut().filter(|p| p.maps == maps) {
        return p.cow.sample().map(Some);
    }
    *slot = None;
    let ranges = super::monitor::default_ranges(proc_root, pid)?;
    *slot = Some(ProcessCow { maps, cow: KernelCow::watch(pid, &ranges)? });
    Ok(None)
}

/// Which engine tells COW copies apart for this caller ([`caller_engine`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CowEngine {
    /// Page frame numbers from pagemap (CAP_SYS_ADMIN): the userspace engine.
    Pfn,
    /// `/dev/atomik` REGION_COW: the kernel engine, for processes the caller may watch.
    Kernel,
    /// Neither: only shared→exclusive transitions can be counted.
    None,
}

impl CowEngine {
    /// A short name, as `atomikctl status` and the monitor's notes print it.
    pub fn name(self) -> &'static str {
        match self {
            CowEngine::Pfn => super::monitor::COW_ENGINE_PFN,
            CowEngine::Kernel => super::monitor::COW_ENGINE_KERNEL,
            CowEngine::None => "none",
        }
    }

    /// Why this engine, in a few words.
    pub fn note(self) -> &'static str {
        match self {
            CowEngine::Pfn => "page frame numbers are visible (CAP_SYS_ADMIN)",
            CowEngine::Kernel => {
                "page frame numbers are hidden (needs CAP_SYS_ADMIN); the module counts copies"
            }
            CowEngine::None => {
                "page frame numbers are hidden (needs CAP_SYS_ADMIN) and /dev/atomik offers no \
                 regions: only shared→exclusive transitions are counted"
            }
        }
    }
}

/// Whether this process sees page frame numbers in pagemap (a present page of its own stack).
pub fn pfns_visible() -> bool {
    let here = 0u64;
    let addr = std::hint::black_box(&here) as *const u64 as u64 & !(PAGE - 1);
    let Ok(pm) = super::pagemap::Pagemap::open(std::process::id() as i32) else { return false };
    let mut e = Vec::new();
    pm.read(Range::new(addr, addr + PAGE), &mut e).is_ok() && e.first().is_some_and(|e| e.pfn().is_some())
}

/// The engine the monitor uses for this caller's COW copy columns: PFNs when visible, else
/// the kernel module when it is loaded with regions.
pub fn caller_engine() -> CowEngine {
    if pfns_visible() {
        CowEngine::Pfn
    } else if available() {
        CowEngine::Kernel
    } else {
        CowEngine::None
    }
}
