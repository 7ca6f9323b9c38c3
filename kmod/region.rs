// SPDX-License-Identifier: GPL-2.0
//! Page-change regions (REGION_* ioctls): the kernel engine of page-change detection.
//!
//! A region is a page range of one address space with one fingerprint per page, computed by
//! `fp_core` — the function libatomik's userspace engine uses, so both engines agree on every
//! page. REGION_WATCH reads every page once: the baseline. REGION_CHECK re-reads every page and
//! reports those whose fingerprint, or readability, differs from the baseline. REGION_CHECKPOINT
//! makes what the last check saw the baseline. There is no write tracking here: a check costs a
//! read of every page, and a page rewritten with the same content is not a change.
//!
//! Unreadable pages (no mapping, PROT_NONE, I/O memory) are allowed in a region: they are
//! counted, have no fingerprint, and a page that becomes readable or unreadable is changed.
//!
//! Regions belong to the fd that made them and are freed with it. One fd holds at most
//! `max_regions_per_fd` regions (ENOSPC) of `max_region_pages` pages in all (ENOMEM); a page
//! costs 16 bytes of kernel memory, and a check 8 more while it runs, charged to the caller's
//! memory cgroup. A region watched with REGION_WATCH_COW also keeps a copy-on-write record
//! (`region_cow.rs`) of 16 more bytes per page and counts twice against `max_region_pages`.

use crate::{
    abi::{RegionCheck, RegionCow, RegionId, RegionWatch, IOC_MAGIC, REGION_WATCH_COW},
    address_space::{self, PAGE},
    device::AtomikFile,
    region_cow::CowRecord,
};
use kernel::{
    alloc::{flags::GFP_KERNEL_ACCOUNT, KVVec},
    ioctl::{_IOW, _IOWR},
    mm::Mm,
    new_mutex,
    prelude::*,
    sync::{aref::ARef, Arc, Mutex},
    transmute::AsBytes,
    uaccess::{UserPtr, UserSlice, UserSliceReader},
};

const _: () = assert!(crate::abi::IOCTL_REGION_WATCH == _IOWR::<RegionWatch>(IOC_MAGIC, 0x20));
const _: () = assert!(crate::abi::IOCTL_REGION_CHECK == _IOWR::<RegionCheck>(IOC_MAGIC, 0x21));
const _: () = assert!(crate::abi::IOCTL_REGION_CHECKPOINT == _IOW::<RegionId>(IOC_MAGIC, 0x22));
const _: () = assert!(crate::abi::IOCTL_REGION_UNWATCH == _IOW::<RegionId>(IOC_MAGIC, 0x23));

// SAFETY (for all impls below): each struct is `#[repr(C)]`, made only of integers, and has no
// padding (its size is asserted in abi.rs to equal the sum of its fields), so every bit pattern
// is a valid value and every byte of a value is initialised.
macro_rules! plain_bytes {
    ($($t:ty),*) => {$(
        // SAFETY: see above.
        unsafe impl kernel::transmute::FromBytes for $t {}
        // SAFETY: see above.
        unsafe impl kernel::transmute::AsBytes for $t {}
    )*};
}
plain_bytes!(RegionWatch, RegionCheck, RegionId, RegionCow);

/// The limits in force (module parameters).
struct RegionLimits {
    /// Pages one fd may watch in all its regions.
    pages: u64,
    /// Regions one fd may hold.
    regions: usize,
}

impl RegionLimits {
    fn get() -> RegionLimits {
        RegionLimits {
            pages: *crate::module_parameters::max_region_pages.value_ref(),
            regions: *crate::module_parameters::max_regions_per_fd.value_ref() as usize,
        }
    }
}

/// The fingerprint of every page of a region at one moment. A page that could not be read has
/// fingerprint 0 and its bit set in `unreadable`.
struct Snapshot {
    fp: KVVec<u64>,
    unreadable: KVVec<u64>,
}

