// SPDX-License-Identifier: GPL-2.0
//! Copy-on-write detection for regions (REGION_COW): which anonymous pages are shared, which
//! addresses got their own copy since the previous sample, and which copies kept the content.
//!
//! Userspace can tell a shared page from an exclusive one (pagemap bit 56) but not whether an
//! address now maps a *different* page without page frame numbers (CAP_SYS_ADMIN). The kernel
//! knows which page it is: for every page shared at a sample, the record keeps the page's
//! identity (the address of its `struct page`, compared only, never dereferenced later and
//! never shown) and its fingerprint. A later sample that finds a different page, anonymous and
//! mapped once, at that address counts a break, and an identical copy when the fingerprint is
//! the same. No page reference is kept between samples, so a record pins no memory.
//!
//! The record costs 16 bytes per page (and a REGION_COW 16 more while it runs), charged to the
//! caller's memory cgroup; REGION_WATCH_COW counts the region twice against `max_region_pages`.

use crate::{
    abi::{
        RegionCow, COW_PAGE_ANON, COW_PAGE_BROKE, COW_PAGE_IDENTICAL, COW_PAGE_SHARED, IOC_MAGIC,
    },
    address_space::{self, Share},
    device::AtomikFile,
    region::user_writer,
};
use kernel::{
    alloc::{flags::GFP_KERNEL_ACCOUNT, KVVec},
    ioctl::_IOWR,
    mm::Mm,
    prelude::*,
    uaccess::UserSlice,
};

const _: () = assert!(crate::abi::IOCTL_REGION_COW == _IOWR::<RegionCow>(IOC_MAGIC, 0x24));

/// The pages shared at one sample: identity (0 = not shared then) and fingerprint, per page.
pub(crate) struct CowRecord {
    ident: KVVec<usize>,
    fp: KVVec<u64>,
}

/// The figures of one sample.
#[derive(Default)]
struct CowCounts {
    anon: u64,
    shared: u64,
    breaks: u64,
    identical: u64,
}

impl CowRecord {
    /// The first sample of a region (REGION_WATCH): no breaks to count yet.
    pub(crate) fn first(mm: &Mm, start: u64, pages: u64) -> Result<CowRecord> {
        Ok(sample(mm, start, pages, None, None)?.0)
    }
}

/// Samples the `pages` pages from `start` of `mm`: a new record, the figures against `prev`
/// (no breaks without it), and the per-page `COW_PAGE_*` bits into `bits` when given.
fn sample(
    mm: &Mm,
    start: u64,
    pages: u64,
    prev: Option<&CowRecord>,
    mut bits: Option<&mut KVVec<u8>>,
) -> Result<(CowRecord, CowCounts)> {
    let n = usize::try_from(pages).map_err(|_| ENOMEM)?;
    let mut next = CowRecord {
        ident: KVVec::from_elem(0, n, GFP_KERNEL_ACCOUNT)?,
        fp: KVVec::from_elem(0, n, GFP_KERNEL_ACCOUNT)?,
    };
    let mut counts = CowCounts::default();
    address_space::visit_pages(mm, start, pages, |i, page| {
        let i = i as usize;
        let Some(page) = page else { return Ok(()) };
        let share = page.share();
        if share == Share::NotAnon {
            return Ok(());
        }
        let mut b = COW_PAGE_ANON;
        counts.anon += 1;
        // The fingerprint is read only where it is needed: for pages shared now (a later
        // sample compares a copy with it) and for breaks.
        let mut fp = None;
        if share == Share::AnonShared {
            b |= COW_PAGE_SHARED;
            counts.shared += 1;
            let v = page.fingerprint();
            fp = Some(v);
            if let (Some(id), Some(f)) = (next.ident.get_mut(i), next.fp.get_mut(i)) {
                *id = page.identity();
                *f = v;
            }
        }
        let was = prev.and_then(|p| Some((*p.ident.get(i)?, *p.fp.get(i)?)));
        if let Some((was_id, was_fp)) = was {
            if was_id != 0 && share == Share::AnonOnce && page.identity() != was_id {
                b |= COW_PAGE_BROKE;
                counts.breaks += 1;
                if fp.unwrap_or_else(|| page.fingerprint()) == was_fp {
                    b |= COW_PAGE_IDENTICAL;
                    counts.identical += 1;
                }
            }
        }
        if let Some(slot) = bits.as_deref_mut().and_then(|v| v.get_mut(i)) {
            *slot = b;
        }
        Ok(())
    })?;
    Ok((next, counts))
}

pub(crate) fn cow(me: &AtomikFile, user: UserSlice) -> Result<isize> {
    let (mut r, mut w) = user.reader_writer();
    let mut req: RegionCow = r.read()?;
    if req.flags != 0 {
        return Err(EINVAL);
    }
    let region = me.regions.lock().find(req.id)?;
    if req.page_bits != 0 && req.page_bits_len < region.pages {
        return Err(EINVAL);
    }
    let pages = usize::try_from(region.pages).map_err(|_| ENOMEM)?;
    let mut bits = KVVec::<u8>::new();
    if req.page_bits != 0 {
        bits = KVVec::from_elem(0, pages, GFP_KERNEL_ACCOUNT)?;
    }
    // Sample under the region's lock; copy out after releasing it, and only then make this
    // sample the previous one (a REGION_COW whose reply fails changes nothing).
    let (next, counts) = {
        let state = region.state.lock();
        let prev = state.cow.as_ref().ok_or(EINVAL)?;
        let want_bits = (req.page_bits != 0).then_some(&mut bits);
        sample(&region.mm, region.start, region.pages, Some(prev), want_bits)?
    };
    if req.page_bits != 0 {
        user_writer(req.page_bits, bits.len())?.write_slice(&bits)?;
    }
    req.pages = region.pages;
    req.anon = counts.anon;
    req.shared = counts.shared;
    req.breaks = counts.breaks;
    req.identical = counts.identical;
    w.write(&req)?;
    let old = region.state.lock().cow.replace(next);
    // Freed outside the lock.
    drop(old);
    Ok(0)
}