impl Snapshot {
    fn new(pages: u64) -> Result<Snapshot> {
        let pages = usize::try_from(pages).map_err(|_| ENOMEM)?;
        Ok(Snapshot {
            fp: KVVec::from_elem(0, pages, GFP_KERNEL_ACCOUNT)?,
            unreadable: KVVec::from_elem(0, pages.div_ceil(64), GFP_KERNEL_ACCOUNT)?,
        })
    }

    /// Reads the `pages` pages from `start` of `mm` into a new snapshot.
    fn read(mm: &Mm, start: u64, pages: u64) -> Result<Snapshot> {
        let mut snap = Snapshot::new(pages)?;
        address_space::fingerprint_pages(mm, start, pages, |i, fp| snap.set(i as usize, fp))?;
        Ok(snap)
    }

    /// A copy of `self`.
    fn try_clone(&self) -> Result<Snapshot> {
        let mut fp = KVVec::new();
        fp.extend_from_slice(&self.fp, GFP_KERNEL_ACCOUNT)?;
        let mut unreadable = KVVec::new();
        unreadable.extend_from_slice(&self.unreadable, GFP_KERNEL_ACCOUNT)?;
        Ok(Snapshot { fp, unreadable })
    }

    /// Whether page `i` differs between `self` and `other`: in readability, or in fingerprint.
    fn differs(&self, other: &Snapshot, i: usize) -> bool {
        let unreadable = self.is_unreadable(i);
        unreadable != other.is_unreadable(i) || (!unreadable && self.fp.get(i) != other.fp.get(i))
    }

    fn set(&mut self, i: usize, fp: Option<u64>) {
        // Indices come from `fingerprint_pages`, below the page count both vectors were made for.
        if let (Some(slot), Some(bits)) = (self.fp.get_mut(i), self.unreadable.get_mut(i / 64)) {
            match fp {
                Some(v) => {
                    *slot = v;
                    *bits &= !(1 << (i % 64));
                }
                None => {
                    *slot = 0;
                    *bits |= 1 << (i % 64);
                }
            }
        }
    }

    fn is_unreadable(&self, i: usize) -> bool {
        self.unreadable.get(i / 64).is_some_and(|w| w & (1 << (i % 64)) != 0)
    }

    fn unreadable_count(&self) -> u64 {
        self.unreadable.iter().map(|w| u64::from(w.count_ones())).sum()
    }

    /// Makes `self` equal to `other` (of the same page count) without allocating.
    fn copy_from(&mut self, other: &Snapshot) {
        for (d, s) in self.fp.iter_mut().zip(other.fp.iter()) {
            *d = *s;
        }
        for (d, s) in self.unreadable.iter_mut().zip(other.unreadable.iter()) {
            *d = *s;
        }
    }
}

/// What the last check saw, and the baseline it was compared with.
pub(crate) struct State {
    baseline: Snapshot,
    last: Snapshot,
    /// The last copy-on-write sample, when watched with REGION_WATCH_COW.
    pub(crate) cow: Option<CowRecord>,
}

/// One watched page range.
#[pin_data]
pub(crate) struct Region {
    pub(crate) mm: ARef<Mm>,
    pub(crate) start: u64,
    pub(crate) pages: u64,
    /// What the region counts against `max_region_pages`: its pages, twice with a COW record.
    cost: u64,
    #[pin]
    pub(crate) state: Mutex<State>,
}

/// The regions of one fd.
pub(crate) struct Regions {
    /// Regions by id.
    list: KVec<(u32, Arc<Region>)>,
    /// Pages in all regions, including those of a REGION_WATCH still reading its baseline.
    pages: u64,
    next_id: u32,
}

impl Regions {
    /// The per-fd region list, empty.
    pub(crate) fn new() -> impl PinInit<Mutex<Regions>> {
        new_mutex!(Regions { list: KVec::new(), pages: 0, next_id: 1 })
    }

    pub(crate) fn find(&self, id: u32) -> Result<Arc<Region>> {
        self.list.iter().find(|(i, _)| *i == id).map(|(_, r)| r.clone()).ok_or(EINVAL)
    }

    /// An id no region of this fd has (the list is short: at most `max_regions_per_fd`).
    fn fresh_id(&mut self) -> u32 {
        loop {
            let id = self.next_id;
            self.next_id = self.next_id.wrapping_add(1).max(1);
            if !self.list.iter().any(|(i, _)| *i == id) {
                return id;
            }
        }
    }
}

/// Bytes of a changed-page bitmap.
fn bitmap_bytes(pages: u64) -> u64 {
    pages.div_ceil(8)
}

pub(crate) fn user_writer(addr: u64, len: usize) -> Result<kernel::uaccess::UserSliceWriter> {
    let addr = usize::try_from(addr).map_err(|_| EFAULT)?;
    Ok(UserSlice::new(UserPtr::from_addr(addr), len).writer())
}

pub(crate) fn watch(me: &AtomikFile, user: UserSlice, arg: usize) -> Result<isize> {
    let (mut r, mut w) = user.reader_writer();
    let mut req: RegionWatch = r.read()?;
    if req.flags & !REGION_WATCH_COW != 0 || req.reserved != 0 {
        return Err(EINVAL);
    }
    let cow = req.flags & REGION_WATCH_COW != 0;
    if req.len == 0 || req.start % PAGE != 0 || req.len % PAGE != 0 {
        return Err(EINVAL);
    }
    req.start.checked_add(req.len).ok_or(EINVAL)?;
    let pages = req.len / PAGE;
    let cost = if cow { pages.checked_mul(2).ok_or(ENOMEM)? } else { pages };
    // The reply must be writable before anything is made (and it is undone below if it stops
    // being writable meanwhile): an id the caller never learns would stay counted.
    UserSlice::new(UserPtr::from_addr(arg), core::mem::size_of::<RegionWatch>()).writer().write(&req)?;
    let limits = RegionLimits::get();
    // Reserve the pages, read without the fd lock held (it may take long), then publish.
    {
        let mut regions = me.regions.lock();
        if regions.list.len() >= limits.regions {
            return Err(ENOSPC);
        }
        let total = regions.pages.checked_add(cost).ok_or(ENOMEM)?;
        if total > limits.pages {
            return Err(ENOMEM);
        }
        regions.pages = total;
    }
    let made = make_region(req.pid, req.start, pages, cow);
    let mut regions = me.regions.lock();
    let pushed = made.and_then(|(region, unreadable)| {
        let id = regions.fresh_id();
        regions.list.push((id, region), GFP_KERNEL)?;
        Ok((id, unreadable))
    });
    let (id, unreadable) = match pushed {
        Ok(v) => v,
        Err(e) => {
            regions.pages -= cost;
            return Err(e);
        }
    };
    drop(regions);
    req.id = id;
    req.unreadable = unreadable;
    if let Err(e) = w.write(&req) {
        // Undo: the caller cannot name the region.
        let removed = {
            let mut regions = me.regions.lock();
            match regions.list.iter().position(|(i, _)| *i == id) {
                Some(idx) => {
                    regions.pages -= cost;
                    regions.list.remove(idx).ok()
                }
                None => None,
            }
        };
        drop(removed);
        return Err(e);
    }
    Ok(0)
}

/// A region over `pages` pages from `start` of `pid`, with its baseline read (and its first
/// copy-on-write sample when `cow`), and how many of those pages were unreadable.
fn make_region(pid: i32, start: u64, pages: u64, cow: bool) -> Result<(Arc<Region>, u64)> {
    let mm = address_space::resolve(pid)?;
    let baseline = Snapshot::read(&mm, start, pages)?;
    let last = baseline.try_clone()?;
    let unreadable = baseline.unreadable_count();
    let cow = match cow {
        true => Some(CowRecord::first(&mm, start, pages)?),
        false => None,
    };
    let cost = if cow.is_some() { pages * 2 } else { pages };
    let region = Arc::pin_init(
        pin_init!(Region {
            mm,
            start,
            pages,
            cost,
            state <- new_mutex!(State { baseline, last, cow }),
        }),
        GFP_KERNEL,
    )?;
    Ok((region, unreadable))
}

pub(crate) fn check(me: &AtomikFile, user: UserSlice) -> Result<isize> {
    let (mut r, mut w) = user.reader_writer();
    let mut req: RegionCheck = r.read()?;
    if req.flags != 0 {
        return Err(EINVAL);
    }
    let region = me.regions.lock().find(req.id)?;
    if req.bitmap != 0 && req.bitmap_len < bitmap_bytes(region.pages) {
        return Err(EINVAL);
    }
    if req.fingerprints != 0 && req.fingerprints_len < region.pages {
        return Err(EINVAL);
    }
    let pages = usize::try_from(region.pages).map_err(|_| ENOMEM)?;
    let mut bitmap = KVVec::<u8>::new();
    if req.bitmap != 0 {
        bitmap = KVVec::from_elem(0, pages.div_ceil(8), GFP_KERNEL_ACCOUNT)?;
    }
    let mut fps = KVVec::<u64>::new();
    // Read and compare under the region's lock; copy to user memory after releasing it, and
    // only then record what this check saw (a check whose reply fails changes nothing).
    let (changed, unreadable, now) = {
        let state = region.state.lock();
        let now = Snapshot::read(&region.mm, region.start, region.pages)?;
        let mut changed = 0u64;
        for i in 0..pages {
            if now.differs(&state.baseline, i) {
                changed += 1;
                if let Some(b) = bitmap.get_mut(i / 8) {
                    *b |= 1 << (i % 8);
                }
            }
        }
        if req.fingerprints != 0 {
            fps.extend_from_slice(&now.fp, GFP_KERNEL_ACCOUNT)?;
        }
        let unreadable = now.unreadable_count();
        (changed, unreadable, now)
    };
    if req.bitmap != 0 {
        user_writer(req.bitmap, bitmap.len())?.write_slice(&bitmap)?;
    }
    if req.fingerprints != 0 {
        let bytes = AsBytes::as_bytes(&fps[..]);
        user_writer(req.fingerprints, bytes.len())?.write_slice(bytes)?;
    }
    req.pages = region.pages;
    req.changed = changed;
    req.unreadable = unreadable;
    w.write(&req)?;
    let old = core::mem::replace(&mut region.state.lock().last, now);
    // Freed outside the lock.
    drop(old);
    Ok(0)
}

fn read_id(mut r: UserSliceReader) -> Result<u32> {
    let req: RegionId = r.read()?;
    if req.reserved != 0 {
        return Err(EINVAL);
    }
    Ok(req.id)
}

pub(crate) fn checkpoint(me: &AtomikFile, r: UserSliceReader) -> Result<isize> {
    let region = me.regions.lock().find(read_id(r)?)?;
    let mut state = region.state.lock();
    let State { baseline, last, .. } = &mut *state;
    baseline.copy_from(last);
    Ok(0)
}

pub(crate) fn unwatch(me: &AtomikFile, r: UserSliceReader) -> Result<isize> {
    let id = read_id(r)?;
    let removed = {
        let mut regions = me.regions.lock();
        let idx = regions.list.iter().position(|(i, _)| *i == id).ok_or(EINVAL)?;
        let (_, region) = regions.list.remove(idx)?;
        regions.pages -= region.cost;
        region
    };
    // A check running on another thread holds its own reference; the last one frees the
    // fingerprints and drops the address space, outside the fd lock.
    drop(removed);
    Ok(0)
}
